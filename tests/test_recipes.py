"""Every recipe runs, and each chapter's "Recipe" section is the tested file of book/recipes/."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "book" / "recipes").glob("*.py"))
# Recipes train tiny networks: one thread is fastest, and far steadier on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def recipe_block(notebook: Path) -> str | None:
    """The first ```python block in the markdown cell whose heading starts with 'Recipe'."""
    for cell in json.loads(notebook.read_text())["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and re.search(r"^#+ Recipe", text, re.M):
            match = re.search(r"```python\n(.*?)```", text, re.S)
            return match.group(1) if match else None
    return None


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_runs(path: Path) -> None:
    runpy.run_path(str(path), run_name="__main__")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_recipe_is_a_tested_file(notebook: Path) -> None:
    block = recipe_block(notebook)
    assert block is not None, f"{notebook.name}: needs a '## Recipe' section with a ```python block"
    matches = [p for p in RECIPES if p.name.startswith(notebook.name[:2]) and p.read_text().strip() == block.strip()]
    assert matches, f"{notebook.name}: its recipe block must equal a file book/recipes/{notebook.name[:2]}_*.py"


def test_recipes_page_includes_every_recipe() -> None:
    page = (ROOT / "book" / "recipes.md").read_text()
    for path in RECIPES:
        assert f"recipes/{path.name}" in page, f"book/recipes.md does not include {path.name}"
