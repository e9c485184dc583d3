r"""Method-of-lines networks for heat, Fisher and advection: construction, training and the shipped weights.

Two trainers: :func:`~companion.pde.fitting.train_network` (in :mod:`companion.pde.fitting`: Levenberg-Marquardt on local patches,
the one that learns from PyTorch's random initialisation in minutes) and :func:`train_curriculum` (Adam on the
unrolled loss through :func:`companion.training.fit`, the paper's recipe). The weights in
``companion/pde/weights/*.pt`` are made by ``scripts/train_pde.py`` (``make train-pde``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .._checks import check_choice, check_positive, check_positive_int
from ..training import History, fit
from .data import default_time_step
from .networks import ConvRHS, MethodOfLinesNetwork, exact_cnn, unrolled_loss
from .stencils import check_time_step

__all__ = [
    "ARCHITECTURES",
    "PRETRAINED",
    "AUTHORS_RELATIVE_ERRORS",
    "make_network",
    "train_curriculum",
    "save_network",
    "load_network",
    "pretrained_network",
]

#: The paper's minimal networks: 102 parameters (heat, advection) and 511 (Fisher), 5x5 kernels.
ARCHITECTURES = {
    "heat": dict(hidden=2, activation="relu", output_bias=False),
    "advection": dict(hidden=2, activation="relu", output_bias=False),
    "fisher": dict(hidden=10, activation="relu2", output_bias=True),
}
_INITS = ("random", "exact")

#: The shipped weights (``companion/pde/weights/{equation}_{variant}.pt``), by equation: ``random`` (the headline:
#: trained from PyTorch's initialisation on the broadband data of :func:`~companion.pde.families.broadband`),
#: ``smooth-k3`` (the same trainer on sin-cos initial conditions with k <= 3 only: accurate there, not beyond),
#: ``exact`` (from the exact CNN with weight noise), ``noisy-data-1e-3`` and ``noisy-data-1e-2`` (data with
#: Gaussian noise), ``injected`` (clean data, the authors' noise injection); every one but ``random`` is trained
#: on the sin-cos k <= 3 data; advection: ``plain`` and ``projected`` Euler.
PRETRAINED = {
    "heat": ("random", "smooth-k3", "exact", "noisy-data-1e-3", "noisy-data-1e-2", "injected"),
    "fisher": ("random", "smooth-k3", "exact", "noisy-data-1e-3", "noisy-data-1e-2", "injected"),
    "advection": ("plain", "projected"),
}


#: The authors' own networks: rE(j) at j = 1, 10, 20, 39 averaged over 30 test initial conditions of their
#: finite-element data (100x100, k = 5..8), read from the saved test curves in their repository
#: (PredictingPixelData, branch ``plotting-and-multi-resolution``, ``saved_test_results``).
AUTHORS_RELATIVE_ERRORS = {
    "steps": (1, 10, 20, 39),
    ("heat", "clean"): (1.29e-4, 1.28e-3, 2.57e-3, 5.59e-3),
    ("heat", "injected"): (1.31e-3, 8.37e-3, 2.10e-2, 1.13e-1),
    ("fisher", "clean"): (3.91e-4, 2.73e-3, 1.02e-2, 1.11e-1),
    ("fisher", "injected"): (4.62e-4, 6.97e-3, 4.85e-2, 6.69e-1),
    ("advection", "projected"): (3.80e-4, 3.66e-3, 7.03e-3, 1.30e-2),
    ("advection", "projected, injected"): (7.92e-4, 7.77e-3, 1.52e-2, 2.86e-2),
    ("advection", "plain"): (1.36e-3, 1.15e-2, 2.39e-2, 6.93e-2),
    ("advection", "plain, injected"): (9.88e-4, 7.80e-3, 1.51e-2, 3.04e-2),
}


def make_network(
    equation: str,
    *,
    size: int = 64,
    alpha: float = 0.01,
    dt: float | None = None,
    substeps: int = 3,
    init: str = "random",
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    projected: bool = False,
    velocity: tuple[float, float] = (1.0, 1.0),
    fft: bool = False,
) -> MethodOfLinesNetwork:
    r"""A :class:`~companion.pde.networks.MethodOfLinesNetwork` with a :class:`~companion.pde.networks.ConvRHS` of the paper's size.

    The field's fixed scale is :math:`\alpha/h^2` (heat, Fisher) or :math:`1/h` (advection), so trained kernels
    are in the units of the stencils; the field is built for ``size x size`` grids and refuses others.
    ``init="random"`` is PyTorch's default initialisation (seeded, the global generator left untouched);
    ``init="exact"`` starts from :func:`~companion.pde.networks.exact_cnn` and adds Gaussian noise of relative size
    ``noise`` (times each tensor's largest entry) to every weight.

    Parameters
    ----------
    equation : {"heat", "fisher", "advection"}
        102 parameters for heat and advection, 511 for Fisher.
    size : int
        Grid size :math:`d` (:math:`h = 1/d`).
    alpha : float
        Diffusion coefficient (heat, Fisher; it sets the scale and the default step).
    dt, substeps : float, int
        Step of one call (default :func:`~companion.pde.data.default_time_step`) and Euler sub-steps.
    init, noise, seed : str, float, int
        Initialisation, weight noise for ``init="exact"``, seed.
    dtype : torch.dtype
        Parameter dtype.
    projected : bool
        Norm-preserving projected Euler sub-steps.
    velocity : pair of float
        Advection velocity of the exact CNN (``init="exact"``).
    fft : bool
        Evaluate the field's circular convolutions by FFT (see :class:`~companion.pde.networks.ConvRHS`).

    Raises
    ------
    TypeError, ValueError
        On an unknown equation or initialisation, negative noise, or a non-positive size, alpha or dt.
    """
    check_choice(equation, "equation", ARCHITECTURES)
    check_choice(init, "init", _INITS)
    check_positive_int(size, "size")
    check_positive(alpha, "alpha")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}.")
    h = 1.0 / size
    dt = default_time_step(equation, size=size, alpha=alpha) if dt is None else check_positive(dt, "dt")
    check_time_step(  # a learned field is not the central one: only an exact CNN under plain Euler is refused
        equation,
        dt,
        h=h,
        alpha=alpha,
        velocity=velocity,
        substeps=check_positive_int(substeps, "substeps"),
        projected=projected is True,
        allow_unstable=init != "exact",
    )
    scale = alpha / h**2 if equation in ("heat", "fisher") else 1.0 / h
    arch = ARCHITECTURES[equation]
    if init == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            field = ConvRHS(
                arch["hidden"],
                activation=arch["activation"],
                output_bias=arch["output_bias"],
                scale=scale,
                grid_size=size,
                fft=fft,
            )
    else:
        field = exact_cnn(
            equation, h=h, alpha=alpha, velocity=velocity, hidden=arch["hidden"], scale=scale, grid_size=size
        )
        field._configure(
            activations=field.activations, boundary=field.boundary, scale=field.scale, grid_size=size, fft=fft
        )
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in field.parameters():
                p.add_(noise * p.abs().max() * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return MethodOfLinesNetwork(field.to(dtype), dt=dt, substeps=substeps, projected=projected)


def train_curriculum(
    model: MethodOfLinesNetwork,
    trajectories: torch.Tensor,
    *,
    stages: tuple[int, ...] = (3, 4, 5),
    epochs: int = 10,
    lr: float = 5e-3,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> list[History]:
    r"""The paper's recipe: for each stage ``t`` in ``stages`` call :func:`companion.training.fit` with the
    unrolled loss over the first ``t`` steps, Adam with cosine decay from ``lr / 2**stage_index``.

    First-order and slow from a random start (thousands of steps); :func:`train_network` is the fast trainer.

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
        raise ValueError(
            f"trajectories must have shape (N, T + 1, d, d) with T >= {max(stages)}, got {tuple(trajectories.shape)}."
        )
    histories = []
    for i, steps in enumerate(stages):
        data = (trajectories[:, 0], trajectories[:, 1 : steps + 1])
        histories.append(
            fit(
                model,
                data,
                loss=unrolled_loss,
                epochs=epochs,
                lr=lr / 2**i,
                batch_size=batch_size,
                schedule="cosine",
                seed=seed + i,
                progress=progress,
            )
        )
    return histories


def save_network(
    path: str | Path,
    model: MethodOfLinesNetwork,
    *,
    equation: str,
    size: int,
    alpha: float,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save the field's weights and settings with what is needed to rebuild the network, and ``metadata``.

    Raises
    ------
    TypeError, ValueError
        On a model that is not a :class:`~companion.pde.networks.MethodOfLinesNetwork` with a
        :class:`~companion.pde.networks.ConvRHS` field, an unknown equation, settings that do not match the model (its
        architecture, grid size or scale), or metadata that are not plain Python values.
    """
    if not isinstance(model, MethodOfLinesNetwork) or not isinstance(model.field, ConvRHS):
        raise TypeError(f"model must be a MethodOfLinesNetwork with a ConvRHS field, got {type(model).__name__}.")
    check_choice(equation, "equation", ARCHITECTURES)
    check_positive_int(size, "size")
    check_positive(alpha, "alpha")
    field, arch = model.field, ARCHITECTURES[equation]
    if field.hidden != arch["hidden"] or (field.second.bias is not None) != arch["output_bias"]:
        raise ValueError(
            f"the model's field ({field.hidden} channels) is not the {equation} architecture "
            f"({arch['hidden']} channels); pass the equation the network was made for."
        )
    if field.grid_size is not None and field.grid_size != size:
        raise ValueError(f"size={size}, but the model is built for a {field.grid_size}x{field.grid_size} grid.")
    scale = alpha * size**2 if equation in ("heat", "fisher") else float(size)
    if abs(field.scale - scale) > 1e-9 * scale:
        raise ValueError(
            f"the model's scale {field.scale:g} does not match {equation} with size={size}, "
            f"alpha={alpha} (expected {scale:g}); pass the settings the network was made with."
        )
    try:
        json.dumps(metadata or {})
    except TypeError as error:
        raise TypeError(f"metadata must hold plain Python values (numbers, strings, lists, dicts): {error}.") from None
    config = dict(
        equation=equation, size=size, alpha=alpha, dt=model.dt, substeps=model.substeps, projected=model.projected
    )
    state = {
        k: (v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v) for k, v in model.field.state_dict().items()
    }
    torch.save({"config": config, "state_dict": state, "metadata": metadata or {}}, path)


def load_network(
    path: str | Path, *, dtype: torch.dtype = torch.float32, fft: bool = False
) -> tuple[MethodOfLinesNetwork, dict]:
    """Rebuild a network saved by :func:`save_network`; returns ``(network, metadata)`` (the metadata include
    the configuration: equation, size, alpha, dt, substeps, projected). ``fft=True`` evaluates the field's
    circular convolutions by FFT (same numbers to rounding, faster on a CPU in float64)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    c = blob["config"]
    model = make_network(
        c["equation"],
        size=c["size"],
        alpha=c["alpha"],
        dt=c["dt"],
        substeps=c["substeps"],
        projected=c.get("projected", False),
        dtype=dtype,
    )
    model.field.load_state_dict(
        {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in blob["state_dict"].items()}
    )
    field = model.field
    field._configure(
        activations=field.activations, boundary=field.boundary, scale=field.scale, grid_size=field.grid_size, fft=fft
    )
    return model, dict(blob["metadata"], **c)


def pretrained_network(
    equation: str, *, variant: str = "random", dtype: torch.dtype = torch.float32, fft: bool = False
):
    """The shipped weights ``companion/pde/weights/{equation}_{variant}.pt``; returns ``(network, metadata)``.

    The variants are listed in :data:`PRETRAINED`; the metadata record how each was trained (seed, data,
    time, device) and what it measured on held-out initial conditions.

    Raises
    ------
    ValueError
        On an unknown equation or variant; FileNotFoundError if the weights were not shipped.
    """
    check_choice(equation, "equation", PRETRAINED)
    check_choice(variant, "variant", PRETRAINED[equation])
    path = resources.files("companion.pde") / "weights" / f"{equation}_{variant}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped weights at {path}; run `make train-pde` to make them.")
    return load_network(path, dtype=dtype, fft=fft)
