"""Do chapter 4's method-of-lines networks generalise beyond their training initial conditions?

For heat and Fisher, every shipped network named by ``--variants`` (default: ``smooth-k3``, trained on sin-cos
initial conditions with k <= 3, and ``random``, the headline trained on the broadband data of
:func:`companion.pde.families.broadband`) and the finite-difference method of lines (5-point Laplacian, the same 3
Euler sub-steps: the yardstick) are rolled out for 40 steps from the test families of
:func:`companion.pde.families.generalisation_families` (16 initial conditions each, seeds from 20,000 on: disjoint
from every training seed), against the pseudo-spectral truth. Per family: rE(40) (relative error after 40 steps,
:func:`companion.pde.rollout_metrics`) mean and max over the initial conditions, and network / FD.

Writes ``companion/results/04_pde_generalisation.json`` (loaded by
``companion.data.stored_results("04_pde_generalisation")``)::

    .venv/bin/python scripts/generalisation_pde.py                 # about a minute, one thread
    .venv/bin/python scripts/generalisation_pde.py --quick --output /tmp/g.json   # seconds (the test)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from companion.pde import method_of_lines, rollout, rollout_metrics
from companion.pde.data import default_time_step, trajectories_from
from companion.pde.families import GENERALISATION_FAMILIES, generalisation_families
from companion.pde.training import load_network

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "companion" / "results" / "04_pde_generalisation.json"
#: The test families whose kind is in each training family (the same kind of initial condition, new draws): the
#: sin-cos data hold modes with k <= 3 only; the broadband mixture holds sin-cos modes with k up to 16, random
#: fields and bumps (its sums differ from sums of k <= 3 images).
IN_DISTRIBUTION = {
    "sin-cos": ("sin-cos k<=3",),
    "broadband": ("sin-cos k<=3", "sin-cos k=4..6", "sin-cos k=5..8", "localised bumps", "random fields p=1.5"),
}


def machine() -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from booktools import machine as describe

        text = describe()
    except Exception:  # booktools needs the book's extras (yaml); the platform is enough
        text = f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    return f"{text}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def errors_at_end(model, truth: torch.Tensor) -> list[float]:
    """rE(T) of each initial condition: ``(N,)`` as a list."""
    prediction = rollout(model, truth[:, 0], truth.shape[1] - 1).double()
    return [float(rollout_metrics(p[None], t[None])["relative_error"][-1]) for p, t in zip(prediction, truth)]


def summary(values: list[float]) -> dict:
    return {"mean": sum(values) / len(values), "max": max(values), "per_initial_condition": values}


def evaluate(equation: str, args: argparse.Namespace) -> dict:
    size, h = 64, 1.0 / 64
    dt = default_time_step(equation, size=size, alpha=args.alpha)
    fd = method_of_lines(equation, h=h, dt=dt, substeps=3, alpha=args.alpha)
    networks = {}
    for variant in args.variants:
        model, meta = load_network(Path(args.weights) / f"{equation}_{variant}.pt", dtype=torch.float64, fft=True)
        networks[variant] = (model, meta.get("data_family", "sin-cos"))  # the k <= 3 networks predate the field
    families = generalisation_families(equation, count=args.count, size=size, seed=args.seed)
    table = {}
    for name in GENERALISATION_FAMILIES:
        truth = trajectories_from(equation, families[name], steps=args.steps, alpha=args.alpha)
        fd_errors = summary(errors_at_end(fd, truth))
        row = {"fd": fd_errors, "networks": {}}
        for variant, (model, family) in networks.items():
            errors = summary(errors_at_end(model, truth))
            errors["ratio_to_fd"] = errors["mean"] / fd_errors["mean"]
            errors["in_training_family"] = name in IN_DISTRIBUTION.get(family, ())
            row["networks"][variant] = errors
        table[name] = row
    return {
        "dt": dt,
        "training_family": {variant: family for variant, (_, family) in networks.items()},
        "families": table,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["smooth-k3", "random"])
    parser.add_argument("--equations", nargs="+", default=["heat", "fisher"], choices=["heat", "fisher"])
    parser.add_argument("--weights", default=str(ROOT / "companion" / "pde" / "weights"))
    parser.add_argument("--count", type=int, default=16, help="initial conditions per family")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=20_000, help="base seed of the test families")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--quick", action="store_true", help="2 initial conditions per family, 8 steps: seconds")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.steps = 2, 8
    torch.set_num_threads(1)
    start = time.process_time()
    results = {equation: evaluate(equation, args) for equation in args.equations}
    command = ".venv/bin/python scripts/generalisation_pde.py" + (" " + " ".join(argv) if argv else "")
    table = {
        "command": command,
        "machine": machine(),
        "settings": {
            "size": 64,
            "alpha": args.alpha,
            "substeps": 3,
            "steps": args.steps,
            "initial_conditions_per_family": args.count,
            "seed": args.seed,
            "families": list(GENERALISATION_FAMILIES),
            "variants": args.variants,
            "metric": f"rE({args.steps}): relative Frobenius error after {args.steps} steps, mean and max over "
            "the initial conditions; ratio_to_fd = network mean / FD mean",
            "in_training_family": "true where the test family is a kind of initial condition the network's training "
            "data hold (new draws, seeds disjoint from training); false: a kind it never saw",
            "yardstick": "fd: finite-difference method of lines (5-point Laplacian), 3 explicit Euler sub-steps",
        },
        "results": results,
        "cpu_seconds": round(time.process_time() - start, 1),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(table, indent=1) + "\n")
    for equation, result in results.items():
        for name, row in result["families"].items():
            cells = "  ".join(f"{v} {r['mean']:.2e} ({r['ratio_to_fd']:.2g}x)" for v, r in row["networks"].items())
            print(f"{equation:6s} {name:28s} FD {row['fd']['mean']:.2e}  {cells}", flush=True)
    return table


if __name__ == "__main__":
    main()
