"""Chapter 6's peer benchmark (``benchmarks/peers_lipschitz.py``): its quick mode runs every code path and writes a
table of the right shape, it runs without deel-torchlip (our rows only, and it says so), and the table the package
ships holds what the chapter and the benchmarks page print."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from companion.data import stored_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import peers_lipschitz as peers  # noqa: E402

SKIP_WITHOUT_DEEL = pytest.mark.skipif(
    peers.import_deel() is None,
    reason="deel-torchlip is not installed: it is a benchmark-only dependency (pip install deel-torchlip==1.0.5)",
)


def _check_table(table: dict, settings: dict) -> None:
    """The shape of a written table, and what must hold whatever the numbers: the certificate below the attack,
    the attack below the clean accuracy, parameters within 1 % of ours."""
    for key in ("command", "machine", "settings", "sizes", "networks", "deel_torchlip"):
        assert key in table, key
    assert table["settings"] == json.loads(json.dumps(settings))
    assert [n["name"] for n in table["networks"]] == list(peers.NETWORKS)
    ours = table["networks"][0]["parameters"]
    epsilons = settings["epsilons"]
    for network in table["networks"]:
        assert abs(network["parameters"] - ours) <= 0.01 * ours, network["name"]
        assert len(network["grid"]) == len(peers.grid(peers.NETWORKS[network["name"]][1], settings))
        best = max(network["grid"], key=lambda row: (row["score"], row["validation_clean"]))
        assert network["chosen"] == peers.chosen_setting(best)
        assert [s["seed"] for s in network["seeds"]] == settings["seeds"]
        for seed in network["seeds"]:
            assert len(seed["certified"]) == len(seed["attacked"]) == len(epsilons)
            for certified, attacked in zip(seed["certified"], seed["attacked"]):
                assert 0 <= certified <= attacked <= seed["clean"] <= 1, (network["name"], seed)
            assert seed["train_cpu_seconds"] > 0 and seed["inference_ms"] > 0 and seed["plain_inference_ms"] > 0
            assert seed["plain_max_logit_gap"] < 1e-4  # the plain layers compute the trained network's function
            assert 1.0 <= seed["lipschitz_bound"] < 1.001  # ours: 1 exactly; deel's: its exported weights' norms


@SKIP_WITHOUT_DEEL
def test_quick_mode_writes_a_table_of_the_expected_shape(tmp_path: Path) -> None:
    output = tmp_path / "peers.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peers_lipschitz.py"), "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    table = json.loads(output.read_text())
    _check_table(table, peers.QUICK)
    assert table["deel_torchlip"] == "1.0.5"
    assert "| deel-torchlip, HKR" in completed.stdout


def test_without_deel_torchlip_only_our_rows_are_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "deel", None)  # makes `from deel import torchlip` raise ImportError
    assert peers.import_deel() is None
    table = peers.run(peers.QUICK, log=lambda line: None)
    assert table["deel_torchlip"] is None
    assert [n["name"] for n in table["networks"]] == [
        name for name, kind in peers.NETWORKS.items() if kind[0] != "deel"
    ]
    text = peers.markdown(table)
    assert "| deel-torchlip | not installed | pip install deel-torchlip==1.0.5" in text


def test_the_shipped_table_holds_six_tuned_networks_and_three_seeds() -> None:
    table = stored_results("06_lipschitz_peers")
    _check_table(table, peers.SETTINGS)
    assert table["command"] == peers.COMMAND
    assert table["sizes"] == {"train": 1006, "validation": 252, "test": 539}
    assert [n["parameters"] for n in table["networks"]] == [29_905, 29_905, 29_776, 29_770, 29_770, 29_770]
    for ours in table["networks"][:3]:
        assert all(seed["lipschitz_bound"] == 1.0 for seed in ours["seeds"])
    for network in table["networks"]:  # exports are faster than the modules they come from
        assert all(seed["plain_inference_ms"] <= seed["inference_ms"] for seed in network["seeds"])


def test_the_ablation_quick_mode_and_the_shipped_ablation(tmp_path: Path) -> None:
    output = tmp_path / "ablation.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "peers_lipschitz.py"),
            "--ablation",
            "--quick",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    for table, settings in (
        (json.loads(output.read_text()), peers.QUICK),
        (stored_results("06_recipe_ablation"), peers.SETTINGS),
    ):
        assert [v["name"] for v in table["variants"]] == list(peers.ABLATION)
        assert table["settings"] == json.loads(json.dumps(settings))
        recipe = table["variants"][0]["parameters"]
        for variant in table["variants"]:
            assert abs(variant["parameters"] - recipe) <= 0.06 * recipe, variant["name"]
            assert [s["seed"] for s in variant["seeds"]] == settings["seeds"]
            for seed in variant["seeds"]:
                assert all(0 <= c <= seed["clean"] <= 1 for c in seed["certified"])
    shipped = stored_results("06_recipe_ablation")
    peers_table = stored_results("06_lipschitz_peers")
    assert shipped["chosen"] == peers_table["networks"][0]["chosen"]  # the recipe's setting, as chosen
