r"""Datasets made on the fly (no downloads): every generator takes an explicit ``seed``.

Chapters add their own generators here (the SIR flow map, PDE trajectories, digits), each returning
tensors in the dtype asked for.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_positive_int, check_tensor

__all__ = ["swiss_roll", "train_test_split"]


def swiss_roll(
    n: int, *, noise: float = 0.05, turns: float = 1.5, embed_dim: int = 4, seed: int = 0, dtype: torch.dtype = torch.float32
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
