"""Chapter 5's SIR and ABC comparisons over several seeds, each network at a learning rate chosen on validation data.

For each experiment of the chapter (the SIR time-1 map on the authors' data; the time-0.2 map of the ABC flow) every
network is built and trained exactly as in the chapter (same architecture, epochs, batch, optimiser and schedule),
except that its learning rate is chosen from a grid by the MSE on a validation split carved from the training data
(never the test data). Then each network is retrained on the whole training set with several seeds and measured as in
the chapter: test MSE, the conserved quantity's drift, rollouts (SIR: 100 applications; ABC: the volume of a ball
after 10 applications against the exact flow's, and max |det J - 1| at the test points).

    .venv/bin/python scripts/seeds_structured.py            # writes companion/results/05_sir_abc_seeds.json
    .venv/bin/python scripts/seeds_structured.py --quick --output /tmp/quick.json   # seconds, for the tests

One torch thread; about 10 minutes on one core of a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import companion
from companion.data import abc_flow_map, abc_trajectory, sir_flow_map_normalised
from companion.structured import (
    VolumePreservingLayer,
    enclosed_volume,
    mass_preserving_network,
    positive_mass_network,
    sphere_mesh,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from booktools import machine  # noqa: E402

OUTPUT = ROOT / "companion" / "results" / "05_sir_abc_seeds.json"
COMMAND = ".venv/bin/python scripts/seeds_structured.py"
SETTINGS = {
    "learning_rates": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
    "seeds": [0, 1, 2, 3, 4],
    "validation_fraction": 0.2,
    "validation_seed": 1,
    "sir": {"samples": 1000, "train": 900, "batch": 32, "epochs": 60, "hidden": 25, "applications": 100},
    "abc": {"samples": 4000, "dt": 0.2, "layers": 2, "hidden": 64, "resnet_hidden": 110, "epochs": 60, "batch": 128},
    "ball": {"radius": 0.3, "center": [3.0, 3.0, 3.0], "rings": 48, "segments": 96, "applications": 10},
}
QUICK = dict(
    SETTINGS,
    learning_rates=[1e-2],
    seeds=[0],
    sir=dict(SETTINGS["sir"], epochs=1, applications=3),
    abc=dict(SETTINGS["abc"], samples=400, epochs=1),
    ball=dict(SETTINGS["ball"], rings=8, segments=16, applications=2),
)


def sir_builders(settings: dict) -> dict:
    hidden = settings["sir"]["hidden"]
    return {
        "mass-preserving": lambda: mass_preserving_network((3, 10, 10, 15, 3), layers_per_block=3, hidden=hidden),
        "ResNet": lambda: companion.resnet(3, 3, width=20, depth=9, hidden=96, activation="relu"),
        "mass and sign": lambda: positive_mass_network(
            (3, 3, 3), layers_per_block=3, hidden=64, h=1 / 3, activation="relu"
        ),
    }


def abc_builders(settings: dict) -> dict:
    abc = settings["abc"]
    return {
        "volume-preserving": lambda: nn.Sequential(
            *[
                VolumePreservingLayer(3, blocks=(1, 1, 1), hidden=abc["hidden"], h=abc["dt"] / abc["layers"])
                for _ in range(abc["layers"])
            ]
        ),
        "ResNet": lambda: companion.resnet(
            3, 3, width=3, depth=abc["layers"], hidden=abc["resnet_hidden"], T=abc["dt"]
        ),
    }


def train(build, data, *, experiment: str, settings: dict, lr: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = build().double()
    options = settings[experiment]
    if experiment == "sir":  # the authors' schedule: the rate divided by 10 after 60 % of the epochs
        schedule = {"schedule": "step", "gamma": 0.1, "step_size": max(1, int(0.6 * options["epochs"]))}
    else:
        schedule = {"schedule": "cosine"}
    companion.fit(
        net, data, epochs=options["epochs"], lr=lr, batch_size=options["batch"], seed=seed, progress=False, **schedule
    )
    return net.eval()


def mse(net, x, y) -> float:
    with torch.no_grad():
        return float(((net(x) - y) ** 2).mean())


def choose(builders: dict, train_data, *, experiment: str, settings: dict) -> dict:
    """name -> the grid's validation MSEs and the chosen learning rate."""
    part, validation = companion.train_test_split(
        *train_data, test_fraction=settings["validation_fraction"], seed=settings["validation_seed"]
    )
    chosen = {}
    for name, build in builders.items():
        grid = []
        for lr in settings["learning_rates"]:
            net = train(build, part, experiment=experiment, settings=settings, lr=lr, seed=settings["seeds"][0])
            grid.append({"lr": lr, "validation_mse": mse(net, *validation)})
        finite = [row for row in grid if np.isfinite(row["validation_mse"])]
        chosen[name] = {"grid": grid, "lr": min(finite, key=lambda row: row["validation_mse"])["lr"]}
    return chosen


def sir_measures(net, test_x, test_y, settings: dict) -> dict:
    corners = torch.tensor(
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0, 0.5, 0.5], [0.5, 0, 0.5]], dtype=torch.float64
    )
    states = [torch.cat([corners, test_x])]
    with torch.no_grad():
        prediction = net(test_x)
        for _ in range(settings["sir"]["applications"]):
            states.append(net(states[-1]))
    path = torch.stack(states)
    return {
        "test_mse": float(((prediction - test_y) ** 2).mean()),
        "sum_drift": float((prediction.sum(-1) - test_x.sum(-1)).abs().max()),
        "rollout_sum_drift": float((path.sum(-1) - path[0].sum(-1)).abs().max()),
        "rollout_min": float(path[1:].min()),
    }


def sir(settings: dict) -> dict:
    options = settings["sir"]
    x0, x1 = sir_flow_map_normalised(options["samples"], seed=0)  # the authors' starts
    train_data, test = (
        (x0[: options["train"]], x1[: options["train"]]),
        (x0[options["train"] :], x1[options["train"] :]),
    )
    builders = sir_builders(settings)
    chosen = choose(builders, train_data, experiment="sir", settings=settings)
    rows = {}
    for name, build in builders.items():
        runs = []
        for seed in settings["seeds"]:
            net = train(build, train_data, experiment="sir", settings=settings, lr=chosen[name]["lr"], seed=seed)
            runs.append({"seed": seed, **sir_measures(net, *test, settings)})
        parameters = sum(p.numel() for p in net.parameters())
        rows[name] = {"parameters": parameters, **chosen[name], "seeds": runs}
        errors = ", ".join(f"{run['test_mse']:.1e}" for run in runs)
        print(f"SIR {name}: lr {chosen[name]['lr']:g}, test MSE {errors}", flush=True)
    return rows


def abc_measures(net, test_x, test_y, ball, exact_volume: float, settings: dict) -> dict:
    vertices, faces = ball
    determinants = torch.linalg.det(companion.jacobians(net, test_x)).detach()
    with torch.no_grad():
        state = vertices
        for _ in range(settings["ball"]["applications"]):
            state = net(state)
    volume = enclosed_volume(state, faces)
    return {
        "test_mse": mse(net, test_x, test_y),
        "det_error": float((determinants - 1).abs().max()),
        "ball_gap": abs(volume / exact_volume - 1),
    }


def abc(settings: dict) -> dict:
    options, ball = settings["abc"], settings["ball"]
    x0, x1 = abc_flow_map(options["samples"], dt=options["dt"], seed=0)
    train_data, test = companion.train_test_split(x0, x1, test_fraction=0.2, seed=0)
    vertices, faces = sphere_mesh(
        radius=ball["radius"], center=tuple(ball["center"]), rings=ball["rings"], segments=ball["segments"]
    )
    exact = abc_trajectory(vertices, dt=options["dt"], n_steps=ball["applications"])[-1]
    exact_volume = enclosed_volume(exact, faces)
    builders = abc_builders(settings)
    chosen = choose(builders, train_data, experiment="abc", settings=settings)
    rows = {}
    for name, build in builders.items():
        runs = []
        for seed in settings["seeds"]:
            net = train(build, train_data, experiment="abc", settings=settings, lr=chosen[name]["lr"], seed=seed)
            runs.append({"seed": seed, **abc_measures(net, *test, (vertices, faces), exact_volume, settings)})
        parameters = sum(p.numel() for p in net.parameters())
        rows[name] = {"parameters": parameters, **chosen[name], "seeds": runs}
        gaps = ", ".join(f"{run['ball_gap']:.1e}" for run in runs)
        print(f"ABC {name}: lr {chosen[name]['lr']:g}, ball gap {gaps}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one learning rate, one seed, one epoch (seconds)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = QUICK if args.quick else SETTINGS
    start = time.time()
    table = {
        "command": COMMAND,
        "machine": f"{machine()}, one torch thread, torch {torch.__version__}",
        "settings": settings,
        "sir": sir(settings),
        "abc": abc(settings),
    }
    table["wall_seconds"] = round(time.time() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.output} in {table['wall_seconds']} s")


if __name__ == "__main__":
    main()
