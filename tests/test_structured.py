"""Property tests of the structured layers: each keeps its property for every parameter value."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import companion
from companion import jacobian_determinant_error, linear_invariant_drift, symplecticity_error
from companion.data import (
    pendulum_energy,
    pendulum_flow_map,
    pendulum_trajectory,
    sir_flow_map,
    sir_flow_map_normalised,
)
from companion.integrators import TABLEAUS
from companion.structured import (
    MassLift,
    MassPreservingLayer,
    MassProjection,
    SymplecticLayer,
    VolumePreservingLayer,
    mass_preserving_network,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster and steadier

DRAWS = settings(max_examples=100, deadline=None)
seeds = st.integers(0, 2**31 - 1)
steps = st.floats(0.01, 2.0)
scales = st.floats(0.1, 3.0)
activations = st.sampled_from(["tanh", "sigmoid", "relu"])


def _randomise(layer: torch.nn.Module, seed: int, scale: float, dtype: torch.dtype) -> torch.nn.Module:
    """Redraw every parameter from N(0, scale^2): the property must hold for all values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return layer.to(dtype)


def _points(seed: int, n: int, dim: int, dtype: torch.dtype, spread: float = 2.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    return (spread * torch.randn(n, dim, generator=gen, dtype=torch.float64)).to(dtype)


# ---------------------------------------------------------------- volume preservation
@DRAWS
@given(
    seed=seeds,
    half=st.integers(1, 4),
    h=steps,
    scale=scales,
    activation=activations,
    method=st.sampled_from(["symplectic_euler", "stormer_verlet"]),
)
def test_volume_layer_has_unit_determinant_float64(seed, half, h, scale, activation, method):
    layer = _randomise(
        VolumePreservingLayer(2 * half, h=h, activation=activation, method=method), seed, scale, torch.float64
    )
    x = _points(seed, 8, 2 * half, torch.float64)
    assert jacobian_determinant_error(layer, x) <= 1e-10


@DRAWS
@given(
    seed=seeds,
    half=st.integers(1, 4),
    h=steps,
    scale=scales,
    method=st.sampled_from(["symplectic_euler", "stormer_verlet"]),
)
def test_volume_layer_inverse_is_exact(seed, half, h, scale, method):
    layer = _randomise(VolumePreservingLayer(2 * half, h=h, method=method), seed, scale, torch.float64)
    x = _points(seed, 16, 2 * half, torch.float64)
    assert (layer.inverse(layer(x)) - x).abs().max() <= 1e-10
    assert (layer(layer.inverse(x)) - x).abs().max() <= 1e-10


@settings(max_examples=100, deadline=None)
@given(seed=seeds, h=steps, scale=scales)
def test_volume_layer_float32(seed, h, scale):
    layer = _randomise(VolumePreservingLayer(4, h=h), seed, scale, torch.float32)
    x = _points(seed, 8, 4, torch.float32)
    assert jacobian_determinant_error(layer, x) <= 1e-3


def test_volume_layer_learned_step_and_gradient():
    layer = VolumePreservingLayer(4, h=0.3, learn_step=True).double()
    x = _points(0, 5, 4, torch.float64)
    layer(x).sum().backward()
    assert layer.raw_h.grad is not None and torch.isfinite(layer.raw_h.grad)
    assert jacobian_determinant_error(layer, x) <= 1e-10


def test_volume_layer_is_not_the_identity():
    layer = VolumePreservingLayer(4, h=0.5).double()
    x = _points(0, 5, 4, torch.float64)
    assert (layer(x) - x).abs().max() > 1e-3


# ---------------------------------------------------------------- symplecticity
@DRAWS
@given(
    seed=seeds,
    half=st.integers(1, 3),
    hidden=st.integers(1, 6),
    h=steps,
    scale=scales,
    activation=st.sampled_from(["tanh", "sigmoid"]),
    method=st.sampled_from(["symplectic_euler", "stormer_verlet"]),
)
def test_symplectic_layer_float64(seed, half, hidden, h, scale, activation, method):
    layer = SymplecticLayer(2 * half, hidden=hidden, h=h, activation=activation, method=method)
    layer = _randomise(layer, seed, scale, torch.float64)
    x = _points(seed, 6, 2 * half, torch.float64)
    assert symplecticity_error(layer, x) <= 1e-10
    assert jacobian_determinant_error(layer, x) <= 1e-10


@settings(max_examples=100, deadline=None)
@given(seed=seeds, h=steps, scale=scales)
def test_symplectic_layer_float32(seed, h, scale):
    layer = _randomise(SymplecticLayer(4, hidden=4, h=h), seed, scale, torch.float32)
    x = _points(seed, 6, 4, torch.float32)
    assert symplecticity_error(layer, x) <= 5e-3  # float32 rounding; a fresh run met 2.0e-3 at large h * scale


# ---------------------------------------------------------------- mass preservation
@DRAWS
@given(
    seed=seeds,
    dim=st.integers(2, 8),
    h=steps,
    scale=scales,
    activation=activations,
    method=st.sampled_from(sorted(TABLEAUS)),
    n_steps=st.integers(1, 3),
)
def test_mass_layer_keeps_sum_float64(seed, dim, h, scale, activation, method, n_steps):
    layer = MassPreservingLayer(dim, hidden=5, h=h, n_steps=n_steps, method=method, activation=activation)
    layer = _randomise(layer, seed, scale, torch.float64)
    x = _points(seed, 16, dim, torch.float64, spread=1.0)
    with torch.no_grad():
        y = layer(x)
    assert torch.isfinite(y).all()
    assert linear_invariant_drift(layer, x) <= 1e-10 * max(1.0, float(y.abs().max()))


@settings(max_examples=100, deadline=None)
@given(seed=seeds, dim=st.integers(2, 8), h=steps, method=st.sampled_from(sorted(TABLEAUS)))
def test_mass_layer_float32(seed, dim, h, method):
    layer = _randomise(MassPreservingLayer(dim, hidden=5, h=h, method=method), seed, 1.0, torch.float32)
    x = _points(seed, 16, dim, torch.float32, spread=1.0)
    assert linear_invariant_drift(layer, x) <= 1e-4


def test_mass_layer_moves_the_state_and_accepts_method_objects():
    layer = MassPreservingLayer(3, h=0.5, method=companion.RK4).double()
    x = _points(0, 10, 3, torch.float64)
    assert (layer(x) - x).abs().max() > 1e-4
    assert linear_invariant_drift(layer, x) <= 1e-13


@DRAWS
@given(seed=seeds, k=st.integers(1, 6), extra=st.integers(0, 6))
def test_lift_and_projection_keep_sum(seed, k, extra):
    x = _points(seed, 8, k, torch.float64)
    lifted = MassLift(k, k + extra)(x)
    assert lifted.shape == (8, k + extra)
    assert (lifted.sum(-1) - x.sum(-1)).abs().max() <= 1e-12
    wide = _points(seed, 8, k + extra, torch.float64)
    projected = MassProjection(k + extra, k)(wide)
    assert projected.shape == (8, k)
    assert (projected.sum(-1) - wide.sum(-1)).abs().max() <= 1e-12


@settings(max_examples=20, deadline=None)
@given(seed=seeds, scale=scales)
def test_mass_network_keeps_sum_across_widths(seed, scale):
    net = _randomise(mass_preserving_network((3, 6, 6, 9, 3), layers_per_block=2, hidden=8), seed, scale, torch.float64)
    x = torch.rand(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = net(x)
    assert y.shape == (32, 3)
    assert (y.sum(-1) - x.sum(-1)).abs().max() <= 1e-10 * (1 + float(y.abs().max()))


def test_sir_network_has_the_published_structure():
    net = mass_preserving_network()
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["MassLift"] + ["MassPreservingLayer"] * 6 + ["MassLift"] + ["MassPreservingLayer"] * 3 + [
        "MassProjection"
    ]


# ---------------------------------------------------------------- guard and validation
@pytest.mark.parametrize("layer", [SymplecticLayer, VolumePreservingLayer])
def test_guard_refuses_non_symplectic_method(layer):
    with pytest.raises(ValueError, match="does not keep .*use one of 'symplectic_euler'"):
        layer(4, method="rk4")


def test_guard_refuses_non_runge_kutta_method():
    with pytest.raises(ValueError, match="method must be an explicit Runge-Kutta method .*'cayley'"):
        MassPreservingLayer(3, method="cayley")
    with pytest.raises(ValueError, match="unknown method 'rk5'"):
        MassPreservingLayer(3, method="rk5")
    with pytest.raises(TypeError, match="method must be a method of companion.integrators"):
        MassPreservingLayer(3, method=4)


def test_validation_messages():
    with pytest.raises(ValueError, match="must be even"):
        SymplecticLayer(3)
    with pytest.raises(ValueError, match="finite number > 0"):
        VolumePreservingLayer(4, h=0.0)
    with pytest.raises(ValueError, match="unknown activation"):
        VolumePreservingLayer(4, activation="gelu")
    with pytest.raises(ValueError, match="last dimension 4"):
        VolumePreservingLayer(4)(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="dim >= 2"):
        MassPreservingLayer(1)
    with pytest.raises(ValueError, match="last dimension 3"):
        MassPreservingLayer(3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="out_dim >= in_dim"):
        MassLift(4, 3)
    with pytest.raises(ValueError, match="out_dim <= in_dim"):
        MassProjection(3, 4)
    with pytest.raises(ValueError, match="at least one block"):
        mass_preserving_network((3, 3))


# ---------------------------------------------------------------- data
def test_sir_flow_map_is_on_the_simplex_and_accurate():
    x0, x1 = sir_flow_map(200, seed=3)
    assert x0.shape == x1.shape == (200, 3) and x0.dtype == torch.float64
    assert (x0 >= 0).all() and (x1 >= 0).all()
    assert (x0.sum(-1) - 1).abs().max() <= 1e-14 and (x1.sum(-1) - 1).abs().max() <= 1e-13
    _, coarse = sir_flow_map(200, seed=3, n_steps=500)
    assert (coarse - x1).abs().max() <= 1e-11  # RK4: halving h changes the answer by ~16x less than h^4
    # R = 1 - S - I grows and S decreases along the flow.
    assert (x1[:, 0] <= x0[:, 0]).all() and (x1[:, 2] >= x0[:, 2]).all()
    assert torch.equal(sir_flow_map(200, seed=3)[0], x0)


def test_sir_flow_map_against_scipy():
    solve_ivp = pytest.importorskip("scipy.integrate").solve_ivp
    x0, x1 = sir_flow_map(5, seed=1)
    rhs = lambda t, y: [-y[0] * y[1], y[0] * y[1] - y[1], y[1]]  # noqa: E731
    for a, b in zip(x0.numpy(), x1.numpy()):
        sol = solve_ivp(rhs, (0, 1), a, rtol=1e-11, atol=1e-11, method="DOP853")
        assert abs(sol.y[:, -1] - b).max() <= 1e-10


def test_sir_flow_map_normalised_reproduces_the_authors_starts():
    numpy = pytest.importorskip("numpy")
    solve_ivp = pytest.importorskip("scipy.integrate").solve_ivp
    x0, x1 = sir_flow_map_normalised(1000, seed=0)
    starts = numpy.random.RandomState(0).rand(1000, 3)  # the authors' np.random.seed(0); np.random.rand(N, 3)
    assert numpy.array_equal(x0.numpy(), starts / starts.sum(axis=1, keepdims=True))
    assert (x1.sum(-1) - 1).abs().max() <= 1e-13 and (x1 >= 0).all()
    rhs = lambda t, y: [-y[0] * y[1], y[0] * y[1] - y[1], y[1]]  # noqa: E731
    for a, b in zip(x0[:3].numpy(), x1[:3].numpy()):  # the authors' truth: RK45 with rtol = atol = 1e-11
        assert abs(solve_ivp(rhs, (0, 1), a, rtol=1e-11, atol=1e-11).y[:, -1] - b).max() <= 1e-9
    # Not uniform on the simplex: normalised uniform samples avoid the vertices (Dirichlet(1, 1, 1) does not).
    dirichlet, _ = sir_flow_map(1000, seed=0)
    assert float(x0.max()) < float(dirichlet.max())
    with pytest.raises(TypeError, match="n must be an int"):
        sir_flow_map_normalised(2.0)


def test_pendulum_data_conserves_energy_and_matches_small_angle_limit():
    x0, x1 = pendulum_flow_map(300, dt=0.1, seed=0)
    assert x0.shape == (300, 2) and (x0[:, 0].abs() <= 2.5).all() and (x0[:, 1].abs() <= 2.0).all()
    assert (pendulum_energy(x1) - pendulum_energy(x0)).abs().max() <= 1e-10
    small = torch.tensor([[1e-4, 0.0]], dtype=torch.float64)
    path = pendulum_trajectory(small, dt=math.pi / 2, n_steps=4)
    assert abs(float(path[-1, 0, 0]) - 1e-4) <= 1e-10  # period 2 pi for small angles
    assert abs(float(path[1, 0, 0])) <= 1e-8


def test_data_validation():
    with pytest.raises(ValueError, match="T must be a finite number > 0"):
        sir_flow_map(10, T=-1.0)
    with pytest.raises(ValueError, match="last dimension 2"):
        pendulum_energy(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="n must be an int"):
        pendulum_flow_map(2.5)
