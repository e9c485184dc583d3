"""The package's layout: one subpackage per topic of the book, short modules and functions, no alias modules."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import companion

PACKAGE = Path(companion.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
#: The subpackage of each chapter's topic (chapter 1 lives in the core).
SUBPACKAGES = {"presnov": (2, 3), "pde": (4,), "structured": (5,), "lipschitz": (6,)}


def test_each_topic_is_a_subpackage_and_no_flat_alias_is_left() -> None:
    found = {info.name for info in pkgutil.iter_modules([str(PACKAGE)]) if info.ispkg}
    assert set(SUBPACKAGES) <= found
    flat = {info.name for info in pkgutil.iter_modules([str(PACKAGE)]) if not info.ispkg}
    moved = {"approximation", "attacks", "operator_norms", "robustness", "switching"}
    assert not {name for name in flat if name.startswith(("pde_", "structured_"))} | (flat & moved)


@pytest.mark.parametrize("name", sorted(SUBPACKAGES))
def test_subpackage_says_which_chapter_uses_it(name: str) -> None:
    module = importlib.import_module(f"companion.{name}")
    doc = module.__doc__ or ""
    for chapter in SUBPACKAGES[name]:
        assert f"chapter {chapter}" in doc.lower() or f"chapters {chapter}" in doc.lower(), (name, chapter)


def test_core_imports_no_subpackage() -> None:
    """Lower modules never import higher ones: the flat core imports none of the topic subpackages."""
    for path in PACKAGE.glob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert (node.module or "").split(".")[0] not in SUBPACKAGES, (path.name, node.module)


def _code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring (the signature, one parameter a line, counts)."""
    length = function.end_lineno - function.lineno + 1
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        length -= first.end_lineno - first.lineno + 1
    return length


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_short(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert len(lines) <= 620, f"{path.name}: {len(lines)} lines (split it by topic)"
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = _code_lines(node)
            assert length <= 90, f"{path.name}: {node.name} has {length} lines of code (split it into named steps)"


def test_docstrings_cite_papers_not_notes_outside_the_repository() -> None:
    for path in MODULES:
        assert "science.md" not in path.read_text(), path
