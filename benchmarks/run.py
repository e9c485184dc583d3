"""Benchmarks of companion: integrators against a hand-written step and torchdiffeq, property layers against a
ResNet layer, the convolution norm bound against power iteration, torch.compile against eager, chapter 6's
certified classifier against deel-torchlip's (``benchmarks/peers_lipschitz.py``), and the book's chapters.

    python benchmarks/run.py [--quick] [--output book/benchmarks_results.md] [--only overhead ...]

One thread, CPU (or CUDA with --device cuda). Every number is a median over --repeats runs; ratios are
medians of per-run ratios, the runs of the things compared being interleaved so that they share the
machine's noise. Prints the tables and writes them as a Markdown fragment that the book includes; with
--only, only the tables named are run, and their sections of the --output file are replaced (the others kept).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import companion as C

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.peers_lipschitz
sys.path.insert(0, str(ROOT / "scripts"))  # a script beside a script: share the machine description
from booktools import machine as cpu_description  # noqa: E402


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{cpu_description()}; {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_note() -> str:
    """The machine's 1-minute load average, and whether other jobs were running beside this one."""
    load = os.getloadavg()[0]
    shared = load > torch.get_num_threads() + 0.5
    return f"load average {load:.1f} on {os.cpu_count()} cores" + (" (shared with other jobs)" if shared else "")


def interleaved(
    functions: dict[str, Callable[[], object]],
    repeats: int,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Run each function once to warm up, then ``repeats`` rounds of all of them; return the times.

    ``clock`` is wall time by default; ``time.process_time`` (the CPU time of this process, for CPU runs) leaves
    out the time the process waits while other jobs hold the cores.
    """
    times: dict[str, list[float]] = {name: [] for name in functions}
    for fn in functions.values():
        fn()
    for _ in range(repeats):
        for name, fn in functions.items():
            _sync(device)
            start = clock()
            fn()
            _sync(device)
            times[name].append(clock() - start)
    return times


def ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))


def ratio_spread(times: dict[str, list[float]], numerator: str, denominator: str) -> str:
    """The median of the per-run ratios and, in brackets, their quartiles (the middle half of the runs)."""
    ratios = [a / b for a, b in zip(times[numerator], times[denominator])]
    low, _, high = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{statistics.median(ratios):.2f} ({low:.2f}-{high:.2f})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def hand_written_rk4(
    field: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, h: float, steps: int, *, trajectory: bool = False
) -> torch.Tensor:
    """The floor: ``steps`` classical RK4 steps as one writes them by hand; with ``trajectory=True`` every state is
    kept and stacked at the end, as ``integrate`` and ``torchdiffeq.odeint`` return them (the last one is returned)."""
    states = [x]
    for _ in range(steps):
        k1 = field(x)
        k2 = field(x + h / 2 * k1)
        k3 = field(x + h / 2 * k2)
        k4 = field(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if trajectory:
            states.append(x)
    return torch.stack(states)[-1] if trajectory else x


def rk_step_loop(field: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, h: float, steps: int) -> torch.Tensor:
    """The same steps as a Python loop over the public ``rk_step`` (every call validates its arguments)."""
    for _ in range(steps):
        x = C.rk_step(field, x, h, C.RK4)
    return x


def forward_only(run: Callable[[], torch.Tensor]) -> Callable[[], object]:
    def forward():
        with torch.no_grad():
            return run()

    return forward


def forward_backward(run: Callable[[], torch.Tensor]) -> Callable[[], object]:
    def both():
        run().square().sum().backward()

    return both


def overhead_runs(batch: int, device: torch.device, torchdiffeq) -> tuple[dict[str, Callable[[], torch.Tensor]], str]:
    """The runs the overhead table compares, for one batch size, and the gap between our 3/8 rule and torchdiffeq."""
    steps, h, dim = 200, 0.01, 16
    torch.manual_seed(0)
    field = nn.Sequential(nn.Linear(dim, 64), nn.Tanh(), nn.Linear(64, dim)).to(device)
    x0 = torch.randn(batch, dim, device=device)
    layer = C.FlowLayer(field, h=steps * h, n_steps=steps, method="rk4")
    runs = {
        "hand": lambda: hand_written_rk4(field, x0, h, steps),
        "rk_step": lambda: rk_step_loop(field, x0, h, steps),
        "FlowLayer": lambda: layer(x0),
        "hand trajectory": lambda: hand_written_rk4(field, x0, h, steps, trajectory=True),
        "integrate": lambda: C.integrate(field, x0, h=h, n_steps=steps, tableau=C.RK4)[-1],
    }
    if torchdiffeq is None:
        return runs, "not installed"
    grid = torch.linspace(0, steps * h, steps + 1, device=device)
    runs["torchdiffeq"] = lambda: torchdiffeq.odeint(lambda t, x: field(x), x0, grid, method="rk4")[-1]
    runs["rk38"] = lambda: C.integrate(field, x0, h=h, n_steps=steps, tableau=C.RK38)[-1]
    with torch.no_grad():
        gap = float((runs["rk38"]() - runs["torchdiffeq"]()).abs().max() / x0.abs().max().clamp_min(1))
    return runs, f"{gap:.0e}"


def bench_overhead(device: torch.device, repeats: int, quick: bool) -> str:
    """200 RK4 steps of an MLP field 16-64-16: companion's integrators and torchdiffeq against a hand-written step."""
    try:
        import torchdiffeq
    except ImportError:  # a benchmark-only dependency (the bench extra): its columns say so
        torchdiffeq = None
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    rows, gaps = [], []
    for batch in (8, 1024) if quick else (8, 64, 1024):
        runs, gap = overhead_runs(batch, device, torchdiffeq)
        gaps.append(gap)
        for name, wrap in (("forward", forward_only), ("fwd + bwd", forward_backward)):
            times = interleaved({key: wrap(run) for key, run in runs.items()}, repeats, device, clock)
            ours = [
                ratio_spread(times, key, "hand") for key in ("rk_step", "FlowLayer", "hand trajectory", "integrate")
            ]
            theirs = (
                ["not installed"] * 2
                if torchdiffeq is None
                else [ratio_spread(times, "torchdiffeq", "hand"), ratio_spread(times, "torchdiffeq", "rk38")]
            )
            rows.append([str(batch), name, f"{1e3 * statistics.median(times['hand']):.1f}", *ours, *theirs])
    header = [
        "batch",
        "pass",
        "hand-written (ms)",
        "rk_step",
        "FlowLayer",
        "hand-written + states",
        "integrate",
        "torchdiffeq rk4",
        "torchdiffeq / RK38",
    ]
    timed = (
        "CPU time of this process (left out: the time it waits while other jobs hold the cores)"
        if (device.type == "cpu")
        else "wall time"
    )
    lead = f"Times are {timed}; each ratio is the median of the per-run ratios, the quartiles in brackets."
    if torchdiffeq is not None:
        lead += (
            f" Our 3/8 rule (`integrate(..., tableau=RK38)`) and torchdiffeq's rk4 agree to {max(gaps, key=float)}"
            " (largest difference relative to the initial state)."
        )
    return f"{lead}\n\n{table(header, rows)}"


def bench_layers(device: torch.device, repeats: int, quick: bool) -> str:
    width, batch = 64, 1024
    torch.manual_seed(0)
    layers = {
        "ResNet layer (Euler, MLPField)": C.FlowLayer(C.MLPField(width, width), h=0.1),
        "GradientLayer": C.GradientLayer(width, hidden=width),
        "SpherePreservingLayer (default: Cayley, rank 1)": C.SpherePreservingLayer(width),
        "SpherePreservingLayer (exp, rank 1)": C.SpherePreservingLayer(width, method="exp"),
        "SpherePreservingLayer (rotation, rank 1)": C.SpherePreservingLayer(width, method="rotation"),
        "SpherePreservingLayer (Cayley, rank 2)": C.SpherePreservingLayer(width, rank=2),
        "SpherePreservingLayer (Cayley, full family)": C.SpherePreservingLayer(width, rank=None),
        "SpherePreservingLayer (rotation, full family)": C.SpherePreservingLayer(width, method="rotation", rank=None),
        "SymplecticLayer": C.SymplecticLayer(width, hidden=width // 2),
        "VolumePreservingLayer": C.VolumePreservingLayer(width),
        "MassPreservingLayer (Euler, default hidden 4*dim)": C.MassPreservingLayer(width),
        "MassPreservingLayer (Euler, hidden 64)": C.MassPreservingLayer(width, hidden=width),
        "NonExpansiveLayer": C.NonExpansiveLayer(width),
    }
    x = torch.randn(batch, width, device=device)
    functions = {}
    for name, layer in layers.items():
        layer.to(device)
        functions[name + " fwd"] = (lambda l: lambda: l(x))(layer)

        def fwd_bwd(l=layer):
            out = l(x.requires_grad_(False))
            out.square().sum().backward()

        functions[name + " fwd+bwd"] = fwd_bwd
    times = interleaved(functions, repeats, device)
    base = "ResNet layer (Euler, MLPField)"
    rows = []
    for name, layer in layers.items():
        params = sum(p.numel() for p in layer.parameters())
        rows.append(
            [
                name,
                str(params),
                f"{1e3 * statistics.median(times[name + ' fwd']):.2f}",
                f"{ratio(times, name + ' fwd', base + ' fwd'):.2f}",
                f"{1e3 * statistics.median(times[name + ' fwd+bwd']):.2f}",
                f"{ratio(times, name + ' fwd+bwd', base + ' fwd+bwd'):.2f}",
            ]
        )
    return table(
        ["layer (width 64, batch 1024)", "parameters", "forward (ms)", "/ ResNet", "fwd+bwd (ms)", "/ ResNet"], rows
    )


def _compile_layers() -> dict[str, Callable[[int], torch.nn.Module]]:
    return {
        "ResNet layer (FlowLayer, Euler)": lambda w: C.FlowLayer(C.MLPField(w, w), h=0.1),
        "FlowLayer (RK4)": lambda w: C.FlowLayer(C.MLPField(w, w), h=0.1, method="rk4"),
        "GradientLayer": lambda w: C.GradientLayer(w, hidden=w),
        "SpherePreservingLayer": lambda w: C.SpherePreservingLayer(w),
        "SymplecticLayer": lambda w: C.SymplecticLayer(w),
        "VolumePreservingLayer": lambda w: C.VolumePreservingLayer(w),
        "MassPreservingLayer (hidden = width)": lambda w: C.MassPreservingLayer(w, hidden=w),
        "NonExpansiveLayer": lambda w: C.NonExpansiveLayer(w),
    }


def bench_compile(device: torch.device, repeats: int, quick: bool) -> str:
    """``torch.compile`` (inductor) against eager: forward plus backward of each layer class, and ``fit``."""
    sizes = [(8, 64), (64, 1024)]  # (width, batch)
    layers = _compile_layers()
    if quick:
        layers = dict(list(layers.items())[:2])
    rows = []
    for name, build in layers.items():
        for width, batch in sizes:
            torch._dynamo.reset()
            torch.manual_seed(0)
            layer = build(width).to(device)
            x = torch.randn(batch, width, device=device)
            compiled = torch.compile(layer)

            def step(model, x=x):
                def run():
                    out = model(x)
                    out.square().sum().backward()
                    return out

                return run

            start = time.perf_counter()
            out = step(compiled)()
            _sync(device)
            compile_seconds = time.perf_counter() - start
            gap = float(((out - layer(x)).abs().max() / (1 + out.abs().max())).detach())
            times = interleaved({"eager": step(layer), "compiled": step(compiled)}, repeats, device)
            rows.append(
                [
                    name,
                    str(width),
                    str(batch),
                    f"{1e3 * statistics.median(times['eager']):.2f}",
                    f"{1e3 * statistics.median(times['compiled']):.2f}",
                    f"{ratio(times, 'eager', 'compiled'):.2f}",
                    f"{compile_seconds:.0f}",
                    f"{gap:.0e}",
                ]
            )
    for name, (width, depth, batch, n) in {
        "fit: ResNet width 4, depth 12, batch 64 (chapter 1)": (4, 12, 64, 1024),
        "fit: ResNet width 64, depth 8, batch 1024": (64, 8, 1024, 8192),
    }.items():
        data = (torch.randn(n, 4, device=device), torch.randn(n, 2, device=device))
        seconds = {}
        for compile_ in (False, True):
            torch._dynamo.reset()
            torch.manual_seed(0)
            model = C.resnet(4, 2, width=width, depth=depth).to(device)
            first = C.fit(model, data, epochs=1, batch_size=batch, compile=compile_, progress=False).seconds
            later = C.fit(model, data, epochs=2 if quick else 5, batch_size=batch, compile=compile_, progress=False)
            seconds[compile_] = (first, later.seconds / len(later.loss))
        rows.append(
            [
                name,
                str(width),
                str(batch),
                f"{1e3 * seconds[False][1]:.0f} / epoch",
                f"{1e3 * seconds[True][1]:.0f} / epoch",
                f"{seconds[False][1] / seconds[True][1]:.2f}",
                f"{seconds[True][0] - seconds[False][0]:.0f}",
                "",
            ]
        )
    header = [
        "layer, forward + backward",
        "width",
        "batch",
        "eager (ms)",
        "compiled (ms)",
        "speed-up",
        "compile (s)",
        "max gap",
    ]
    return table(header, rows)


def bench_conv_norm(device: torch.device, repeats: int, quick: bool) -> str:
    from companion.lipschitz import conv_power_iteration, reshaped_kernel_norm

    rows = []
    torch.manual_seed(0)
    for channels, size in [(8, 16), (16, 32)]:
        kernel = torch.randn(channels, channels, 3, 3, device=device) / 3
        for padding in ("circular", "zeros"):
            bound = float(C.conv_operator_norm(kernel, (size, size), padding_mode=padding))
            estimate = conv_power_iteration(kernel, (size, size), padding_mode=padding, iterations=100, seed=0)
            times = interleaved(
                {
                    "bound": lambda kernel=kernel, size=size, padding=padding: C.conv_operator_norm(
                        kernel, (size, size), padding_mode=padding
                    ),
                    "power": lambda kernel=kernel, size=size, padding=padding: conv_power_iteration(
                        kernel, (size, size), padding_mode=padding, iterations=100, seed=0
                    ),
                },
                repeats,
                device,
            )
            rows.append(
                [
                    f"{channels}x{channels}x3x3 on {size}x{size}",
                    padding,
                    f"{bound:.4f}",
                    f"{estimate:.4f}",
                    f"{bound / estimate:.4f}",
                    f"{float(reshaped_kernel_norm(kernel)):.4f}",
                    f"{1e3 * statistics.median(times['bound']):.1f}",
                    f"{1e3 * statistics.median(times['power']):.1f}",
                ]
            )
    header = [
        "kernel, input",
        "padding",
        "bound",
        "power iteration (100 its)",
        "bound / estimate",
        "reshaped-kernel norm (wrong)",
        "bound (ms)",
        "power (ms)",
    ]
    return table(header, rows)


def bench_peers(device: torch.device, repeats: int, quick: bool) -> str:
    """Chapter 6's certified classifier against deel-torchlip's at equal parameters (``benchmarks/peers_lipschitz.py``,
    which tunes and trains both, 3 seeds: about 20 minutes on one core). The full run also rewrites the table the
    package ships, ``companion/results/06_lipschitz_peers.json``, when deel-torchlip is installed; without it (a
    benchmark-only dependency, the bench extra) only our rows are computed and the table says so."""
    from benchmarks import peers_lipschitz as peers

    start = time.time()
    table = peers.run(peers.QUICK if quick else peers.SETTINGS, device=device, log=lambda line: print(line, flush=True))
    table["wall_seconds"] = round(time.time() - start, 1)
    if not quick and table["deel_torchlip"] is not None:
        peers.write(table, peers.OUTPUT)
    return peers.markdown(table)


#: The tables by the name ``--only`` takes, in the order of the page.
SECTIONS: dict[str, tuple[str, Callable[[torch.device, int, bool], str]]] = {
    "overhead": ("Integrator overhead: 200 RK4 steps of a small MLP field against a hand-written step", bench_overhead),
    "layers": ("Property layers against a ResNet layer", bench_layers),
    "conv-norm": ("Convolution operator norm: certified bound against power iteration", bench_conv_norm),
    "compile": ("torch.compile (inductor) against eager", bench_compile),
    "peers": ("Certified classifiers at equal parameters: companion against deel-torchlip (chapter 6)", bench_peers),
}


def read_sections(path: Path) -> dict[str | None, str]:
    """The blocks of a results file by their ``### `` title; the text before the first title under ``None``."""
    blocks: dict[str | None, str] = {}
    title = None
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("### "):
            title = line[4:].strip()
        blocks[title] = blocks.get(title, "") + line
    return blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (for the tests)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these tables only")
    parser.add_argument("--output", default=None, help="write the tables as Markdown to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = 3 if args.quick else args.repeats
    measured = f"Measured on: {machine(device)}; medians of {repeats} interleaved runs"
    previous = read_sections(Path(args.output)) if args.only and args.output and Path(args.output).exists() else {}
    out = [previous.get(None, f"{measured}; {load_note()}.\n\n")]
    for key, (title, bench) in SECTIONS.items():
        if args.only and key not in args.only:
            if title in previous:
                out.append(previous[title])
            continue
        start = time.perf_counter()
        result = bench(device, repeats, args.quick)
        note = f"{measured}, this table alone (`--only {key}`); {load_note()}.\n\n" if args.only else ""
        out.append(f"### {title}\n\n{note}{result}\n\n")
        print(f"\n## {title} ({time.perf_counter() - start:.0f} s)\n\n{note}{result}", flush=True)
    if args.output:
        Path(args.output).write_text("".join(out))
        print(f"\nwrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
