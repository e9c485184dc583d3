"""Chapter 6's comparison on the digits, with fair baselines and several seeds.

Five networks of about 30,000 parameters, each trained with the chapter's budget (30 epochs, batch 64, Adam with a
one-cycle schedule): the unconstrained ResNet with cross-entropy, the same ResNet with the 1-Lipschitz networks' hinge
loss, the same ResNet with PGD adversarial training at the headline radius (Madry et al. 2018), and the chapter's
non-expansive and switching 1-Lipschitz networks. Each network's learning rate is chosen on a validation split carved
from the training digits (never the test digits), by its accuracy there under the chapter's APGD attack at the headline
radius; then every network is retrained on the whole training set with several seeds and evaluated on the test digits:
clean, APGD-attacked and (for the 1-Lipschitz networks) certified accuracy at each radius.

    .venv/bin/python scripts/seeds_digits_robustness.py            # writes companion/results/06_digits_baselines.json
    .venv/bin/python scripts/seeds_digits_robustness.py --quick --output /tmp/quick.json   # seconds, for the tests

One torch thread; about 12 minutes on one core of a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import companion
from companion import lipschitz

sys.path.insert(0, str(Path(__file__).resolve().parent))
from booktools import machine  # noqa: E402

OUTPUT = Path(__file__).resolve().parents[1] / "companion" / "results" / "06_digits_baselines.json"
COMMAND = ".venv/bin/python scripts/seeds_digits_robustness.py"
SETTINGS = {
    "data_seed": 0,  # the chapter's split of the digits
    "validation_fraction": 0.2,  # carved from the training digits to choose the learning rate
    "validation_seed": 1,
    "learning_rates": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "seeds": [0, 1, 2, 3, 4],
    "epochs": 30,
    "batch_size": 64,
    "width": 64,
    "depth": 6,
    "resnet_hidden": 38,
    "margin": 1.0,
    "training_epsilon": 0.5,  # PGD adversarial training radius
    "training_steps": 10,
    "epsilons": [0.0, 0.3, 0.5, 0.8, 1.0],
    "selection_epsilon": 0.5,
    "attack": {"steps": 50, "targets": 9, "bounds": [0.0, 1.0], "seed": 0},
}
QUICK = dict(
    SETTINGS,
    learning_rates=[1e-2],
    seeds=[0],
    epochs=1,
    epsilons=[0.0, 0.5],
    attack={"steps": 5, "targets": 1, "bounds": [0.0, 1.0], "seed": 0},
)

#: name -> (builder kind, training loss); every network is built from the same width and depth.
NETWORKS = {
    "ResNet, cross-entropy": ("resnet", "cross_entropy"),
    "ResNet, hinge": ("resnet", "hinge"),
    "ResNet, PGD adversarial training": ("resnet", "adversarial"),
    "non-expansive": ("nonexpansive", "hinge"),
    "switching": ("switching", "hinge"),
}


def build(kind: str, settings: dict) -> torch.nn.Module:
    width, depth = settings["width"], settings["depth"]
    if kind == "resnet":
        return companion.resnet(64, 10, width=width, depth=depth, hidden=settings["resnet_hidden"], activation="relu")
    depth = depth // 2 if kind == "switching" else depth
    return companion.lipschitz_classifier(64, 10, width=width, depth=depth, kind=kind)


def training_loss(name: str, settings: dict):
    if name == "cross_entropy":
        return "cross_entropy"
    if name == "hinge":
        return companion.hinge_loss(settings["margin"])
    bounds = tuple(settings["attack"]["bounds"])
    return lipschitz.adversarial_loss(settings["training_epsilon"], steps=settings["training_steps"], bounds=bounds)


def train(name: str, data, settings: dict, *, lr: float, seed: int) -> tuple[torch.nn.Module, float]:
    kind, loss = NETWORKS[name]
    companion.seed_everything(seed)
    model = build(kind, settings)
    start = time.process_time()
    companion.fit(
        model,
        data,
        epochs=settings["epochs"],
        lr=lr,
        batch_size=settings["batch_size"],
        loss=training_loss(loss, settings),
        schedule="onecycle",
        seed=seed,
        progress=False,
    )
    return model.eval(), time.process_time() - start


def attacked(model, inputs, labels, epsilon: float, settings: dict) -> float:
    attack = dict(settings["attack"], bounds=tuple(settings["attack"]["bounds"]))
    return lipschitz.robust_accuracy(model, inputs, labels, epsilon=epsilon, **attack)


def choose_learning_rate(name: str, train_split, validation, settings: dict) -> list[dict]:
    """Every learning rate of the grid, trained on the training split with the first seed and scored on the
    validation split (clean and attacked at the selection radius)."""
    rows = []
    for lr in settings["learning_rates"]:
        model, _ = train(name, train_split, settings, lr=lr, seed=settings["seeds"][0])
        rows.append(
            {
                "lr": lr,
                "validation_clean": companion.accuracy(model, *validation),
                "validation_attacked": attacked(model, *validation, settings["selection_epsilon"], settings),
            }
        )
    return rows


def evaluate(name: str, model, test, settings: dict) -> dict:
    x_test, y_test = test
    row = {
        "clean": companion.accuracy(model, x_test, y_test),
        "attacked": [attacked(model, x_test, y_test, e, settings) for e in settings["epsilons"]],
        "certified": None,
    }
    if NETWORKS[name][0] != "resnet":
        bound = companion.network_lipschitz_bound(model)
        row["certified"] = [
            lipschitz.certified_accuracy(model, x_test, y_test, lipschitz=bound, epsilon=e)
            for e in settings["epsilons"]
        ]
    return row


def run(settings: dict) -> dict:
    torch.set_num_threads(1)
    (x_train, y_train), test = companion.digits(seed=settings["data_seed"])
    train_split, validation = companion.train_test_split(
        x_train, y_train, test_fraction=settings["validation_fraction"], seed=settings["validation_seed"]
    )
    networks = []
    for name in NETWORKS:
        grid = choose_learning_rate(name, train_split, validation, settings)
        best = max(grid, key=lambda row: (row["validation_attacked"], row["validation_clean"]))
        seeds = []
        for seed in settings["seeds"]:
            model, seconds = train(name, (x_train, y_train), settings, lr=best["lr"], seed=seed)
            seeds.append({"seed": seed, "train_cpu_seconds": seconds, **evaluate(name, model, test, settings)})
        parameters = sum(p.numel() for p in model.parameters())
        networks.append({"name": name, "parameters": parameters, "lr": best["lr"], "grid": grid, "seeds": seeds})
        print(f"{name}: lr {best['lr']:g}, clean {[round(s['clean'], 3) for s in seeds]}", flush=True)
    return {
        "command": COMMAND,
        "machine": f"{machine()}, one torch thread, torch {torch.__version__}",
        "settings": settings,
        "test_size": len(test[1]),
        "networks": networks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one learning rate, one seed, one epoch (seconds)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    start = time.time()
    table = run(QUICK if args.quick else SETTINGS)
    table["wall_seconds"] = round(time.time() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.output} in {table['wall_seconds']} s")


if __name__ == "__main__":
    main()
