"""Chapter 6's certified classifier against deel-torchlip's recommended dense 1-Lipschitz network, like for like.

Both networks have about 29,800 parameters (within 1 %). Ours is the recipe of chapter 6
(``book/recipes/06_certified_nonexpansive_classifier.py``): the pixels centred (``Standardize(mean, 1)``, a
translation), five ``NonExpansiveLayer(64, hidden=90)`` gradient steps acting on the centred pixels, a normalised
readout, trained with the offset cross-entropy; beside it, the same network trained with the hinge loss, and the
chapter's paper set-up, ``companion.lipschitz_classifier(64, 10, width=64, depth=6)`` (a normalised lift, six
square non-expansive steps) with the hinge loss. deel-torchlip's is the dense network of its README and tutorials,
``SpectralLinear`` maps (spectral normalisation then Björck orthogonalisation) with ``GroupSort2`` activations:
eight maps of width 64. Every network is trained by ``companion.fit`` on the chapter's digits split with the same
budget (30 epochs, batch 64, Adam with a one-cycle schedule, one thread) and the same tuning budget per loss: the
same grid over the learning rate and the hinge margin (``companion.hinge_loss``), or over the learning rate, the
offset and the temperature (``companion.offset_cross_entropy``), for both libraries; deel-torchlip also gets its
own recommended loss, ``HKRMulticlassLoss``, over its ``alpha`` and margin. Every setting is chosen on a
validation split carved from the training digits (never the test digits), by the mean of the clean and the
certified accuracies at 0.25, 0.5 and 0.8; the chosen setting is then retrained on the whole training set with
three seeds and evaluated on the test digits: clean accuracy, certified accuracy (the same certificate for both,
``companion.lipschitz.certified_accuracy``: margin / (sqrt(2) L) with the rounding of the forward pass bounded),
the accuracy under the same APGD attack, training CPU seconds and inference time, of the trained module in eval
mode and of its plain export (``companion.lipschitz.export``; deel-torchlip's ``vanilla_export()``).

deel-torchlip's layers are 1-Lipschitz up to the accuracy of their iterative normalisation, so its bound ``L`` is
not taken on trust: it is the product of the exact spectral norms (float64 SVD) of the weights its
``vanilla_export()`` gives (GroupSort2 sorts pairs of entries, a 1-Lipschitz map). The exported network computes
the same function as the trained module (the largest difference of their logits is stored); it is the one
certified and attacked, since deel's module re-runs its normalisation on every call.

    .venv/bin/python benchmarks/peers_lipschitz.py          # writes companion/results/06_lipschitz_peers.json
    .venv/bin/python benchmarks/peers_lipschitz.py --quick --output /tmp/peers.json   # seconds, for the tests
    .venv/bin/python benchmarks/run.py --only peers --output book/benchmarks_results.md   # the same, as a table

deel-torchlip is a benchmark-only dependency (the ``bench`` extra, pinned in requirements.txt); without it only
our rows are computed and nothing is written to the shipped table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import companion
from companion import lipschitz

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "companion" / "results" / "06_lipschitz_peers.json"
COMMAND = ".venv/bin/python benchmarks/peers_lipschitz.py"
INSTALL = "pip install deel-torchlip==1.0.5 (the bench extra: pip install -e '.[bench]')"
SETTINGS = {
    "data_seed": 0,  # the chapter's split of the digits
    "validation_fraction": 0.2,  # carved from the training digits to choose every setting
    "validation_seed": 1,
    "learning_rates": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
    "hinge_margins": [0.5, 1.0, 1.5, 2.0],
    "hkr_alphas": [0.9, 0.99, 0.999],
    "hkr_margins": [0.5, 1.0, 1.5, 2.0],
    "offsets": [0.5, 0.8, 1.1, 1.5, 2.0],
    "temperatures": [0.05, 0.1, 0.25],
    "selection": "mean of the clean and the certified validation accuracies at the selection radii",
    "selection_epsilons": [0.25, 0.5, 0.8],
    "seeds": [0, 1, 2],
    "epochs": 30,
    "batch_size": 64,
    "schedule": "onecycle",
    "optimizer": "adam",
    "width": 64,
    "depth": 6,  # the paper set-up's square non-expansive layers, after a normalised lift
    "recipe": {"depth": 5, "hidden": 90, "h": 0.5},  # the recipe: no lift, centred pixels
    "deel_linear_maps": 8,  # deel-torchlip's SpectralLinear maps (7 hidden of width 64 and the readout)
    "epsilons": [0.25, 0.5, 0.8, 1.0],
    "attack": {"steps": 50, "targets": 9, "bounds": [0.0, 1.0], "seed": 0},
    "inference_repeats": 51,
}
QUICK = dict(
    SETTINGS,
    learning_rates=[1e-2],
    hinge_margins=[1.0],
    hkr_alphas=[0.99],
    hkr_margins=[1.0],
    offsets=[1.1],
    temperatures=[0.1],
    seeds=[0],
    epochs=1,
    epsilons=[0.5],
    selection_epsilons=[0.5],
    attack={"steps": 5, "targets": 2, "bounds": [0.0, 1.0], "seed": 0},
    inference_repeats=3,
)

#: name -> (architecture, loss); the rows of the table, in its order (the first is the chapter's recipe).
NETWORKS = {
    "companion, recipe": ("recipe", "offset"),
    "companion, recipe, hinge": ("recipe", "hinge"),
    "companion, paper set-up": ("paper", "hinge"),
    "deel-torchlip, hinge": ("deel", "hinge"),
    "deel-torchlip, offset CE": ("deel", "offset"),
    "deel-torchlip, HKR": ("deel", "hkr"),
}


def import_deel():
    """deel-torchlip's ``torchlip`` module, or None when it is not installed (a benchmark-only dependency)."""
    try:
        from deel import torchlip
    except ImportError:
        return None
    return torchlip


def build(architecture: str, settings: dict, inputs: torch.Tensor) -> nn.Module:
    """Our recipe (centred on the mean of ``inputs``, the training digits), the paper set-up's classifier, or
    deel-torchlip's dense network (SpectralLinear + GroupSort2, deel's README)."""
    width = settings["width"]
    if architecture == "recipe":
        recipe = settings["recipe"]
        centred = recipe.get("centred", True)
        return companion.lipschitz_classifier(
            64,
            10,
            width=width,
            depth=recipe["depth"],
            hidden=recipe["hidden"],
            h=recipe["h"],
            lift=recipe.get("lift", False),
            preprocessing=lipschitz.Standardize(inputs.mean(0), 1.0) if centred else None,
        ).to(inputs.device)
    if architecture == "paper":
        return companion.lipschitz_classifier(64, 10, width=width, depth=settings["depth"]).to(inputs.device)
    torchlip = import_deel()
    layers: list[nn.Module] = []
    for index in range(settings["deel_linear_maps"] - 1):
        layers += [torchlip.SpectralLinear(64 if index == 0 else width, width), torchlip.GroupSort2()]
    return torchlip.Sequential(*layers, torchlip.SpectralLinear(width, 10)).to(inputs.device)


def training_loss(loss: str, setting: dict) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``companion.hinge_loss`` and ``companion.offset_cross_entropy`` for both libraries; deel-torchlip's
    ``HKRMulticlassLoss`` (one-hot targets)."""
    if loss == "hinge":
        return companion.hinge_loss(setting["margin"])
    if loss == "offset":
        return companion.offset_cross_entropy(setting["offset"], temperature=setting["temperature"])
    criterion = import_deel().HKRMulticlassLoss(alpha=setting["alpha"], min_margin=setting["margin"])
    return lambda model, inputs, labels: criterion(model(inputs), F.one_hot(labels, 10))


#: The loss parameters of each loss, as the settings name their grids.
LOSS_GRIDS = {
    "hinge": {"margin": "hinge_margins"},
    "offset": {"offset": "offsets", "temperature": "temperatures"},
    "hkr": {"alpha": "hkr_alphas", "margin": "hkr_margins"},
}


def grid(loss: str, settings: dict) -> list[dict]:
    """Every setting tried: learning rate x the loss's parameters."""
    rows = [{"lr": lr} for lr in settings["learning_rates"]]
    for key, values in LOSS_GRIDS[loss].items():
        rows = [{**row, key: value} for row in rows for value in settings[values]]
    return rows


def chosen_setting(row: dict) -> dict:
    """The training setting of a grid row (its learning rate and loss parameters)."""
    return {key: row[key] for key in ("lr", "alpha", "margin", "offset", "temperature") if key in row}


def _clock(device: torch.device) -> Callable[[], float]:
    """CPU time of this process on a CPU (the time it waits for a core left out); wall time on a GPU."""
    if device.type == "cuda":

        def synchronized() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return synchronized
    return time.process_time


def train(
    name: str, data, settings: dict, setting: dict, *, seed: int, device: torch.device, kind: tuple | None = None
):
    """The network ``name`` (or of ``kind``, an (architecture, loss) pair) trained with ``setting`` (lr and loss
    parameters); returns it in eval mode and the training time in seconds."""
    architecture, loss = kind or NETWORKS[name]
    companion.seed_everything(seed)
    model = build(architecture, settings, data[0])
    clock = _clock(device)
    start = clock()
    companion.fit(
        model,
        data,
        epochs=settings["epochs"],
        lr=setting["lr"],
        batch_size=settings["batch_size"],
        loss=training_loss(loss, setting),
        optimizer=settings["optimizer"],
        schedule=settings["schedule"],
        seed=seed,
        progress=False,
    )
    return model.eval(), clock() - start


class GroupSortBound(nn.Module):
    """deel-torchlip's GroupSort2 with its Lipschitz bound: sorting each pair of entries is 1-Lipschitz in l2."""

    def __init__(self, sort: nn.Module) -> None:
        super().__init__()
        self.sort = sort

    def lipschitz_bound(self) -> float:
        return 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sort(x)


def certifiable(library: str, model: nn.Module) -> tuple[nn.Module, float]:
    """The network to certify and attack, and its Lipschitz bound.

    Ours: the trained module and :func:`companion.network_lipschitz_bound` (1 for every parameter value).
    deel-torchlip's: its ``vanilla_export()`` (plain ``nn.Linear`` and GroupSort2), with the product of the exact
    spectral norms of the exported weights, computed in float64, as its bound."""
    if library != "deel":
        return model, companion.network_lipschitz_bound(model)
    torchlip = import_deel()
    exported = model.vanilla_export().eval()
    parts = []
    for module in exported:
        if isinstance(module, nn.Linear):
            parts.append(module)
        elif isinstance(module, torchlip.GroupSort2):
            parts.append(GroupSortBound(module))
        else:
            raise TypeError(f"no Lipschitz bound known for {module}")
    plain = nn.Sequential(*parts).eval()
    norms = [torch.linalg.matrix_norm(p.weight.detach().double(), 2) for p in parts if isinstance(p, nn.Linear)]
    return plain, float(math.prod(float(n) for n in norms))


def certified(model: nn.Module, bound: float, inputs, labels, epsilons) -> list[float]:
    return [lipschitz.certified_accuracy(model, inputs, labels, lipschitz=bound, epsilon=e) for e in epsilons]


def score(clean: float, certified_values: list[float]) -> float:
    """The selection criterion: the mean of the clean and the certified accuracies."""
    return statistics.fmean([clean, *certified_values])


def choose(name: str, train_split, validation, settings: dict, device: torch.device) -> list[dict]:
    """Every setting of the grid, trained on the training split with the first seed, scored on the validation
    split."""
    library, loss = NETWORKS[name]
    rows = []
    for setting in grid(loss, settings):
        model, _ = train(name, train_split, settings, setting, seed=settings["seeds"][0], device=device)
        plain, bound = certifiable(library, model)
        clean = companion.accuracy(plain, *validation)
        values = certified(plain, bound, *validation, settings["selection_epsilons"])
        rows.append({**setting, "validation_clean": clean, "validation_certified": values})
        rows[-1]["score"] = score(clean, values)
    return rows


def plain_layers(library: str, model: nn.Module) -> nn.Module:
    """The trained network's function in plain layers: deel-torchlip's ``vanilla_export()``, our
    ``companion.lipschitz.export``."""
    if library == "deel":
        return model.vanilla_export().eval()
    return lipschitz.export(model)


def inference_ms(models: dict[str, nn.Module], inputs: torch.Tensor, repeats: int, device: torch.device) -> dict:
    """Median time of one evaluation of the test digits (eval mode, no gradients), in ms; the models' runs
    interleaved so that they share the machine's noise."""
    clock = _clock(device)
    times: dict[str, list[float]] = {key: [] for key in models}
    with torch.no_grad():
        for model in models.values():
            model(inputs)
        for _ in range(repeats):
            for key, model in models.items():
                start = clock()
                model(inputs)
                times[key].append(1e3 * (clock() - start))
    return {key: statistics.median(values) for key, values in times.items()}


def evaluate(name: str, model: nn.Module, test, settings: dict, device: torch.device) -> dict:
    """Clean, certified and attacked test accuracy, the bound, and inference times (module and plain layers)."""
    library = NETWORKS[name][0]
    x_test, y_test = test
    target, bound = certifiable(library, model)
    plain = plain_layers(library, model)
    with torch.no_grad():
        gap = float(max((plain(x_test) - model(x_test)).abs().max(), (target(x_test) - model(x_test)).abs().max()))
    attack = dict(settings["attack"], bounds=tuple(settings["attack"]["bounds"]))
    times = inference_ms({"module": model, "plain": plain}, x_test, settings["inference_repeats"], device)
    return {
        "clean": companion.accuracy(model, x_test, y_test),
        "certified": certified(target, bound, x_test, y_test, settings["epsilons"]),
        "attacked": [
            lipschitz.robust_accuracy(target, x_test, y_test, epsilon=e, **attack) for e in settings["epsilons"]
        ],
        "lipschitz_bound": bound,
        "inference_ms": times["module"],
        "plain_inference_ms": times["plain"],
        "plain_max_logit_gap": gap,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    threads = torch.get_num_threads()
    return (
        f"{cpu}, {os.cpu_count()} cores, {threads} torch thread(s); Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )


def run(settings: dict, *, device: torch.device | str = "cpu", log: Callable[[str], None] = print) -> dict:
    """The whole comparison: choose each network's setting on the validation split, then train it with every
    seed on the whole training set and evaluate it on the test digits. deel-torchlip's rows are left out when it
    is not installed (``"deel_torchlip"`` is then None)."""
    device = torch.device(device)
    torchlip = import_deel()
    (x_train, y_train), test = companion.digits(seed=settings["data_seed"])
    x_train, y_train = x_train.to(device), y_train.to(device)
    test = tuple(t.to(device) for t in test)
    train_split, validation = companion.train_test_split(
        x_train, y_train, test_fraction=settings["validation_fraction"], seed=settings["validation_seed"]
    )
    networks = []
    for name, (library, _) in NETWORKS.items():
        if library == "deel" and torchlip is None:
            continue
        start = time.time()
        tried = choose(name, train_split, validation, settings, device)
        best = max(tried, key=lambda row: (row["score"], row["validation_clean"]))
        chosen = chosen_setting(best)
        seeds = []
        for seed in settings["seeds"]:
            model, seconds = train(name, (x_train, y_train), settings, chosen, seed=seed, device=device)
            seeds.append({"seed": seed, "train_cpu_seconds": seconds, **evaluate(name, model, test, settings, device)})
        parameters = sum(p.numel() for p in model.parameters())
        networks.append({"name": name, "parameters": parameters, "chosen": chosen, "grid": tried, "seeds": seeds})
        log(f"{name}: {parameters} parameters, chose {chosen}, {time.time() - start:.0f} s")
    return {
        "command": COMMAND,
        "machine": machine(),
        "device": str(device),
        "deel_torchlip": None if torchlip is None else getattr(torchlip, "__version__", "installed"),
        "settings": settings,
        "sizes": {"train": len(train_split[1]), "validation": len(validation[1]), "test": len(test[1])},
        "networks": networks,
    }


ABLATION_OUTPUT = ROOT / "companion" / "results" / "06_recipe_ablation.json"
#: The recipe's ablation: each variant changes one thing of the recipe (about the same parameter count); the
#: training setting is the one the comparison chose for the recipe.
ABLATION = {
    "recipe": {},
    "without centring": {"centred": False},
    "with a normalised lift (4 steps)": {"lift": True, "depth": 4},
    "square potentials (hidden 64, 7 steps)": {"hidden": 64, "depth": 7},
    "initial step h = 1": {"h": 1.0},
}


def ablation(settings: dict, chosen: dict, *, log: Callable[[str], None] = print) -> dict:
    """Every variant of :data:`ABLATION` trained with the recipe's chosen setting and every seed on the training
    digits; clean and certified test accuracy, parameters and training CPU seconds."""
    device = torch.device("cpu")
    (x_train, y_train), (x_test, y_test) = companion.digits(seed=settings["data_seed"])
    rows = []
    for name, change in ABLATION.items():
        variant = dict(settings, recipe=dict(settings["recipe"], **change))
        seeds = []
        for seed in settings["seeds"]:
            kind = ("recipe", "offset")
            model, seconds = train(name, (x_train, y_train), variant, chosen, seed=seed, device=device, kind=kind)
            bound = companion.network_lipschitz_bound(model)
            seeds.append(
                {
                    "seed": seed,
                    "clean": companion.accuracy(model, x_test, y_test),
                    "certified": certified(model, bound, x_test, y_test, settings["epsilons"]),
                    "train_cpu_seconds": seconds,
                }
            )
        parameters = sum(p.numel() for p in model.parameters())
        rows.append({"name": name, "change": change, "parameters": parameters, "seeds": seeds})
        log(f"{name}: {parameters} parameters, clean {[round(s['clean'], 3) for s in seeds]}")
    return {
        "command": f"{COMMAND} --ablation",
        "machine": machine(),
        "settings": settings,
        "chosen": chosen,
        "variants": rows,
    }


def _percent(values: list[float]) -> str:
    """Mean and half the range over seeds, in percent."""
    return _spread([100 * v for v in values], 1)


def _spread(values: list[float], digits: int) -> str:
    half = (max(values) - min(values)) / 2
    return f"{statistics.fmean(values):.{digits}f} ± {half:.{digits}f}"


def _setting(chosen: dict) -> str:
    names = {"lr": "lr", "alpha": "α", "margin": "margin", "offset": "offset", "temperature": "T"}
    return ", ".join(f"{names[key]} {value:g}" for key, value in chosen.items())


def markdown(table: dict) -> str:
    """The two tables of the benchmarks page: accuracies, then attack and costs (mean ± half the range)."""
    epsilons = table["settings"]["epsilons"]
    n_seeds = len(table["settings"]["seeds"])
    accuracy_rows, cost_rows = [], []
    for network in table["networks"]:
        seeds = network["seeds"]
        label = f"{network['name']} ({_setting(network['chosen'])})"
        per_radius = lambda key, i, seeds=seeds: _percent([s[key][i] for s in seeds])  # noqa: E731
        accuracy_rows.append(
            [
                label,
                f"{network['parameters']:,}",
                _percent([s["clean"] for s in seeds]),
                *[per_radius("certified", i) for i in range(len(epsilons))],
            ]
        )
        cost_rows.append(
            [
                label,
                *[per_radius("attacked", i) for i in range(len(epsilons))],
                _spread([s["train_cpu_seconds"] for s in seeds], 1),
                _spread([s["inference_ms"] for s in seeds], 2),
                _spread([s["plain_inference_ms"] for s in seeds], 2),
            ]
        )
    if table["deel_torchlip"] is None:
        missing = ["deel-torchlip", "not installed", INSTALL]
        accuracy_rows.append(missing + [""] * (len(accuracy_rows[0]) - 3))
        cost_rows.append(missing[:2] + [""] * (len(cost_rows[0]) - 2))
    radii = [f"certified {e:g}" for e in epsilons]
    accuracy = _table(["network (chosen setting)", "parameters", "clean %", *radii], accuracy_rows)
    costs = _table(
        [
            "network",
            *[f"APGD {e:g}" for e in epsilons],
            "train CPU s",
            "inference ms (module, eval)",
            "inference ms (export)",
        ],
        cost_rows,
    )
    sizes = table["sizes"]
    lead = (
        f"{n_seeds} seeds, mean ± half the range; {sizes['test']} test digits; every setting chosen on "
        f"{sizes['validation']} validation digits carved from the training digits. Stored in "
        f"`companion/results/06_lipschitz_peers.json` (`{table['command']}`); machine: {table['machine']}."
    )
    return f"{lead}\n\n{accuracy}\n\n{costs}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def write(table: dict, path: Path) -> None:
    """The table as JSON (the shipped one is read by ``companion.data.stored_results("06_lipschitz_peers")``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one setting, one seed, one epoch (seconds)")
    parser.add_argument("--output", type=Path, default=None, help=f"the JSON table (default {OUTPUT.name})")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--ablation", action="store_true", help=f"the recipe's ablation at its stored setting ({ABLATION_OUTPUT.name})"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    if args.ablation:
        settings = QUICK if args.quick else SETTINGS
        if args.quick:
            chosen = grid("offset", QUICK)[0]
        else:
            stored = json.loads(OUTPUT.read_text())
            chosen = next(n["chosen"] for n in stored["networks"] if n["name"] == "companion, recipe")
        table = ablation(settings, chosen)
        table["wall_seconds"] = round(time.time() - start, 1)
        output = args.output or (None if args.quick else ABLATION_OUTPUT)
        if output is not None:
            write(table, output)
            print(f"wrote {output} in {table['wall_seconds']} s")
        return
    table = run(QUICK if args.quick else SETTINGS, device=args.device)
    table["wall_seconds"] = round(time.time() - start, 1)
    print(markdown(table))
    output = args.output or (None if args.quick else OUTPUT)
    if output is None or (table["deel_torchlip"] is None and output == OUTPUT):
        print(f"not written: {'--quick without --output' if output is None else 'deel-torchlip is not installed'}")
        return
    write(table, output)
    print(f"wrote {output} in {table['wall_seconds']} s")


if __name__ == "__main__":
    main()
