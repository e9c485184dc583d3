"""scripts/generalisation_pde.py (chapter 4: do the method-of-lines networks generalise?): its quick run writes a
table of the shape the chapter reads, the test families are what they say, and the shipped table holds the claims."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from companion.data import stored_results
from companion.pde import initial_conditions
from companion.pde.data import trajectories_from
from companion.pde.families import (
    GENERALISATION_FAMILIES,
    broadband,
    generalisation_families,
    localised_bumps,
    random_fields,
    sums_and_rescalings,
)

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("smooth-k3", "random")


def run_script(*args: str) -> dict:
    spec = importlib.util.spec_from_file_location("generalisation_pde", ROOT / "scripts" / "generalisation_pde.py")
    script = importlib.util.module_from_spec(spec)
    sys.modules["generalisation_pde"] = script
    spec.loader.exec_module(script)
    return script.main(list(args))


def check_shape(table: dict, count: int, steps: int) -> None:
    for key in ("command", "machine", "settings", "results", "cpu_seconds"):
        assert key in table, key
    assert table["command"].startswith(".venv/bin/python scripts/generalisation_pde.py")
    settings = table["settings"]
    assert settings["initial_conditions_per_family"] == count and settings["steps"] == steps
    assert settings["families"] == list(GENERALISATION_FAMILIES)
    assert set(table["results"]) == {"heat", "fisher"}
    for equation, result in table["results"].items():
        assert list(result["families"]) == list(GENERALISATION_FAMILIES), equation
        assert set(result["training_family"]) == set(VARIANTS)
        for name, row in result["families"].items():
            assert len(row["fd"]["per_initial_condition"]) == count
            assert set(row["networks"]) == set(VARIANTS), (equation, name)
            for cell in row["networks"].values():
                assert len(cell["per_initial_condition"]) == count
                assert math.isfinite(cell["mean"]) and cell["max"] >= cell["mean"] > 0
                assert cell["ratio_to_fd"] == pytest.approx(cell["mean"] / row["fd"]["mean"])


def test_quick_run_writes_a_table_of_the_shipped_shape(tmp_path):
    table = run_script("--quick", "--output", str(tmp_path / "g.json"))
    check_shape(table, count=2, steps=8)
    assert (tmp_path / "g.json").is_file()


def test_shipped_table_holds_the_claims():
    table = stored_results("04_pde_generalisation")
    check_shape(table, count=16, steps=40)
    for equation, result in table["results"].items():
        rows = result["families"]
        assert result["training_family"] == {"smooth-k3": "sin-cos", "random": "broadband"}
        smooth = {name: row["networks"]["smooth-k3"] for name, row in rows.items()}
        # the k <= 3 networks: better than FD on their own family, more than 10x worse than FD at k = 5..8
        assert smooth["sin-cos k<=3"]["ratio_to_fd"] < 1 and smooth["sin-cos k<=3"]["in_training_family"]
        assert smooth["sin-cos k=5..8"]["ratio_to_fd"] > 10 and not smooth["sin-cos k=5..8"]["in_training_family"]
        # the broadband headline: far better than the k <= 3 network where that one fails
        broad = {name: row["networks"]["random"] for name, row in rows.items()}
        assert broad["sin-cos k=5..8"]["mean"] < smooth["sin-cos k=5..8"]["mean"] / 4
        # Fisher: within 2x of FD on every family; heat: on the smooth families, not at k = 4..8 (its two ReLU
        # channels are not exactly linear, and what they leak into low modes outlives the fast-decaying modes)
        within = (
            GENERALISATION_FAMILIES
            if equation == "fisher"
            else ("sin-cos k<=3", "localised bumps", "sums of sin-cos k<=3 images")
        )
        for name in within:
            assert broad[name]["ratio_to_fd"] < 2, (equation, name)
        if equation == "heat":
            assert broad["sin-cos k=5..8"]["ratio_to_fd"] > 2


def test_families_are_what_they_say():
    families = generalisation_families("fisher", count=3, seed=5)
    assert list(families) == list(GENERALISATION_FAMILIES)
    assert all(u.shape == (3, 64, 64) and u.dtype == torch.float64 for u in families.values())
    assert float(families["localised bumps"].min()) >= 0 and float(families["random fields p=1.5"].min()) >= 0
    heat = generalisation_families("heat", count=3, seed=5)
    assert torch.equal(heat["sin-cos k=5..8"], families["sin-cos k=5..8"])
    assert float(heat["localised bumps"].min()) < 0  # signed bumps for heat
    # spectra: the k = 5..8 modes have no energy at max(|k|) <= 4
    spectrum = torch.fft.fft2(heat["sin-cos k=5..8"]).abs()
    k = torch.fft.fftfreq(64, 1 / 64).abs()
    assert float(spectrum[:, torch.maximum(k[:, None], k[None]) <= 4].max()) < 1e-9
    fields = random_fields(4, decay=2.0, amplitude=(0.5, 1.0), seed=1)
    assert 0.5 <= float(fields.flatten(1).abs().amax(1).min()) and float(fields.abs().max()) <= 1 + 1e-12
    assert abs(float(fields.mean())) < 1e-12  # no k = 0 mode
    assert torch.equal(random_fields(2, seed=3), random_fields(2, seed=3))
    bump = localised_bumps(1, bumps=1, width=0.05, amplitude=1.0, seed=0)[0]
    assert float(bump.max()) == pytest.approx(1.0, abs=0.05) and float(bump.min()) > -1e-12
    assert torch.allclose(bump, torch.roll(localised_bumps(1, bumps=1, width=0.05, amplitude=1.0, seed=0)[0], 0))
    images = initial_conditions(4, seed=0)
    sums = sums_and_rescalings(images, 5, terms=1, amplitude=1.0, seed=0)
    assert torch.allclose(sums.flatten(1).abs().amax(1), torch.ones(5, dtype=torch.float64))


def test_broadband_mixes_kinds_within_the_value_range():
    u = broadband(16, values=(-0.5, 1.5), seed=3, dtype=torch.float32)
    assert u.shape == (16, 64, 64) and u.dtype == torch.float32
    assert float(u.min()) >= -0.5 - 1e-6 and float(u.max()) <= 1.5 + 1e-6
    assert torch.equal(broadband(4, seed=1), broadband(4, seed=1)) and not torch.equal(
        broadband(4, seed=1), broadband(4, seed=2)
    )
    spectrum = torch.fft.fft2(broadband(32, seed=0) - broadband(32, seed=0).mean((1, 2), keepdim=True)).abs() ** 2
    k = torch.fft.fftfreq(64, 1 / 64).abs()
    band = torch.maximum(k[:, None], k[None])
    share = spectrum[:, (band >= 9) & (band <= 16)].sum() / spectrum.sum()
    assert float(share) > 0.02  # the middle frequencies are excited, not only k <= 3
    trajectories = trajectories_from("heat", u[:2].double(), steps=3)
    assert trajectories.shape == (2, 4, 64, 64) and torch.equal(trajectories[:, 0], u[:2].double())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: localised_bumps(0), ValueError, "count"),
        (lambda: localised_bumps(2, width=0.3), ValueError, "width must lie in"),
        (lambda: localised_bumps(2, width=(0.1, 0.05)), ValueError, "low <= high"),
        (lambda: localised_bumps(2, bumps=(1.5, 2)), TypeError, "bumps must be an int"),
        (lambda: localised_bumps(2, amplitude="big"), TypeError, "amplitude must be a number or a pair"),
        (lambda: localised_bumps(2, background=float("nan")), ValueError, "background"),
        (lambda: localised_bumps(2, seed=1.0), TypeError, "seed must be an int"),
        (lambda: localised_bumps(2, dtype=torch.int64), TypeError, "dtype must be a floating"),
        (lambda: random_fields(2, decay=-1.0), ValueError, "decay"),
        (lambda: random_fields(2, k_min=5, k_max=4), ValueError, "k_min <= k_max"),
        (lambda: random_fields(2, size=16, k_max=9), ValueError, "size // 2"),
        (lambda: random_fields(2, amplitude=0.0), ValueError, "amplitude must be > 0"),
        (lambda: sums_and_rescalings(torch.zeros(4, 4), 2), ValueError, "images"),
        (lambda: sums_and_rescalings(torch.full((2, 4, 4), float("nan")), 2), ValueError, "finite"),
        (lambda: sums_and_rescalings(torch.ones(2, 4, 4), 2, terms=0), ValueError, "terms"),
        (lambda: broadband(2, values=(1.0, 1.0)), ValueError, "low < high"),
        (lambda: broadband(2, bands=[(1, 40)]), ValueError, "each band"),
        (lambda: broadband(2, bands="13"), TypeError, "bands must be"),
        (lambda: generalisation_families("advection"), ValueError, "heat' or 'fisher"),
        (lambda: trajectories_from("heat", torch.zeros(8, 8), steps=2), ValueError, "batch of grids"),
        (lambda: trajectories_from("heat", torch.zeros(1, 8, 8), steps=2, size=16), ValueError, "size=16"),
        (lambda: trajectories_from("burgers", torch.zeros(1, 8, 8), steps=2), ValueError, "unknown equation"),
        (lambda: trajectories_from("heat", torch.zeros(1, 8, 8), steps=0), ValueError, "steps"),
    ],
)
def test_families_refuse_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
