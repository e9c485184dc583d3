"""Checkpoints of :func:`companion.training.fit`: everything a run needs to go on after a kill as if never stopped.

``fit(..., checkpoint=path)`` writes, after every epoch (process 0 only, to a temporary file then renamed, so a kill
during the write leaves the previous checkpoint whole): the model's ``state_dict``, the optimiser's, the schedule's
and the gradient scaler's, ``fit``'s shuffling generator, the random states of every process (PyTorch's CPU and
CUDA generators, NumPy's and Python's: augmentations drawn from them resume where they were), the completed epochs,
the :class:`~companion.training.History` so far and the settings of the run. ``fit(..., resume=True)`` loads it,
refuses it if the settings differ (another learning rate or number of processes would not continue the same run),
and trains the remaining epochs: the finished run equals an uninterrupted one. The file is read with
``torch.load(weights_only=True)``: it holds tensors, numbers, strings and lists only.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "FORMAT",
    "random_states",
    "restore_random_states",
    "save_checkpoint",
    "load_checkpoint",
    "save_run",
    "resume_run",
]

#: Version of the checkpoint's layout; a file of another version is refused.
FORMAT = 1


def random_states() -> dict:
    """This process's random states: PyTorch's (CPU and every CUDA device), NumPy's and Python's."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "python": [version, list(state), gauss],
    }


def restore_random_states(states: dict) -> None:
    """Set the random states :func:`random_states` returned."""
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))


def _describe(function) -> str | None:
    """A callable by name and the numbers and strings it closes over (``hinge_loss(0.3)`` is not ``hinge_loss(1)``)."""
    if function is None or isinstance(function, str):
        return function
    cells = getattr(function, "__closure__", None) or ()
    captured = [cell.cell_contents for cell in cells if isinstance(cell.cell_contents, (int, float, str, bool))]
    name = getattr(function, "__qualname__", type(function).__qualname__)
    code = getattr(function, "__code__", None)
    if code is not None:  # two lambdas differ by where they are written
        name = f"{name} ({Path(code.co_filename).name}:{code.co_firstlineno})"
    return f"{name}{tuple(captured)}" if captured else name


def _fingerprint(tensors) -> str:
    """SHA-256 of the tensors' dtypes, shapes and bytes: a resumed run must train on the same data."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())  # the buffer, not a copy
    return digest.hexdigest()


def check_checkpoint_path(checkpoint) -> Path:
    """The checkpoint path, checked before any training: a file path whose folder exists or can be made."""
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path (str or os.PathLike), got {type(checkpoint).__name__}.")
    path = Path(checkpoint).expanduser()
    if str(checkpoint) == "" or path.is_dir():
        raise ValueError(f"checkpoint must name a file, got {str(checkpoint)!r}, a directory; e.g. 'run.ckpt'.")
    parent = next((folder for folder in (path.parent, *path.parent.parents) if folder.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"checkpoint {str(checkpoint)!r} lies under {parent}, which is a file, not a folder.")
    return path


def run_settings(arguments: dict, world: int, train, model) -> dict:
    """What a checkpoint must share with the run that resumes it, and every process of a run with the others: the
    options of ``fit``, the model's description (its ``repr``: sizes and settings), the loss and ``after_step`` by
    name and captured numbers, the number of processes, and the training data (tensors: their SHA-256 when a
    checkpoint is written; a ``DataLoader``: its dataset's type and length)."""
    names = ("epochs", "lr", "batch_size", "optimizer", "weight_decay", "schedule", "step_size", "gamma", "seed")
    settings = {name: arguments[name] for name in names}
    settings.update(clip_grad_norm=arguments["clip_grad_norm"], amp=arguments["amp"], processes=world)
    settings.update(loss=_describe(arguments["loss"]), after_step=_describe(arguments["after_step"]), model=repr(model))
    if isinstance(train, torch.utils.data.DataLoader):
        dataset = train.dataset
        size = len(dataset) if hasattr(dataset, "__len__") else len(train)
        settings["data"] = f"{type(dataset).__qualname__} of {size}"
    elif arguments["checkpoint"] is not None:
        settings["data"] = _fingerprint(train)
    else:
        settings["data"] = f"{len(train[0])} samples"
    return settings


def data_generators(train) -> list:
    """The generators a ``DataLoader`` shuffles with (its own, its sampler's), whose states a checkpoint keeps."""
    if not isinstance(train, torch.utils.data.DataLoader):
        return []
    found = [getattr(train, "generator", None), getattr(train.sampler, "generator", None)]
    return [g for i, g in enumerate(found) if isinstance(g, torch.Generator) and g not in found[:i]]


def _state_dict(thing) -> dict | None:
    return None if thing is None else thing.state_dict()


def save_checkpoint(path: Path, *, epoch: int, settings: dict, run, generators, history, random: list) -> None:
    """Write the state after ``epoch`` completed epochs to ``path`` (through a temporary file, renamed)."""
    state = {
        "format": FORMAT,
        "epoch": epoch,
        "settings": settings,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": _state_dict(run.schedule),
        "scaler": _state_dict(run.scaler),
        "generators": [g.get_state() for g in generators],
        "history": asdict(history),
        "random": random,
    }
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path, settings: dict) -> dict:
    """The checkpoint at ``path``, refused unless it was written by a run with these ``settings``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"fit(..., resume=True) found no checkpoint at {path}; train without resume first (it writes one "
            "every epoch), or pass resume=path.exists() to start a run that resumes when it can."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: name it (not PyTorch's advice on weights_only)
        raise ValueError(
            f"{path} is not a checkpoint written by companion.fit (it does not load as one: "
            f"{type(error).__name__}); delete it, or pass another path."
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a checkpoint of companion.fit's format {FORMAT}.")
    saved = state["settings"]
    different = sorted(key for key in set(saved) | set(settings) if saved.get(key) != settings.get(key))
    if different:
        raise ValueError(
            f"the checkpoint {path} was written by a run with other settings, so resuming would not continue it: "
            + ", ".join(f"{key} was {saved.get(key)!r}, now {settings.get(key)!r}" for key in different)
        )
    return state


def save_run(path, epoch: int, settings: dict, steps, generators: list, history) -> None:
    """Write a checkpoint of a fit after ``epoch`` epochs (``steps``: its model, optimiser, schedule, scaler and
    processes); every process hands its random states to process 0, which writes."""
    states = steps.group.gather(random_states())
    if steps.group.main:
        save_checkpoint(
            Path(path), epoch=epoch, settings=settings, run=steps, generators=generators, history=history, random=states
        )


def resume_run(path, settings: dict, steps, generators: list, history) -> int:
    """Load the checkpoint at ``path`` into the run; return the number of epochs it completed."""
    state = load_checkpoint(Path(path), settings)
    steps.model.load_state_dict(state["model"])
    steps.optimizer.load_state_dict(state["optimizer"])
    if steps.schedule is not None:
        steps.schedule.load_state_dict(state["schedule"])
    if steps.scaler is not None:
        steps.scaler.load_state_dict(state["scaler"])
    for generator, saved in zip(generators, state["generators"], strict=True):
        generator.set_state(saved)
    for name, value in state["history"].items():
        setattr(history, name, value)
    restore_random_states(state["random"][steps.group.rank])
    return int(state["epoch"])
