"""Shared machinery of the authors'-code benchmarks: timing, alternation of the two sides, summaries, tables.

Every experiment module builds, for one seed, an *authors' side* (their set-up re-implemented) and a
*companion side* (the package's public API plus :func:`companion.fit`) on the **same** data tensors, and
returns :class:`Measurement` objects. :func:`compare` runs the two sides for several seeds, alternating
which goes first so that both share the machine's drift, and :func:`format_rows` writes the table. Rows whose
networks can be trained by both recipes are run as a grid instead (:mod:`benchmarks.authors.time_to_accuracy`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset


@dataclass
class Measurement:
    """One training run of one side: accuracies in the experiment's own metrics, and times in seconds."""

    metrics: dict[str, float]
    train_seconds: float  # wall clock
    train_cpu_seconds: float = 0.0  # process CPU time (all threads)
    eval_seconds: float = 0.0
    parameters: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    curve: list = field(default_factory=list)  # time_to_accuracy.Checkpoint objects, where recorded


@dataclass
class Comparison:
    """Both sides of one table row over all seeds.

    ``compared`` says in words what the row compares; left out, it is "each side's recipe" with the two networks'
    parameter counts. ``no_claim``, where given, says why the row's times are no speed comparison (then neither a
    time ratio nor an accuracy verdict is shown). ``time_to_accuracy`` holds the same-network comparisons of the row
    (:class:`~benchmarks.authors.time_to_accuracy.TargetRow`), where it has them.
    """

    experiment: str
    metrics: Sequence[str]  # the metric names, first one is the headline
    lower_is_better: Sequence[bool]  # per metric
    authors: list[Measurement]
    companion: list[Measurement]
    tolerance: str  # what "equal or better" means for this row, in words
    equal_or_better: Callable[[Comparison], bool]
    compared: str | None = None
    no_claim: str | None = None
    time_to_accuracy: list = field(default_factory=list)

    def what(self) -> str:
        """What the row compares, in words."""
        if self.compared is not None:
            return self.compared
        a, c = self.authors[0].parameters, self.companion[0].parameters
        return f"each side's recipe (different networks: {a:,} vs {c:,} parameters)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], object], device: torch.device) -> tuple[object, float, float]:
    """Run ``function`` once; return its result, wall-clock seconds (device synchronised) and process CPU seconds."""
    sync(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function()
    sync(device)
    return result, time.perf_counter() - start, time.process_time() - start_cpu


class Pairs(Dataset):
    """The map-style dataset of the authors' notebooks: item ``i`` is ``(inputs[i], targets[i])``, so that a
    ``DataLoader`` over it batches (and shuffles) sample by sample as theirs did."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        return self.inputs[index], self.targets[index]


def timed_authors_training(
    build: Callable[[], torch.nn.Module],
    train: Callable[..., None],
    *data: torch.Tensor,
    seed: int,
    epochs: int,
    device: torch.device,
) -> tuple[torch.nn.Module, float, float]:
    """The authors' side of one seed: PyTorch's global generator seeded with ``seed``, their network built on
    ``device`` and ``train(model, *data, epochs=epochs, seed=seed)`` timed; returns the model and the wall-clock and
    CPU seconds of the training."""
    torch.manual_seed(seed)
    model = build().to(device)
    _, seconds, cpu = timed(lambda: train(model, *data, epochs=epochs, seed=seed), device)
    return model, seconds, cpu


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def compare(
    run_authors: Callable[..., Measurement | None],
    run_companion: Callable[..., Measurement | None],
    seeds: Sequence[int],
    *,
    log: Callable[[str], None] = print,
) -> tuple[list[Measurement], list[Measurement]]:
    """Run both sides once per seed, alternating which one goes first; return the two lists of runs.

    Each side is first called once with ``warm=True`` (one short, untimed training run), so that one-time costs
    of the process (loading a linear-algebra kernel, allocator growth) fall on neither side's timings.
    """
    run_authors(seeds[0], warm=True)
    run_companion(seeds[0], warm=True)
    authors, companion = [], []
    for i, seed in enumerate(seeds):
        order = [("authors", run_authors, authors), ("companion", run_companion, companion)]
        if i % 2:
            order.reverse()
        for name, run, results in order:
            measurement = run(seed)
            results.append(measurement)
            shown = ", ".join(f"{k} {v:.3g}" for k, v in measurement.metrics.items())
            log(
                f"    seed {seed} {name:>9}: {shown}; train {measurement.train_seconds:.2f} s "
                f"(CPU {measurement.train_cpu_seconds:.2f} s)"
            )
    return authors, companion


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> tuple[float, float]:
    return min(values), max(values)


def metric_values(runs: Sequence[Measurement], name: str) -> list[float]:
    return [run.metrics[name] for run in runs]


def median_metric(runs: Sequence[Measurement], name: str) -> float:
    return median(metric_values(runs, name))


def speedup(row: Comparison, *, cpu: bool = False) -> float:
    """Median over seeds of the per-seed ratio authors' training time / companion's (wall clock, or CPU time)."""
    if cpu:
        return median([a.train_cpu_seconds / c.train_cpu_seconds for a, c in zip(row.authors, row.companion)])
    return median([a.train_seconds / c.train_seconds for a, c in zip(row.authors, row.companion)])


def format_number(value: float, name: str) -> str:
    """A metric value as the tables show it: accuracies in percent, other values to three significant digits."""
    if "acc" in name:
        return f"{100 * value:.1f}"
    return f"{value:.2g}" if abs(value) < 1e-2 or abs(value) >= 1e3 else f"{value:.3g}"


def _cell(runs: Sequence[Measurement], name: str) -> str:
    values = metric_values(runs, name)
    low, high = spread(values)
    if len(values) == 1 or low == high:
        return format_number(median(values), name)
    return f"{format_number(median(values), name)} ({format_number(low, name)}, {format_number(high, name)})"


def _seconds(runs: Sequence[Measurement]) -> str:
    """Median CPU seconds of training (smallest, largest)."""
    values = [run.train_cpu_seconds for run in runs]
    low, high = spread(values)
    return f"{median(values):.2f} ({low:.2f}, {high:.2f})" if len(values) > 1 else f"{values[0]:.2f}"


def _verdict(row: Comparison) -> tuple[str, str]:
    """The time-ratio and accuracy cells of a row's first line."""
    if row.no_claim is not None:
        return "no claim", "no claim"
    return f"{speedup(row, cpu=True):.1f}x", "yes" if row.equal_or_better(row) else "no"


def format_rows(rows: Sequence[Comparison]) -> str:
    """The Markdown results table: one line per row and metric, medians with (min, max) over seeds; training in
    CPU seconds (one torch thread: the wall-clock time of a quiet machine); the time ratio is the median over seeds
    of the per-seed ratio authors' / companion's (:func:`speedup`), not the ratio of the two median times."""
    header = [
        "experiment: what is compared",
        "metric",
        "authors' set-up",
        "companion",
        "authors' CPU s",
        "companion CPU s",
        "time ratio (median per seed)",
        "as accurate",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        ratio, ok = _verdict(row)
        for k, name in enumerate(row.metrics):
            first = k == 0
            cells = [
                f"{row.experiment}: {row.what()}" if first else "",
                name,
                _cell(row.authors, name),
                _cell(row.companion, name),
                _seconds(row.authors) if first else "",
                _seconds(row.companion) if first else "",
                ratio if first else "",
                ok if first else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: How the first two tables take their time ratios, printed under them.
RATIO_NOTE = (
    "Time ratios of these two tables: for each seed, the authors' training time over companion's (the two runs of "
    "a seed share the machine's state); the tables give the median of these per-seed ratios, which need not equal "
    "the ratio of the two median times printed beside them. The time-to-accuracy table below takes the ratio of the "
    "two median times to target instead, because a run that does not reach the target has no per-seed ratio."
)


def format_details(rows: Sequence[Comparison]) -> str:
    """Parameter counts, the time ratio in wall-clock time and the accuracy criterion of each row."""
    header = [
        "experiment",
        "parameters (authors / companion)",
        "time ratio in wall-clock time (median of per-seed ratios)",
        "as accurate means",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        params = f"{row.authors[0].parameters:,} / {row.companion[0].parameters:,}"
        ratio = "no claim" if row.no_claim is not None else f"{speedup(row):.1f}x"
        tolerance = row.no_claim if row.no_claim is not None else row.tolerance
        lines.append(f"| {row.experiment} | {params} | {ratio} | {tolerance} |")
    return "\n".join(lines)


def describe_row(row: Comparison) -> str:
    """One sentence: what the row of the first table measured, and nothing stronger."""
    if row.no_claim is not None:
        return f"{row.experiment}: {row.what()}; {row.no_claim}: no speed claim."
    accurate = "as accurate or more" if row.equal_or_better(row) else "less accurate"
    return (
        f"{row.experiment}: {row.what()}: companion's set-up trained in {speedup(row, cpu=True):.1f}x less CPU time "
        f"({speedup(row):.1f}x less wall-clock time; medians of the per-seed ratios) and ended {accurate} "
        f"({row.tolerance}); this compares "
        "recipes and networks together, not implementations."
    )
