"""The multi-seed table of chapter 5's SIR and ABC comparisons (scripts/seeds_structured.py): the script runs, and the
shipped table has the shape the chapter reads, learning rates chosen by the stated rule inside their grid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from companion.data import stored_results

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "seeds_structured.py"
NETWORKS = {"sir": ["mass-preserving", "ResNet", "mass and sign"], "abc": ["volume-preserving", "ResNet"]}
MEASURES = {
    "sir": {"test_mse", "sum_drift", "rollout_sum_drift", "rollout_min"},
    "abc": {"test_mse", "det_error", "ball_gap"},
}


def _check(table: dict, *, seeds: int) -> None:
    assert table["command"].endswith("scripts/seeds_structured.py") and table["machine"]
    grid = table["settings"]["learning_rates"]
    for experiment, names in NETWORKS.items():
        assert list(table[experiment]) == names
        for row in table[experiment].values():
            assert [point["lr"] for point in row["grid"]] == grid
            finite = [point for point in row["grid"] if np.isfinite(point["validation_mse"])]
            assert row["lr"] == min(finite, key=lambda point: point["validation_mse"])["lr"]
            assert len(row["seeds"]) == seeds
            assert all(set(run) == MEASURES[experiment] | {"seed"} for run in row["seeds"])


def test_the_shipped_table_chooses_inside_the_grid_and_keeps_the_invariants() -> None:
    table = stored_results("05_sir_abc_seeds")
    _check(table, seeds=5)
    grid = table["settings"]["learning_rates"]
    for experiment in NETWORKS:
        for row in table[experiment].values():
            assert grid[0] < row["lr"] < grid[-1], "a chosen learning rate at the edge of its grid"
    for name in ("mass-preserving", "mass and sign"):
        assert max(run["rollout_sum_drift"] for run in table["sir"][name]["seeds"]) < 1e-12
    assert min(run["rollout_min"] for run in table["sir"]["mass and sign"]["seeds"]) >= 0
    assert max(run["det_error"] for run in table["abc"]["volume-preserving"]["seeds"]) < 1e-12


def test_the_script_runs_quickly_and_writes_the_same_shape(tmp_path: Path) -> None:
    output = tmp_path / "quick.json"
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--output", str(output)], check=True, cwd=ROOT)
    _check(json.loads(output.read_text()), seeds=1)
