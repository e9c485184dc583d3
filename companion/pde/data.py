r"""Reference data for :mod:`companion.pde`: initial conditions, a pseudo-spectral "truth", error splitting.

The truth is spectral in space on the periodic unit square (so it is *more* accurate than any finite-difference
stencil, and the spatial term :math:`O(h^2)` of the error splitting is real): exact exponentials in Fourier space
for heat and advection, integrating-factor RK4 with small steps for Fisher. The paper generated its data with
finite elements (Firedrake); see the book for why we do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .._checks import check_choice, check_positive, check_positive_int
from ..integrators import RK4, rk_step
from .stencils import EQUATIONS, apply_stencil, check_grid, check_velocity, rhs, stencil

__all__ = [
    "grid_points",
    "initial_conditions",
    "default_time_step",
    "spectral_solution",
    "generate_trajectories",
    "trajectories_from",
    "semidiscrete_flow",
    "error_splitting",
    "stencil_errors",
]


def grid_points(size: int, *, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic grid :math:`x_r = r/d` (rows) and :math:`y_s = s/d` (columns), each of shape ``(d, d)``."""
    check_positive_int(size, "size")
    x = torch.arange(size, dtype=dtype) / size
    return torch.meshgrid(x, x, indexing="ij")


def initial_conditions(
    count: int,
    *,
    size: int = 64,
    k_max: int = 3,
    k_min: int = 1,
    offset: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r""":math:`u_0 = \sin(2\pi k_1(x-s_x))\cos(2\pi k_2(y-s_y)) + \text{offset}`, :math:`k_i` uniform in
    ``k_min..k_max``, :math:`s \sim U(0,1)^2` (the initial conditions of Celledoni, Jackaman, Murari and Owren, 2025; offset 1 for advection). Shape ``(count, d, d)``.

    Raises
    ------
    ValueError
        On non-positive counts or sizes, or ``k_min > k_max``.
    """
    check_positive_int(count, "count")
    check_positive_int(k_min, "k_min")
    check_positive_int(k_max, "k_max")
    if k_min > k_max:
        raise ValueError(f"k_min must be <= k_max, got {k_min} > {k_max}.")
    generator = torch.Generator().manual_seed(seed)
    k = torch.randint(k_min, k_max + 1, (count, 2, 1, 1), generator=generator).to(dtype)
    s = torch.rand(count, 2, 1, 1, generator=generator, dtype=dtype)
    x, y = grid_points(size, dtype=dtype)
    u = torch.sin(2 * math.pi * k[:, 0] * (x - s[:, 0])) * torch.cos(2 * math.pi * k[:, 1] * (y - s[:, 1]))
    return u + offset


def default_time_step(equation: str, *, size: int, alpha: float = 0.01) -> float:
    r"""The paper's steps: :math:`\delta t = 0.24\,h^2/\alpha` (heat, Fisher) and :math:`\delta t = h` otherwise.

    Raises
    ------
    TypeError, ValueError
        On an unknown equation, a non-positive size or alpha.
    """
    check_choice(equation, "equation", EQUATIONS)
    check_positive(alpha, "alpha")
    h = 1.0 / check_positive_int(size, "size")
    return 0.24 * h**2 / alpha if equation in ("heat", "fisher") else h


def _wavenumbers(size: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.fft.fftfreq(size, d=1.0 / size).to(dtype) * 2 * math.pi
    return torch.meshgrid(k, k, indexing="ij")


def spectral_solution(
    equation: str,
    U0: torch.Tensor,
    *,
    dt: float,
    steps: int,
    alpha: float = 0.01,
    velocity: Sequence[float] = (1.0, 1.0),
    substeps: int = 8,
) -> torch.Tensor:
    r"""Pseudo-spectral reference solution on the periodic unit square, shape ``(batch, steps + 1, d, d)``.

    Heat: :math:`\hat u(t) = e^{-\alpha|\kappa|^2 t}\hat u_0` (exact in time). Advection
    :math:`u_t = c\cdot\nabla u`: :math:`\hat u(t) = e^{i(c\cdot\kappa)t}\hat u_0`. Fisher: integrating-factor
    RK4 with ``substeps`` steps per ``dt`` (local error :math:`O((\delta t/n)^5)`).

    Raises
    ------
    ValueError
        For ``burgers`` (not provided), a non-grid ``U0`` or non-positive ``dt``/``steps``.
    """
    check_choice(equation, "equation", ("heat", "fisher", "advection"))
    check_grid(U0, "U0")
    check_positive(alpha, "alpha")
    velocity = check_velocity(velocity)
    dt = check_positive(dt, "dt")
    check_positive_int(steps, "steps")
    check_positive_int(substeps, "substeps")
    U0 = U0 if U0.ndim == 3 else U0[None]
    kx, ky = _wavenumbers(U0.shape[-1], U0.dtype)
    if equation == "advection":
        symbol = 1j * (velocity[0] * kx + velocity[1] * ky)
    else:
        symbol = -alpha * (kx**2 + ky**2)
    u_hat = torch.fft.fft2(U0)
    states = [U0]
    if equation != "fisher":
        factor = torch.exp(symbol * dt)
        for _ in range(steps):
            u_hat = u_hat * factor
            states.append(torch.fft.ifft2(u_hat).real)
        return torch.stack(states, 1)
    tau = dt / substeps
    half, full = torch.exp(symbol * tau / 2), torch.exp(symbol * tau)

    def reaction(v_hat: torch.Tensor) -> torch.Tensor:
        u = torch.fft.ifft2(v_hat).real
        return torch.fft.fft2(u * (1 - u))

    for _ in range(steps):
        for _ in range(substeps):
            k1 = reaction(u_hat)
            k2 = reaction(half * (u_hat + tau / 2 * k1))
            k3 = reaction(half * u_hat + tau / 2 * k2)
            k4 = reaction(full * u_hat + tau * half * k3)
            u_hat = full * u_hat + tau / 6 * (full * k1 + 2 * half * (k2 + k3) + k4)
        states.append(torch.fft.ifft2(u_hat).real)
    return torch.stack(states, 1)


def generate_trajectories(
    equation: str,
    *,
    trajectories: int,
    steps: int,
    size: int = 64,
    alpha: float = 0.01,
    dt: float | None = None,
    k_max: int = 3,
    velocity: Sequence[float] = (1.0, 1.0),
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Spectral trajectories from :func:`initial_conditions` (offset 1 for advection), shape
    ``(trajectories, steps + 1, d, d)``.

    Raises
    ------
    TypeError, ValueError
        On an unknown equation (Burgers has no spectral solver here), a non-positive alpha, dt, size, count or
        number of steps, or a velocity that is not two finite numbers: each with its own message.
    """
    check_choice(equation, "equation", ("heat", "fisher", "advection"))
    check_positive(alpha, "alpha")
    check_positive_int(trajectories, "trajectories")
    check_positive_int(steps, "steps")
    velocity = check_velocity(velocity)
    dt = default_time_step(equation, size=size, alpha=alpha) if dt is None else check_positive(dt, "dt")
    U0 = initial_conditions(
        trajectories,
        size=size,
        k_max=k_max,
        offset=1.0 if equation == "advection" else 0.0,
        seed=seed,
        dtype=torch.float64,
    )
    out = spectral_solution(equation, U0, dt=dt, steps=steps, alpha=alpha, velocity=velocity)
    return out.to(dtype)


def trajectories_from(
    equation: str,
    U0: torch.Tensor,
    *,
    steps: int,
    size: int | None = None,
    alpha: float = 0.01,
    dt: float | None = None,
    velocity: Sequence[float] = (1.0, 1.0),
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Spectral trajectories from given initial conditions ``U0`` ``(N, d, d)`` (any family, e.g. those of
    :mod:`companion.pde.families`), computed in float64: shape ``(N, steps + 1, d, d)``, frame 0 is ``U0``.

    ``dt`` defaults to :func:`default_time_step` for the grid of ``U0``; ``size``, if given, must be that grid.

    Raises
    ------
    TypeError, ValueError
        On an unknown equation (Burgers has no spectral solver here), ``U0`` that is not a finite square grid or
        not of the given ``size``, a non-positive alpha, dt or number of steps, or a bad velocity.
    """
    check_choice(equation, "equation", ("heat", "fisher", "advection"))
    check_grid(U0, "U0")
    if U0.ndim != 3:
        raise ValueError(f"U0 must be a batch of grids (N, d, d), got shape {tuple(U0.shape)}.")
    if not U0.dtype.is_floating_point or not bool(torch.isfinite(U0).all()):
        raise ValueError("U0 must hold finite floating values.")
    if size is not None and check_positive_int(size, "size") != U0.shape[-1]:
        raise ValueError(f"size={size}, but U0 is on a {U0.shape[-1]}x{U0.shape[-1]} grid.")
    check_positive(alpha, "alpha")
    check_positive_int(steps, "steps")
    dt = default_time_step(equation, size=U0.shape[-1], alpha=alpha) if dt is None else check_positive(dt, "dt")
    out = spectral_solution(equation, U0.to(torch.float64), dt=dt, steps=steps, alpha=alpha, velocity=velocity)
    return out.to(dtype)


def semidiscrete_flow(field: Callable, U: torch.Tensor, t: float, *, steps: int = 64) -> torch.Tensor:
    r"""The exact flow :math:`\Phi_F^t(U)` of :math:`\dot U = F(U)`, approximated by ``steps`` RK4 steps."""
    check_positive_int(steps, "steps")
    for _ in range(steps):
        U = rk_step(field, U, check_positive(t, "t") / steps, RK4)
    return U


def error_splitting(
    network: Callable,
    equation: str,
    U0: torch.Tensor,
    U1: torch.Tensor,
    *,
    h: float,
    dt: float,
    substeps: int,
    alpha: float = 0.01,
    reference_steps: int = 64,
) -> dict[str, float]:
    r"""The three terms of the one-step error splitting, each relative to :math:`\|U^1\|` (averaged over the batch).

    ``spatial`` :math:`\|U^1 - \Phi_F^{\delta t}(U^0)\|` (truth vs exact semi-discrete flow, :math:`O(h^2)`),
    ``temporal`` :math:`\|\Phi_F^{\delta t}(U^0) - \Psi_F^{\delta t}(U^0)\|` (Euler sub-steps,
    :math:`O(\delta t^2)`), ``network`` :math:`\|\Psi_F^{\delta t}(U^0) - \Psi_{F_\theta}^{\delta t}(U^0)\|`, and
    ``total`` :math:`\|U^1 - \Psi_{F_\theta}^{\delta t}(U^0)\|` (at most the sum of the three).
    """
    from .networks import method_of_lines

    def field(V: torch.Tensor) -> torch.Tensor:
        return rhs(equation, V, h=h, alpha=alpha)

    fd = method_of_lines(equation, h=h, dt=dt, substeps=substeps, alpha=alpha)
    with torch.no_grad():
        exact = semidiscrete_flow(field, U0, dt, steps=reference_steps)
        euler, learned = fd(U0), network(U0)
    scale = U1.flatten(-2).norm(dim=-1)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(((a - b).flatten(-2).norm(dim=-1) / scale).mean())

    return {
        "spatial": rel(U1, exact),
        "temporal": rel(exact, euler),
        "network": rel(euler, learned),
        "total": rel(U1, learned),
    }


def stencil_errors(name: str, sizes: Sequence[int], *, order: int = 2, boundary: str = "periodic") -> list[float]:
    r"""Max error of a stencil applied to :math:`u=\sin(2\pi x)\sin(4\pi y)` (exact derivative known), per grid size.

    The slope of :func:`companion.diagnostics.empirical_order` against :math:`h = 1/d` is the order (2 or 4).
    """
    errors = []
    for size in sizes:
        x, y = grid_points(size)
        a, b = 2 * math.pi, 4 * math.pi
        u = torch.sin(a * x) * torch.sin(b * y)
        exact = {
            "dx": a * torch.cos(a * x) * torch.sin(b * y),
            "dy": b * torch.sin(a * x) * torch.cos(b * y),
            "laplacian": -(a**2 + b**2) * u,
        }[name]
        approx = apply_stencil(u, stencil(name, h=1.0 / size, order=order), boundary=boundary)
        errors.append(float((approx - exact).abs().max()))
    return errors
