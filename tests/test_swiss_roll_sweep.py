"""Chapter 1's Swiss-roll sweep (scripts/sweep_swiss_roll.py) and the table it stores for the chapter.

The stored table is checked against its own protocol: one budget for every network, the grid complete, at least
three seeds, the chosen setting the one the rule picks on validation accuracy, the summaries and robustness counts
those of the stored runs, and networks that the package still builds with the stored parameter counts. A quick
run of the script checks its code paths.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import pytest
import torch
from torch import nn

import companion as C
from companion.data import stored_results

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("sweep_swiss_roll", ROOT / "scripts" / "sweep_swiss_roll.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table() -> dict:
    return stored_results("01_swiss_roll_sweep")


@pytest.fixture(scope="module")
def script():
    return _script()


def test_the_table_says_how_it_was_made(table: dict, script) -> None:
    assert table["command"] == "python scripts/sweep_swiss_roll.py" == script.COMMAND
    assert table["machine"] and table["date"] and table["cpu_seconds"]["total"] > 0
    assert table["setup"] == script.SETUP and table["grid"] == script.GRID and table["seeds"] == script.SEEDS
    assert len(table["seeds"]) >= 3 and len(table["authors"]["rerun_seeds"]) >= 3
    assert table["setup"]["embedding"] == [0, 3]  # (x1, 0, 0, x2), as the authors' code
    assert [row["network"] for row in table["rows"]] == list(script.NETWORKS)


def test_every_network_has_the_whole_grid_and_every_seed(table: dict) -> None:
    grid = {(lr, init) for init in table["grid"]["init"] for lr in table["grid"]["lr"]}
    assert (5e-2, "default") in grid  # the chapter's former setting is in the grid
    for row in table["rows"]:
        assert {(s["lr"], s["init"]) for s in row["settings"]} == grid, row["network"]
        assert len(row["settings"]) == len(grid)
        for setting in row["settings"]:
            for key in ("validation", "validation_loss", "test", "train_loss"):
                assert len(setting[key]) == len(table["seeds"]), (row["network"], key)
            assert all(0.0 <= a <= 1.0 for a in setting["validation"] + setting["test"])


def test_the_chosen_setting_follows_the_rule_and_the_summaries_are_the_runs(table: dict, script) -> None:
    for row in table["rows"]:
        settings = row["settings"]
        best = max(statistics.median(s["validation"]) for s in settings)
        chosen = next(s for s in settings if (s["lr"], s["init"]) == (row["chosen"]["lr"], row["chosen"]["init"]))
        assert statistics.median(chosen["validation"]) == best, row["network"]
        assert script.choose(settings) is chosen
        assert row["test"] == chosen["test"]
        assert row["test_summary"] == {
            "median": statistics.median(chosen["test"]),
            "min": min(chosen["test"]),
            "max": max(chosen["test"]),
        }
        robust = sum(statistics.median(s["validation"]) >= table["threshold"] for s in settings)
        assert row["robust_settings"] == robust, row["network"]


def test_the_grid_brackets_every_chosen_learning_rate(table: dict) -> None:
    """A chosen rate at an end of the grid would say the grid is too narrow for that network."""
    rates = table["grid"]["lr"]
    for row in table["rows"]:
        assert min(rates) < row["chosen"]["lr"] < max(rates), row["network"]


def test_choose_breaks_ties_by_the_validation_loss(script) -> None:
    settings = [
        {"lr": 1e-2, "init": "default", "validation": [0.9, 0.99, 0.99], "validation_loss": [0.3, 0.2, 0.2]},
        {"lr": 3e-2, "init": "default", "validation": [0.99, 0.99, 0.5], "validation_loss": [0.1, 0.1, 0.9]},
        {"lr": 1e-1, "init": "xavier", "validation": [0.95, 0.98, 0.98], "validation_loss": [0.0, 0.0, 0.0]},
    ]
    assert script.choose(settings) is settings[1]


def test_the_stored_networks_are_the_ones_the_package_builds(table: dict, script) -> None:
    for row in table["rows"]:
        assert row["spec"] == script.NETWORKS[row["network"]]
        for init in ("default", "xavier"):
            torch.manual_seed(0)
            model = script.build(row["spec"], init)
            assert sum(p.numel() for p in model.parameters()) == row["parameters"], row["network"]
            assert model(torch.zeros(3, 4)).shape == (3, 2)
    deep = [row for row in table["rows"] if row["spec"]["depth"] == 12]
    for row in deep:
        assert set(row["gradient_ratio"]) == set(table["grid"]["init"])


def test_the_authors_rerun_is_stored_beside_the_published_numbers(table: dict) -> None:
    authors = table["authors"]
    assert authors["published"] == {"MLP": 51.0, "MLP, shallow": 79.23, "ResNet": 100.0, "symplectic": 100.0}
    for name in ("ResNet", "symplectic"):
        rerun = authors["rerun"][name]
        assert len(rerun["accuracies"]) == len(authors["rerun_seeds"])
        assert rerun["median"] == statistics.median(rerun["accuracies"])
        assert rerun["min"] == min(rerun["accuracies"]) and rerun["max"] == max(rerun["accuracies"])
    assert authors["rerun_epochs"] == 100


def test_the_splits_embed_the_plane_as_the_authors_do_and_do_not_overlap(script) -> None:
    setup = dict(script.SETUP, points=200)
    data = script.swiss_roll_splits(setup)
    points = torch.cat([data[part][0] for part in ("train", "validation", "test")])
    assert points.shape == (200, 4) and float(points[:, 1:3].abs().max()) == 0.0
    assert [len(data[part][0]) for part in ("train", "validation", "test")] == [75, 25, 100]
    plane, _ = C.swiss_roll(200, embed_dim=2, seed=setup["data_seed"])
    assert torch.equal(torch.sort(points[:, [0, 3]], dim=0).values, torch.sort(plane, dim=0).values)


def test_the_script_runs_quickly_end_to_end(tmp_path: Path, script) -> None:
    out = tmp_path / "sweep.json"
    assert script.main(["--quick", "--out", str(out)]) == 0
    quick = json.loads(out.read_text())
    assert quick["command"].endswith("--quick")
    assert [row["network"] for row in quick["rows"]] == list(script.NETWORKS)
    assert set(quick["authors"]["rerun"]) == {"ResNet", "symplectic"}


# -- the two small package functions the chapter and the script share --


def test_xavier_init_uses_the_tanh_gain_and_zero_biases() -> None:
    torch.manual_seed(0)
    model = C.mlp(4, 2, width=12, depth=3)
    assert C.xavier_init_(model) is model
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        fan_out, fan_in = layer.weight.shape
        bound = 5 / 3 * (6 / (fan_in + fan_out)) ** 0.5
        assert float(layer.weight.detach().abs().max()) <= bound and not layer.bias.detach().any()
    field = C.GradientField(2, 8)
    alpha = field.alpha.detach().clone()
    C.xavier_init_(field)
    assert torch.equal(field.alpha, alpha)
    with pytest.raises(ValueError, match="activation"):
        C.xavier_init_(model, activation="softsign")
    with pytest.raises(TypeError, match="nn.Module"):
        C.xavier_init_(torch.zeros(3))


def test_symplectic_network_is_a_flow_of_symplectic_layers() -> None:
    torch.manual_seed(0)
    net = C.symplectic_network(4, 2, width=4, depth=12, hidden=16, T=3.0)
    assert isinstance(net, C.FlowNetwork) and len(net.layers) == 12
    assert all(isinstance(layer, C.SymplecticLayer) and layer.h == 0.25 for layer in net.layers)
    assert sum(p.numel() for p in net.parameters()) == 1546 and isinstance(net.lift, nn.Identity)
    probe = torch.randn(8, 4, dtype=torch.float64)
    assert C.symplecticity_error(net.layers.double(), probe) < 1e-12
    assert C.symplectic_network(2, 1, width=6, depth=2).lift.out_features == 6
    with pytest.raises(ValueError, match="even"):
        C.symplectic_network(4, 2, width=5, depth=2)
    with pytest.raises(ValueError, match="symplecticity"):
        C.symplectic_network(4, 2, width=4, depth=2, method="rk4")
