"""One training loop for the whole book, and explicit seeding.

:func:`fit` trains any ``nn.Module`` on tensors (or a ``DataLoader``) with mini-batches, an optimiser and an
optional learning-rate schedule, shows a progress bar and returns a :class:`History`. It does not plot, and
it leaves the global random generators alone: the batches are shuffled by a local ``torch.Generator``.
:func:`seed_everything` is the one function that seeds the global generators, for notebooks that want it.
"""

from __future__ import annotations

import importlib.util
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import (
    call_model,
    check_choice,
    check_not_empty,
    check_positive,
    check_positive_int,
    check_tensor,
    explain_dtype_errors,
    import_optional,
)
from .checkpoints import check_checkpoint_path, data_generators, resume_run, run_settings, save_run
from .distributed import ONE_PROCESS, Processes, batches_of, processes, set_epoch

__all__ = ["History", "fit", "seed_everything", "accuracy", "default_device"]

_LOSSES = {"mse": F.mse_loss, "cross_entropy": F.cross_entropy}
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
_SCHEDULES = (None, "cosine", "onecycle", "step")
_PER_BATCH_SCHEDULES = ("cosine", "onecycle")  # stepped after every batch; "step" after every epoch


@dataclass
class History:
    """What :func:`fit` measured: one entry per epoch.

    Attributes
    ----------
    loss : list of float
        Mean training loss over each epoch's batches.
    val_loss : list of float
        Loss on the validation data after each epoch (empty without validation data).
    lr : list of float
        Learning rate at the end of each epoch.
    seconds : float
        Wall-clock time of the whole fit.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's **global** generators; return a fresh ``torch.Generator``.

    For notebooks and scripts that want every global draw (e.g. ``nn.Linear``'s initialisation) reproducible.
    Library code never calls it: :func:`fit` shuffles with a local generator and leaves these states alone.

    Raises
    ------
    TypeError
        If ``seed`` is not an int.
    """
    _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """``cuda`` when a GPU is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


Data = Sequence[torch.Tensor] | torch.utils.data.DataLoader


@contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[None]:
    """Run the block with ``model`` in training (or eval) mode; afterwards every submodule has its own mode back."""
    modes = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def _batch_loss(model: nn.Module, batch: Sequence[torch.Tensor], loss) -> torch.Tensor:
    """The loss on one batch; inputs of another dtype than the model's, or ``"mse"`` outputs and targets of
    different shapes (which PyTorch would broadcast against each other), are refused."""
    with explain_dtype_errors(model, batch[0], "inputs"):
        if callable(loss):
            return loss(model, *batch)
        output = model(batch[0])
    target = batch[1]
    if loss == "mse" and output.shape != target.shape:  # a tuple comparison: no cost per step
        raise ValueError(
            f"loss='mse' needs model outputs and targets of the same shape, got outputs {tuple(output.shape)} and "
            f"targets {tuple(target.shape)}, which PyTorch would broadcast to a wrong loss; reshape the targets "
            f"(e.g. targets.reshape({', '.join(['-1', *map(str, output.shape[1:])])})) or the model's output."
        )
    return _LOSSES[loss](output, target)


def _loader_batches(loader: torch.utils.data.DataLoader, device: torch.device) -> Iterable[list[torch.Tensor]]:
    for batch in loader:
        if isinstance(batch, torch.Tensor):
            batch = [batch]
        if not isinstance(batch, (tuple, list)) or not all(isinstance(t, torch.Tensor) for t in batch):
            raise TypeError(
                "a DataLoader given to fit must yield tensors or tuples of tensors such as (inputs, targets), "
                f"got {type(batch).__name__}."
            )
        yield [t.to(device) for t in batch]


def _tensor_batches(
    data: Sequence[torch.Tensor], batch_size: int, order: torch.Tensor | None
) -> Iterable[list[torch.Tensor]]:
    n = len(data[0])
    for start in range(0, n, batch_size):
        if order is None:
            yield [t[start : start + batch_size] for t in data]
        else:
            index = order[start : start + batch_size]
            yield [t[index] for t in data]


def _evaluate(
    model: nn.Module, data: Data, loss, batch_size: int, device: torch.device, group: Processes = ONE_PROCESS
) -> float:
    """The mean loss over ``data``, in eval mode (the model's modes are restored afterwards).

    Under torchrun each process evaluates its share of tensor data and the sums are reduced; a ``DataLoader`` is
    evaluated whole by every process."""
    total, count = 0.0, 0
    loader = isinstance(data, torch.utils.data.DataLoader)
    if loader:
        batches = _loader_batches(data, device)
    else:
        batches = _tensor_batches(group.shard_data(data), batch_size, None)
    # a loss that draws random numbers (an attack's random starts) must not change the training's draws
    devices = [device] if device.type == "cuda" else []
    with _mode(model, False), torch.no_grad(), torch.random.fork_rng(devices=devices):
        for batch in batches:
            total += float(_batch_loss(model, batch, loss)) * len(batch[0])
            count += len(batch[0])
    if not loader:
        total, count = group.total(total, count)
    if count == 0:
        raise ValueError("the validation data yielded no sample; pass at least one, or validation=None.")
    return total / count


def _check_data(data: Data, name: str) -> tuple[torch.Tensor, ...] | torch.utils.data.DataLoader:
    if isinstance(data, torch.utils.data.DataLoader):
        return data
    if isinstance(data, torch.Tensor) or not isinstance(data, (tuple, list)) or not data:
        raise TypeError(
            f"{name} must be a tuple of tensors such as (inputs, targets) or a torch.utils.data.DataLoader, "
            f"got {type(data).__name__}."
        )
    for i, t in enumerate(data):
        check_tensor(t, f"{name}[{i}]", min_ndim=1, floating=False)
    if len({len(t) for t in data}) != 1:
        raise ValueError(f"the tensors of {name} must have the same length, got {[len(t) for t in data]}.")
    check_not_empty(data[0], name)
    return tuple(data)


def _check_seed(seed: int) -> int:
    """``seed``, refused unless it is an int."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}.")
    return seed


def _make_optimizer(name: str, params: list[torch.Tensor], *, lr: float, weight_decay: float):
    """The optimiser ``name`` over ``params``; Adam/AdamW fused where every parameter's device supports it."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9)
    devices = {p.device.type for p in params}
    fused = devices <= {"cpu", "cuda"} and all(torch.is_floating_point(p) for p in params)
    return _OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _make_schedule(
    name: str | None, optimizer: torch.optim.Optimizer, *, lr: float, total_steps: int, step_size: int, gamma: float
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule ``name`` over ``total_steps`` optimiser steps (``None``: a constant rate)."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    return None


def _check_fit(
    model: nn.Module,
    train: Data,
    validation: Data | None,
    *,
    epochs: int,
    batch_size: int | None,
    lr: float,
    loss: str | Callable[..., torch.Tensor],
    optimizer: str,
    schedule: str | None,
    step_size: int,
    weight_decay: float,
    compile: bool,
    seed: int,
    checkpoint: str | os.PathLike | None,
    resume: bool,
    amp: bool,
) -> tuple[tuple[torch.Tensor, ...] | torch.utils.data.DataLoader, Data | None, int]:
    """Check :func:`fit`'s arguments; return the training and validation data checked, and the batch size."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}.")
    train = _check_data(train, "train")
    if validation is not None:
        validation = _check_data(validation, "validation")
    check_positive_int(epochs, "epochs")
    loader = isinstance(train, torch.utils.data.DataLoader)
    if loader and batch_size is not None:
        raise ValueError("batch_size is set by the DataLoader given as train; leave fit's batch_size out.")
    if loader and len(train) == 0:
        raise ValueError("the DataLoader given as train yields no batch.")
    if isinstance(validation, torch.utils.data.DataLoader) and len(validation) == 0:
        raise ValueError("the DataLoader given as validation yields no batch; pass one that does, or leave it out.")
    batch_size = 64 if batch_size is None else check_positive_int(batch_size, "batch_size")
    check_positive_int(step_size, "step_size")
    check_positive(lr, "lr")
    if not callable(loss):
        check_choice(loss, "loss", _LOSSES)
    check_choice(optimizer, "optimizer", _OPTIMIZERS)
    check_choice(schedule, "schedule", _SCHEDULES)
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
    for flag, name in ((compile, "compile"), (resume, "resume"), (amp, "amp")):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}.")
    if checkpoint is not None:
        check_checkpoint_path(checkpoint)
    if resume and checkpoint is None:
        raise ValueError("resume=True continues from a checkpoint: pass checkpoint=path as well.")
    _check_seed(seed)
    return train, validation, batch_size


def _trainable_parameters(model: nn.Module) -> list[torch.Tensor]:
    """The parameters of ``model`` that require a gradient; an error if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters.")
    return params


def _on_device(data: Data | None, device: torch.device) -> Data | None:
    """Tensor data moved to ``device``; a ``DataLoader`` (its batches are moved one by one) or ``None`` as given."""
    if data is None or isinstance(data, torch.utils.data.DataLoader):
        return data
    return tuple(t.to(device) for t in data)


def _steps_per_epoch(train: Data, batch_size: int) -> int:
    """Optimiser steps per epoch: the ``DataLoader``'s number of batches, or the tensors' length over ``batch_size``
    rounded up."""
    if isinstance(train, torch.utils.data.DataLoader):
        return len(train)
    return (len(train[0]) + batch_size - 1) // batch_size


def _epoch_batches(
    train: Data, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterable[list[torch.Tensor]]:
    """One epoch's batches: the ``DataLoader``'s own, or the tensors in an order drawn now from ``generator``."""
    if isinstance(train, torch.utils.data.DataLoader):
        return _loader_batches(train, device)
    order = torch.randperm(len(train[0]), generator=generator).to(device)
    return _tensor_batches(train, batch_size, order)


@dataclass
class _Steps:
    """The optimiser steps of :func:`fit`: what they train (``run`` is ``model`` or its compiled version), with
    which loss and optimiser, and what follows each step (clipping, ``after_step``, the schedule)."""

    run: nn.Module
    model: nn.Module
    loss: str | Callable[..., torch.Tensor]
    optimizer: torch.optim.Optimizer
    params: list[torch.Tensor]
    clip_grad_norm: float | None
    after_step: Callable[[nn.Module], None] | None
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    per_batch: bool
    group: Processes = ONE_PROCESS
    autocast: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None

    def _loss(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """The batch's loss (in autocast with ``amp``); on an empty shard a zero that still reaches every
        parameter, so that ``DistributedDataParallel`` reduces the other processes' gradients."""
        context = torch.autocast("cuda", dtype=self.autocast) if self.autocast is not None else nullcontext()
        with context:
            if len(batch[0]) == 0:
                return self.run(batch[0]).sum() * 0.0
            return _batch_loss(self.run, batch, self.loss)

    def batch(self, batch: Sequence[torch.Tensor], share: float = 1.0) -> torch.Tensor:
        """One optimiser step on ``batch`` (this process's ``share`` of the global batch); returns the batch's loss
        before the step."""
        value = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        scaled = value if share == 1.0 else value * share
        (scaled if self.scaler is None else self.scaler.scale(scaled)).backward()
        if self.clip_grad_norm is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.params, self.clip_grad_norm)
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.after_step is not None:
            self.after_step(self.model)
        if self.per_batch:
            self.schedule.step()
        return value

    @property
    def evaluated(self) -> nn.Module:
        """The module the validation loss is computed with: the training one, without ``DistributedDataParallel``."""
        return self.model if self.group.parallel else self.run

    def epoch(self, batches: Iterable[tuple[Sequence[torch.Tensor], float]]) -> float:
        """One step per batch (the model in training mode, its own modes back afterwards), then a per-epoch
        schedule's step; returns the mean loss over the epoch's samples (of every process)."""
        running, seen = 0.0, 0
        with _mode(self.run if self.group.parallel else self.model, True):
            for batch, share in batches:
                value = self.batch(batch, share)
                running += float(value.detach()) * len(batch[0])
                seen += len(batch[0])
        running, seen = self.group.total(running, seen)
        if seen == 0:
            raise ValueError("the training data yielded no sample in an epoch; pass data with at least one.")
        if self.schedule is not None and not self.per_batch:
            self.schedule.step()
        return running / seen


class _NoBar:
    """What fit loops over when it shows no progress bar: the epochs, and a ``set_postfix`` that does nothing."""

    def __init__(self, epochs: int, first: int = 0) -> None:
        self.epochs, self.first = epochs, first

    def __iter__(self):
        return iter(range(self.first, self.epochs))

    def set_postfix(self, **values) -> None:
        pass


def _progress_bar(epochs: int, progress: bool | None, first: int = 0):
    """A tqdm bar over the epochs from ``first``, or none: ``None`` shows one when tqdm is installed, ``True``
    requires it."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {progress!r} of type {type(progress).__name__}.")
    if progress is False or (progress is None and importlib.util.find_spec("tqdm") is None):
        return _NoBar(epochs, first)
    tqdm = import_optional("tqdm.auto", "progress", "companion.fit(progress=True) draws its bar with tqdm").tqdm
    return tqdm(range(first, epochs), desc="training", leave=False, initial=first, total=epochs)


def fit(
    model: nn.Module,
    train: Data,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int | None = None,
    loss: str | Callable[..., torch.Tensor] = "mse",
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    schedule: str | None = None,
    step_size: int = 30,
    gamma: float = 0.1,
    clip_grad_norm: float | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    validation: Data | None = None,
    seed: int = 0,
    compile: bool = False,
    progress: bool | None = None,
    distributed: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    amp: bool = False,
) -> History:
    r"""Train ``model`` by mini-batch gradient descent and return the :class:`History`.

    Parameters
    ----------
    model : nn.Module
        Trained in place (device and dtype of its parameters) in training mode, then left in the modes it had.
    train : tuple of torch.Tensor or DataLoader
        Tensors of equal length, e.g. ``(inputs, targets)``, shuffled into batches of ``batch_size`` each
        epoch; or a ``torch.utils.data.DataLoader`` yielding such tuples, which does its own batching and
        shuffling (with its own generator if it has one, else PyTorch's global one).
    epochs : int
        Passes over the training data.
    lr : float
        Learning rate (the peak rate for ``schedule="onecycle"``).
    batch_size : int, optional
        Mini-batch size for tensor data (default 64); not allowed with a ``DataLoader``, which has its own.
    loss : {"mse", "cross_entropy"} or callable
        A name applies that criterion to ``model(inputs)`` and ``targets``. A callable is called as
        ``loss(model, *batch)`` and returns a scalar, for losses such as unrolled rollouts.
    optimizer : {"adam", "adamw", "sgd"}
        The optimiser (``sgd`` uses momentum 0.9). Adam and AdamW run PyTorch's fused implementation where the
        parameters' device has one (CPU and CUDA): one kernel for all parameter tensors, about 5x faster per step
        than the loop over tensors for the small networks of this book, with the same update rule.
    weight_decay : float
        Weight decay, >= 0.
    schedule : {None, "cosine", "onecycle", "step"}
        Learning-rate schedule, stepped per batch (cosine, onecycle) or per ``step_size`` epochs
        with factor ``gamma`` (step).
    clip_grad_norm : float, optional
        Clip the gradient norm to this value before each step.
    after_step : callable, optional
        Called as ``after_step(model)`` after each optimiser step (e.g. to project parameters).
    validation : tuple of torch.Tensor or DataLoader, optional
        Data to evaluate the loss on after each epoch.
    seed : int
        Seeds the local ``torch.Generator`` that shuffles tensor data; the global generators of Python,
        NumPy and PyTorch are neither seeded nor drawn from.
    compile : bool
        Run the model through ``torch.compile`` (inductor) in the training steps. It pays for models whose
        steps are large enough to amortise the compilation (seconds to a minute); the API page gives
        measurements. Same results as eager to rounding.
    progress : bool, optional
        Show a ``tqdm`` progress bar: by default (``None``) when tqdm (the extra ``companion[progress]``) is
        installed; ``True`` requires it, ``False`` shows none. Under torchrun only process 0 shows it.
    distributed : bool, optional
        Train on the processes of a ``torchrun`` launch (:mod:`companion.distributed`): the model is wrapped in
        ``DistributedDataParallel``, ``batch_size`` is the global batch (each of N processes takes
        ``batch_size / N``, which must be whole), tensor data are sharded so that a step equals one process's
        step on the same global batch, losses are reduced over the processes. ``None`` (default): do so when
        ``torch.distributed`` is initialised with more than one process; ``True``: initialise it from torchrun's
        environment first (gloo for a CPU model, nccl for a CUDA model on ``cuda:LOCAL_RANK``); ``False``: this
        process alone. Every process must call ``fit`` with the same settings (checked).
    checkpoint : str or os.PathLike, optional
        Write the run's whole state there after every epoch (:mod:`companion.checkpoints`; process 0 only).
    resume : bool
        Continue the run the ``checkpoint`` file holds (it must exist and have been written with the same
        settings): the finished run equals one that was never stopped.
    amp : bool
        Mixed precision on CUDA: the training steps run in ``torch.autocast`` (bfloat16 where the GPU supports
        it, else float16 with a ``GradScaler``); parameters, optimiser, the validation loss and everything after
        ``fit`` (certificates, structure checks) stay in the model's dtype. Refused for a model on the CPU,
        where autocast emulates the half types and is slower than float32.

    Returns
    -------
    History
        Per-epoch training loss, validation loss and learning rate, and the total time.

    Raises
    ------
    TypeError, ValueError
        On a model that is not an ``nn.Module``, malformed or empty data, inputs not of the model's dtype, ``"mse"``
        outputs and targets of different shapes, ``batch_size`` with a ``DataLoader``, a bad count, rate or name.
    ModuleNotFoundError
        On ``progress=True`` without tqdm installed (the message names the extra that installs it).
    RuntimeError
        On ``distributed=True`` in a process that torchrun did not launch (the message says how to launch it).
    FileNotFoundError
        On ``resume=True`` without a checkpoint file.
    """
    train, validation, batch_size = _check_fit(
        model,
        train,
        validation,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        loss=loss,
        optimizer=optimizer,
        schedule=schedule,
        step_size=step_size,
        weight_decay=weight_decay,
        compile=compile,
        seed=seed,
        checkpoint=checkpoint,
        resume=resume,
        amp=amp,
    )
    generator = torch.Generator().manual_seed(seed)
    params = _trainable_parameters(model)
    device = params[0].device
    autocast = _autocast_dtype(amp, device)
    group = processes(distributed, device)
    sharded = not isinstance(train, torch.utils.data.DataLoader)
    settings = run_settings(locals(), group.world, train, model)
    group.check_same(**settings)
    train, validation = _on_device(train, device), _on_device(validation, device)
    train = group.share(train, batch_size, seed)
    opt = _make_optimizer(optimizer, params, lr=lr, weight_decay=weight_decay)
    total_steps = epochs * _steps_per_epoch(train, batch_size)
    sched = _make_schedule(schedule, opt, lr=lr, total_steps=total_steps, step_size=step_size, gamma=gamma)
    wrapped = group.wrap(model, device)
    steps = _Steps(
        torch.compile(wrapped) if compile else wrapped,
        model,
        loss,
        opt,
        params,
        clip_grad_norm,
        after_step,
        sched,
        per_batch=schedule in _PER_BATCH_SCHEDULES,
        group=group,
        autocast=autocast,
        scaler=torch.amp.GradScaler("cuda") if autocast == torch.float16 else None,
    )
    history = History()
    first = resume_run(checkpoint, settings, steps, [generator, *data_generators(train)], history) if resume else 0
    start = time.perf_counter() - history.seconds
    bar = _progress_bar(epochs, progress if group.main else False, first)
    for epoch in bar:
        set_epoch(train, epoch)
        history.loss.append(
            steps.epoch(batches_of(group, _epoch_batches(train, batch_size, generator, device), sharded))
        )
        history.lr.append(opt.param_groups[0]["lr"])
        if validation is not None:
            size = max(batch_size, 1024)
            history.val_loss.append(_evaluate(steps.evaluated, validation, loss, size, device, group))
        bar.set_postfix(loss=f"{history.loss[-1]:.3g}")
        history.seconds = time.perf_counter() - start
        if checkpoint is not None:
            save_run(checkpoint, epoch + 1, settings, steps, [generator, *data_generators(train)], history)
    history.seconds = time.perf_counter() - start
    return history


def _autocast_dtype(amp: bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``fit(..., amp=True)``: bfloat16 where the GPU has it, else float16; ``None`` off."""
    if not amp:
        return None
    if device.type != "cuda":
        raise ValueError(
            f"amp=True runs the training steps in CUDA autocast, and the model is on {device}; on the CPU autocast "
            "emulates the half types and trains slower than float32: leave amp out, or move the model to a GPU."
        )
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 4096) -> float:
    """Fraction of ``inputs`` whose arg-max prediction equals ``labels`` (in [0, 1]).

    The model is evaluated in eval mode and left in the modes it had.

    Raises
    ------
    TypeError, ValueError
        If ``inputs`` and ``labels`` differ in length, hold no sample, or the inputs have another dtype than the
        model's parameters.
    """
    check_tensor(inputs, "inputs", min_ndim=1, floating=False)
    check_tensor(labels, "labels", ndim=1, floating=False)
    if len(inputs) != len(labels):
        raise ValueError(f"inputs and labels must have the same length, got {len(inputs)} and {len(labels)}.")
    check_not_empty(inputs, "inputs")
    correct = 0
    with _mode(model, False), torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            out = call_model(model, inputs[start : start + batch_size])
            correct += int((out.argmax(-1) == labels[start : start + batch_size]).sum())
    return correct / len(inputs)
