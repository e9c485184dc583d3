r"""Finite differences as convolutions: stencils, their application on a grid, the semi-discrete right-hand sides.

A grid function :math:`U \in \mathbb{R}^{d\times d}` with :math:`U_{rs} = u(x_r, y_s)`, :math:`x_r = rh`,
rows indexing :math:`x`, is a one-channel image, and a finite-difference stencil is a convolution kernel.

PyTorch's ``conv2d`` is a cross-correlation, :math:`(K\star U)_{rs} = \sum_{ij} K_{ij}U_{r+i-k,\,s+j-k}`;
every kernel here is written in that convention (so the central :math:`\partial_x` kernel is
:math:`[-1, 0, 1]/(2h)` down a column, the *negative* of the textbook convolution kernel).

Grids are tensors of shape ``(d, d)`` or ``(batch, d, d)``. Boundaries: ``"periodic"`` (circular padding)
and ``"dirichlet"`` (homogeneous, zero padding). The networks built from these stencils are in
:mod:`companion.pde.networks`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from .._checks import check_choice, check_positive, check_positive_int, check_tensor

__all__ = [
    "BOUNDARIES",
    "EQUATIONS",
    "stencil",
    "apply_stencil",
    "check_grid",
    "check_order",
    "check_velocity",
    "rhs",
    "check_time_step",
]

BOUNDARIES = ("periodic", "dirichlet")
#: heat u_t = a Lap u; fisher u_t = a Lap u + u(1-u); advection u_t = c . grad u; burgers u_t = u_x + u u_y.
EQUATIONS = ("heat", "fisher", "advection", "burgers")
_STENCILS = ("dx", "dy", "laplacian")
_ACTIVATIONS = {"relu": 1, "relu2": 2}


def check_grid(U, name: str = "U") -> torch.Tensor:
    """Check that ``U`` is a floating tensor of shape ``(d, d)`` or ``(batch, d, d)`` with ``d >= 3``."""
    check_tensor(U, name)
    if U.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be a grid of shape (d, d) or a batch (batch, d, d), got shape {tuple(U.shape)}; "
            "drop channel dimensions with U.squeeze(1)."
        )
    if U.shape[-1] != U.shape[-2]:
        raise ValueError(f"{name} must be a square grid (d, d) on the unit square, got {tuple(U.shape[-2:])}.")
    if U.shape[-1] < 3:
        raise ValueError(f"{name} must have at least 3x3 pixels, got {tuple(U.shape[-2:])}.")
    return U


def check_order(order) -> int:
    """Check that ``order`` is 2 or 4 (the orders of the stencils of :func:`stencil`) and return it."""
    if isinstance(order, bool) or order not in (2, 4):
        raise ValueError(f"order must be 2 or 4 (the stencils provided), got {order!r}.")
    return int(order)


def check_velocity(velocity) -> tuple[float, float]:
    """Check that ``velocity`` is two finite numbers :math:`(c_1, c_2)` and return them as floats."""
    if isinstance(velocity, (str, bytes, torch.Tensor)) or not isinstance(velocity, Sequence):
        raise TypeError(f"velocity must be a pair of numbers (c1, c2), got {velocity!r}.")
    values = tuple(velocity)
    ok = len(values) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in values)
    if not ok or not all(math.isfinite(c) for c in values):
        raise ValueError(f"velocity must be two finite numbers (c1, c2), got {velocity!r}.")
    return float(values[0]), float(values[1])


def stencil(name: str, *, h: float = 1.0, order: int = 2, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""Finite-difference stencil as a cross-correlation kernel for ``torch.nn.functional.conv2d``.

    ``order=2``: 3x3 central differences (:math:`\partial_x`: :math:`K_{0,1}=-\tfrac1{2h}, K_{2,1}=\tfrac1{2h}`;
    the 5-point Laplacian :math:`[[0,1,0],[1,-4,1],[0,1,0]]/h^2`). ``order=4``: 5x5 kernels from the 1-D
    stencils :math:`[1,-8,0,8,-1]/(12h)` and :math:`[-1,16,-30,16,-1]/(12h^2)`.

    Parameters
    ----------
    name : {"dx", "dy", "laplacian"}
        The operator; ``x`` runs down the rows (first index), ``y`` along the columns.
    h : float
        Grid spacing.
    order : {2, 4}
        Order of accuracy: the truncation error is :math:`O(h^{order})` for smooth functions.

    Returns
    -------
    torch.Tensor
        Kernel of shape ``(3, 3)`` (order 2) or ``(5, 5)`` (order 4).

    Raises
    ------
    ValueError
        On an unknown name or order, or a non-positive ``h``.
    """
    check_choice(name, "stencil", _STENCILS)
    check_order(order)
    h = check_positive(h, "h")
    if order == 2:
        first = torch.tensor([-0.5, 0.0, 0.5], dtype=dtype) / h
        second = torch.tensor([1.0, -2.0, 1.0], dtype=dtype) / h**2
    else:
        first = torch.tensor([1.0, -8.0, 0.0, 8.0, -1.0], dtype=dtype) / (12 * h)
        second = torch.tensor([-1.0, 16.0, -30.0, 16.0, -1.0], dtype=dtype) / (12 * h**2)
    size = order + 1
    kernel = torch.zeros(size, size, dtype=dtype)
    mid = size // 2
    if name in ("dx", "laplacian"):
        kernel[:, mid] += first if name == "dx" else second
    if name in ("dy", "laplacian"):
        kernel[mid, :] += first if name == "dy" else second
    return kernel


def _pad(x: torch.Tensor, width: int, boundary: str) -> torch.Tensor:
    if width == 0:
        return x
    mode = "circular" if boundary == "periodic" else "constant"
    return F.pad(x, (width,) * 4, mode=mode)


def apply_stencil(U: torch.Tensor, kernel: torch.Tensor, *, boundary: str = "periodic") -> torch.Tensor:
    r"""Cross-correlate the grid ``U`` with a square odd-sized ``kernel`` under the given boundary condition.

    Returns a tensor of the same shape as ``U``: :math:`(K\star U)_{rs}=\sum_{ij}K_{ij}U_{r+i-k,s+j-k}` with
    ghost values from circular (``periodic``) or zero (``dirichlet``) padding.

    Raises
    ------
    TypeError, ValueError
        On a non-grid ``U`` (see :func:`check_grid`), a kernel that is not square and odd, or an unknown boundary.
    """
    check_grid(U)
    check_choice(boundary, "boundary", BOUNDARIES)
    check_tensor(kernel, "kernel", ndim=2)
    if kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"kernel must be square with odd size, got shape {tuple(kernel.shape)}.")
    x = U.reshape(-1, 1, *U.shape[-2:])
    out = F.conv2d(_pad(x, kernel.shape[0] // 2, boundary), kernel.to(U)[None, None])
    return out.reshape(U.shape)


def rhs(
    equation: str,
    U: torch.Tensor,
    *,
    h: float,
    alpha: float = 0.01,
    velocity: Sequence[float] = (1.0, 1.0),
    boundary: str = "periodic",
    order: int = 2,
) -> torch.Tensor:
    r"""Semi-discrete right-hand side :math:`F(U)` of the method of lines, :math:`\dot U = F(U)`.

    ``heat``: :math:`\alpha\Delta_h U`; ``fisher``: :math:`\alpha\Delta_h U + U\odot(1-U)`;
    ``advection``: :math:`c_1 D_x U + c_2 D_y U`; ``burgers``: :math:`D_x U + U\odot D_y U` (the talk's example
    :math:`u_t = u_x + u u_y`). :math:`\Delta_h, D_x, D_y` are the stencils of :func:`stencil` of the given order.

    Raises
    ------
    TypeError, ValueError
        On an unknown equation or boundary, a non-grid ``U``, a non-positive ``h`` or ``alpha``, an order other
        than 2 or 4, or a velocity that is not two finite numbers.
    """
    check_choice(equation, "equation", EQUATIONS)
    check_grid(U)
    check_positive(alpha, "alpha")
    check_positive(h, "h")
    check_order(order)
    velocity = check_velocity(velocity)
    kw = dict(h=h, order=order, dtype=U.dtype)
    if equation in ("heat", "fisher"):
        out = alpha * apply_stencil(U, stencil("laplacian", **kw), boundary=boundary)
        return out + U * (1 - U) if equation == "fisher" else out
    dx = apply_stencil(U, stencil("dx", **kw), boundary=boundary)
    dy = apply_stencil(U, stencil("dy", **kw), boundary=boundary)
    if equation == "advection":
        return velocity[0] * dx + velocity[1] * dy
    return dx + U * dy


def check_time_step(
    equation: str,
    dt: float,
    *,
    h: float,
    alpha: float = 0.01,
    velocity: Sequence[float] = (1.0, 1.0),
    substeps: int = 1,
    order: int = 2,
    projected: bool = False,
    allow_unstable: bool = False,
) -> float:
    r"""Check that explicit Euler sub-steps of size :math:`\delta t/n` are stable for the FD scheme.

    Diffusion (heat, Fisher) needs :math:`\alpha\,(\delta t/n)/h^2 \le 1/4` (order 2) or :math:`\le 3/16`
    (order 4), the limit where the most negative eigenvalue of :math:`\alpha\Delta_h` leaves the Euler stability
    interval :math:`[-2, 0]`. Transport (advection, Burgers) with central differences has a skew field, whose
    eigenvalues :math:`i\lambda` are imaginary: plain explicit Euler multiplies each mode by
    :math:`\lvert1+i\lambda\delta t/n\rvert=\sqrt{1+(\lambda\delta t/n)^2}>1`, so it is unstable at **every** step
    size and is refused (the largest factor, at :math:`\lambda=(\lvert c_1\rvert+\lvert c_2\rvert)/h`, is in the
    message). Projected Euler (``projected=True``) keeps the norm for any step; it is checked against the CFL
    condition :math:`\max_i|c_i|\,(\delta t/n)/h \le 1`. Returns the stability number.

    Parameters
    ----------
    projected : bool
        The sub-steps are projected Euler steps (:class:`~companion.pde.networks.MethodOfLinesNetwork`).
    allow_unstable : bool
        Accept plain Euler for transport anyway (to show its growth); only the CFL number is checked.

    Raises
    ------
    ValueError
        If the step violates the limit (the message says which substeps would be stable), for plain Euler on
        transport unless ``allow_unstable`` (the message says why and what is stable), on an unknown equation, an
        order other than 2 or 4, a non-positive ``dt``, ``h``, ``alpha`` or ``substeps``, or a velocity that is not
        two finite numbers.
    """
    check_choice(equation, "equation", EQUATIONS)
    dt, h = check_positive(dt, "dt"), check_positive(h, "h")
    check_positive(alpha, "alpha")
    check_positive_int(substeps, "substeps")
    check_order(order)
    velocity = check_velocity(velocity)
    for name, flag in (("projected", projected), ("allow_unstable", allow_unstable)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}.")
    if equation in ("heat", "fisher"):
        number, limit, what = alpha * dt / substeps / h**2, (0.25 if order == 2 else 3 / 16), "alpha*dt/(n*h^2)"
    else:
        speeds = (abs(velocity[0]), abs(velocity[1])) if equation == "advection" else (1.0, 1.0)
        number, limit, what = max(speeds) * dt / substeps / h, 1.0, "|c|*dt/(n*h)"
        if not (projected or allow_unstable):
            worst = sum(speeds) * dt / substeps / h  # the largest |lambda| dt/n of the central field (order 2)
            growth = math.sqrt(1 + worst**2)
            raise ValueError(
                f"explicit Euler with central differences is unstable for {equation} at every step size: the "
                f"central-difference field{' (linearised)' if equation == 'burgers' else ''} is skew, its eigenvalues "
                "i*lambda are imaginary, and |1 + i*lambda*dt/n| "
                f"> 1 for every dt > 0 (here the fastest mode grows by {growth:.4g} per sub-step, "
                f"{growth ** (40 * substeps):.3g} over 40 steps). Stable choices: projected=True (projected Euler "
                "keeps the norm for any step), an upwind stencil with explicit Euler at (|c1|+|c2|)*dt/(n*h) <= 1, "
                "or RK4 (companion.integrators.rk_step) at (|c1|+|c2|)*dt/(n*h) <= 2*sqrt(2). Pass "
                "allow_unstable=True to build it anyway (to show the growth)."
            )
    if number > limit * (1 + 1e-12):
        need = int(-(-number * substeps // limit))
        raise ValueError(
            f"unstable time step for explicit Euler on {equation}: {what} = {number:.4g} > {limit:g}; "
            f"use a smaller dt or at least substeps={need}."
        )
    return number
