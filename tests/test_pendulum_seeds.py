"""scripts/seeds_pendulum.py (chapter 5's pendulum comparison over seeds): its quick run writes a table of the shape
the chapter reads, and the shipped table holds what the chapter's prose says about it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from companion.data import stored_results

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "seeds_pendulum.py"
MODELS = ("symplectic", "ResNet", "ResNet, long")
METRICS = ("train_mse", "test_mse", "energy_early", "energy_late", "trajectory_early", "trajectory_late")


def _check_shape(table: dict) -> None:
    for key in ("command", "machine", "settings", "selected", "tuning", "rows", "seconds"):
        assert key in table, key
    assert table["command"].startswith(".venv/bin/python scripts/seeds_pendulum.py")
    settings = table["settings"]
    assert len(settings["seeds"]) >= 3
    assert set(table["selected"]) == set(MODELS)
    for name, config in table["selected"].items():
        assert set(config) == {"depth", "hidden", "total_step", "lr", "epochs"}, name
        assert config["lr"] in settings["learning_rates"] and config["depth"] in settings["depths"]
    # equal budget for the two tuned networks; the long ResNet keeps the ResNet's shape and step
    assert table["selected"]["symplectic"]["epochs"] == table["selected"]["ResNet"]["epochs"] == settings["epochs"]
    long_epochs = table["selected"]["ResNet, long"]["epochs"]
    assert long_epochs in [factor * settings["epochs"] for factor in settings["long_factors"]]
    for key in ("depth", "hidden", "total_step"):
        assert table["selected"]["ResNet, long"][key] == table["selected"]["ResNet"][key]
    for name, rows in table["tuning"].items():
        assert rows and all(len(row["validation_mse"]) == len(settings["tuning_seeds"]) for row in rows), name
    rows = table["rows"]
    assert sorted((row["seed"], row["model"]) for row in rows) == sorted(
        (seed, name) for seed in settings["seeds"] for name in MODELS
    )
    for row in rows:
        for metric in METRICS:
            assert math.isfinite(row[metric]) and row[metric] >= 0, (row, metric)
    for seed in settings["seeds"]:  # equal parameter counts, within 5 %
        counts = [row["parameters"] for row in rows if row["seed"] == seed]
        assert max(counts) <= 1.05 * min(counts), counts


def _per_model(table: dict, metric: str) -> dict[str, list[float]]:
    seeds = table["settings"]["seeds"]
    values = {(row["seed"], row["model"]): row[metric] for row in table["rows"]}
    return {name: [values[seed, name] for seed in seeds] for name in MODELS}


def test_quick_run_writes_the_table(tmp_path: Path) -> None:
    output = tmp_path / "pendulum.json"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        check=True,
        capture_output=True,
        timeout=300,
        env=environment,
    )
    table = json.loads(output.read_text())
    _check_shape(table)
    assert table["command"].endswith("--quick")


@pytest.fixture(scope="module")
def shipped() -> dict:
    return stored_results("05_pendulum_seeds")


def test_shipped_table_has_the_shape_and_the_full_settings(shipped: dict) -> None:
    _check_shape(shipped)
    assert shipped["command"] == ".venv/bin/python scripts/seeds_pendulum.py"
    settings = shipped["settings"]
    assert (settings["samples"], settings["dt"], settings["rollout_steps"]) == (1000, 0.1, 1000)
    assert len(settings["seeds"]) >= 5


def test_shipped_table_holds_the_chapters_claims(shipped: dict) -> None:
    """The claims of chapter 5's section "Symplecticity: learning the pendulum", at the strength the prose states
    them (its checked-facts cell asserts the same on the same table)."""
    n_seeds = len(shipped["settings"]["seeds"])

    def ratio(name: str, metric: str) -> list[float]:
        values = _per_model(shipped, metric)
        return [a / b for a, b in zip(values[name], values["symplectic"], strict=True)]

    early, late = _per_model(shipped, "energy_early"), _per_model(shipped, "energy_late")
    growth = {name: [b / a for a, b in zip(early[name], late[name], strict=True)] for name in MODELS}
    # equal budget: one-step errors within a factor 3 either way, the ResNet's lower on at least 2 seeds...
    budget = ratio("ResNet", "train_mse")
    assert 1 / 3 < min(budget) and max(budget) < 3
    assert sum(r < 1 for r in budget) >= 2
    # ... and its energy error over the last 100 steps more than 10 times the symplectic network's on every seed
    assert min(ratio("ResNet", "energy_late")) > 10
    # the long ResNet: one-step error below half the symplectic network's, late energy error above twice it
    assert max(ratio("ResNet, long", "train_mse")) < 0.5
    assert min(ratio("ResNet, long", "energy_late")) > 2
    # its distance to the exact trajectory is larger on most seeds, not on all
    further = sum(r > 1 for r in ratio("ResNet, long", "trajectory_late"))
    assert n_seeds / 2 < further < n_seeds
    # the symplectic network's energy error does not grow; both ResNets' grows more than 5 times
    assert max(growth["symplectic"]) < 1.1
    assert min(growth["ResNet"] + growth["ResNet, long"]) > 5
