"""What a fresh machine needs: requirements that install anywhere, quiet packaging metadata, and a kernel that starts.

The requirements test guards the first thing a newcomer runs: every line of ``requirements.txt`` must be a plain
``name==version`` pin from the package index (or the editable project itself, ``-e .``), never a path or URL that
only existed on the machine that wrote it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*(\[[A-Za-z0-9_,.\-]+\])?==[A-Za-z0-9_.+\-!]+")


def requirement_problems(text: str) -> list[str]:
    """Lines of a requirements file that are not plain pins ``name==version`` (comments and ``-e .`` allowed)."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split(" #", 1)[0].strip()
        if not stripped or stripped.startswith("#") or stripped == "-e .":
            continue
        if not PIN.fullmatch(stripped):
            problems.append(f"requirements.txt line {number}: {line.strip()!r} is not a plain pin 'name==version'")
    return problems


def test_requirements_are_plain_pins() -> None:
    problems = requirement_problems((ROOT / "requirements.txt").read_text())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "line",
    [
        "django-static-mathjax @ file:///tmp/mj/django_static_mathjax-3.2.2.1-py3-none-any.whl",
        "torch",
        "numpy>=1.24",
        "foo @ https://example.org/foo.whl",
        "-e ../elsewhere",
        "git+https://github.com/x/y",
    ],
)
def test_requirements_check_rejects_paths_urls_and_unpinned(line: str) -> None:
    problems = requirement_problems(f"torch==2.13.0\n{line}\n")
    assert len(problems) == 1 and "line 2" in problems[0] and line.split()[0] in problems[0]


def test_requirements_check_accepts_pins_comments_and_the_project() -> None:
    assert requirement_problems("# a comment\ntorch==2.13.0\njupyter-book==1.0.4.post1  # book\n-e .\n") == []


def test_requirements_pin_the_cpu_torch_and_jupyter_book_1() -> None:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in lines
    assert any(re.fullmatch(r"jupyter-book==1\.[0-9.a-z]+", line) for line in lines)


def test_pyproject_licence_is_an_spdx_string_with_a_licence_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    for name in project["license-files"]:
        assert (ROOT / name).is_file()


def test_kernel_starts_many_times_without_a_stall() -> None:
    """30 consecutive kernel starts, each running one cell; any start + run over 20 s fails (a stall, not a load)."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import sys\nprint(sys.version_info[:2])")]
    times = []
    for _ in range(30):
        start = time.perf_counter()
        NotebookClient(notebook, timeout=20, startup_timeout=20, kernel_name="python3").execute()
        times.append(time.perf_counter() - start)
        assert notebook.cells[0].outputs, "the cell produced no output"
    assert max(times) < 20, f"a kernel start took {max(times):.1f} s (all: {[round(t, 1) for t in times]})"
