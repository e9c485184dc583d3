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
    assert tagged[-1] is cells[-1] or cells.index(tagged[-1]) >= len(cells) - 3, (
        f"{path.name}: the checked cell should be at the end"
    )
    assert any("assert" in "".join(c["source"]) for c in tagged), (
        f"{path.name}: the checked cell should assert its guarantees"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_toc(path: Path) -> None:
    assert f"book/{path.stem}" in _toc_files(), f"{path.name} is not listed in _toc.yml"


def test_toc_lists_only_existing_pages() -> None:
    for entry in _toc_files():
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), (
            f"_toc.yml lists missing page {entry}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_citations_and_exercises(path: Path) -> None:
    text = "\n".join(
        "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"
    )
    assert "{cite}" in text, f"{path.name}: cite the works it builds on"
    assert text.count("```{exercise}") >= 2, f"{path.name}: needs at least two exercises"
    assert text.count("```{solution}") >= 2, f"{path.name}: exercises need (hidden) solutions"


# -- the Colab install cell: the first code cell of every chapter --


def _booktools():
    import importlib.util

    spec = importlib.util.spec_from_file_location("booktools", ROOT / "scripts" / "booktools.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_colab_cell(source: str, monkeypatch, *, in_colab: bool) -> list[list[str]]:
    """Execute the cell's code as a kernel would, with ``google.colab`` present or not; return the commands run."""
    import subprocess
    import sys
    import types

    commands: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: commands.append(list(command)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "<colab cell>", "exec"), {"__name__": "__main__"})
    return commands


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2].isdigit()], ids=lambda p: p.name)
def test_chapter_starts_with_the_colab_install_cell(path: Path) -> None:
    tools = _booktools()
    first = _code_cells(path)[0]
    assert "".join(first["source"]) == tools.colab_install_source(), (
        f"{path.name}: the first code cell must be the Colab install cell built from _config.yml "
        "(run `python scripts/booktools.py colab-cells book/*.ipynb`)"
    )
    tags = first.get("metadata", {}).get("tags", [])
    assert tools.COLAB_TAG in tags and "remove-cell" in tags, (
        f"{path.name}: the install cell must be hidden from the book"
    )
    before_imports = "".join("".join(c["source"]) for c in _code_cells(path)[:1])
    assert "import companion" not in before_imports


def test_colab_cell_installs_the_repository_from_config_in_colab(monkeypatch) -> None:
    tools = _booktools()
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    commands = _run_colab_cell(tools.colab_install_source(), monkeypatch, in_colab=True)
    assert len(commands) == 1
    command = commands[0]
    assert command[1:4] == ["-m", "pip", "install"]
    assert command[-1] == f"companion @ git+{repository['url']}@{repository['branch']}"


def test_colab_cell_does_nothing_outside_colab(monkeypatch) -> None:
    assert _run_colab_cell(_booktools().colab_install_source(), monkeypatch, in_colab=False) == []


def test_colab_cell_follows_the_repository_setting(tmp_path) -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["repository"] = {"url": "https://example.org/someone/fork", "branch": "dev"}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    assert 'PACKAGE = "companion @ git+https://example.org/someone/fork@dev"' in _booktools().colab_install_source(
        tmp_path / "_config.yml"
    )


# -- what the page shows: figures with captions, setup and checks out of the way, maths that parses --


def _figure_cells(path: Path) -> list[dict]:
    """Code cells whose stored output is a figure: an image, or a static slider (companion.plotting.slider_figures)."""
    found = []
    for cell in _code_cells(path):
        if "remove-output" in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if (
                "image/png" in data
                or "image/svg+xml" in data
                or "companion-slider" in "".join(data.get("text/html", ""))
            ):
                found.append(cell)
                break
    return found


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2].isdigit()], ids=lambda p: p.name)
def test_every_figure_has_a_caption_a_name_and_alt_text(path: Path) -> None:
    figures = _figure_cells(path)
    assert figures, f"{path.name}: no figures"
    names = []
    for cell in figures:
        options = cell.get("metadata", {}).get("mystnb", {})
        figure, image = options.get("figure", {}), options.get("image", {})
        start = "".join(cell["source"]).splitlines()[0]
        assert figure.get("name", "").startswith("fig-"), f"{path.name}: figure without a name (fig-...): {start!r}"
        assert len(figure.get("caption", "")) > 40, (
            f"{path.name}: {figure.get('name')} needs a caption that says what to look at"
        )
        assert len(image.get("alt", "")) > 20, f"{path.name}: {figure.get('name')} needs alt text"
        images = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        assert images <= 1, f"{path.name}: {figure['name']} draws {images} images in one cell: one figure per cell"
        names.append(figure["name"])
    assert len(names) == len(set(names)), f"{path.name}: figure names repeat: {names}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2].isdigit()], ids=lambda p: p.name)
def test_setup_and_checked_cells_are_out_of_the_way(path: Path) -> None:
    cells = _code_cells(path)
    hidden = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
    imports = next(c for c in cells if re.search(r"^import companion|^from companion", "".join(c["source"]), re.M))
    parameters = next(c for c in cells if re.match(r"SEED = ", "".join(c["source"])))
    checked = [c for c in cells if "nbval-check-output" in c.get("metadata", {}).get("tags", [])][-1]
    for name, cell in (("import", imports), ("parameter", parameters), ("checked-facts", checked)):
        tags = set(cell.get("metadata", {}).get("tags", []))
        assert tags & hidden, f"{path.name}: the {name} cell should be collapsed on the page (hide-input or hide-cell)"
    assert "nbval-check-output" in checked["metadata"]["tags"]


def _markdown_sources() -> list[tuple[str, str]]:
    sources = [(p.name, p.read_text()) for p in sorted((ROOT / "book").glob("*.md"))]
    for path in NOTEBOOKS:
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "markdown":
                sources.append((f"{path.name} cell {index}", "".join(cell["source"])))
    return sources


def test_display_maths_starts_a_block() -> None:
    """A ``$$`` display right under a line of text is not a display in MyST: its dollars pair with the text's."""
    offenders = []
    for where, text in _markdown_sources():
        lines = text.split("\n")
        opened = False
        for number, line in enumerate(lines):
            if line.strip().startswith("$$"):
                if not opened and number and lines[number - 1].strip():
                    offenders.append(f"{where}, line {number + 1}: {lines[number - 1].strip()[:60]!r} then $$")
                opened = not opened if line.strip() == "$$" else opened
    assert not offenders, "display maths needs a blank line before it:\n" + "\n".join(offenders)


_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.S)
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)  # code, and directives (exercises, solutions, proofs) with it
_ROLE = re.compile(r"\{[a-z:]+\}`[^`]*`")
#: A measured result in the text: a decimal number with three significant digits or more (71.4, 0.992, 5.59).
_RESULT = re.compile(r"(?<![\w.\-])(?=\d*\.\d)(0\.0*[1-9]\d{2,}|[1-9]\d*\.\d+)(?![\w.]*\d)")


def _significant(number: str) -> int:
    return len(number.replace(".", "").lstrip("0"))


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2].isdigit()], ids=lambda p: p.name)
def test_numbers_in_the_text_are_printed_by_a_cell(path: Path) -> None:
    """Every measured number quoted in a chapter's prose or figure captions (three significant digits or more)
    appears in a stored output or in the code: a re-run that changes a result makes the text quoting it fail here."""
    cells = json.loads(path.read_text())["cells"]
    printed = []
    for cell in cells:
        if cell["cell_type"] == "code":
            printed.append("".join(cell["source"]))
            for out in cell.get("outputs", []):
                printed.append("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
    printed = "\n".join(printed)
    missing = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
        else:  # a figure's caption
            source = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption", "")
        text = _ROLE.sub(" ", _CODE.sub(" ", _MATH.sub(" ", source)))
        for match in _RESULT.finditer(text):
            number = match.group(1)
            if _significant(number) >= 3 and number not in printed:
                context = text[max(0, match.start() - 40) : match.end() + 10].replace("\n", " ")
                missing.append(f"cell {index}: {number} in '...{context}...'")
    assert not missing, f"{path.name}: numbers in the text that no cell prints:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_stored_checked_fact_is_false(path: Path) -> None:
    """A printed fact (``claim: True``) holds only through nbval's comparison with the stored text: a run of ``make
    notebooks`` that stored ``False`` would pass it, so the stored outputs of the checked cells may hold no False."""
    checked = [c for c in _code_cells(path) if "nbval-check-output" in c.get("metadata", {}).get("tags", [])]
    assert checked, f"{path.name}: no checked-facts cell"
    for cell in checked:
        text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        false = [line for line in text.splitlines() if re.search(r"\bFalse\s*$", line)]
        assert not false, f"{path.name}: checked facts printed False: {false}"
