"""Time to accuracy on one network: every network of a row trained by both recipes, seed by seed, on the same data.

The first table of the page compares the authors' network trained by the authors' recipe with companion's network
trained by companion's recipe: two recipes *and* two networks. This module separates them. For a row whose
networks can both be trained by both recipes (:class:`Setup`), it trains every network (the authors', companion's)
by every recipe (the authors' training loop; :func:`companion.fit` with companion's settings) on the same data and
records the held-out metric at regular checkpoints (every epoch of the recipe). A checkpoint's evaluation runs with
the clock paused (:class:`Clock`), so every time is training time only, wall clock and process CPU.

For one network the *target* is the worse of the two recipes' final median metrics: the recipe that ends better
is timed to the other recipe's final median, and the other one to its own, so that both reach the target in their
median run. A run's time to target is its training time at the first checkpoint whose metric reaches the target;
a run that does not reach it by the end of its recipe ends short of it: the table lists it apart, with its full
training time, and the median counts it as never reaching the target. The time ratio is the authors' recipe's
median time to target over companion's recipe's (the ratio of the medians: a run that ends short has no per-seed
ratio).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .common import Comparison, Measurement, describe_row, format_number, median, parameter_count, sync

AUTHORS, COMPANION = "authors'", "companion's"


@dataclass
class Checkpoint:
    """The held-out metrics after ``steps`` optimiser steps, and the training time (seconds) up to then."""

    steps: int
    wall: float
    cpu: float
    metrics: dict[str, float]


class Clock:
    """Training time that leaves out its pauses: wall clock (device synchronised) and process CPU seconds."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start()

    def start(self) -> None:
        sync(self.device)
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        """Wall-clock and CPU seconds since :meth:`start`, pauses left out."""
        sync(self.device)
        return time.perf_counter() - self._wall, time.process_time() - self._cpu

    @contextmanager
    def paused(self) -> Iterator[tuple[float, float]]:
        """Stop the clock for the ``with`` block; yields the reading at its start."""
        wall, cpu = self.read()
        try:
            yield wall, cpu
        finally:
            now_wall, now_cpu = self.read()
            self._wall += now_wall - wall
            self._cpu += now_cpu - cpu


class Checkpoints:
    """The ``after_step`` of a training loop: counts optimiser steps and every ``every`` steps records the metrics
    of ``evaluate()`` with the clock paused."""

    def __init__(self, evaluate: Callable[[], dict[str, float]], every: int, clock: Clock) -> None:
        self.evaluate, self.every, self.clock = evaluate, every, clock
        self.steps, self.curve = 0, []

    def __call__(self, model: nn.Module | None = None) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self.record()

    def record(self) -> None:
        with self.clock.paused() as (wall, cpu):
            self.curve.append(Checkpoint(self.steps, wall, cpu, self.evaluate()))

    def finish(self) -> tuple[float, float]:
        """The whole training time (wall, CPU), then a last checkpoint if the last step had none."""
        wall, cpu = self.clock.read()
        if not self.curve or self.curve[-1].steps != self.steps:
            self.record()
        return wall, cpu


@dataclass
class Recipe:
    """A training recipe: ``train(model, x, y, *, epochs, seed, after_step)`` (``after_step`` called after every
    optimiser step), its number of epochs and the optimiser steps of one epoch (the checkpoint interval)."""

    train: Callable[..., None]
    epochs: int
    steps_per_epoch: int


@dataclass
class Setup:
    """A row that can be run as a grid: each network (built after ``torch.manual_seed(seed)``) by each recipe."""

    experiment: str
    metrics: list[str]  # the headline first
    lower_is_better: list[bool]
    data: Callable[[int], tuple[torch.Tensor, ...]]  # seed -> (x_train, y_train, x_test, y_test) on the device
    networks: dict[str, Callable[[], nn.Module]]  # AUTHORS and COMPANION
    recipes: dict[str, Recipe]  # AUTHORS and COMPANION
    evaluate: Callable[[nn.Module, tuple[torch.Tensor, ...], int], dict[str, float]]  # (model, data, seed)


def train_once(
    setup: Setup, network: str, recipe: str, seed: int, device: torch.device, *, epochs: int | None = None
) -> Measurement:
    """One network trained by one recipe for one seed, with its checkpoints; the final metrics are the last
    checkpoint's."""
    data = setup.data(seed)
    torch.manual_seed(seed)
    model = setup.networks[network]().to(device)
    plan = setup.recipes[recipe]
    clock = Clock(device)
    checkpoints = Checkpoints(lambda: setup.evaluate(model, data, seed), plan.steps_per_epoch, clock)
    clock.start()
    plan.train(model, data[0], data[1], epochs=epochs or plan.epochs, seed=seed, after_step=checkpoints)
    wall, cpu = checkpoints.finish()
    return Measurement(
        checkpoints.curve[-1].metrics, wall, cpu, parameters=parameter_count(model), curve=checkpoints.curve
    )


def run_grid(
    setup: Setup, device: torch.device, seeds: Sequence[int], *, log: Callable[[str], None] = print
) -> dict[tuple[str, str], list[Measurement]]:
    """Every (network, recipe) pair for every seed; the order of the pairs is reversed from one seed to the next,
    and each pair first trains one untimed epoch, so that one-time costs of the process fall on no run."""
    pairs = [(network, recipe) for network in setup.networks for recipe in setup.recipes]
    for network, recipe in pairs:
        train_once(setup, network, recipe, seeds[0], device, epochs=1)
    runs: dict[tuple[str, str], list[Measurement]] = {pair: [] for pair in pairs}
    for i, seed in enumerate(seeds):
        for network, recipe in pairs[::-1] if i % 2 else pairs:
            run = train_once(setup, network, recipe, seed, device)
            runs[(network, recipe)].append(run)
            headline = setup.metrics[0]
            log(
                f"    seed {seed} {network:>11} network, {recipe:>11} recipe: {headline} "
                f"{run.metrics[headline]:.3g}; train {run.train_seconds:.2f} s (CPU {run.train_cpu_seconds:.2f} s)"
            )
    return runs


# --- time to target ------------------------------------------------------------------------------


def reaches(value: float, target: float, lower_is_better: bool) -> bool:
    return value <= target if lower_is_better else value >= target


def time_to_target(run: Measurement, metric: str, target: float, lower_is_better: bool) -> Checkpoint | None:
    """The first checkpoint of ``run`` whose ``metric`` reaches ``target``; ``None`` if none does."""
    return next((c for c in run.curve if reaches(c.metrics[metric], target, lower_is_better)), None)


@dataclass
class TargetRow:
    """One network under both recipes: the target, and per recipe the runs and their first checkpoints at it."""

    experiment: str
    network: str
    parameters: int
    metric: str
    lower_is_better: bool
    target: float
    runs: dict[str, list[Measurement]]  # recipe -> runs (one per seed)
    hits: dict[str, list[Checkpoint | None]]  # recipe -> first checkpoint at the target (None: not reached)

    def median_time(self, recipe: str, *, cpu: bool = True) -> float:
        """Median seconds to target over the seeds (``inf`` where the median run does not reach it)."""
        return median([_seconds(hit, cpu) for hit in self.hits[recipe]])

    def ratio(self, *, cpu: bool = True) -> float:
        """Authors' recipe's median time to target over companion's recipe's (``nan`` if either is not reached)."""
        authors, ours = self.median_time(AUTHORS, cpu=cpu), self.median_time(COMPANION, cpu=cpu)
        return authors / ours if max(authors, ours) < float("inf") else float("nan")


def _seconds(hit: Checkpoint | None, cpu: bool) -> float:
    if hit is None:
        return float("inf")
    return hit.cpu if cpu else hit.wall


def target_rows(setup: Setup, runs: dict[tuple[str, str], list[Measurement]]) -> list[TargetRow]:
    """The time-to-target summary of each network of ``setup`` on its headline metric."""
    metric, lower = setup.metrics[0], setup.lower_is_better[0]
    rows = []
    for network in setup.networks:
        by_recipe = {recipe: runs[(network, recipe)] for recipe in setup.recipes}
        finals = [median([run.metrics[metric] for run in by_recipe[recipe]]) for recipe in setup.recipes]
        target = max(finals) if lower else min(finals)
        hits = {r: [time_to_target(run, metric, target, lower) for run in rs] for r, rs in by_recipe.items()}
        parameters = by_recipe[AUTHORS][0].parameters
        rows.append(TargetRow(setup.experiment, network, parameters, metric, lower, target, by_recipe, hits))
    return rows


def grid_comparison(
    setup: Setup,
    device: torch.device,
    seeds: Sequence[int],
    *,
    tolerance: str,
    equal_or_better: Callable[[Comparison], bool],
    log: Callable[[str], None] = print,
) -> Comparison:
    """Run the grid of ``setup``; the row of the first table is each side's network by its own recipe, and the
    same-network comparisons ride along in ``time_to_accuracy``."""
    runs = run_grid(setup, device, seeds, log=log)
    return Comparison(
        experiment=setup.experiment,
        metrics=setup.metrics,
        lower_is_better=setup.lower_is_better,
        authors=runs[(AUTHORS, AUTHORS)],
        companion=runs[(COMPANION, COMPANION)],
        tolerance=tolerance,
        equal_or_better=equal_or_better,
        time_to_accuracy=target_rows(setup, runs),
    )


# --- the table -----------------------------------------------------------------------------------


def _time_cell(row: TargetRow, recipe: str, *, cpu: bool) -> str:
    """Median seconds to target (smallest, largest) where every run reaches the target; otherwise the times of the
    runs that reach it, one by one, and the full training times of those that end short of it."""
    pairs = list(zip(row.hits[recipe], row.runs[recipe]))
    reached = sorted(_seconds(hit, cpu) for hit, _ in pairs if hit is not None)
    short = sorted(run.train_cpu_seconds if cpu else run.train_seconds for hit, run in pairs if hit is None)
    if not short:
        if len(reached) == 1:
            return f"{reached[0]:.1f}"
        return f"{median(reached):.1f} ({reached[0]:.1f}, {reached[-1]:.1f})"
    times = ", ".join(f"{value:.1f}" for value in reached)
    ended = f"{len(short)} {'ends' if len(short) == 1 else 'end'} short at " + ", ".join(f"{v:.1f}" for v in short)
    return f"{len(reached)} of {len(pairs)} reach it" + (f": {times}; " if reached else "; ") + ended


def _final_cell(row: TargetRow, recipe: str) -> str:
    values = sorted(run.metrics[row.metric] for run in row.runs[recipe])
    middle = format_number(median(values), row.metric)
    if len(values) == 1:
        return middle
    return f"{middle} ({format_number(values[0], row.metric)}, {format_number(values[-1], row.metric)})"


def _ratio_cell(row: TargetRow) -> str:
    cpu, wall = row.ratio(cpu=True), row.ratio(cpu=False)
    if cpu != cpu:  # nan: a median run does not reach the target
        return "no ratio"
    return f"{cpu:.1f}x ({wall:.1f}x)"


#: How the time-to-accuracy table reads, printed under it.
TARGET_NOTE = (
    "Where every run of a recipe reaches the target, a time cell gives the median over seeds (smallest, largest). "
    "Where some do not, it lists the times of the runs that reach the target and the full training times of those "
    "that end short of it; the median time to target, from which the ratio is taken, counts a run that ends short "
    "as never reaching the target (with one of three short, it is the slower of the two runs that reach it)."
)


def format_time_to_accuracy(rows: Sequence[TargetRow]) -> str:
    """The Markdown table: per network, one line per recipe (the same network and data, a different trainer)."""
    header = [
        "experiment",
        "network, what is compared",
        "target",
        "recipe",
        "final value",
        "CPU s to target",
        "wall s to target",
        "time ratio, CPU (wall)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        sign = "≤" if row.lower_is_better else "≥"
        for k, recipe in enumerate((AUTHORS, COMPANION)):
            first = k == 0
            cells = [
                row.experiment if first else "",
                f"{row.network} ({row.parameters:,} parameters): same network and data, different trainer"
                if first
                else "",
                f"{row.metric} {sign} {format_number(row.target, row.metric)}" if first else "",
                f"{recipe} recipe",
                _final_cell(row, recipe),
                _time_cell(row, recipe, cpu=True),
                _time_cell(row, recipe, cpu=False),
                "" if first else _ratio_cell(row),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(row: TargetRow) -> str:
    """One sentence: what was measured on this network."""
    where = f"{row.experiment}, {row.network} network ({row.parameters:,} parameters)"
    target = f"{row.metric} {'≤' if row.lower_is_better else '≥'} {format_number(row.target, row.metric)}"
    finals = " and ".join(
        f"{recipe} recipe {format_number(median([r.metrics[row.metric] for r in row.runs[recipe]]), row.metric)}"
        for recipe in (AUTHORS, COMPANION)
    )
    cpu = row.ratio(cpu=True)
    if cpu != cpu:
        return f"{where}: a median run does not reach {target}; no time ratio (final medians: {finals})."
    faster, ratio = (COMPANION, cpu) if cpu >= 1 else (AUTHORS, 1 / cpu)
    slower = AUTHORS if faster == COMPANION else COMPANION
    return (
        f"{where}, same data, both recipes: the {faster} recipe reached {target} in {ratio:.1f}x less CPU time "
        f"(ratio of the medians over seeds){_short_runs(row)}; final medians: {finals}.{_overlap(row, faster, slower)}"
    )


def _reached_cpu(row: TargetRow, recipe: str) -> list[float]:
    return sorted(hit.cpu for hit in row.hits[recipe] if hit is not None)


def _short_runs(row: TargetRow) -> str:
    """``; k of n runs of the ... recipe reach it`` for each recipe some of whose runs end short of the target."""
    notes = [
        f"{len(_reached_cpu(row, recipe))} of {len(row.hits[recipe])} runs of the {recipe} recipe reach it"
        for recipe in (AUTHORS, COMPANION)
        if None in row.hits[recipe]
    ]
    return "".join(f"; {note}" for note in notes)


def _overlap(row: TargetRow, faster: str, slower: str) -> str:
    """A sentence where the two recipes' CPU times to target overlap across seeds: the ratio is within the noise."""
    fast, slow = _reached_cpu(row, faster), _reached_cpu(row, slower)
    if not fast or not slow or slow[0] > fast[-1]:
        return ""
    return (
        f" The CPU times to target overlap across seeds ({slower} recipe {slow[0]:.1f} to {slow[-1]:.1f} s, "
        f"{faster} recipe {fast[0]:.1f} to {fast[-1]:.1f} s): this ratio is within the timing noise."
    )


def format_measured(rows: Sequence[Comparison]) -> str:
    """A list of what was measured, row by row: the first table's rows, then the same-network comparisons."""
    lines = [f"* {describe_row(row)}" for row in rows]
    lines += [f"* {describe(target)}" for row in rows for target in row.time_to_accuracy]
    return "\n".join(lines)
