"""A clean virtual environment with the core alone (``pip install .``) runs the recipes that need only the core, then
with the extras the rest and tests/test_user_api.py, from a folder outside the repository (scripts/user_check.sh).
Minutes long (it installs the package and its dependencies into a new venv), so it is marked slow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_clean_install_runs_the_recipes_and_the_user_api_tests() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "user_check.sh")], capture_output=True, text=True, timeout=3600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "user check: 0 failure(s)" in result.stdout
