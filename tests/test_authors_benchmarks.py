"""The authors'-code benchmarks: the runner's quick mode goes through every code path and writes a sane table."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.authors import EXPERIMENTS, robustness, sir, swiss_roll  # noqa: E402
from benchmarks.authors.common import Comparison, Measurement, format_rows, format_verdict, speedup  # noqa: E402

EXPECTED_ROWS = {
    "SIR time-1 map, mass-preserving net": 3,  # metrics per row
    "Swiss roll, 12-layer ResNet": 1,
    "Swiss roll, 12-layer symplectic": 1,
    "heat equation from pixels, 102-parameter CNN": 1,
    "digits, non-expansive net vs l2-PGD": 2,
}


@pytest.fixture(scope="module")
def quick_table(tmp_path_factory) -> str:
    output = tmp_path_factory.mktemp("authors") / "results.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "authors_run.py"),
            "--quick",
            "--device",
            "cpu",
            "--seeds",
            "0",
            "1",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output.read_text()


def _table_lines(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = rows[0]
    body = []
    for line in rows[1:]:
        if line.startswith("| experiment"):
            break
        body.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert header.startswith("| experiment | metric")
    return body


def test_quick_run_writes_one_row_per_experiment_and_metric(quick_table: str) -> None:
    body = _table_lines(quick_table)
    assert len(body) == sum(EXPECTED_ROWS.values())
    named = [cells[0] for cells in body if cells[0]]
    assert named == list(EXPECTED_ROWS)
    assert all(len(cells) == 8 for cells in body)
    assert "QUICK RUN" in quick_table.splitlines()[0] and "torch" in quick_table.splitlines()[0]


def test_quick_run_numbers_are_finite_on_both_sides(quick_table: str) -> None:
    for cells in _table_lines(quick_table):
        for cell in cells[2:4]:  # authors' and companion's accuracy
            assert math.isfinite(float(cell.split(" ")[0]))
        if cells[0]:
            for cell in cells[4:6]:  # training times
                assert float(cell.split(" ")[0]) > 0
            assert float(cells[6].rstrip("x")) > 0  # speed-up
            assert cells[7] in ("yes", "no")


def test_the_registry_lists_the_four_experiments() -> None:
    assert list(EXPERIMENTS) == ["sir", "swiss_roll", "pixels", "robustness"]


def test_quick_run_writes_the_step_cost_table(quick_table: str) -> None:
    section = quick_table.split("### Where the training time goes")[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| network |")]
    assert len(rows) == 6
    for line in rows:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert all(float(cells[k]) > 0 for k in (3, 4, 5))


def test_authors_sir_network_has_their_parameter_count_and_keeps_mass() -> None:
    torch.manual_seed(0)
    model = sir.authors_network().double()
    assert sum(p.numel() for p in model.parameters()) == 35_544
    x = torch.rand(5, 3, dtype=torch.float64)
    assert torch.allclose(model(x).sum(1), x.sum(1), atol=1e-12)


def test_authors_swiss_roll_data_and_networks_match_their_description() -> None:
    x, y, x_test, y_test = swiss_roll.swiss_roll_data(0)
    assert x.shape == x_test.shape == (4000, 4) and set(y.tolist()) == {0, 1}
    assert torch.all(x[:, 1:3] == 0)  # (x1, 0, 0, x2)
    torch.manual_seed(0)
    assert sum(p.numel() for p in swiss_roll.AuthorsResNet().parameters()) == 485
    assert sum(p.numel() for p in swiss_roll.AuthorsHamiltonianNet().parameters()) == 149


def test_authors_attack_stays_in_the_ball_and_the_box() -> None:
    torch.manual_seed(0)
    model = robustness.AuthorsNonExpansiveNet()
    images, labels = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    attacked = robustness.l2_pgd(model, images, labels, epsilon=0.5, steps=5)
    assert float((attacked - images).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5
    assert float(attacked.min()) >= 0 and float(attacked.max()) <= 1


def test_verdict_and_speedup_of_a_comparison() -> None:
    fast = Measurement({"test accuracy": 1.0}, 1.0, 1.0)
    slow = Measurement({"test accuracy": 0.99}, 6.0, 6.0)
    row = Comparison(
        "toy",
        ["test accuracy"],
        [False],
        [slow, slow],
        [fast, fast],
        "at least",
        lambda r: r.companion[0].metrics["test accuracy"] >= r.authors[0].metrics["test accuracy"],
    )
    assert speedup(row) == pytest.approx(6.0)
    assert "| toy | test accuracy | 99.0 | 100.0 | 6.00 (6.00, 6.00) | 1.00 (1.00, 1.00) | 6.0x | yes |" in format_rows(
        [row]
    )
    assert format_verdict([row]).startswith("Every row is at least 5 times faster")
    assert "toy: 6.0x in wall-clock time" in format_verdict([row], target=8)
