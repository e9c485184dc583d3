"""Every chapter executed headless several times (``make notebooks-stress``; marked slow, not part of ``make test``).

Each run has a per-cell time limit and a kernel start-up limit, so a stalled kernel fails the test instead of
hanging it, and the runs of one chapter must stay within twice their median time (a stall that recovers shows up
there). ``make test`` executes every chapter once under nbval with the same limits.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.ipynb") if p.stem[:2].isdigit())
RUNS = 5
CELL_TIMEOUT = 300


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_repeatedly_without_stalls(path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    times = []
    for _ in range(RUNS):
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT,
            startup_timeout=60,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"{path.stem}: {RUNS} runs, seconds {[round(t, 1) for t in times]}, median {median:.1f}")
    assert max(times) <= 2 * median, f"{path.stem}: a run took {max(times):.0f} s, over twice the median {median:.0f} s"
    assert median <= 120, f"{path.stem}: median {median:.0f} s is over the 2-minute budget"
