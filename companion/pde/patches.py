r"""Local patches of pixel trajectories: sub-step targets by interpolation in time, random patches, and a
:class:`~companion.pde.networks.ConvRHS` evaluated on patches.

The field of a method-of-lines network at a pixel depends on the image only in a small window (radius
:math:`2\lfloor k/2\rfloor` for two :math:`k\times k` convolutions), so fitting it to data splits into
independent residuals on patches; :mod:`companion.pde.fitting` fits them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from .._checks import check_positive, check_positive_int, check_tensor
from .networks import ConvRHS

__all__ = [
    "INTERPOLATION_POINTS",
    "COVERAGE_THRESHOLD",
    "spectral_coverage",
    "substep_targets",
    "sample_patches",
    "patch_field",
]

#: Frames used by the time interpolation of :func:`substep_targets`.
INTERPOLATION_POINTS = 6
#: A Fourier mode counts as excited when its energy over the frames exceeds this fraction of the largest one's.
COVERAGE_THRESHOLD = 1e-8


def _lagrange_weights(nodes: Sequence[int], x: float) -> list[float]:
    weights = []
    for i, xi in enumerate(nodes):
        w = 1.0
        for j, xj in enumerate(nodes):
            if j != i:
                w *= (x - xj) / (xi - xj)
        weights.append(w)
    return weights


def _check_trajectories(trajectories: torch.Tensor, name: str = "trajectories", min_frames: int = 2) -> None:
    check_tensor(trajectories, name, ndim=4)
    if trajectories.shape[1] < min_frames or trajectories.shape[-1] != trajectories.shape[-2]:
        raise ValueError(
            f"{name} must have shape (N, T + 1, d, d) with at least {min_frames} frames, "
            f"got {tuple(trajectories.shape)}."
        )
    if not bool(torch.isfinite(trajectories).all()):
        raise ValueError(f"{name} contain NaN or infinite values.")


def spectral_coverage(trajectories: torch.Tensor, *, threshold: float = COVERAGE_THRESHOLD) -> float:
    r"""The fraction of the grid's Fourier modes that the frames excite.

    The energy :math:`\sum_{n,j}\lvert\hat U^j_n(\xi)\rvert^2` of every frequency :math:`\xi` of the
    :math:`d\times d` grid, summed over all frames of all trajectories (``(N, T + 1, d, d)``); a frequency counts
    as excited when its energy exceeds ``threshold`` times the largest one's (the mean, :math:`\xi = 0`, left
    out). A fit learns the field's response only at excited frequencies: elsewhere the data do not determine it.

    Raises
    ------
    TypeError, ValueError
        On trajectories that are not ``(N, T + 1, d, d)`` with finite values, or a threshold outside (0, 1).
    """
    _check_trajectories(trajectories, min_frames=1)
    number = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    if not (number and 0 < threshold < 1):
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}.")
    energy = torch.fft.fft2(trajectories.double()).abs().pow(2).sum((0, 1))
    energy[0, 0] = 0.0
    top = float(energy.max())
    if top == 0.0:
        return 0.0
    return float((energy > threshold * top).sum()) / (energy.numel() - 1)


def substep_targets(
    trajectories: torch.Tensor, *, dt: float, substeps: int, points: int = INTERPOLATION_POINTS
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Inputs :math:`U^j` and sub-step targets :math:`G^j = \tfrac{n}{\delta t}(W^j - U^j)`,
    :math:`W^j = U(t_j + \delta t/n)`.

    :math:`W^j` is the Lagrange interpolant of ``points`` consecutive frames around :math:`t_j` (shifted
    inwards at the ends), exact for polynomials of degree ``points - 1`` in time. The same targets serve
    projected Euler sub-steps, whose projection removes the radial part of the field.

    Parameters
    ----------
    trajectories : torch.Tensor
        Frames ``(N, T + 1, d, d)`` at spacing ``dt``, ``T + 1 >= points``.
    dt : float
        Time between frames.
    substeps : int
        Number :math:`n` of Euler sub-steps per frame.
    points : int
        Frames per interpolant (at least 2).
    Returns
    -------
    tuple of torch.Tensor
        ``(inputs, targets)``, each ``(N * T, d, d)``, frame-major.

    Raises
    ------
    TypeError, ValueError
        On trajectories that are not ``(N, T + 1, d, d)`` or have fewer than ``points`` frames, or on a
        non-positive ``dt``, ``substeps`` or ``points < 2``.
    """
    dt = check_positive(dt, "dt")
    check_positive_int(substeps, "substeps")
    check_positive_int(points, "points")
    if points < 2:
        raise ValueError(f"points must be at least 2 (a linear interpolant), got {points}.")
    _check_trajectories(trajectories, min_frames=points)
    last = trajectories.shape[1] - 1
    inputs, targets = [], []
    for j in range(last):
        start = min(max(j - (points - 1) // 2, 0), last + 1 - points)
        nodes = list(range(start - j, start - j + points))
        weights = _lagrange_weights(nodes, 1.0 / substeps)
        later = sum(w * trajectories[:, j + o] for w, o in zip(weights, nodes))
        now = trajectories[:, j]
        inputs.append(now)
        targets.append((later - now) * (substeps / dt))
    return torch.cat(inputs), torch.cat(targets)


def sample_patches(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    count: int,
    radius: int,
    boundary: str = "periodic",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random patches ``(count, 2 radius + 1, 2 radius + 1)`` of ``inputs`` and the targets at their
    centres ``(count,)``; periodic patches wrap around, Dirichlet patches see zeros outside the grid.

    Raises
    ------
    TypeError, ValueError
        On grids of different shapes, a non-positive count or a negative radius.
    """
    check_tensor(inputs, "inputs", ndim=3)
    check_tensor(targets, "targets", ndim=3)
    if inputs.shape != targets.shape:
        raise ValueError(
            f"inputs and targets must have the same shape, got {tuple(inputs.shape)} and {tuple(targets.shape)}."
        )
    check_positive_int(count, "count")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be an int >= 0, got {radius!r}.")
    frames, size = inputs.shape[0], inputs.shape[-1]
    which = torch.randint(0, frames, (count,), generator=generator).to(inputs.device)
    row = torch.randint(0, size, (count,), generator=generator).to(inputs.device)
    col = torch.randint(0, size, (count,), generator=generator).to(inputs.device)
    mode = "circular" if boundary == "periodic" else "constant"
    padded = F.pad(inputs[:, None], (radius,) * 4, mode=mode)[:, 0]
    offsets = torch.arange(2 * radius + 1, device=inputs.device)
    rows = row[:, None, None] + offsets[None, :, None]
    cols = col[:, None, None] + offsets[None, None, :]
    return padded[which[:, None, None], rows, cols], targets[which, row, col]


def patch_field(field: ConvRHS, patches: torch.Tensor) -> torch.Tensor:
    r""":math:`F_\theta` at the centre of each patch ``(count, 2r + 1, 2r + 1)``, :math:`r = 2\lfloor k/2\rfloor`:
    the same numbers as ``field`` on the whole grid (valid convolutions instead of padding). Shape ``(count,)``.

    Raises
    ------
    TypeError, ValueError
        On a field that is not a :class:`~companion.pde.networks.ConvRHS` or patches of the wrong size.
    """
    if not isinstance(field, ConvRHS):
        raise TypeError(f"field must be a companion.pde.ConvRHS, got {type(field).__name__}.")
    size = 4 * (field.kernel_size // 2) + 1
    check_tensor(patches, "patches", ndim=3)
    if patches.shape[-2:] != (size, size):
        raise ValueError(
            f"patches must be (count, {size}, {size}) for kernel_size={field.kernel_size}, got {tuple(patches.shape)}."
        )
    return _patch_values(dict(field.named_parameters()), patches, field.power, field.scale)


def _patch_values(
    weights: dict[str, torch.Tensor], patches: torch.Tensor, power: torch.Tensor, scale: float
) -> torch.Tensor:
    z = torch.relu(F.conv2d(patches[:, None], weights["first.weight"], weights["first.bias"]))
    z = torch.where(power == 2, z * z, z)
    return scale * F.conv2d(z, weights["second.weight"], weights.get("second.bias")).reshape(-1)
