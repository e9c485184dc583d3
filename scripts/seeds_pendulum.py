"""Chapter 5's pendulum comparison over seeds: a symplectic network and a ResNet of equal size and equal care.

Both networks learn the time-``dt`` flow map of the pendulum from the chapter's 1000 pairs and are iterated for
1000 steps. For a fair comparison:

- **equal size**: at each depth the hidden width is chosen so that both networks have about ``parameters``
  parameters (a symplectic layer has 6 parameters per hidden unit, a ResNet layer 5, so the ResNet's width is
  rounded and the counts are stored: within 5 %);
- **equal budget**: the same epochs, batch, optimiser (Adam) and schedule (cosine) for both;
- **equal care**: each network's learning rate, depth (at that parameter count) and total step ``T`` (each layer
  steps ``T / depth``: the scale of the initial map's distance to the identity) are chosen on a validation split
  carved from the training pairs (the last ``validation`` of them; the first ones train), the grid point with the
  lowest median validation MSE over the ``tuning_seeds``; the test pairs and the rollouts are never used to choose;
- **equal one-step error**: at the equal budget the ResNet's one-step error may stay above the symplectic
  network's, so a third model, the ResNet given more epochs (the first of ``long_factors`` times ``epochs`` at which its median
  validation MSE is at or below the symplectic network's; its learning rate chosen again on the same splits, depth
  and ``T`` kept), is compared at a one-step error at or below the symplectic network's.

Each seed draws its own training pairs (``pendulum_flow_map(seed=seed)``), initialisation (``torch.manual_seed``)
and batch order (``fit(seed=seed)``); the chapter repeats one of them live. The selected models are trained on all the
training pairs, and measured: one-step MSE on the training pairs and on fresh test pairs, and over a rollout from
the chapter's four starts the largest energy error ``|H(x_n) - H(x_0)|`` and distance to the exact trajectory over
the first and the last ``window`` steps.

Writes ``companion/results/05_pendulum_seeds.json`` (loaded by the chapter with
``companion.data.stored_results("05_pendulum_seeds")``)::

    .venv/bin/python scripts/seeds_pendulum.py            # about 40 minutes on one loaded core
    .venv/bin/python scripts/seeds_pendulum.py --quick --output /tmp/pendulum.json   # seconds: the test's run
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import companion
from companion.data import pendulum_energy, pendulum_flow_map, pendulum_trajectory

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "companion" / "results" / "05_pendulum_seeds.json"
COMMAND = ".venv/bin/python scripts/seeds_pendulum.py"
MODELS = ("symplectic", "ResNet", "ResNet, long")

SETTINGS = {
    "samples": 1000,
    "validation": 200,
    "test_samples": 1000,
    "test_seed_offset": 1000,
    "dt": 0.1,
    "parameters": 768,
    "depths": [2, 4, 8, 16, 32],
    "learning_rates": [1e-2, 3e-2, 1e-1, 3e-1, 1.0],
    "total_steps": [0.1, 1.0],
    "epochs": 80,
    "long_factors": [2, 4, 8],
    "batch_size": 64,
    "optimizer": "adam",
    "schedule": "cosine",
    "seeds": [0, 1, 2, 3, 4],
    "tuning_seeds": [0, 1, 2],
    "rollout_steps": 1000,
    "window": 100,
    "reference_substeps": 10,
    "starts": [[0.5, 0.0], [1.0, 0.0], [1.5, 0.0], [2.0, 0.0]],
    "dtype": "float64",
}

QUICK = {
    "samples": 120,
    "validation": 40,
    "test_samples": 100,
    "depths": [2, 4],
    "learning_rates": [1e-2, 1e-1],
    "total_steps": [0.1],
    "epochs": 2,
    "long_factors": [2, 4],
    "seeds": [0, 1, 2],
    "tuning_seeds": [0, 1],
    "rollout_steps": 40,
    "window": 10,
    "reference_substeps": 4,
}


def build(kind: str, *, depth: int, hidden: int, total_step: float, seed: int) -> nn.Module:
    """The chapter's networks in float64: ``depth`` symplectic layers, or a ResNet of ``depth`` Euler steps, each
    of step ``total_step / depth``."""
    torch.manual_seed(seed)
    make = companion.symplectic_network if kind == "symplectic" else companion.resnet
    return make(2, 2, width=2, depth=depth, hidden=hidden, T=total_step).double()


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def hidden_width(kind: str, depth: int, parameters: int) -> int:
    """The hidden width that brings a ``depth``-layer network closest to ``parameters`` parameters."""
    per_unit = count(build(kind, depth=depth, hidden=1, total_step=1.0, seed=0))  # parameters are linear in width
    return max(1, round(parameters / per_unit))


def one_step_mse(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((net(x) - y) ** 2).mean())


def train(kind: str, config: dict, data: tuple, *, epochs: int, seed: int, settings: dict) -> nn.Module:
    """Build the network ``config`` describes with ``seed`` and train it on ``data`` with the shared budget."""
    net = build(kind, depth=config["depth"], hidden=config["hidden"], total_step=config["total_step"], seed=seed)
    companion.fit(
        net,
        data,
        epochs=epochs,
        lr=config["lr"],
        batch_size=settings["batch_size"],
        optimizer=settings["optimizer"],
        schedule=settings["schedule"],
        seed=seed,
        progress=False,
    )
    return net


def rollout_errors(net: nn.Module, starts: torch.Tensor, exact: torch.Tensor, window: int) -> dict:
    """Largest energy error and distance to the exact trajectory over the first and the last ``window`` steps."""
    states = [starts]
    with torch.no_grad():
        for _ in range(len(exact) - 1):
            states.append(net(states[-1]))
    path = torch.stack(states)
    energy = (pendulum_energy(path) - pendulum_energy(starts)).abs()
    distance = (path - exact).norm(dim=-1)
    return {
        "energy_early": float(energy[1 : window + 1].max()),
        "energy_late": float(energy[-window:].max()),
        "trajectory_early": float(distance[1 : window + 1].max()),
        "trajectory_late": float(distance[-window:].max()),
    }


def grid(kind: str, settings: dict, **fixed) -> list[dict]:
    """Every configuration of the tuning grid at equal parameter count; ``fixed`` pins some of its entries."""
    configs = []
    for depth, total_step, lr in itertools.product(
        settings["depths"], settings["total_steps"], settings["learning_rates"]
    ):
        config = {"depth": depth, "hidden": hidden_width(kind, depth, settings["parameters"])}
        config.update(total_step=total_step, lr=lr)
        if all(config[key] == value for key, value in fixed.items()):
            configs.append(config)
    return configs


def tune(kind: str, configs: list[dict], splits: dict, *, epochs: int, settings: dict) -> tuple[dict, list[dict]]:
    """Train every configuration on each seed's training part; choose the lowest median validation MSE."""
    rows = []
    for config in configs:
        losses = []
        for seed, (fit_part, validation_part) in splits.items():
            net = train(kind, config, fit_part, epochs=epochs, seed=seed, settings=settings)
            losses.append(one_step_mse(net, *validation_part))
        row = {**config, "epochs": epochs, "validation_mse": losses, "median": statistics.median(losses)}
        rows.append(row)
        print(f"  {kind:>10} {config} epochs {epochs}: median validation MSE {row['median']:.2e}", flush=True)
    best = min(rows, key=lambda row: row["median"])
    return {key: best[key] for key in ("depth", "hidden", "total_step", "lr", "epochs")}, rows


def tune_long(selected: dict, tuning: dict, splits: dict, settings: dict) -> tuple[dict, list[dict]]:
    """The ResNet given ``factor`` times the epochs, for the first of ``long_factors`` at which its median validation
    MSE (learning rate chosen again, depth and step kept) is at or below the symplectic network's."""
    target = min(row["median"] for row in tuning["symplectic"])
    pinned = {key: selected["ResNet"][key] for key in ("depth", "hidden", "total_step")}
    rows: list[dict] = []
    for factor in settings["long_factors"]:
        epochs = factor * settings["epochs"]
        choice, more = tune("ResNet", grid("ResNet", settings, **pinned), splits, epochs=epochs, settings=settings)
        rows += more
        if min(row["median"] for row in more) <= target:
            break
    return choice, rows


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def run(settings: dict) -> dict:
    """The whole sweep: tuning on the validation splits, then every seed's selected models measured."""
    start_time = time.time()
    data, splits, tests = {}, {}, {}
    for seed in settings["seeds"]:
        x, y = pendulum_flow_map(settings["samples"], dt=settings["dt"], seed=seed)
        cut = settings["samples"] - settings["validation"]
        data[seed] = (x, y)
        if seed in settings["tuning_seeds"]:
            splits[seed] = ((x[:cut], y[:cut]), (x[cut:], y[cut:]))
        test_seed = settings["test_seed_offset"] + seed
        tests[seed] = pendulum_flow_map(settings["test_samples"], dt=settings["dt"], seed=test_seed)
    epochs = settings["epochs"]
    selected, tuning = {}, {}
    for kind in ("symplectic", "ResNet"):
        selected[kind], tuning[kind] = tune(kind, grid(kind, settings), splits, epochs=epochs, settings=settings)
    selected["ResNet, long"], tuning["ResNet, long"] = tune_long(selected, tuning, splits, settings)
    starts = torch.tensor(settings["starts"], dtype=torch.float64)
    exact = pendulum_trajectory(
        starts, dt=settings["dt"], n_steps=settings["rollout_steps"], substeps=settings["reference_substeps"]
    )
    rows = []
    for seed, name in itertools.product(settings["seeds"], MODELS):
        kind = "symplectic" if name == "symplectic" else "ResNet"
        config = selected[name]
        net = train(kind, config, data[seed], epochs=config["epochs"], seed=seed, settings=settings)
        row = {"seed": seed, "model": name, "parameters": count(net)}
        row.update(train_mse=one_step_mse(net, *data[seed]), test_mse=one_step_mse(net, *tests[seed]))
        row.update(rollout_errors(net, starts, exact, settings["window"]))
        rows.append(row)
        print(f"  seed {seed} {name:>12}: " + ", ".join(f"{k} {v:.2e}" for k, v in row.items() if "_" in k))
    return {
        "command": COMMAND,
        "machine": machine(),
        "settings": settings,
        "selected": selected,
        "tuning": tuning,
        "rows": rows,
        "seconds": round(time.time() - start_time, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for the tests")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"JSON file to write (default {OUTPUT})")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = {**SETTINGS, **(QUICK if args.quick else {})}
    table = run(settings)
    if args.quick:
        table["command"] = f"{COMMAND} --quick"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.output} in {table['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
