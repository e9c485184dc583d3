"""Companion against the authors' own set-ups: both sides in one process, on the same data, seed by seed.

    python benchmarks/authors_run.py [--quick] [--device cpu] [--seeds 0 1 2] [--only sir ...]
                                     [--output book/authors_results.md]

For each experiment whose authors published code (the SIR mass-preserving time-1 map, the Swiss-roll
ResNet / symplectic comparison, the pixel networks' training, the non-expansive robustness experiment at
the scale of the 8x8 digits), ``benchmarks/authors/`` re-implements the authors' set-up from their published
description and code (data generation, network, recipe, metric) and trains it beside companion's network and
recipe on the same tensors. For the SIR map and the Swiss roll, each network is also trained by the other
side's recipe, and the held-out metric is recorded every epoch outside the timed region: the time to accuracy
on one network. The runs alternate which goes first from seed to seed. One torch thread unless ``--threads``
says otherwise. ``--quick`` runs every code path on a few epochs (for the tests; its numbers mean nothing).
Prints the tables and writes them as a Markdown fragment that the book includes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))  # a script beside a script: share the machine description
from booktools import machine as cpu_description  # noqa: E402

from benchmarks.authors import EXPERIMENTS, NOTES  # noqa: E402
from benchmarks.authors.common import RATIO_NOTE, format_details, format_rows  # noqa: E402
from benchmarks.authors.time_to_accuracy import TARGET_NOTE, format_measured, format_time_to_accuracy  # noqa: E402


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{cpu_description()}; {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few epochs per side: checks the code paths only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS) + list(NOTES), help="run only these parts")
    parser.add_argument("--output", default=None, help="write the tables as Markdown to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = args.only or list(EXPERIMENTS) + list(NOTES)

    rows, notes = [], []
    for name in names:
        if name in NOTES:
            title, measure = NOTES[name]
            print(f"\n## {title}", flush=True)
            notes.append(f"### {title}\n\n{measure(device, args.seeds, quick=args.quick)}\n")
            print(notes[-1], flush=True)
            continue
        start = time.perf_counter()
        print(f"\n## {name}", flush=True)
        result = EXPERIMENTS[name](device, args.seeds, quick=args.quick, log=lambda line: print(line, flush=True))
        new = result if isinstance(result, list) else [result]
        rows += new
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)

    text = "\n\n".join(
        [
            format_rows(rows),
            format_details(rows),
            RATIO_NOTE,
            "### Time to accuracy on one network",
            format_time_to_accuracy([target for row in rows for target in row.time_to_accuracy]),
            TARGET_NOTE,
            "### What was measured, row by row",
            format_measured(rows),
        ]
    )
    print("\n" + text)
    if args.output:
        seeds = ", ".join(map(str, args.seeds))
        header = (
            f"Measured on: {machine(device)}; seeds {seeds}; medians over seeds, (smallest, largest) in brackets"
            + ("; QUICK RUN, numbers meaningless" if args.quick else "")
            + ".\n"
        )
        Path(args.output).write_text(f"{header}\n{text}\n\n" + "\n".join(notes))
        print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
