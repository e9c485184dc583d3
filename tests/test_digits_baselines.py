"""The multi-seed table of chapter 6 (scripts/seeds_digits_robustness.py): the script runs, the shipped table has the
shape the chapter reads and was made with the settings the chapter describes, and the loader refuses unknown names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import companion
from companion.data import stored_results

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "seeds_digits_robustness.py"
NAMES = ["ResNet, cross-entropy", "ResNet, hinge", "ResNet, PGD adversarial training", "non-expansive", "switching"]


def _check_table(table: dict, *, seeds: int, radii: int) -> None:
    assert table["command"].endswith("scripts/seeds_digits_robustness.py")
    assert table["machine"] and table["test_size"] == 539
    assert [net["name"] for net in table["networks"]] == NAMES
    for net in table["networks"]:
        assert net["lr"] in table["settings"]["learning_rates"]
        assert [row["lr"] for row in net["grid"]] == table["settings"]["learning_rates"]
        chosen = max(net["grid"], key=lambda row: (row["validation_attacked"], row["validation_clean"]))
        assert chosen["lr"] == net["lr"]  # chosen on the validation split, by the stated rule
        assert len(net["seeds"]) == seeds
        for run in net["seeds"]:
            assert len(run["attacked"]) == radii and abs(run["attacked"][0] - run["clean"]) < 1e-9
            assert (run["certified"] is None) == net["name"].startswith("ResNet")
            if run["certified"] is not None:
                assert all(c <= a + 1e-9 for c, a in zip(run["certified"], run["attacked"]))


def test_the_shipped_table_is_the_chapters(tmp_path: Path) -> None:
    table = stored_results("06_digits_baselines")
    settings = table["settings"]
    assert settings["epochs"] == 30 and settings["batch_size"] == 64 and settings["training_epsilon"] == 0.5
    assert settings["seeds"] == [0, 1, 2, 3, 4] and settings["epsilons"] == [0.0, 0.3, 0.5, 0.8, 1.0]
    _check_table(table, seeds=5, radii=5)
    parameters = [net["parameters"] for net in table["networks"]]
    assert max(parameters) / min(parameters) <= 1.02


def test_the_script_runs_quickly_and_writes_the_same_shape(tmp_path: Path) -> None:
    output = tmp_path / "quick.json"
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--output", str(output)], check=True, cwd=ROOT)
    _check_table(json.loads(output.read_text()), seeds=1, radii=2)


def test_stored_results_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="06_digits_baselines"):
        stored_results("06_no_such_table")
    with pytest.raises(TypeError):
        stored_results(None)  # type: ignore[arg-type]
    assert companion.data.stored_results is stored_results
