"""The stability regions that ``check_time_step`` states for transport, measured: plain explicit Euler with central
differences grows at every step size (and is refused), projected Euler keeps the norm, explicit Euler with an upwind
stencil is stable up to (|c1|+|c2|) dt/h = 1 and RK4 with central differences up to 2 sqrt(2)."""

from __future__ import annotations

import math

import pytest
import torch

from companion import integrators
from companion.pde import apply_stencil, check_time_step, method_of_lines, rhs, rollout

SIZE = 16
H = 1 / SIZE
VELOCITY = (1.0, 1.0)


def _grid_modes() -> torch.Tensor:
    """The identity on the grid's functions: one image per pixel, shape (SIZE^2, SIZE, SIZE)."""
    return torch.eye(SIZE * SIZE, dtype=torch.float64).reshape(-1, SIZE, SIZE)


def _norm_of_map(step) -> float:
    """The spectral norm of a linear map of grid functions (applied to every basis image)."""
    columns = step(_grid_modes()).reshape(SIZE * SIZE, -1).T
    return float(torch.linalg.matrix_norm(columns, 2))


def _upwind(U: torch.Tensor) -> torch.Tensor:
    """u_t = c1 u_x + c2 u_y (c > 0) with forward differences: information comes from larger x and y."""
    dx = torch.zeros(3, 3, dtype=U.dtype)
    dx[1, 1], dx[2, 1] = -1 / H, 1 / H
    return VELOCITY[0] * apply_stencil(U, dx) + VELOCITY[1] * apply_stencil(U, dx.T.contiguous())


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 1e-2, H / 2, H])
def test_plain_euler_with_central_differences_grows_at_every_step_size_and_is_refused(dt):
    with pytest.raises(ValueError, match="unstable for advection at every step size"):
        method_of_lines("advection", h=H, dt=dt)
    model = method_of_lines("advection", h=H, dt=dt, allow_unstable=True)
    x = torch.arange(SIZE, dtype=torch.float64) * H
    mode = torch.cos(2 * math.pi * (SIZE // 4) * (x[:, None] + x[None, :]))  # the fastest mode: |lambda| = 2/h
    with torch.no_grad():
        growth = float(model(mode).norm() / mode.norm())
    predicted = math.sqrt(1 + (sum(VELOCITY) * dt / H) ** 2)
    assert growth == pytest.approx(predicted, rel=1e-12) and growth > 1
    assert _norm_of_map(model) == pytest.approx(predicted, rel=1e-10)  # the largest over every mode


def test_burgers_plain_euler_is_refused_too():
    with pytest.raises(ValueError, match="unstable for burgers at every step size"):
        method_of_lines("burgers", h=H, dt=1e-3)


@pytest.mark.parametrize("cfl", [0.1, 0.5, 1.0])
def test_projected_euler_keeps_the_norm_at_any_admissible_step(cfl):
    model = method_of_lines("advection", h=H, dt=cfl * H, substeps=1, projected=True)
    U0 = torch.randn(4, SIZE, SIZE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    norms = rollout(model, U0, 40).flatten(-2).norm(dim=-1)
    assert float(((norms - norms[:, :1]).abs() / norms[:, :1]).max()) < 1e-12


@pytest.mark.parametrize("cfl, stable", [(0.5, True), (1.0, True), (1.1, False)])
def test_upwind_euler_is_stable_exactly_up_to_the_summed_cfl_number_one(cfl, stable):
    dt = cfl * H / sum(VELOCITY)
    norm = _norm_of_map(lambda U: U + dt * _upwind(U))
    assert (norm <= 1 + 1e-12) is stable


@pytest.mark.parametrize("cfl, stable", [(1.0, True), (2.8, True), (2.9, False)])
def test_rk4_with_central_differences_is_stable_exactly_up_to_two_root_two(cfl, stable):
    dt = cfl * H / sum(VELOCITY)

    def step(U: torch.Tensor) -> torch.Tensor:
        return integrators.rk_step(lambda V: rhs("advection", V, h=H, velocity=VELOCITY), U, dt, "rk4")

    norm = _norm_of_map(step)
    assert (norm <= 1 + 1e-12) is stable
    assert (cfl <= 2 * math.sqrt(2)) is stable


def test_check_time_step_flags_are_checked():
    with pytest.raises(TypeError, match="projected"):
        check_time_step("advection", 1e-3, h=H, projected="yes")
    with pytest.raises(TypeError, match="allow_unstable"):
        check_time_step("heat", 1e-3, h=H, allow_unstable=1)
    assert check_time_step("advection", H / 2, h=H, projected=True) == pytest.approx(0.5)
    assert check_time_step("heat", 1e-3, h=H) == pytest.approx(0.01 * 1e-3 / H**2)
