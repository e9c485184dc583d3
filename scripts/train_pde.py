"""Train the method-of-lines networks of chapter 4 on pseudo-spectral data and ship their weights.

``make train-pde`` runs ``python scripts/train_pde.py``: every network below is trained with
:func:`companion.pde.fitting.train_network` (Levenberg-Marquardt on local patches with sub-step targets, noise
injection with continuation, restarts) on a 64x64 periodic grid, alpha = 0.01, dt = 0.24 h^2 / alpha
(advection u_t = u_x + u_y: dt = h), 3 Euler sub-steps per call. Training data: 20 trajectories of 40 steps
(15 fitted, 5 held out to choose the starting point and the stage); the test set (30 other initial conditions,
40 steps, seed + 1000) is never seen in training. The headline networks (``random``) are trained instead on
:func:`companion.pde.families.broadband` initial conditions (sin-cos modes in three wavenumber bands, random
fields, localised bumps and sums of them): 48 trajectories of 10 steps after a burn-in of 3, 16 validation
trajectories of 40 steps from the same draw, a test set of 30 other broadband initial conditions (seed + 1000);
``scripts/generalisation_pde.py`` tests them on families they never saw. Defaults: 20,000 patches, 20 iterations per noise level,
noise 1e-3, 1e-4, 1e-5 (advection 1e-2, 1e-3, 1e-4), 8 starting points of which the best 3 go through every
stage, one thread.

============================  ===========================================================================
file (companion/pde/weights/)     what
============================  ===========================================================================
heat_random, fisher_random    the headline: from PyTorch's random initialisation, on broadband data (heat:
                              every trajectory with both signs, the symmetry of a linear equation)
heat_smooth-k3, fisher_...    the same trainer on the sin-cos k <= 3 data only (they fail beyond it)
heat_exact, fisher_exact      from the exact CNN with relative weight noise 1e-3 (the check)
*_noisy-data-1e-3, -1e-2      data with additive Gaussian noise of that standard deviation
*_injected                    clean data, the paper's noise injection (inputs + 1e-2 noise, clean targets)
advection_plain, _projected   u_t = u_x + u_y learned with plain and with norm-preserving projected Euler
============================  ===========================================================================

Each file holds the weights, the configuration and metadata: seed, data, the test errors rE(j), the
finite-difference method of lines on the same test set, training wall and CPU time, threads, device and the
load average before and after training. One JSON line per network is printed. Examples::

    python scripts/train_pde.py                                   # everything (make train-pde)
    python scripts/train_pde.py --networks heat_random fisher_random
    python scripts/train_pde.py --device cuda                     # the same code on a GPU
    python scripts/train_pde.py --quick --output /tmp/w           # reduced size: seconds (the tests)

The same seed on the same kind of machine gives the same weights, hence the same rE(40).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from companion.pde import method_of_lines, rollout, rollout_metrics
from companion.pde.data import default_time_step, generate_trajectories, trajectories_from
from companion.pde.families import BROADBAND_BANDS, broadband
from companion.pde.fitting import train_network
from companion.pde.training import make_network, save_network


@dataclass(frozen=True)
class Job:
    """One shipped network: equation, initialisation, data noise, and training options."""

    equation: str
    init: str = "random"
    data_noise: float = 0.0
    injected: bool = False
    projected: bool = False
    points: int = 6  # frames per time interpolant (advection moves one cell per step: more frames)
    noise_levels: tuple[float, ...] = (1e-3, 1e-4, 1e-5)
    data: str = "sin-cos"  # training initial conditions: "sin-cos" (k <= --k-max) or "broadband"
    values: tuple[float, float] = (-1.0, 1.0)  # broadband: the range of values
    burn_in: int = 0  # broadband: truth steps dropped before the training frames (sharp frames: poor targets)
    trajectories: int | None = None  # these override the command line's options for this network
    steps: int | None = None
    validation: int | None = None  # broadband: 40-step validation trajectories of the same family
    patches: int | None = None
    iterations: int | None = None
    odd: bool = False  # a linear PDE: -U solves it too; train on both signs (an even part of the field then costs)


#: The headline networks' broadband data: 48 short trajectories (10 steps after a burn-in of 3) and 16 validation
#: trajectories of the full length, 8-frame time interpolants (chosen on the validation trajectories).
BROADBAND = dict(data="broadband", burn_in=3, trajectories=48, steps=10, validation=16, points=8)


JOBS = {
    "heat_random": Job("heat", odd=True, **BROADBAND),
    "fisher_random": Job("fisher", values=(-1.0, 1.5), **BROADBAND),
    "heat_smooth-k3": Job("heat"),
    "fisher_smooth-k3": Job("fisher"),
    "heat_exact": Job("heat", init="exact"),
    "fisher_exact": Job("fisher", init="exact"),
    "heat_noisy-data-1e-3": Job("heat", data_noise=1e-3),
    "heat_noisy-data-1e-2": Job("heat", data_noise=1e-2),
    "fisher_noisy-data-1e-3": Job("fisher", data_noise=1e-3),
    "fisher_noisy-data-1e-2": Job("fisher", data_noise=1e-2),
    "heat_injected": Job("heat", injected=True),
    "fisher_injected": Job("fisher", injected=True),
    "advection_plain": Job("advection", points=10, noise_levels=(1e-2, 1e-3, 1e-4)),
    "advection_projected": Job("advection", projected=True, points=10, noise_levels=(1e-2, 1e-3, 1e-4)),
}
#: The authors' noise injection: inputs perturbed at this level, targets clean.
INJECTED_NOISE = 1e-2


def relative_errors(model, truth: torch.Tensor) -> list[float]:
    """rE(j), j = 0..T, of a rollout against ``truth`` ``(N, T + 1, d, d)`` (float64)."""
    prediction = rollout(model, truth[:, 0], truth.shape[1] - 1)
    return rollout_metrics(prediction.double(), truth.double())["relative_error"].tolist()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def broadband_bands(size: int) -> list[tuple[int, int]]:
    """:data:`~companion.pde.families.BROADBAND_BANDS` cut to the grid's Nyquist wavenumber (the quick runs' 16x16)."""
    return [(low, min(high, size // 2)) for low, high in BROADBAND_BANDS if low <= size // 2]


def training_data(args: argparse.Namespace, job: Job) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Training trajectories, validation trajectories (None: the trainer holds out a quarter) and the test set.

    Sin-cos data: :func:`generate_trajectories` with seed ``--seed`` (test: ``--seed`` + 1000). Broadband data:
    :func:`~companion.pde.families.broadband` with seed ``--seed``, split into training initial conditions (their
    trajectories start after ``burn_in`` steps) and validation ones (``--test-steps`` long); the test set is
    another draw (seed + 1000), of ``--test-steps``.
    """
    size, steps = args.size, job.steps or args.steps
    if job.data == "sin-cos":
        data = dict(size=size, alpha=args.alpha, k_max=args.k_max)
        train = generate_trajectories(
            job.equation, trajectories=job.trajectories or args.trajectories, steps=steps, seed=args.seed, **data
        )
        test = generate_trajectories(
            job.equation, trajectories=args.test_trajectories, steps=args.test_steps, seed=args.seed + 1000, **data
        )
        return train, None, test
    count = job.trajectories or args.trajectories
    held = job.validation or max(1, count // 4)
    family = dict(size=size, values=job.values, bands=broadband_bands(size))
    initial = broadband(count + held, seed=args.seed, **family)
    solve = dict(alpha=args.alpha)
    train = trajectories_from(job.equation, initial[:count], steps=steps + job.burn_in, **solve)[:, job.burn_in :]
    validation = trajectories_from(job.equation, initial[count:], steps=args.test_steps, **solve)
    test_initial = broadband(args.test_trajectories, seed=args.seed + 1000, **family)
    return train, validation, trajectories_from(job.equation, test_initial, steps=args.test_steps, alpha=args.alpha)


def run(args: argparse.Namespace, name: str, job: Job) -> dict:
    if args.quick:  # the reduced sizes of --quick win over a network's own counts
        job = replace(job, trajectories=None, steps=None, validation=None, patches=None, iterations=None)
    device = torch.device(args.device)
    size, h = args.size, 1.0 / args.size
    dt = default_time_step(job.equation, size=size, alpha=args.alpha)
    train, validation, test = training_data(args, job)
    if job.odd:
        train = torch.cat([train, -train])
    if job.data_noise:
        generator = torch.Generator().manual_seed(args.seed + 1)
        train = train + job.data_noise * torch.randn(train.shape, generator=generator, dtype=train.dtype)
    model = make_network(
        job.equation,
        size=size,
        alpha=args.alpha,
        substeps=args.substeps,
        init=job.init,
        noise=args.weight_noise if job.init == "exact" else 0.0,
        seed=args.seed,
        projected=job.projected,
    ).to(device)
    options = dict(
        validation=validation,
        patches=job.patches or args.patches,
        iterations=job.iterations or args.iterations,
        seed=args.seed,
        restarts=args.restarts if job.init == "random" else 1,
        continued=args.continued,
        restart_iterations=args.restart_iterations,
        points=job.points,
        noise_levels=job.noise_levels,
    )
    if job.injected:
        options.update(noise_levels=(INJECTED_NOISE,), noise_damping=1.0)
    before = relative_errors(model.double().cpu(), test)
    model = model.float().to(device)
    load_before = os.getloadavg()
    report = train_network(model, train.to(device), **options)
    load_after = os.getloadavg()
    evaluated = make_network(
        job.equation,
        size=size,
        alpha=args.alpha,
        substeps=args.substeps,
        projected=job.projected,
        dtype=torch.float64,
        fft=True,
    )
    with torch.no_grad():
        for (_, target), (_, source) in zip(evaluated.named_parameters(), model.cpu().named_parameters()):
            target.copy_(source)
    errors = relative_errors(evaluated, test)
    fd = method_of_lines(  # the FD yardstick under the network's own integrator (plain Euler: unstable, shown)
        job.equation, h=h, dt=dt, substeps=args.substeps, alpha=args.alpha, projected=job.projected, allow_unstable=True
    )
    threads = torch.get_num_threads()
    summary = dict(
        name=name,
        equation=job.equation,
        init=job.init,
        data_noise=job.data_noise,
        injected_noise=INJECTED_NOISE if job.injected else 0.0,
        projected=job.projected,
        seed=args.seed,
        data_family=job.data,
        both_signs=job.odd,
        data_values=list(job.values) if job.data == "broadband" else None,
        data_bands=[list(b) for b in broadband_bands(size)] if job.data == "broadband" else None,
        burn_in=job.burn_in,
        train_trajectories=len(train),
        train_steps=train.shape[1] - 1,
        validation_trajectories=len(validation) if validation is not None else None,
        test_trajectories=args.test_trajectories,
        test_steps=args.test_steps,
        k_max=args.k_max,
        substeps=args.substeps,
        patches=options["patches"],
        iterations=options["iterations"],
        restarts=options["restarts"],
        continued=args.continued,
        points=job.points,
        noise_levels=report.noise_levels,
        noise_damping=options.get("noise_damping", 0.5),
        chosen_restart=report.chosen_restart,
        chosen_stage=report.chosen_stage,
        restart_errors=report.restart_errors,
        validation_errors=report.validation_errors,
        stage_losses=report.stage_losses,
        train_seconds=round(report.seconds, 1),
        train_cpu_seconds=round(report.cpu_seconds, 1),
        threads=threads,
        device=f"{device_name(device)}, {threads} thread(s)",
        torch=str(torch.__version__),
        load_average=[round(x, 2) for x in (*load_before, *load_after)],
        relative_error_40_before=before[-1],
        relative_error_40=errors[-1],
        relative_errors=errors,
        fd_relative_error_40=relative_errors(fd, test)[-1],
    )
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        save_network(
            out / f"{name}.pt", model.cpu(), equation=job.equation, size=size, alpha=args.alpha, metadata=summary
        )
    return summary


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--k-max", type=int, default=3)
    parser.add_argument("--substeps", type=int, default=3)
    parser.add_argument("--trajectories", type=int, default=20, help="training trajectories (a quarter validates)")
    parser.add_argument("--steps", type=int, default=40, help="steps per training trajectory")
    parser.add_argument("--test-trajectories", type=int, default=30)
    parser.add_argument("--test-steps", type=int, default=40)
    parser.add_argument("--patches", type=int, default=20_000)
    parser.add_argument("--iterations", type=int, default=20, help="Levenberg-Marquardt iterations per stage")
    parser.add_argument("--restarts", type=int, default=8, help="starting points for random initialisation")
    parser.add_argument("--restart-iterations", type=int, default=8)
    parser.add_argument("--continued", type=int, default=3, help="starting points trained through every stage")
    parser.add_argument("--weight-noise", type=float, default=1e-3, help="relative weight noise of the exact start")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--output", default="companion/pde/weights", help="folder for the .pt files ('' to skip)")
    parser.add_argument("--quick", action="store_true", help="reduced size (16x16, few patches): seconds")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.trajectories, args.steps, args.test_trajectories, args.test_steps = 16, 6, 10, 3, 8
        args.patches, args.iterations, args.restarts, args.restart_iterations = 400, 2, 2, 1
    torch.set_num_threads(args.threads)
    results = []
    for name in args.networks:
        results.append(run(args, name, JOBS[name]))
        line = {k: v for k, v in results[-1].items() if k != "relative_errors"}
        print(json.dumps(line), flush=True)
    return results


if __name__ == "__main__":
    main()
