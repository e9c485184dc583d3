"""A small fit, run by tests/test_distributed.py under torchrun or in a subprocess.

    fit_run.py OUT [--checkpoint PATH] [--resume] [--die-after-steps K]

Writes OUT (process 0): the trained weights, the history, and the errors the refusals raised (under torchrun).
``--die-after-steps K`` ends the process abruptly (``os._exit``, as a kill would) at the K-th step.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch import nn

import companion

N_SAMPLES, BATCH, EPOCHS = 65, 16, 3  # the last batch of each epoch has one sample: one process gets none


def data(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(N_SAMPLES, 5, generator=generator)
    return x, torch.sin(x[:, :2]) + 0.1 * x[:, 2:4]


class Net(nn.Module):
    """A small MLP with a head its forward pass does not use (DDP must cope with unused parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return self.body(x)


def model() -> nn.Module:
    torch.manual_seed(1)
    return Net()


DIE_AFTER = [None]  # --die-after-steps, outside the loss: a resumed run must pass the same loss
STEPS = [0]


def noisy_mse(net, x, y):
    """MSE on inputs with noise from the global generator (an augmentation: a resumed run must redraw it alike)."""
    STEPS[0] += 1
    if DIE_AFTER[0] is not None and STEPS[0] > DIE_AFTER[0]:
        os._exit(17)
    noise = 0.01 * torch.randn(x.shape)
    return nn.functional.mse_loss(net(x + noise), y)


def train(args) -> tuple[nn.Module, companion.History]:
    net = model()
    torch.manual_seed(100 + (dist.get_rank() if dist.is_initialized() else 0))  # each process its own noise
    history = companion.fit(
        net,
        data(),
        epochs=EPOCHS,
        lr=3e-2,
        batch_size=BATCH,
        loss=noisy_mse if args.noise else "mse",
        schedule="onecycle",
        validation=data(1),
        seed=5,
        progress=False,
        checkpoint=args.checkpoint,
        resume=args.resume,
        distributed=True if "LOCAL_RANK" in os.environ else None,
    )
    return net, history


def refusals() -> dict:
    """The errors of wrong calls under torchrun, by name."""
    errors = {}
    cases = {
        "indivisible_batch": dict(batch_size=15, seed=5),
        "different_seeds": dict(batch_size=BATCH, seed=dist.get_rank()),
    }
    for name, options in cases.items():
        try:
            companion.fit(model(), data(), epochs=1, progress=False, **options)
        except ValueError as error:
            errors[name] = str(error)
    return errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--checkpoint")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--noise", action="store_true")
    parser.add_argument("--die-after-steps", type=int)
    args = parser.parse_args()
    DIE_AFTER[0] = args.die_after_steps
    torchrun = "LOCAL_RANK" in os.environ
    net, history = train(args)
    errors = refusals() if torchrun else {}
    rank = dist.get_rank() if torchrun else 0
    if rank == 0:
        torch.save({"weights": net.state_dict(), "history": vars(history), "errors": errors}, args.out)
    if torchrun:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
