"""Hygiene of the committed notebooks: fresh outputs, thin structure, listed in the table of contents.

Executing the notebooks is done by ``pytest --nbval-lax --nbval-current-env book/*.ipynb`` (``make test``);
these tests check what is stored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _code_cells(path: Path) -> list[dict]:
    nb = json.loads(path.read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def _toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}
    for part in toc.get("parts", []):
        files.update(ch["file"] for ch in part.get("chapters", []))
    return files


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found under book/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_fresh(path: Path) -> None:
    counts = [c.get("execution_count") for c in _code_cells(path)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: stored outputs are not one fresh top-to-bottom run (execution counts {counts}); run `make notebooks`."
    )
    for cell in _code_cells(path):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name}: a stored output is an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin_and_checked(path: Path) -> None:
    cells = _code_cells(path)
    for cell in cells:
        src = "".join(cell["source"])
        assert not re.search(r"sys\.path\.(append|insert)|^\s*[!%]pip install|import \*", src, re.M), (
            f"{path.name}: path hack, pip install or star import"
        )
    tagged = [c for c in cells if "nbval-check-output" in c.get("metadata", {}).get("tags", [])]
    assert tagged, f"{path.name}: needs a final cell tagged nbval-check-output"
    assert tagged[-1] is cells[-1] or cells.index(tagged[-1]) >= len(cells) - 3, f"{path.name}: the checked cell should be at the end"
    assert any("assert" in "".join(c["source"]) for c in tagged), f"{path.name}: the checked cell should assert its guarantees"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_toc(path: Path) -> None:
    assert f"book/{path.stem}" in _toc_files(), f"{path.name} is not listed in _toc.yml"


def test_toc_lists_only_existing_pages() -> None:
    for entry in _toc_files():
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), f"_toc.yml lists missing page {entry}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_citations_and_exercises(path: Path) -> None:
    text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
    assert "{cite}" in text, f"{path.name}: cite the works it builds on"
    assert text.count("```{exercise}") >= 2, f"{path.name}: needs at least two exercises"
    assert text.count("```{solution}") >= 2, f"{path.name}: exercises need (hidden) solutions"
