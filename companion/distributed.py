""":func:`companion.training.fit` on several processes: torchrun, ``DistributedDataParallel``, sharded batches.

A script launched by ``torchrun --nproc_per_node=N script.py`` calls :func:`~companion.training.fit` as it would in
one process. ``fit`` then wraps the model in ``DistributedDataParallel`` (which averages the gradients of the N
processes after each backward pass) and gives each process a shard of every batch: ``batch_size`` stays the
**global** batch, so N processes take ``batch_size / N`` samples each and, with tensor data, one step on N
processes is the step one process takes on the whole batch (to the rounding of the gradient average).

How the batches are shared (tensor data): every process draws the same permutation from ``fit``'s seeded
generator, cuts it into the global batches one process would use, and process ``k`` takes samples ``k, k + N,
k + 2N, ...`` of each batch, the layout of ``torch.utils.data.DistributedSampler``. Each process scales its mean
loss by its share of the batch, so that the averaged gradient is the gradient of the mean over the global batch,
the last, shorter batch included. A ``DataLoader`` is re-made with a ``DistributedSampler`` (its epoch set every
epoch) unless it has one; its order then differs from a single process's.

Only process 0 shows progress and writes checkpoints; the training and validation losses are reduced over the
processes, so every process returns the same :class:`~companion.training.History`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Processes", "processes", "TORCHRUN_VARIABLES"]

#: The environment torchrun gives each process; ``fit(..., distributed=True)`` initialises from it.
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Processes:
    """The processes one :func:`~companion.training.fit` call trains on: ``world`` of them, this one ``rank``."""

    world: int = 1
    rank: int = 0

    @property
    def parallel(self) -> bool:
        """True with more than one process (the model is then wrapped and the batches sharded)."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """True in process 0, the one that shows progress and writes checkpoints."""
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (parameters and buffers broadcast from process 0), or as is."""
        if not self.parallel:
            return model
        if device.type == "cpu" and dist.get_backend() == "nccl":
            raise ValueError(
                "the process group uses nccl, which moves CUDA tensors only, and the model is on the CPU; "
                "move the model to cuda:LOCAL_RANK, or initialise the group with backend='gloo'."
            )
        ids = [device] if device.type == "cuda" else None
        # find_unused_parameters: a model whose forward pass leaves some parameters out (a branch, a frozen head)
        # trains as it does in one process; the cost is one walk of the autograd graph per step.
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def shard(self, batch: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        """This process's part of a global batch, and the factor that makes its mean loss a share of the batch's."""
        if not self.parallel:
            return list(batch), 1.0
        part = [t[self.rank :: self.world] for t in batch]
        return part, len(part[0]) * self.world / len(batch[0])

    def shard_data(self, data: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """This process's share of a whole data set (validation: each process evaluates its own samples)."""
        return data if not self.parallel else tuple(t[self.rank :: self.world] for t in data)

    def total(self, *values: float) -> list[float]:
        """Each value summed over the processes (float64, one all-reduce)."""
        if not self.parallel:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value):
        """``value`` of every process, in rank order (picklable objects)."""
        if not self.parallel:
            return [value]
        values = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def check_same(self, **settings) -> None:
        """Refuse settings that differ between the processes (a different seed would shard different orders)."""
        if not self.parallel:
            return
        seen = self.gather(settings)
        different = sorted(key for key in settings if any(other[key] != settings[key] for other in seen))
        if different:
            raise ValueError(
                "fit under torchrun needs the same settings in every process; these differ: "
                + ", ".join(f"{key} ({[other[key] for other in seen]})" for key in different)
            )

    def loader(self, loader: torch.utils.data.DataLoader, seed: int) -> torch.utils.data.DataLoader:
        """``loader`` with a ``DistributedSampler`` and ``batch_size / world`` per process (or as is, if it has one)."""
        sampler_type = torch.utils.data.DistributedSampler
        if not self.parallel or isinstance(loader.sampler, sampler_type):
            return loader
        if loader.batch_size is None:
            raise ValueError(
                "fit under torchrun shards a DataLoader by its batch_size, and this one has a batch_sampler; "
                "give it a torch.utils.data.DistributedSampler yourself, or pass a DataLoader with batch_size."
            )
        per_process = self._per_process(loader.batch_size)
        shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
        sampler = sampler_type(loader.dataset, num_replicas=self.world, rank=self.rank, shuffle=shuffle, seed=seed)
        return torch.utils.data.DataLoader(
            loader.dataset,
            batch_size=per_process,
            sampler=sampler,
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            drop_last=loader.drop_last,
        )

    def share(self, train, batch_size: int, seed: int):
        """Training data ready to share: a global ``batch_size`` checked for tensors, a ``DataLoader`` re-made."""
        if isinstance(train, torch.utils.data.DataLoader):
            return self.loader(train, seed)
        if self.parallel:
            self._per_process(batch_size)
        return train

    def _per_process(self, batch_size: int) -> int:
        if batch_size % self.world:
            raise ValueError(
                f"batch_size is the global batch under torchrun and must be divisible by the {self.world} "
                f"processes, got {batch_size}; use a multiple of {self.world}."
            )
        return batch_size // self.world


#: This process alone: what fit trains on without torchrun.
ONE_PROCESS = Processes()


def set_epoch(data, epoch: int) -> None:
    """Tell a ``DistributedSampler`` which epoch starts (it shuffles by seed + epoch)."""
    sampler = getattr(data, "sampler", None)
    if isinstance(sampler, torch.utils.data.DistributedSampler):
        sampler.set_epoch(epoch)


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _initialise(device: torch.device) -> None:
    """The default process group from torchrun's environment: nccl for a CUDA model, gloo otherwise."""
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"fit(..., distributed=True) initialises torch.distributed from torchrun's environment, and "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: launch the script with "
            "`torchrun --nproc_per_node=N script.py`, or call torch.distributed.init_process_group yourself."
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def processes(distributed: bool | None, device: torch.device) -> Processes:
    """The processes a fit trains on.

    ``None``: all the processes of an initialised process group (one when there is none); ``True``: the same,
    initialising the group from torchrun's environment first if needed; ``False``: this process alone.
    """
    if distributed is not None and not isinstance(distributed, bool):
        raise TypeError(f"distributed must be True, False or None, got {distributed!r}.")
    if distributed is False:
        return Processes()
    available = dist.is_available()
    if distributed and not available:
        raise RuntimeError("fit(..., distributed=True) needs torch.distributed, which this PyTorch build lacks.")
    if distributed and not dist.is_initialized():
        _initialise(device)
    if not (available and dist.is_initialized()):
        return Processes()
    return Processes(dist.get_world_size(), dist.get_rank())


def batches_of(processes: Processes, batches: Iterable[Sequence[torch.Tensor]], sharded: bool):
    """Each batch as ``(this process's part, loss factor)``: tensor batches sharded, a sampler's batches as they are."""
    for batch in batches:
        yield processes.shard(batch) if sharded else (list(batch), 1.0)
