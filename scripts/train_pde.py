"""Train the method-of-lines networks for heat and Fisher on pseudo-spectral data and ship their weights.

Reproducible (seeded) curriculum training with the unrolled loss (science.md 3.3; stages T = 1, 2, 3 by default,
shortened from the paper's 3, 4, 5 to fit a 2-core CPU), 64x64 periodic grid, alpha = 0.01, dt = 0.24 h^2 / alpha,
3 Euler sub-steps, held-out test set of 30 initial conditions x 40 steps. For each equation and initialisation it
writes ``{output}/{equation}_{init}.pt`` (weights, configuration, measured metrics, run time, device) and prints
one JSON line. The shipped weights (``make train-pde``)::

    python scripts/train_pde.py --inits exact --equations heat    # exact CNN + 1e-3 noise, lr 1e-3, 16 epochs
    python scripts/train_pde.py --inits exact --equations fisher --epochs 60 --threads 2
    python scripts/train_pde.py --inits random --equations heat --lr 1e-2 --epochs 20
    python scripts/train_pde.py --inits random --equations fisher --lr 1e-2 --epochs 8
    python scripts/train_pde.py --size 16 --trajectories 8 --epochs 1 --output /tmp/w   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
import os
import time
from pathlib import Path

import torch

from companion.pde import method_of_lines, rollout, rollout_metrics
from companion.pde_data import default_time_step, generate_trajectories
from companion.pde_training import make_network, save_network, train_curriculum


def relative_errors(model, truth: torch.Tensor) -> list[float]:
    prediction = rollout(model, truth[:, 0], truth.shape[1] - 1)
    return rollout_metrics(prediction.double(), truth.double())["relative_error"].tolist()


def run(args: argparse.Namespace, equation: str, init: str) -> dict:
    size, h = args.size, 1.0 / args.size
    dt = default_time_step(equation, size=size, alpha=args.alpha)
    train = generate_trajectories(equation, trajectories=args.trajectories, steps=max(args.stages), size=size,
                                  alpha=args.alpha, k_max=args.k_max, seed=args.seed, dtype=torch.float32)
    test = generate_trajectories(equation, trajectories=args.test_trajectories, steps=args.test_steps, size=size,
                                 alpha=args.alpha, k_max=args.k_max, seed=args.seed + 1000)
    fd = method_of_lines(equation, h=h, dt=dt, substeps=args.substeps, alpha=args.alpha)
    model = make_network(equation, size=size, alpha=args.alpha, substeps=args.substeps, init=init,
                         noise=args.noise if init == "exact" else 0.0, seed=args.seed)
    before = relative_errors(model, test.float())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    histories = train_curriculum(model, train, stages=tuple(args.stages), epochs=args.epochs, lr=args.lr,
                                 batch_size=args.batch_size, seed=args.seed, progress=args.progress)
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    after = relative_errors(model, test.float())
    summary = dict(
        equation=equation, init=init, noise=args.noise if init == "exact" else 0.0, size=size, alpha=args.alpha,
        dt=dt, substeps=args.substeps, trajectories=args.trajectories, stages=list(args.stages), epochs=args.epochs,
        lr=args.lr, batch_size=args.batch_size, seed=args.seed, k_max=args.k_max,
        train_seconds=round(seconds, 1), train_cpu_seconds=round(cpu, 1), threads=torch.get_num_threads(),
        device=f"cpu ({platform.processor() or platform.machine()}), {torch.get_num_threads()} thread(s)",
        load_average=[round(x, 2) for x in os.getloadavg()],
        relative_error_40_before=before[-1], relative_error_40=after[-1],
        fd_relative_error_40=relative_errors(fd, test)[-1],
        final_loss=histories[-1].loss[-1], test_steps=args.test_steps,
    )
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        save_network(out / f"{equation}_{init}.pt", model, equation=equation, size=size, alpha=args.alpha,
                     metadata={k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in summary.items()})
    return summary


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--equations", nargs="+", default=["heat", "fisher"], choices=["heat", "fisher"])
    parser.add_argument("--inits", nargs="+", default=["exact", "random"], choices=["exact", "random"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--k-max", type=int, default=3)
    parser.add_argument("--substeps", type=int, default=3)
    parser.add_argument("--trajectories", type=int, default=128)
    parser.add_argument("--test-trajectories", type=int, default=30)
    parser.add_argument("--test-steps", type=int, default=40)
    parser.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=16, help="epochs per curriculum stage")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--noise", type=float, default=1e-3, help="relative weight noise for --inits exact")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="companion/weights", help="folder for the .pt files ('' to skip)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for init in args.inits:
        for equation in args.equations:
            results.append(run(args, equation, init))
            print(json.dumps(results[-1]), flush=True)
    return results


if __name__ == "__main__":
    main()
