"""The authors'-code benchmarks: the runner's quick mode goes through every code path and writes a sane table."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.authors import EXPERIMENTS, robustness, sir, swiss_roll  # noqa: E402
from benchmarks.authors.common import Comparison, Measurement, describe_row, format_rows, speedup  # noqa: E402
from benchmarks.authors.time_to_accuracy import (  # noqa: E402
    AUTHORS,
    COMPANION,
    Checkpoint,
    Checkpoints,
    Clock,
    TargetRow,
    describe,
    format_time_to_accuracy,
    time_to_target,
)

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
        if line.startswith("| experiment"):  # the next table
            break
        body.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert header.startswith("| experiment: what is compared | metric")
    return body


def test_quick_run_writes_one_row_per_experiment_and_metric(quick_table: str) -> None:
    body = _table_lines(quick_table)
    assert len(body) == sum(EXPECTED_ROWS.values())
    named = [cells[0].split(":")[0] for cells in body if cells[0]]  # "experiment: what is compared"
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
            if cells[0].startswith("heat equation"):  # the authors' recipe is cut short: no speed claim
                assert cells[6] == cells[7] == "no claim"
            else:
                assert float(cells[6].rstrip("x")) > 0  # time ratio
                assert cells[7] in ("yes", "no")


def test_every_row_states_what_it_compares(quick_table: str) -> None:
    named = [cells[0] for cells in _table_lines(quick_table) if cells[0]]
    for cell in named:
        assert "same 102-parameter field" in cell if cell.startswith("heat") else "each side's recipe" in cell
    assert "different networks: 2,682 vs 29,776 parameters" in quick_table
    assert "Every row is at least" not in quick_table


def test_quick_run_writes_the_time_to_accuracy_table(quick_table: str) -> None:
    section = quick_table.split("### Time to accuracy on one network")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| experiment")]
    assert len(rows) == 3 * 2 * 2  # (SIR, two Swiss rolls) x (two networks) x (two recipes)
    for line in rows:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 8 and cells[3] in ("authors' recipe", "companion's recipe")
        assert cells[1] == "" or "same network and data, different trainer" in cells[1]


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


def test_time_ratio_and_description_of_a_comparison() -> None:
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
    assert (
        "| toy: each side's recipe (different networks: 0 vs 0 parameters) | test accuracy | 99.0 | 100.0 | "
        "6.00 (6.00, 6.00) | 1.00 (1.00, 1.00) | 6.0x | yes |" in format_rows([row])
    )
    assert "not implementations" in describe_row(row)
    row.no_claim = "cut short"
    assert "| no claim | no claim |" in format_rows([row]) and "no speed claim" in describe_row(row)


def test_the_clock_leaves_out_its_pauses() -> None:
    clock = Clock(torch.device("cpu"))
    start = time.process_time()
    with clock.paused():
        sum(range(5_000_000))  # CPU work that must not count
    paused = time.process_time() - start
    wall, cpu = clock.read()
    assert cpu < paused / 4 and wall < 1.0


def test_checkpoints_every_epoch_and_at_the_end() -> None:
    metrics = iter(range(100))
    checkpoints = Checkpoints(lambda: {"m": float(next(metrics))}, 3, Clock(torch.device("cpu")))
    for _ in range(7):
        checkpoints()
    checkpoints.finish()
    assert [c.steps for c in checkpoints.curve] == [3, 6, 7]
    assert [c.metrics["m"] for c in checkpoints.curve] == [0.0, 1.0, 2.0]


def _run(values: list[float], seconds: list[float], full: float) -> Measurement:
    curve = [Checkpoint(k + 1, t, t, {"test accuracy": v}) for k, (v, t) in enumerate(zip(values, seconds))]
    return Measurement({"test accuracy": values[-1]}, full, full, curve=curve)


def test_time_to_target_and_its_table() -> None:
    slow = [_run([0.5, 0.9, 0.97], [1.0, 2.0, 3.0], 3.0), _run([0.5, 0.97, 0.99], [1, 2, 3], 3.0)]
    slow.append(_run([0.6, 0.7, 0.8], [1, 2, 3], 3.0))  # never reaches the target
    fast = [_run([0.96, 0.96], [0.5, 1.0], 1.0), _run([0.9, 0.97], [0.5, 1.0], 1.0), _run([0.97], [0.25], 0.25)]
    assert time_to_target(slow[0], "test accuracy", 0.96, False).steps == 3
    assert time_to_target(slow[2], "test accuracy", 0.96, False) is None
    hits = {
        AUTHORS: [time_to_target(run, "test accuracy", 0.96, False) for run in slow],
        COMPANION: [time_to_target(run, "test accuracy", 0.96, False) for run in fast],
    }
    row = TargetRow("toy", AUTHORS, 10, "test accuracy", False, 0.96, {AUTHORS: slow, COMPANION: fast}, hits)
    assert row.median_time(AUTHORS) == 3.0 and row.median_time(COMPANION) == 0.5
    assert row.ratio() == pytest.approx(6.0)
    table = format_time_to_accuracy([row])
    # a run that ends short of the target is listed apart, never as the upper end of a bracket
    assert "| authors' recipe | 97.0 (80.0, 99.0) | 2 of 3 reach it: 2.0, 3.0; 1 ends short at 3.0 |" in table
    assert "| companion's recipe | 97.0 (96.0, 97.0) | 0.5 (0.2, 1.0) |" in table
    assert "| 6.0x (6.0x) |" in table and "test accuracy ≥ 96.0" in table
    sentence = describe(row)
    assert (
        "6.0x less CPU time (ratio of the medians over seeds); 2 of 3 runs of the authors' recipe reach it" in sentence
    )
    assert "timing noise" not in sentence  # 2.0-3.0 s against 0.2-1.0 s
    row.hits[COMPANION][1] = Checkpoint(2, 2.5, 2.5, {"test accuracy": 0.97})
    assert "(authors' recipe 2.0 to 3.0 s, companion's recipe 0.2 to 2.5 s)" in describe(row)
    assert "within the timing noise" in describe(row)


# --- the shipped page and its generated tables ---------------------------------------------------------------------

_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.S)
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)
#: A measured result in the prose: a decimal with three significant digits or more (8.9, no: 89.9, 0.0123), or a
#: time ratio (14.2x, 0.9x).
_DECIMAL = re.compile(r"(?<![\w.\-])(?=\d*\.\d)(0\.0*[1-9]\d{2,}|[1-9]\d*\.\d+)(?![\w.]*\d)")
_RATIO = re.compile(r"(?<![\w.])\d+(?:\.\d+)?x(?!\w)")


def test_shipped_tables_are_a_full_run_that_states_what_each_row_compares() -> None:
    results = (ROOT / "book" / "authors_results.md").read_text()
    assert "QUICK RUN" not in results.splitlines()[0] and "seeds 0, 1, 2" in results.splitlines()[0]
    body = _table_lines(results)
    assert [cells[0].split(":")[0] for cells in body if cells[0]] == list(EXPECTED_ROWS)
    heat = next(cells for cells in body if cells[0].startswith("heat"))
    assert heat[6] == heat[7] == "no claim" and "120 of about 29,000" in results
    assert "different networks: 2,682 vs 29,776 parameters" in results and "90 optimiser steps" in results
    assert "Every row is at least" not in results and "speed-up" not in results
    section = results.split("### Time to accuracy on one network")[1].split("###")[0]
    assert section.count("same network and data, different trainer") == 6


def test_numbers_in_the_page_prose_are_in_the_generated_tables() -> None:
    page = (ROOT / "book" / "authors_benchmarks.md").read_text()
    results = (ROOT / "book" / "authors_results.md").read_text()
    prose = _CODE.sub(" ", _MATH.sub(" ", page))
    quoted = {m for m in _DECIMAL.findall(prose) if len(m.replace(".", "").lstrip("0")) >= 3}
    quoted |= set(_RATIO.findall(prose))
    missing = sorted(number for number in quoted if number not in results)
    assert not missing, f"numbers in book/authors_benchmarks.md that the generated tables do not hold: {missing}"
