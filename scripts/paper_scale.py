"""Chapter 6's CIFAR-10 experiment at the paper's scale (Celledoni et al. 2023, section 5), on one GPU or many.

``robustness`` trains each (model, margin) pair with the paper's schedule, then measures on process 0 the robust
accuracy under an L2 PGD attack at the paper's nine radii, its AUC and, for the constrained models, the certified
accuracy, and writes ``OUT/table.md`` (our rows beside the published ones) and ``OUT/results.json``:

- models: ``unconstrained``, ``nonexpansive``, ``switching`` (:func:`companion.lipschitz.cifar_resnet`);
- training: SGD lr 0.01, momentum 0.9, StepLR(30, 0.1), 100 epochs, global batch 128, the paper's multi-class hinge
  loss ``sum_{i != y} max(0, m - (f_y - f_i))`` averaged over the batch (10 times ``companion.hinge_loss``, which
  averages over the classes too, as the authors' ``multiClassHinge``), with RandomCrop(32, 4) + horizontal flip
  drawn per batch; a non-finite loss restarts the pair from scratch with the learning rate over 10 (as the paper
  says; the authors' "Switch flexible" notebook divides it by 5);
- each pair checkpoints every epoch to ``OUT/<model>_<margin>.ckpt``: a killed job, launched again with the same
  command, resumes where it stopped (finished pairs are neither trained nor evaluated again);
- evaluation: the first ``--eval-images`` test images, PGD with foolbox's ``L2PGD(steps=10)`` settings;
- several jobs may share OUT (say one pair per GPU): ``table.md`` gathers every pair evaluated there.

Examples::

    torchrun --standalone --nproc_per_node=8 scripts/paper_scale.py robustness --data-root data --out runs/c10
    python scripts/paper_scale.py fake-data /tmp/fake --train-size 256 --test-size 64 --seed 0
    python scripts/paper_scale.py robustness --data-root /tmp/fake --out /tmp/smoke --epochs 1 --eval-images 16

Devices: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU (gloo). The data are read from local files only
(:func:`companion.lipschitz.load_cifar10` says how to get them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn import functional as F

from companion import fit
from companion.lipschitz import (
    CIFAR10_REGIMES,
    PAPER_EPSILONS,
    PUBLISHED_CIFAR10,
    certified_accuracy,
    cifar_resnet,
    hinge_loss,
    load_cifar10,
    network_lipschitz_bound,
    random_crop_flip,
    robust_accuracy,
    robustness_auc,
    write_fake_cifar10,
)

#: The attack: foolbox 3.3.3's L2PGD(steps=10) (relative step 0.025, cross-entropy, clipped to [0, 1]), except its
#: random start: foolbox starts from a uniform point of the ball, companion's pgd_l2 (restarts=0) from delta = 0.
ATTACK = dict(attack="pgd", steps=10, relative_step=0.025, restarts=0, loss="cross_entropy", bounds=(0.0, 1.0))
ATTACK_NOTE = (
    "L2 PGD with foolbox 3.3.3 L2PGD(steps=10)'s settings (10 steps of 0.025 epsilon along the normalised gradient "
    "of the cross-entropy, projected on the ball and on [0, 1]); foolbox starts from a uniform random point of the "
    "ball, we start at delta = 0 (companion.lipschitz.pgd_l2, restarts=0), and we count a point as fooled if any "
    "iterate fools it."
)
PAPER = "Celledoni et al. (2023), SIAM J. Sci. Comput. 45(6); result files of davidemurari/StructuredNeuralNetworks"
MAX_RESTARTS = 3


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite (on any process)."""


# -- processes -----------------------------------------------------------------------------------------------------


def start_processes() -> tuple[int, int, torch.device]:
    """``(rank, world, device)``: a process group from torchrun's environment when it names more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def anywhere(flag: bool, device: torch.device) -> bool:
    """``flag`` on any process (one all-reduce under torchrun), so that every process decides the same."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    tensor = torch.tensor([float(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


# -- training ------------------------------------------------------------------------------------------------------


def paper_loss(margin: float):
    """The authors' multi-class hinge loss on augmented images; raises :class:`NonFiniteLoss` on every process
    when the logits or the loss are not finite (the hinge of NaN logits is 0, so the logits are checked too)."""
    hinge_loss(margin)  # the same checks; that loss over the classes, times their number, is the authors' sum

    def augmented_hinge(model, images, labels):
        logits = model(random_crop_flip(images))
        value = logits.shape[1] * F.multi_margin_loss(logits, labels, margin=margin)
        finite = bool(torch.isfinite(logits.detach()).all() & torch.isfinite(value.detach()))
        if anywhere(not finite, value.device):
            raise NonFiniteLoss(f"the logits or the hinge loss are not finite (loss {float(value.detach())})")
        return value

    return augmented_hinge


def run_name(model: str, margin: float) -> str:
    return f"{model}_{margin:g}"


def _write_json(path: Path, value) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # jobs sharing OUT never share a temporary
    temporary.write_text(json.dumps(value, indent=1))
    temporary.replace(path)


def build(model: str, args, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(args.seed)  # the same network on every process and after every restart
    return cifar_resnet(model, channels=args.channels).to(device)


def _refuse_other_settings(path: Path, saved: dict, now: dict) -> None:
    """A finished pair in OUT is reused only for the same settings; otherwise say so and stop."""
    different = sorted(key for key in set(saved) | set(now) if saved.get(key) != now.get(key))
    if different:
        changes = ", ".join(f"{key} {saved.get(key)!r} there, {now.get(key)!r} now" for key in different)
        raise SystemExit(
            f"{path} holds a finished run with other settings ({changes}): use another --out, or delete that "
            "pair's files in it to train again."
        )


def train_pair(model: str, margin: float, args, data, rank: int, device: torch.device) -> dict:
    """Train one pair (resuming its checkpoint, restarting at lr / 10 on a non-finite loss); return its record."""
    name = run_name(model, margin)
    checkpoint, record_path, weights = (args.out / f"{name}{suffix}" for suffix in (".ckpt", ".train.json", ".pt"))
    record = json.loads(record_path.read_text()) if record_path.exists() else {"lr": args.lr, "restarts": 0}
    settings = {key: getattr(args, key) for key in ("epochs", "batch_size", "amp", "seed")}
    settings.update(channels=list(args.channels), train_images=len(data[0]), first_lr=args.lr)
    if record.get("done") and weights.exists():
        _refuse_other_settings(record_path, record.get("settings", {}), settings)
        return record
    while True:
        network = build(model, args, device)
        torch.manual_seed(args.seed + 1 + rank)  # each process draws its own crops and flips
        try:
            history = fit(
                network,
                data,
                epochs=args.epochs,
                lr=record["lr"],
                batch_size=args.batch_size,
                loss=paper_loss(margin),
                optimizer="sgd",
                schedule="step",
                step_size=30,
                gamma=0.1,
                seed=args.seed,
                distributed=None,
                checkpoint=checkpoint,
                resume=checkpoint.exists(),
                amp=args.amp,
            )
            break
        except NonFiniteLoss as error:
            record = {"lr": record["lr"] / 10, "restarts": record["restarts"] + 1}
            if rank == 0:
                print(f"{name}: {error}; restarting with lr {record['lr']:g}", flush=True)
                checkpoint.unlink(missing_ok=True)
                _write_json(record_path, record)
            barrier()
            if record["restarts"] > MAX_RESTARTS:
                raise
    record.update(done=True, loss=history.loss, train_seconds=history.seconds, settings=settings)
    record.update(devices=_devices(dist.get_world_size() if dist.is_initialized() else 1, device))
    if rank == 0:
        torch.save(network.state_dict(), weights)
        _write_json(record_path, record)
        print(f"{name}: trained in {history.seconds:.0f} s, last loss {history.loss[-1]:.4g}", flush=True)
    return record


# -- evaluation ----------------------------------------------------------------------------------------------------


def in_chunks(measure, images, labels, size: int) -> float:
    """The fraction ``measure`` gives, over the data in chunks of ``size`` (weighted by the chunks' lengths)."""
    total = 0.0
    for start in range(0, len(images), size):
        part = slice(start, start + size)
        total += measure(images[part], labels[part]) * len(images[part])
    return total / len(images)


def evaluate(model: str, network, images, labels, args) -> dict:
    """Robust accuracy at the paper's radii, its AUC, and the certified accuracy of the constrained models."""
    network.eval()
    attacked = [
        in_chunks(
            lambda x, y, e=e: robust_accuracy(network, x, y, epsilon=e, **ATTACK), images, labels, args.eval_batch
        )
        for e in PAPER_EPSILONS
    ]
    result = {"robust_accuracy": attacked, "auc": robustness_auc(PAPER_EPSILONS, attacked)}
    if model != "unconstrained":
        bound = network_lipschitz_bound(network)
        result["lipschitz_bound"] = bound
        result["certified_accuracy"] = [
            in_chunks(
                lambda x, y, e=e: certified_accuracy(network, x, y, lipschitz=bound, epsilon=e),
                images,
                labels,
                args.eval_batch,
            )
            for e in PAPER_EPSILONS
        ]
    return result


# -- the report ----------------------------------------------------------------------------------------------------


def _row(model: str, margin: float, source: str, values, auc: str, extra: str = "") -> str:
    cells = " | ".join(f"{v:.1f}" for v in values)
    return f"| {model} | {margin:g} | {source} | {cells} | {auc} | {extra} |"


def _comparable(settings: dict) -> bool:
    """The paper's setting: 100 epochs on the 50,000 training images, evaluated on 1024 test images."""
    return settings["epochs"] == 100 and settings["train_images"] == 50000 and settings["eval_images"] == 1024


def _radius(epsilon: float) -> str:
    for k in (8, 16, 36):
        if math.isclose(epsilon, k / 255):
            return f"{k}/255"
    return f"ε={epsilon:g}" if epsilon == 0 else f"{epsilon:g}"


def table(report: dict) -> str:
    """The markdown table: per pair our attacked (and certified) rows and the published row."""
    header = "| model | margin | source | " + " | ".join(_radius(e) for e in PAPER_EPSILONS) + " | AUC | run |"
    lines = [
        "# CIFAR-10 robust accuracy (%) at the paper's scale",
        "",
        f"- this job: {report['processes']} process(es) on {report['devices']}; wall time "
        f"{report['wall_seconds']:.0f} s; the rows give each pair's own training time and devices",
        "- training: the paper's SGD (momentum 0.9), StepLR(30, 0.1), global batch as in results.json",
        f"- attack: {ATTACK_NOTE}",
        "- certified: fraction of the images whose certified radius (companion.lipschitz.certified_accuracy with "
        "network_lipschitz_bound) exceeds epsilon",
        f"- published: {PAPER}",
    ]
    if not all(_comparable(run["settings"]) for run in report["runs"]):
        lines.append("- rows marked (smoke) are not the paper's data, epochs or evaluation size: not comparable")
    lines += ["", header, "|" + "---|" * (len(PAPER_EPSILONS) + 5)]
    for run in report["runs"]:
        model, margin, settings = run["model"], run["margin"], run["settings"]
        mark = "" if _comparable(settings) else " (smoke)"
        extra = (
            f"epochs {settings['epochs']}, {settings['train_images']} images, lr {run['lr']:g}, "
            f"{run['train_seconds']:.0f} s on {run['devices']}, {settings['eval_images']} test images"
        )
        percent = [100 * v for v in run["robust_accuracy"]]
        lines.append(_row(model, margin, f"ours, attacked{mark}", percent, f"{run['auc']:.3f}", extra))
        if "certified_accuracy" in run:
            certified = [100 * v for v in run["certified_accuracy"]]
            auc = f"{robustness_auc(PAPER_EPSILONS, run['certified_accuracy']):.3f}"
            lines.append(
                _row(model, margin, f"ours, certified{mark}", certified, auc, f"L = {run['lipschitz_bound']:.4g}")
            )
        published = PUBLISHED_CIFAR10.get((model, margin))
        if published is not None:
            lines.append(_row(model, margin, "published", published.accuracy, f"{published.auc:.3f}"))
    return "\n".join(lines) + "\n"


# -- the commands --------------------------------------------------------------------------------------------------


def _load(args) -> tuple:
    """The training and evaluation data (the first ``--train-size`` / ``--test-size`` images when given)."""
    train_images, train_labels = load_cifar10(args.data_root, train=True)
    test_images, test_labels = load_cifar10(args.data_root, train=False)
    train = (train_images[: args.train_size], train_labels[: args.train_size])
    count = min(args.eval_images, len(test_images) if args.test_size is None else args.test_size)
    return train, (test_images[:count], test_labels[:count])


def _devices(world: int, device: torch.device) -> str:
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    return f"{world} x CPU ({torch.get_num_threads()} threads)"


def evaluate_pairs(records: dict, test, args, world: int, device: torch.device) -> None:
    """Evaluate each pair not evaluated yet and write ``OUT/<pair>.result.json`` (process 0 only)."""
    for (model, margin), record in records.items():
        name = run_name(model, margin)
        path = args.out / f"{name}.result.json"
        if path.exists():
            saved = json.loads(path.read_text()).get("settings", {})
            _refuse_other_settings(path, saved, {**record["settings"], "eval_images": len(test[0])})
            print(f"{name}: evaluated before ({path.name}; delete it to evaluate again)", flush=True)
            continue
        network = cifar_resnet(model, channels=args.channels).to(device)
        weights = torch.load(args.out / f"{name}.pt", map_location=device, weights_only=True)
        network.load_state_dict(weights)
        result = evaluate(model, network, test[0].to(device), test[1].to(device), args)
        run = {"model": model, "margin": margin, **record, **result}
        run["settings"] = {**record["settings"], "eval_images": len(test[0])}
        run.setdefault("devices", _devices(world, device))
        _write_json(path, run)
        print(f"{name}: AUC {result['auc']:.3f}", flush=True)


def write_report(args, world: int, device: torch.device, seconds: float) -> None:
    """``OUT/table.md`` and ``OUT/results.json`` from every pair evaluated in OUT (jobs may share it)."""
    order = {model: k for k, model in enumerate(CIFAR10_REGIMES)}
    runs = [json.loads(path.read_text()) for path in args.out.glob("*.result.json")]
    runs.sort(key=lambda run: (order[run["model"]], run["margin"]))
    report = {
        "processes": world,
        "devices": _devices(world, device),
        "wall_seconds": seconds,
        "epsilons": list(PAPER_EPSILONS),
        "attack": ATTACK_NOTE,
        "published_source": PAPER,
        "published": {run_name(*key): row._asdict() for key, row in PUBLISHED_CIFAR10.items()},
        "runs": runs,
    }
    _write_json(args.out / "results.json", report)
    (args.out / "table.md").write_text(table(report))
    print(f"wrote {args.out / 'table.md'} and {args.out / 'results.json'} ({len(runs)} pairs)", flush=True)


def robustness(args) -> int:
    start = time.perf_counter()
    try:
        train, test = _load(args)  # before any process group: a missing folder stops every process at once
    except (FileNotFoundError, ValueError) as error:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"paper_scale.py: {error}", file=sys.stderr)
        return 2
    rank, world, device = start_processes()
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = [(model, margin) for model in args.models for margin in args.margins]
    records = {pair: train_pair(*pair, args, train, rank, device) for pair in pairs}
    barrier()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    if rank == 0:
        evaluate_pairs(records, test, args, world, device)
        write_report(args, world, device, time.perf_counter() - start)
    return 0


def fake_data(args) -> int:
    folder = write_fake_cifar10(args.folder, train_size=args.train_size, test_size=args.test_size, seed=args.seed)
    print(f"wrote fake CIFAR-10 ({args.train_size} training, {args.test_size} test images) to {folder}")
    return 0


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CIFAR10_REGIMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose models among {', '.join(CIFAR10_REGIMES)}, got {text!r}")
    return names


def _numbers(kind):
    def parse(text: str) -> list:
        try:
            values = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from error
        if not values or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
        return values

    return parse


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = main.add_subparsers(dest="command", required=True)
    run = commands.add_parser("robustness", help="train and evaluate (run it under torchrun for several GPUs)")
    run.add_argument("--data-root", type=Path, required=True, help="the folder that holds cifar-10-batches-py")
    run.add_argument("--out", type=Path, required=True, help="checkpoints, weights, table.md and results.json")
    run.add_argument("--models", type=_names, default=list(CIFAR10_REGIMES))
    run.add_argument("--margins", type=_numbers(float), default=[0.07, 0.15, 0.3])
    run.add_argument("--epochs", type=int, default=100)
    run.add_argument("--batch-size", type=int, default=128, help="the global batch (divided among the processes)")
    run.add_argument("--lr", type=float, default=0.01)
    run.add_argument("--eval-images", type=int, default=1024, help="the first N test images")
    run.add_argument("--eval-batch", type=int, default=256, help="images per attack batch")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    run.add_argument("--train-size", type=int, default=None, help="only the first N training images (smoke runs)")
    run.add_argument("--test-size", type=int, default=None, help="only the first N test images (smoke runs)")
    run.add_argument("--channels", type=_numbers(int), default=[32, 64, 128], help=argparse.SUPPRESS)  # tests only
    run.set_defaults(handler=robustness)
    fake = commands.add_parser("fake-data", help="write a fake CIFAR-10 (random images and labels) for smoke runs")
    fake.add_argument("folder", type=Path)
    fake.add_argument("--train-size", type=int, required=True)
    fake.add_argument("--test-size", type=int, required=True)
    fake.add_argument("--seed", type=int, default=0)
    fake.set_defaults(handler=fake_data)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "channels", None) is not None:
        args.channels = tuple(args.channels)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
