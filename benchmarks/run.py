"""Benchmarks of companion: integrators against their floor and torchdiffeq, property layers against a
ResNet layer, the convolution norm bound against power iteration, torch.compile against eager, and the
book's chapters.

    python benchmarks/run.py [--quick] [--output book/benchmarks_results.md]

One thread, CPU (or CUDA with --device cuda). Every number is a median over --repeats runs; ratios are
medians of per-run ratios, the runs of the things compared being interleaved so that they share the
machine's noise. Prints the tables and writes them as a Markdown fragment that the book includes.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

import companion as C

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # a script beside a script: share the machine description
from booktools import machine as cpu_description  # noqa: E402


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{cpu_description()}; {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(functions: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Run each function once to warm up, then ``repeats`` rounds of all of them; return the times."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for fn in functions.values():
        fn()
    for _ in range(repeats):
        for name, fn in functions.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def bench_rk4(device: torch.device, repeats: int, quick: bool) -> str:
    import torchdiffeq

    steps, h = 200, 0.01
    rows = []
    dims = [2, 64] if quick else [2, 8, 64]
    for dtype in (torch.float32, torch.float64):
        for batch in (1, 1024):
            for dim in dims:
                torch.manual_seed(0)
                field = C.MLPField(dim, 64).to(device=device, dtype=dtype)
                x0 = torch.randn(batch, dim, device=device, dtype=dtype)
                grid = torch.linspace(0, steps * h, steps + 1, device=device, dtype=dtype)

                def floor():
                    for _ in range(4 * steps):
                        field(x0)

                def companion_rk(tableau):
                    def run():
                        x = x0
                        for _ in range(steps):
                            x = C.rk_step(field, x, h, tableau)
                        return x
                    return run

                def diffeq():
                    return torchdiffeq.odeint(lambda t, x: field(x), x0, grid, method="rk4")[-1]

                with torch.no_grad():
                    gap = float((companion_rk(C.RK38)() - diffeq()).abs().max() / x0.abs().max().clamp_min(1))
                    times = interleaved({"floor": floor, "rk4": companion_rk(C.RK4), "rk38": companion_rk(C.RK38),
                                         "torchdiffeq": diffeq}, repeats, device)
                rows.append([
                    str(dtype).replace("torch.", ""), str(batch), str(dim),
                    f"{1e3 * statistics.median(times['floor']):.1f}",
                    f"{ratio(times, 'rk4', 'floor'):.2f}", f"{ratio(times, 'rk38', 'floor'):.2f}",
                    f"{ratio(times, 'torchdiffeq', 'floor'):.2f}", f"{ratio(times, 'torchdiffeq', 'rk38'):.2f}",
                    f"{gap:.0e}",
                ])
    header = ["dtype", "batch", "dim", "floor (ms)", "RK4 / floor", "3/8 rule / floor", "torchdiffeq / floor",
              "torchdiffeq / our 3/8 rule", "max gap"]
    return table(header, rows)


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
        rows.append([name, str(params), f"{1e3 * statistics.median(times[name + ' fwd']):.2f}",
                     f"{ratio(times, name + ' fwd', base + ' fwd'):.2f}",
                     f"{1e3 * statistics.median(times[name + ' fwd+bwd']):.2f}",
                     f"{ratio(times, name + ' fwd+bwd', base + ' fwd+bwd'):.2f}"])
    return table(["layer (width 64, batch 1024)", "parameters", "forward (ms)", "/ ResNet", "fwd+bwd (ms)", "/ ResNet"], rows)


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

            def step(model):
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
            rows.append([name, str(width), str(batch), f"{1e3 * statistics.median(times['eager']):.2f}",
                         f"{1e3 * statistics.median(times['compiled']):.2f}",
                         f"{ratio(times, 'eager', 'compiled'):.2f}", f"{compile_seconds:.0f}", f"{gap:.0e}"])
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
        rows.append([name, str(width), str(batch), f"{1e3 * seconds[False][1]:.0f} / epoch",
                     f"{1e3 * seconds[True][1]:.0f} / epoch", f"{seconds[False][1] / seconds[True][1]:.2f}",
                     f"{seconds[True][0] - seconds[False][0]:.0f}", ""])
    header = ["layer, forward + backward", "width", "batch", "eager (ms)", "compiled (ms)", "speed-up",
              "compile (s)", "max gap"]
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
            times = interleaved({
                "bound": lambda: C.conv_operator_norm(kernel, (size, size), padding_mode=padding),
                "power": lambda: conv_power_iteration(kernel, (size, size), padding_mode=padding, iterations=100, seed=0),
            }, repeats, device)
            rows.append([f"{channels}x{channels}x3x3 on {size}x{size}", padding, f"{bound:.4f}", f"{estimate:.4f}",
                         f"{bound / estimate:.4f}", f"{float(reshaped_kernel_norm(kernel)):.4f}",
                         f"{1e3 * statistics.median(times['bound']):.1f}", f"{1e3 * statistics.median(times['power']):.1f}"])
    header = ["kernel, input", "padding", "bound", "power iteration (100 its)", "bound / estimate",
              "reshaped-kernel norm (wrong)", "bound (ms)", "power (ms)"]
    return table(header, rows)


def chapter_times() -> str:
    path = ROOT / "book" / "timings.csv"
    if not path.exists():
        return "(no book/timings.csv yet: run `make notebooks`)"
    with open(path) as handle:
        rows = list(csv.reader(handle))
    return table(rows[0], rows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (for the tests)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="write the tables as Markdown to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = 3 if args.quick else args.repeats
    sections = [
        ("Fixed-step RK4, 200 steps of a small MLP field", bench_rk4),
        ("Property layers against a ResNet layer", bench_layers),
        ("Convolution operator norm: certified bound against power iteration", bench_conv_norm),
        ("torch.compile (inductor) against eager", bench_compile),
    ]
    out = [f"Measured on: {machine(device)}; medians of {repeats} interleaved runs.\n"]
    for title, bench in sections:
        start = time.perf_counter()
        result = bench(device, repeats, args.quick)
        out.append(f"### {title}\n\n{result}\n")
        print(f"\n## {title} ({time.perf_counter() - start:.0f} s)\n\n{result}", flush=True)
    out.append(f"### Chapters (execution time, `make notebooks`)\n\n{chapter_times()}\n")
    if args.output:
        Path(args.output).write_text("\n".join(out))
        print(f"\nwrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
