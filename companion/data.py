r"""Datasets made on the fly (no downloads): every generator takes an explicit ``seed``.

Chapters add their own generators here (the SIR flow map, PDE trajectories, digits), each returning
tensors in the dtype asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from importlib import resources

import torch

from ._checks import check_positive, check_positive_int, check_tensor
from .integrators import RK4, integrate

__all__ = [
    "swiss_roll",
    "train_test_split",
    "sir_flow_map",
    "pendulum_energy",
    "pendulum_trajectory",
    "pendulum_flow_map",
    "digits",
    "stored_results",
]


def swiss_roll(
    n: int,
    *,
    noise: float = 0.05,
    turns: float = 1.5,
    embed_dim: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Two interleaved spirals ("Swiss roll") for binary classification, embedded in :math:`\mathbb R^{d}`.

    Class :math:`k\in\{0,1\}` lies on :math:`r(t)\,(\cos(t + k\pi), \sin(t + k\pi))` with
    :math:`r(t) = t/(2\pi\,\text{turns})`, :math:`t` uniform on :math:`[\pi/2, 2\pi\,\text{turns}]`,
    plus Gaussian noise. The 2-D points :math:`(x_1, x_2)` are embedded as
    :math:`(x_1, 0, x_2, 0)` for ``embed_dim=4`` (so :math:`q = (x_1, 0)`, :math:`p = (x_2, 0)`), or
    zero-padded to ``embed_dim`` in general.

    Parameters
    ----------
    n : int
        Number of points (half in each class, up to one).
    noise : float
        Standard deviation of the noise, >= 0.
    turns : float
        Turns of each spiral, > 0.
    embed_dim : int
        Dimension of the returned points, >= 2.
    seed : int
        Seed of the generator.
    dtype : torch.dtype
        Floating dtype of the points.

    Returns
    -------
    tuple of torch.Tensor
        Points of shape ``(n, embed_dim)`` and integer labels of shape ``(n,)``.

    Raises
    ------
    ValueError
        On ``n < 2``, negative noise, ``turns <= 0`` or ``embed_dim < 2``.
    """
    check_positive_int(n, "n")
    if n < 2:
        raise ValueError(f"n must be >= 2 to have both classes, got {n}.")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")
    if turns <= 0:
        raise ValueError(f"turns must be > 0, got {turns}.")
    check_positive_int(embed_dim, "embed_dim")
    if embed_dim < 2:
        raise ValueError(f"embed_dim must be >= 2, got {embed_dim}.")
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    t = math.pi / 2 + (2 * math.pi * turns - math.pi / 2) * torch.rand(n, generator=gen, dtype=torch.float64)
    r = t / (2 * math.pi * turns)
    angle = t + math.pi * labels
    plane = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    plane = plane + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    points = torch.zeros(n, embed_dim, dtype=torch.float64)
    if embed_dim == 4:
        points[:, 0], points[:, 2] = plane[:, 0], plane[:, 1]
    else:
        points[:, :2] = plane
    return points.to(dtype), labels


def train_test_split(
    *tensors: torch.Tensor, test_fraction: float = 0.5, seed: int = 0
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Shuffle tensors of equal length together and split them into a training and a test part.

    Returns
    -------
    tuple
        ``(train_tensors, test_tensors)``, each a tuple in the order given.

    Raises
    ------
    ValueError
        If no tensor is given, the lengths differ or ``test_fraction`` is not in (0, 1).
    """
    if not tensors:
        raise ValueError("give at least one tensor to split.")
    for i, t in enumerate(tensors):
        check_tensor(t, f"tensors[{i}]", min_ndim=1, floating=False)
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"all tensors must have the same length, got {[len(t) for t in tensors]}.")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(test_fraction * n))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    return tuple(t[train_idx] for t in tensors), tuple(t[test_idx] for t in tensors)


def _sir_field(r0: float):
    def field(x: torch.Tensor) -> torch.Tensor:
        s, i = x[..., 0], x[..., 1]
        infection = r0 * s * i
        return torch.stack([-infection, infection - i, i], dim=-1)

    return field


def _check_sir(n: int, *, T: float, r0: float, n_steps: int) -> tuple[float, float]:
    """Check the sample count and step count of a SIR flow map; return ``T`` and ``r0`` checked positive."""
    check_positive_int(n, "n")
    check_positive_int(n_steps, "n_steps")
    return check_positive(T, "T"), check_positive(r0, "r0")


def _sir_pairs(
    x0: torch.Tensor, *, T: float, r0: float, n_steps: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 starts ``x0`` and their images under the SIR time-``T`` flow map (``n_steps`` RK4 steps), in
    ``dtype``."""
    xT = integrate(_sir_field(r0), x0, h=T / n_steps, n_steps=n_steps, tableau=RK4)[-1]
    return x0.to(dtype), xT.to(dtype)


def sir_flow_map(
    n: int = 1000,
    *,
    T: float = 1.0,
    r0: float = 1.0,
    n_steps: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Samples of the time-``T`` flow map of the SIR model :math:`\dot S=-R_0SI,\ \dot I=R_0SI-I,\ \dot R=I`.

    Initial conditions are uniform on the simplex :math:`\{x\ge0,\ \sum_i x_i = 1\}` (normalised
    exponential samples, i.e. Dirichlet(1, 1, 1)). The truth is computed in float64 with ``n_steps``
    RK4 steps (default :math:`h = 10^{-3}`, error :math:`\approx 10^{-13}`); RK4 keeps the mass
    :math:`S+I+R` exactly, so the targets sum to 1 up to rounding.

    Parameters
    ----------
    n : int
        Number of samples.
    T : float
        Time of the flow map, > 0 (the authors use 1).
    r0 : float
        Basic reproduction number :math:`R_0`, > 0 (the authors use 1).
    n_steps : int
        RK4 steps used for the truth.
    seed : int
        Seed of the generator.
    dtype : torch.dtype
        Floating dtype of the returned tensors; float64 by default, because the targets are reference solutions
        (accurate to about 1e-13) that float32 would round to about 1e-7.

    Returns
    -------
    tuple of torch.Tensor
        ``(x0, xT)``, each of shape ``(n, 3)``.

    Raises
    ------
    TypeError, ValueError
        On a bad ``n``, ``T``, ``r0`` or ``n_steps``.

    References
    ----------
    E. Celledoni et al., *Dynamical systems' based neural networks*, SIAM J. Sci. Comput. (2023), §4.
    """
    T, r0 = _check_sir(n, T=T, r0=r0, n_steps=n_steps)
    gen = torch.Generator().manual_seed(seed)
    e = -torch.log(torch.rand(n, 3, generator=gen, dtype=torch.float64).clamp_min(1e-300))
    return _sir_pairs(e / e.sum(-1, keepdim=True), T=T, r0=r0, n_steps=n_steps, dtype=dtype)


def pendulum_energy(x: torch.Tensor) -> torch.Tensor:
    r"""Energy :math:`H(q,p) = \tfrac12p^2 - \cos q` of the pendulum, shape ``x.shape[:-1]``.

    Raises
    ------
    TypeError, ValueError
        If ``x`` is not a floating tensor with last dimension 2.
    """
    check_tensor(x, "x", min_ndim=1, last_dim=2)
    return 0.5 * x[..., 1] ** 2 - torch.cos(x[..., 0])


def _pendulum_field(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[..., 1], -torch.sin(x[..., 0])], dim=-1)


def _reference_trajectory(
    field: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, *, dt: float, n_steps: int, substeps: int
) -> torch.Tensor:
    """``x0`` and ``n_steps`` states of the flow of ``field`` ``dt`` apart, by ``substeps`` RK4 steps per ``dt`` in
    float64; shape ``(n_steps + 1, *x0.shape)``, dtype of ``x0``."""
    x = x0.to(torch.float64)
    states = [x]
    for _ in range(n_steps):
        x = integrate(field, x, h=dt / substeps, n_steps=substeps, tableau=RK4)[-1]
        states.append(x)
    return torch.stack(states).to(x0.dtype)


def pendulum_trajectory(x0: torch.Tensor, *, dt: float, n_steps: int, substeps: int = 20) -> torch.Tensor:
    r"""Reference trajectory :math:`x_0, \Phi_{dt}(x_0), \dots, \Phi_{dt}^{n}(x_0)` of the pendulum :math:`\dot q = p,\ \dot p = -\sin q`.

    Computed with ``substeps`` RK4 steps per ``dt`` in float64 (error about :math:`(dt/\text{substeps})^4` per unit time).

    Parameters
    ----------
    x0 : torch.Tensor
        Initial states :math:`(q, p)`, shape ``(..., 2)``.
    dt : float
        Time between stored states, > 0.
    n_steps : int
        Number of stored steps.
    substeps : int
        RK4 steps per ``dt``.

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps + 1, *x0.shape)``, dtype of ``x0``.

    Raises
    ------
    TypeError, ValueError
        On a bad ``x0``, ``dt``, ``n_steps`` or ``substeps``.
    """
    check_tensor(x0, "x0", min_ndim=1, last_dim=2)
    dt = check_positive(dt, "dt")
    check_positive_int(n_steps, "n_steps")
    check_positive_int(substeps, "substeps")
    return _reference_trajectory(_pendulum_field, x0, dt=dt, n_steps=n_steps, substeps=substeps)


def pendulum_flow_map(
    n: int = 1000,
    *,
    dt: float = 0.1,
    q_max: float = 2.5,
    p_max: float = 2.0,
    substeps: int = 20,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Samples of the time-``dt`` flow map of the pendulum, a Hamiltonian system with :math:`H = \tfrac12p^2-\cos q`.

    Initial states are uniform on :math:`[-q_{\max}, q_{\max}]\times[-p_{\max}, p_{\max}]`; the
    targets come from :func:`pendulum_trajectory` (RK4 in float64).

    Parameters
    ----------
    n : int
        Number of samples.
    dt : float
        Time of the flow map, > 0.
    q_max, p_max : float
        Half-widths of the sampling box, > 0.
    substeps : int
        RK4 steps per ``dt`` for the truth.
    seed : int
        Seed of the generator.
    dtype : torch.dtype
        Floating dtype of the returned tensors; float64 by default, because the targets are reference solutions
        (accurate to about 1e-13) that float32 would round to about 1e-7.

    Returns
    -------
    tuple of torch.Tensor
        ``(x0, x1)``, each of shape ``(n, 2)`` with columns :math:`(q, p)`.

    Raises
    ------
    TypeError, ValueError
        On a bad ``n``, ``dt``, box or ``substeps``.
    """
    check_positive_int(n, "n")
    q_max, p_max = check_positive(q_max, "q_max"), check_positive(p_max, "p_max")
    gen = torch.Generator().manual_seed(seed)
    box = torch.tensor([q_max, p_max], dtype=torch.float64)
    x0 = (2 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 1) * box
    x1 = pendulum_trajectory(x0, dt=dt, n_steps=1, substeps=substeps)[-1]
    return x0.to(dtype), x1.to(dtype)


def digits(
    *, test_fraction: float = 0.3, image: bool = False, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    r"""scikit-learn's shipped 8x8 handwritten digits (1797 images, 10 classes), pixels scaled to [0, 1].

    No download: the data ship with scikit-learn (UCI optical recognition of handwritten digits,
    test part). Intensities 0..16 are divided by 16.

    Parameters
    ----------
    test_fraction : float
        Fraction of the images held out, in (0, 1).
    image : bool
        Return images of shape ``(n, 1, 8, 8)`` instead of vectors of shape ``(n, 64)``.
    seed : int
        Seed of the shuffled split (:func:`train_test_split`).
    dtype : torch.dtype
        Floating dtype of the pixels.

    Returns
    -------
    tuple
        ``((x_train, y_train), (x_test, y_test))``; labels are ``int64`` of shape ``(n,)``.

    Raises
    ------
    ValueError
        If ``test_fraction`` is not in (0, 1).
    """
    from ._checks import import_optional

    datasets = import_optional("sklearn.datasets", "data", "companion.digits loads its images with scikit-learn")
    load_digits = datasets.load_digits

    bunch = load_digits()
    pixels = torch.as_tensor(bunch.data, dtype=torch.float64) / 16.0
    if image:
        pixels = pixels.reshape(-1, 1, 8, 8)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    train, test = train_test_split(pixels.to(dtype), labels, test_fraction=test_fraction, seed=seed)
    return train, test


# -- chapter 5 (prescribed properties): the authors' SIR sampling and the ABC flow --


def sir_flow_map_normalised(
    n: int = 1000,
    *,
    T: float = 1.0,
    r0: float = 1.0,
    n_steps: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The SIR time-``T`` flow map sampled as in the authors' notebook: ``rand(3)`` normalised by its sum.

    The initial conditions are NumPy's ``RandomState(seed).rand(n, 3)``, each row divided by its sum, so
    ``seed=0`` gives exactly the 1000 starts of Celledoni et al. (2023) (their ``np.random.seed(0)``);
    their split is the first 90% for training and the last 10% for testing. This distribution is *not*
    uniform on the simplex (that is Dirichlet(1, 1, 1), :func:`sir_flow_map`): it puts less mass near the
    vertices. The truth is the same as in :func:`sir_flow_map`: ``n_steps`` RK4 steps in float64
    (error :math:`\approx10^{-13}`, below the tolerance :math:`10^{-11}` of the authors' RK45).

    Parameters
    ----------
    n : int
        Number of samples.
    T : float
        Time of the flow map, > 0.
    r0 : float
        Basic reproduction number :math:`R_0`, > 0.
    n_steps : int
        RK4 steps used for the truth.
    seed : int
        Seed of NumPy's legacy generator (a local ``RandomState``; the global state is untouched).
    dtype : torch.dtype
        Floating dtype of the returned tensors; float64 by default, because the targets are reference solutions
        (accurate to about 1e-13) that float32 would round to about 1e-7.

    Returns
    -------
    tuple of torch.Tensor
        ``(x0, xT)``, each of shape ``(n, 3)``, rows summing to 1.

    Raises
    ------
    TypeError, ValueError
        On a bad ``n``, ``T``, ``r0`` or ``n_steps``.

    References
    ----------
    E. Celledoni et al., *Dynamical systems' based neural networks*, SIAM J. Sci. Comput. (2023), §4.
    """
    import numpy as np

    T, r0 = _check_sir(n, T=T, r0=r0, n_steps=n_steps)
    starts = np.random.RandomState(seed).rand(n, 3)
    x0 = torch.from_numpy(starts / starts.sum(axis=1, keepdims=True)).to(torch.float64)
    return _sir_pairs(x0, T=T, r0=r0, n_steps=n_steps, dtype=dtype)


#: The classical chaotic ABC coefficients :math:`(A, B, C) = (\sqrt3, \sqrt2, 1)`.
ABC_COEFFICIENTS = (math.sqrt(3.0), math.sqrt(2.0), 1.0)


def abc_field(x: torch.Tensor, coefficients: tuple[float, float, float] = ABC_COEFFICIENTS) -> torch.Tensor:
    r"""The Arnold--Beltrami--Childress field, divergence-free on :math:`\mathbb R^3`.

    .. math:: u(x, y, z) = \big(A\sin z + C\cos y,\ B\sin x + A\cos z,\ C\sin y + B\cos x\big).

    Each component does not depend on its own coordinate, so :math:`\nabla\cdot u = 0` and the flow
    preserves volume; in three (odd) dimensions there is no symplectic structure to preserve.

    Parameters
    ----------
    x : torch.Tensor
        Points, shape ``(..., 3)``.
    coefficients : tuple of float
        :math:`(A, B, C)`.

    Returns
    -------
    torch.Tensor
        Shape ``(..., 3)``.

    Raises
    ------
    TypeError, ValueError
        If ``x`` is not a floating tensor with last dimension 3.
    """
    check_tensor(x, "x", min_ndim=1, last_dim=3)
    a, b, c = coefficients
    px, py, pz = x[..., 0], x[..., 1], x[..., 2]
    return torch.stack(
        [
            a * torch.sin(pz) + c * torch.cos(py),
            b * torch.sin(px) + a * torch.cos(pz),
            c * torch.sin(py) + b * torch.cos(px),
        ],
        dim=-1,
    )


def abc_trajectory(
    x0: torch.Tensor,
    *,
    dt: float,
    n_steps: int,
    substeps: int = 20,
    coefficients: tuple[float, float, float] = ABC_COEFFICIENTS,
) -> torch.Tensor:
    r"""Reference trajectory :math:`x_0, \Phi_{dt}(x_0), \dots, \Phi_{dt}^n(x_0)` of the ABC flow (:func:`abc_field`).

    Computed with ``substeps`` RK4 steps per ``dt`` in float64.

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps + 1, *x0.shape)``, dtype of ``x0``.

    Raises
    ------
    TypeError, ValueError
        On a bad ``x0``, ``dt``, ``n_steps``, ``substeps`` or coefficients.
    """
    check_tensor(x0, "x0", min_ndim=1, last_dim=3)
    dt = check_positive(dt, "dt")
    check_positive_int(n_steps, "n_steps")
    check_positive_int(substeps, "substeps")
    if len(coefficients) != 3:
        raise ValueError(f"coefficients must be (A, B, C), got {coefficients!r}.")
    coefficients = tuple(float(value) for value in coefficients)
    return _reference_trajectory(lambda y: abc_field(y, coefficients), x0, dt=dt, n_steps=n_steps, substeps=substeps)


def abc_flow_map(
    n: int = 2000,
    *,
    dt: float = 0.2,
    substeps: int = 20,
    seed: int = 0,
    coefficients: tuple[float, float, float] = ABC_COEFFICIENTS,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Samples of the time-``dt`` flow map of the ABC flow, starts uniform on the periodic box :math:`[0, 2\pi)^3`.

    The targets are not wrapped back into the box: the map is :math:`x\mapsto x + \int_0^{dt}u`.

    Returns
    -------
    tuple of torch.Tensor
        ``(x0, x1)``, each of shape ``(n, 3)``.

    Raises
    ------
    TypeError, ValueError
        On a bad ``n``, ``dt``, ``substeps`` or coefficients.
    """
    check_positive_int(n, "n")
    gen = torch.Generator().manual_seed(seed)
    x0 = 2 * math.pi * torch.rand(n, 3, generator=gen, dtype=torch.float64)
    x1 = abc_trajectory(x0, dt=dt, n_steps=1, substeps=substeps, coefficients=coefficients)[-1]
    return x0.to(dtype), x1.to(dtype)


__all__ += ["sir_flow_map_normalised", "ABC_COEFFICIENTS", "abc_field", "abc_trajectory", "abc_flow_map"]


def stored_results(name: str) -> dict:
    """Load a table of multi-seed results that a script computed and the package ships.

    Sweeps over seeds, learning rates and initialisations do not fit a chapter's two minutes; the script named
    in the table (``"command"``) computes them and writes ``companion/results/<name>.json``, and the chapter
    loads it here and says where it came from.

    Parameters
    ----------
    name : str
        The table's name, e.g. ``"01_swiss_roll_sweep"`` (the chapter number first).

    Returns
    -------
    dict
        The decoded JSON: at least ``"command"`` (how to regenerate it), ``"machine"`` and the rows.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If no table of that name is shipped (the message lists those that are).
    """
    folder = resources.files("companion") / "results"
    available = sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))
    if not isinstance(name, str):
        raise TypeError(
            f"name must be a string naming a table, got {type(name).__name__}; the package ships {available}"
        )
    if name not in available:
        raise ValueError(f"no stored results named {name!r}; the package ships {available}")
    return json.loads((folder / f"{name}.json").read_text())
