"""Mass and non-negativity together: the exponential exit step and the layers built on it.

The guarantee is checked exactly: outputs are >= 0 with no tolerance (float64 and float32), for random
parameters, huge steps, states on the boundary of the simplex and long rollouts; the mass to rounding.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import companion
from companion.structured import (
    EXPONENTIAL_EXIT,
    CompartmentalField,
    MassPreservingLayer,
    PositiveMassPreservingLayer,
    exponential_exit_step,
    positive_mass_network,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster and steadier

DRAWS = settings(max_examples=150, deadline=None)
seeds = st.integers(0, 2**31 - 1)
log_steps = st.floats(-3.0, 3.0)  # h = 10**log_step, from 1e-3 to 1e3
scales = st.floats(0.1, 5.0)
activations = st.sampled_from(["tanh", "sigmoid", "relu"])


def _randomise(module: torch.nn.Module, seed: int, scale: float, dtype: torch.dtype) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return module.to(dtype)


def _boundary_states(seed: int, n: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Points of the simplex, about half of their entries exactly zero (faces, edges and vertices), and scaled copies."""
    gen = torch.Generator().manual_seed(seed + 1)
    x = -torch.log(torch.rand(n, dim, generator=gen, dtype=torch.float64))
    x = x * (torch.rand(n, dim, generator=gen, dtype=torch.float64) < 0.5)
    x[torch.arange(n), torch.randint(dim, (n,), generator=gen)] += 1.0  # at least one non-zero entry
    x = x / x.sum(-1, keepdim=True)
    x[: n // 4] *= 1e3  # large totals as well
    x[n // 4 : n // 2] *= 1e-6  # and tiny ones
    return x.to(dtype)


# ---------------------------------------------------------------- the step itself
@DRAWS
@given(seed=seeds, dim=st.integers(2, 8), log_h=log_steps, log_rate=st.floats(-3.0, 3.0), zeros=st.floats(0.0, 0.8))
def test_exit_step_keeps_sign_exactly_and_mass_to_rounding(seed, dim, log_h, log_rate, zeros):
    gen = torch.Generator().manual_seed(seed)
    rates = 10**log_rate * torch.rand(16, dim, dim, generator=gen, dtype=torch.float64) ** 3
    rates = rates * (torch.rand(16, dim, dim, generator=gen, dtype=torch.float64) >= zeros)  # some rates exactly 0
    x = _boundary_states(seed, 16, dim, torch.float64)
    y = exponential_exit_step(rates, x, 10**log_h)
    assert (y >= 0).all()
    assert ((y.sum(-1) - x.sum(-1)).abs() <= 1e-14 * dim * x.sum(-1)).all()


def test_exit_step_is_first_order_consistent_with_the_field():
    torch.manual_seed(0)
    field = CompartmentalField(4, 8).double()
    x = torch.rand(10, 4, dtype=torch.float64)
    errors = []
    for h in (1e-2, 5e-3):
        step = exponential_exit_step(field.rates(x), x, h)
        errors.append(float((step - x - h * field(x)).abs().max()))
    assert 3.6 < errors[0] / errors[1] < 4.4  # local error O(h^2)


def test_explicit_euler_of_the_same_field_goes_negative():
    """The reason for the exit step: Euler keeps the sum but empties a compartment past zero when h * outflow > 1."""
    torch.manual_seed(0)
    field = CompartmentalField(3, 8).double()
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)  # all the mass in compartment 0
    h = 2.0 / float(field.rates(x).sum(-1)[0, 0])  # twice the time it takes Euler to empty it
    euler = x + h * field(x)
    exit_step = exponential_exit_step(field.rates(x), x, h)
    assert euler.min() < 0 and abs(float(euler.sum() - 1)) < 1e-14
    assert exit_step.min() >= 0 and abs(float(exit_step.sum() - 1)) < 1e-14


@DRAWS
@given(seed=seeds, dim=st.integers(2, 6), hidden=st.integers(1, 8), scale=scales, activation=activations)
def test_compartmental_field_keeps_sum_and_points_inward_on_the_boundary(seed, dim, hidden, scale, activation):
    field = _randomise(CompartmentalField(dim, hidden, activation=activation), seed, scale, torch.float64)
    x = _boundary_states(seed, 16, dim, torch.float64)
    with torch.no_grad():
        rates, value = field.rates(x), field(x)
    assert (rates >= 0).all() and (rates.diagonal(dim1=-2, dim2=-1) == 0).all()
    assert (value.sum(-1).abs() <= 1e-12 * (1 + x.sum(-1)) * (1 + rates.sum((-1, -2)))).all()
    assert (value[x == 0] >= 0).all()  # the flow cannot leave the cone x >= 0


# ---------------------------------------------------------------- the layer and the network
@DRAWS
@given(
    seed=seeds,
    dim=st.integers(2, 8),
    hidden=st.integers(1, 8),
    log_h=log_steps,
    n_steps=st.integers(1, 3),
    scale=scales,
    activation=activations,
)
def test_layer_keeps_sign_and_mass_float64(seed, dim, hidden, log_h, n_steps, scale, activation):
    layer = PositiveMassPreservingLayer(dim, hidden=hidden, h=10**log_h, n_steps=n_steps, activation=activation)
    layer = _randomise(layer, seed, scale, torch.float64)
    x = _boundary_states(seed, 32, dim, torch.float64)
    with torch.no_grad():
        y = layer(x)
    assert (y >= 0).all()
    assert ((y.sum(-1) - x.sum(-1)).abs() <= 1e-13 * x.sum(-1)).all()


@settings(max_examples=40, deadline=None)
@given(seed=seeds, dim=st.integers(2, 6), log_h=log_steps, scale=scales)
def test_long_rollouts_from_the_boundary_stay_non_negative(seed, dim, log_h, scale):
    layer = _randomise(PositiveMassPreservingLayer(dim, hidden=6, h=10**log_h), seed, scale, torch.float64)
    x0 = _boundary_states(seed, 16, dim, torch.float64)
    x = x0
    with torch.no_grad():
        for _ in range(500):
            x = layer(x)
            assert (x >= 0).all()
    assert ((x.sum(-1) - x0.sum(-1)).abs() <= 1e-12 * x0.sum(-1)).all()


@settings(max_examples=100, deadline=None)
@given(seed=seeds, dim=st.integers(2, 6), log_h=log_steps, scale=scales)
def test_layer_keeps_sign_float32(seed, dim, log_h, scale):
    layer = _randomise(PositiveMassPreservingLayer(dim, hidden=5, h=10**log_h, n_steps=2), seed, scale, torch.float32)
    x = _boundary_states(seed, 32, dim, torch.float32)
    with torch.no_grad():
        y = layer(x)
    assert (y >= 0).all()
    assert ((y.sum(-1) - x.sum(-1)).abs() <= 1e-5 * x.sum(-1)).all()


@settings(max_examples=25, deadline=None)
@given(seed=seeds, scale=scales)
def test_network_keeps_sign_and_mass_across_widths(seed, scale):
    net = _randomise(positive_mass_network((3, 6, 6, 9, 3), layers_per_block=2, hidden=5), seed, scale, torch.float64)
    x = _boundary_states(seed, 32, 3, torch.float64)
    with torch.no_grad():
        y = x
        for _ in range(50):
            y = net(y)
            assert (y >= 0).all()
    assert y.shape == (32, 3)
    assert ((y.sum(-1) - x.sum(-1)).abs() <= 1e-12 * x.sum(-1)).all()


def test_mass_only_layer_can_go_negative():
    """The contrast of the chapter: random mass-preserving (skew) layers keep the sum but not the sign."""
    torch.manual_seed(0)
    layer = MassPreservingLayer(3, h=1.0).double()
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        y = layer(x)
    assert y.min() < 0 and (y.sum(-1) - 1).abs().max() < 1e-14


def test_learned_step_gets_a_gradient_and_moves_the_state():
    layer = PositiveMassPreservingLayer(4, h=0.5, learn_step=True).double()
    x = torch.rand(6, 4, dtype=torch.float64)
    layer(x).square().sum().backward()
    assert layer.raw_h.grad is not None and torch.isfinite(layer.raw_h.grad)
    assert (layer(x) - x).abs().max() > 1e-3
    assert layer.method is EXPONENTIAL_EXIT


def test_gradients_are_finite_where_rates_vanish():
    layer = PositiveMassPreservingLayer(3, hidden=4, h=0.5).double()
    with torch.no_grad():
        layer.field.outer.bias.fill_(-800.0)  # softplus underflows: every rate is exactly 0
    x = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert torch.equal(y, x.detach())
    y.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters()) and torch.isfinite(x.grad).all()


# ---------------------------------------------------------------- validation
def test_positive_layer_validation():
    with pytest.raises(ValueError, match="does not keep non-negativity .*use 'exponential_exit'"):
        PositiveMassPreservingLayer(3, method="euler")
    with pytest.raises(ValueError, match="does not keep non-negativity"):
        PositiveMassPreservingLayer(3, method=companion.RK4)
    with pytest.raises(ValueError, match="unknown method 'patankar'"):
        PositiveMassPreservingLayer(3, method="patankar")
    with pytest.raises(TypeError, match="method must be a method of companion.integrators"):
        PositiveMassPreservingLayer(3, method=1)
    with pytest.raises(ValueError, match="dim >= 2 compartments"):
        PositiveMassPreservingLayer(1)
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        PositiveMassPreservingLayer(3, h=-1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        PositiveMassPreservingLayer(3, activation="gelu")
    with pytest.raises(ValueError, match="last dimension 3"):
        PositiveMassPreservingLayer(3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"rates must have shape \(\.\.\., 3, 3\)"):
        exponential_exit_step(torch.zeros(2, 3, 2), torch.zeros(2, 3), 0.1)
    with pytest.raises(ValueError, match="at least one block"):
        positive_mass_network((3, 3))
