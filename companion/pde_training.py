r"""Method-of-lines networks for heat and Fisher: construction, curriculum training with :func:`companion.training.fit`,
and the small shipped weights (``companion/weights/*.pt``, made by ``scripts/train_pde.py``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ._checks import check_choice, check_positive_int
from .pde import ConvRHS, MethodOfLinesNetwork, exact_cnn, unrolled_loss
from .pde_data import default_time_step
from .training import History, fit

__all__ = ["ARCHITECTURES", "make_network", "train_curriculum", "save_network", "load_network", "pretrained_network"]

#: The paper's minimal networks: 102 parameters (heat, advection) and 511 (Fisher), 5x5 kernels.
ARCHITECTURES = {
    "heat": dict(hidden=2, activation="relu", output_bias=False),
    "advection": dict(hidden=2, activation="relu", output_bias=False),
    "fisher": dict(hidden=10, activation="relu2", output_bias=True),
}
_INITS = ("random", "exact")


def make_network(
    equation: str, *, size: int = 64, alpha: float = 0.01, dt: float | None = None, substeps: int = 3,
    init: str = "random", noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float32,
    projected: bool = False,
) -> MethodOfLinesNetwork:
    r"""A :class:`~companion.pde.MethodOfLinesNetwork` with a :class:`~companion.pde.ConvRHS` of the paper's size.

    The field's fixed scale is :math:`\alpha/h^2` (heat, Fisher) or :math:`1/h` (advection), so trained kernels
    are in the units of the stencils. ``init="random"`` is PyTorch's default initialisation (seeded);
    ``init="exact"`` starts from :func:`~companion.pde.exact_cnn` and adds Gaussian noise of relative size
    ``noise`` (times each tensor's largest entry) to every weight.

    Raises
    ------
    ValueError
        On an unknown equation or initialisation, or negative noise.
    """
    check_choice(equation, "equation", ARCHITECTURES)
    check_choice(init, "init", _INITS)
    check_positive_int(size, "size")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")
    h = 1.0 / size
    dt = default_time_step(equation, size=size, alpha=alpha) if dt is None else dt
    scale = alpha / h**2 if equation in ("heat", "fisher") else 1.0 / h
    arch = ARCHITECTURES[equation]
    generator = torch.Generator().manual_seed(seed)
    if init == "random":
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            field = ConvRHS(arch["hidden"], activation=arch["activation"], output_bias=arch["output_bias"], scale=scale)
    else:
        field = exact_cnn(equation, h=h, alpha=alpha, hidden=arch["hidden"], scale=scale)
        with torch.no_grad():
            for p in field.parameters():
                p.add_(noise * p.abs().max() * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return MethodOfLinesNetwork(field.to(dtype), dt=dt, substeps=substeps, projected=projected)


def train_curriculum(
    model: MethodOfLinesNetwork, trajectories: torch.Tensor, *, stages: tuple[int, ...] = (3, 4, 5), epochs: int = 10,
    lr: float = 5e-3, batch_size: int = 32, seed: int = 0, progress: bool = False,
) -> list[History]:
    r"""Curriculum training (science.md 3.3): for each stage ``t`` in ``stages`` call :func:`companion.training.fit` with the
    unrolled loss over the first ``t`` steps, Adam with cosine decay from ``lr / 2**stage_index``.

    Parameters
    ----------
    trajectories : torch.Tensor
        Shape ``(N, T + 1, d, d)`` with ``T >= max(stages)``.

    Raises
    ------
    ValueError
        If the trajectories are too short for the stages.
    """
    if trajectories.ndim != 4 or trajectories.shape[1] <= max(stages):
        raise ValueError(f"trajectories must have shape (N, T + 1, d, d) with T >= {max(stages)}, "
                         f"got {tuple(trajectories.shape)}.")
    histories = []
    for i, steps in enumerate(stages):
        data = (trajectories[:, 0], trajectories[:, 1 : steps + 1])
        histories.append(fit(model, data, loss=unrolled_loss, epochs=epochs, lr=lr / 2**i, batch_size=batch_size,
                             schedule="cosine", seed=seed + i, progress=progress))
    return histories


def save_network(path: str | Path, model: MethodOfLinesNetwork, *, equation: str, size: int, alpha: float,
                 metadata: dict[str, Any] | None = None) -> None:
    """Save the field's weights with what is needed to rebuild the network, and free-form ``metadata``."""
    config = dict(equation=equation, size=size, alpha=alpha, dt=model.dt, substeps=model.substeps)
    state = {k: v.detach().cpu().clone() for k, v in model.field.state_dict().items()}
    torch.save({"config": config, "state_dict": state, "metadata": metadata or {}}, path)


def load_network(path: str | Path, *, dtype: torch.dtype = torch.float32) -> tuple[MethodOfLinesNetwork, dict]:
    """Rebuild a network saved by :func:`save_network`; returns ``(network, metadata)``."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    c = blob["config"]
    model = make_network(c["equation"], size=c["size"], alpha=c["alpha"], dt=c["dt"], substeps=c["substeps"],
                         dtype=dtype)
    model.field.load_state_dict({k: v.to(dtype) for k, v in blob["state_dict"].items()})
    return model, dict(blob["metadata"], **c)


def pretrained_network(equation: str, *, init: str = "random", dtype: torch.dtype = torch.float32):
    """The shipped weights ``companion/weights/{equation}_{init}.pt``; returns ``(network, metadata)``.

    Raises
    ------
    ValueError
        On an unknown equation or initialisation; FileNotFoundError if the weights were not shipped.
    """
    check_choice(equation, "equation", ("heat", "fisher"))
    check_choice(init, "init", _INITS)
    path = resources.files("companion") / "weights" / f"{equation}_{init}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped weights at {path}; run `python scripts/train_pde.py` to make them.")
    return load_network(path, dtype=dtype)
