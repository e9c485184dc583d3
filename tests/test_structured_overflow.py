"""Mass layers at the edge of the float range: rates that overflow, infinite rates, weights far beyond the state.

``PositiveMassPreservingLayer`` keeps the sign exactly and the mass to a few units of roundoff *of the mass*, for
every parameter value (an output bias of 3e38 used to send the sum from 10 to 0, an infinite rate to NaN).
``MassPreservingLayer`` keeps the mass in exact arithmetic only; in floating point its drift is bounded by the
rounding of the field's terms, as its docstring states, and that bound is checked here.
"""

from __future__ import annotations

import pytest
import torch

from companion.structured import MassPreservingLayer, PositiveMassPreservingLayer, exponential_exit_step

pytestmark = pytest.mark.usefixtures("one_thread")

DTYPES = [torch.float32, torch.float64]


def _unit_roundoff(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps / 2


def _states(n: int, dim: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Non-negative states of mass 10, some entries exactly 0."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=generator, dtype=torch.float64)
    x = x * (torch.rand(n, dim, generator=generator, dtype=torch.float64) < 0.7)
    x[:, 0] += 0.1
    return (10 * x / x.sum(1, keepdim=True)).to(dtype)


def _assert_sign_and_mass(y: torch.Tensor, x: torch.Tensor, sub_steps: int) -> None:
    dim, u = x.shape[-1], _unit_roundoff(x.dtype)
    assert bool(torch.isfinite(y).all()) and bool((y >= 0).all())
    drift = (y.double().sum(-1) - x.double().sum(-1)).abs()
    assert bool((drift <= sub_steps * (2 * dim + 6) * u * x.double().sum(-1)).all()), float(drift.max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [1e10, 1e30, 3e38, float("inf"), -1e30])
@pytest.mark.parametrize("n_steps", [1, 3])
def test_positive_layer_keeps_mass_when_rates_overflow(dtype, bias, n_steps):
    torch.manual_seed(0)
    layer = PositiveMassPreservingLayer(5, h=0.1, n_steps=n_steps).to(dtype)
    with torch.no_grad():
        layer.field.outer.bias.fill_(bias)
    x = _states(64, 5, dtype)
    _assert_sign_and_mass(layer(x), x, n_steps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_positive_layer_with_huge_and_mixed_weights(dtype):
    """Weights drawn over 80 orders of magnitude (every rate from 0 to +inf), and huge steps."""
    generator = torch.Generator().manual_seed(1)
    for trial in range(20):
        layer = PositiveMassPreservingLayer(4, h=10.0 ** (trial % 7 - 3), n_steps=2).to(dtype)
        with torch.no_grad():
            for p in layer.parameters():
                exponents = torch.randint(-40, 40, p.shape, generator=generator).double()
                signs = torch.where(torch.rand(p.shape, generator=generator) < 0.5, -1.0, 1.0).double()
                p.copy_((signs * 10.0**exponents).to(dtype))
        x = _states(32, 4, dtype, seed=trial)
        _assert_sign_and_mass(layer(x), x, 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exit_step_with_infinite_and_subnormal_rates(dtype):
    generator = torch.Generator().manual_seed(2)
    info = torch.finfo(dtype)
    values = torch.tensor(
        [0.0, info.tiny * info.eps, info.tiny, 1.0, info.max / 4, info.max, float("inf")], dtype=dtype
    )
    rates = values[torch.randint(len(values), (256, 6, 6), generator=generator)]
    x = _states(256, 6, dtype, seed=3)
    for h in (1e-30, 1e-3, 1.0, 1e30):
        _assert_sign_and_mass(exponential_exit_step(rates, x, h), x, 1)


def test_gradients_stay_finite_when_rates_overflow():
    for bias in (3e38, float("inf")):
        torch.manual_seed(0)
        layer = PositiveMassPreservingLayer(4, h=0.1)
        with torch.no_grad():
            layer.field.outer.bias.fill_(bias)
        x = torch.rand(5, 4, requires_grad=True)
        layer(x).square().sum().backward()
        assert all(bool(torch.isfinite(p.grad).all()) for p in layer.parameters())
        assert bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method, stages", [("euler", 1), ("heun", 2), ("rk4", 4)])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_mass_layer_drift_is_bounded_by_the_field_weights(dtype, method, stages, activation):
    """The docstring's bound: |1^T x+ - 1^T x| <= gamma_(hidden+s+4) (|x|_1 + h sum|b_i| (|M|_1 + |m|_1))."""
    u = _unit_roundoff(dtype)
    for scale in (1.0, 1e3, 1e6, 1e10, 1e20, 1e30):
        torch.manual_seed(0)
        layer = MassPreservingLayer(6, h=0.1, method=method, activation=activation).to(dtype)
        with torch.no_grad():
            for p in layer.field.outer.parameters():
                p.mul_(scale)
            weight, bias = layer.field.effective_weights()
            size = float(weight.double().abs().sum() + bias.double().abs().sum())
            x = _states(128, 6, dtype)
            y = layer(x)
        n = layer.hidden + stages + 4
        allowed = n * u / (1 - n * u) * (x.double().abs().sum(1) + 0.1 * 1.0 * size)  # sum |b_i| = 1
        drift = (y.double().sum(1) - x.double().sum(1)).abs()
        assert bool((drift <= allowed).all()), (scale, float((drift / allowed).max()))
        if dtype == torch.float32 and scale == 1.0:
            assert float(drift.max()) < 1e-5  # ordinary weights: the mass to rounding of the mass
