"""Property tests of GradientLayer and SpherePreservingLayer (random parameters and inputs, float32 and float64)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import companion
from companion import FlowLayer, GradientField, SpherePreservingField, norm_drift, symmetry_error
from companion.layers import GradientLayer, SpherePreservingLayer, gradient_sphere_network

DTYPES = st.sampled_from([torch.float32, torch.float64])


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize(module: torch.nn.Module, seed: int, scale: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype))


def _points(dim: int, seed: int, dtype: torch.dtype, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(12, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def test_top_level_exports():
    assert companion.GradientLayer is GradientLayer
    assert companion.SpherePreservingLayer is SpherePreservingLayer


@settings(max_examples=30, deadline=None)
@given(
    dim=st.integers(1, 6),
    hidden=st.integers(1, 12),
    h=st.floats(0.01, 2.0),
    sign=st.sampled_from([1, -1]),
    activation=st.sampled_from(["tanh", "sigmoid", "relu"]),
    seed=st.integers(0, 10_000),
    dtype=DTYPES,
)
def test_gradient_layer_jacobian_is_symmetric(dim, hidden, h, sign, activation, seed, dtype):
    layer = GradientLayer(dim, hidden=hidden, h=h, sign=sign, activation=activation).to(dtype)
    _randomize(layer, seed, 1.5)
    x = _points(dim, seed + 1, dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert symmetry_error(layer.field, x) <= tol  # the field is a gradient
    assert symmetry_error(layer, x) <= tol  # so is one Euler step: x +- h grad V = grad(|x|^2/2 +- h V)
    with torch.no_grad():
        y = layer(x)
        expected = (
            x
            + sign
            * float(layer.h)
            * (layer.field.sigma(x @ layer.field.inner.weight.T + layer.field.inner.bias) * layer.field.alpha)
            @ layer.field.inner.weight
        )
    assert y.dtype == dtype and y.shape == x.shape
    assert (y - expected).abs().max() <= (1e-12 if dtype == torch.float64 else 1e-5) * (1 + float(y.abs().max()))


def test_gradient_field_is_the_gradient_of_its_potential():
    field = GradientField(3, 7, sign=-1).double()
    x = _points(3, 0, torch.float64).requires_grad_(True)
    (auto,) = torch.autograd.grad(field.potential(x).sum(), x)
    assert (auto - field(x)).abs().max() < 1e-13


def test_plain_resnet_field_is_not_symmetric():
    # the check can fail: an MLP field's Jacobian B diag(sigma') A is not symmetric
    field = companion.MLPField(3, 8).double()
    _randomize(field, 0, 1.0)
    assert symmetry_error(field, _points(3, 1, torch.float64)) > 1e-2


RANKS = st.sampled_from([None, 1, 2, 3])  # None: the full family; an int: S = U V^T - V U^T


@settings(max_examples=60, deadline=None)
@given(
    dim=st.integers(2, 6),
    hidden=st.integers(1, 12),
    h=st.floats(0.01, 5.0),
    method=st.sampled_from(["cayley", "exp", "rotation"]),
    rank=RANKS,
    n_steps=st.integers(1, 3),
    scale=st.floats(0.1, 3.0),
    seed=st.integers(0, 10_000),
    dtype=DTYPES,
)
def test_sphere_layer_keeps_the_norm(dim, hidden, h, method, rank, n_steps, scale, seed, dtype):
    layer = SpherePreservingLayer(dim, hidden=hidden, h=h, method=method, n_steps=n_steps, rank=rank).to(dtype)
    _randomize(layer, seed, scale)
    x = _points(dim, seed + 1, dtype, scale)
    with torch.no_grad():
        size = 1.0 + h * float(torch.linalg.matrix_norm(layer.field.skew(x), ord=2).max())
    factor = 500  # float32 rounding grows with ||hS|| (a fresh run met 6.8e-4 at ||hS|| = 37 against 2.3e-4 for 50)
    assert norm_drift(layer, x) <= factor * n_steps * torch.finfo(dtype).eps * size  # rounding, growing with ||hS||
    y = layer(x)
    assert y.dtype == dtype and y.shape == x.shape


@settings(max_examples=100, deadline=None)
@given(
    dim=st.integers(2, 8),
    hidden=st.integers(1, 16),
    rank=st.integers(1, 3),
    h=st.floats(0.01, 3.0),
    method=st.sampled_from(["cayley", "exp", "rotation"]),
    scale=st.floats(0.1, 2.0),
    seed=st.integers(0, 10_000),
)
def test_default_low_rank_layer_keeps_the_norm_to_1e12_in_float64(dim, hidden, rank, h, method, scale, seed):
    # relative norm error <= 1e-13 (1e-12 for the exponential) times 1 + ||h S||: rounding, never the method
    layer = SpherePreservingLayer(dim, hidden=hidden, h=h, method=method, rank=rank).double()
    _randomize(layer, seed, scale)
    x = _points(dim, seed + 1, torch.float64, scale)
    with torch.no_grad():
        size = 1.0 + h * float(torch.linalg.matrix_norm(layer.field.skew(x), ord=2).max())
    assert norm_drift(layer, x) <= (1e-12 if method == "exp" else 1e-13) * size


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(2, 7), rank=st.integers(1, 3), h=st.floats(0.01, 3.0), seed=st.integers(0, 10_000))
def test_low_rank_field_is_skew_times_x_and_its_steps_are_the_full_steps(dim, rank, h, seed):
    # the theory of the Presnov chapter holds for the fast family: S(x) skew, X(x) = S(x) x, and the Woodbury
    # forms of the Cayley and exponential steps are the dim x dim ones
    layer = SpherePreservingLayer(dim, hidden=6, rank=rank, h=h).double()
    _randomize(layer, seed, 1.0)
    x = _points(dim, seed + 1, torch.float64)
    with torch.no_grad():
        S = layer.field.skew(x)
        assert torch.equal(S, -S.transpose(-1, -2))
        assert (layer.field(x) - (S @ x.unsqueeze(-1)).squeeze(-1)).abs().max() < 1e-13
        U, V = layer.field.factors(x)
        for low_rank_step, full_step in (
            (companion.low_rank_cayley_step, companion.cayley_step),
            (companion.low_rank_exp_step, companion.exp_step),
        ):
            gap = (low_rank_step(U, V, x, h) - full_step(S, x, h)).abs().max()
            assert gap < 1e-12 * (1 + float(torch.linalg.matrix_norm(h * S, ord=2).max()))


def test_explicit_euler_of_the_same_field_drifts():
    # the reason for the norm-exact step: ||x + h S x||^2 = ||x||^2 + h^2 ||S x||^2
    field = SpherePreservingField(3, 8).double()
    _randomize(field, 0, 1.0)
    x = _points(3, 1, torch.float64)
    euler = FlowLayer(field, h=0.5)
    cayley = SpherePreservingLayer(3, hidden=8, h=0.5, rank=None).double()
    cayley.field.load_state_dict(field.state_dict())
    assert norm_drift(euler, x) > 1e-3
    assert norm_drift(cayley, x) < 1e-14
    with torch.no_grad():
        assert (euler(x).norm(dim=-1) >= x.norm(dim=-1) - 1e-15).all()


def test_learned_steps_get_gradients_and_stay_positive():
    for layer in (GradientLayer(3, learn_step=True), SpherePreservingLayer(3, learn_step=True)):
        layer = layer.double()
        layer(_points(3, 0, torch.float64)).pow(2).sum().backward()
        assert layer.raw_h.grad is not None and torch.isfinite(layer.raw_h.grad)
        with torch.no_grad():
            layer.raw_h.fill_(-0.3)
        assert float(layer.h) == pytest.approx(0.3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_network_builder(dtype):
    net = gradient_sphere_network(1, 1, width=6, depth=2, hidden=5, h=0.2, learn_step=True).to(dtype)
    assert len(net.layers) == 4
    assert isinstance(net.layers[0], GradientLayer) and isinstance(net.layers[1], SpherePreservingLayer)
    x = torch.randn(7, 1, dtype=dtype)
    y = net(x)
    assert y.shape == (7, 1) and y.dtype == dtype
    y.sum().backward()
    # without lifting, the sphere layers of the network keep the norm exactly
    square = gradient_sphere_network(4, 4, width=4, depth=1).to(dtype)
    assert isinstance(square.lift, torch.nn.Identity)
    assert norm_drift(square.layers[1], _points(4, 2, dtype)) <= (1e-14 if dtype == torch.float64 else 2e-6)


def test_validation_errors():
    with pytest.raises(ValueError, match="does not keep norm"):
        SpherePreservingLayer(3, method="euler")
    with pytest.raises(ValueError, match="does not keep norm"):
        gradient_sphere_network(2, 2, width=3, depth=1, method="rk4")
    with pytest.raises(ValueError, match="dim >= 2"):
        SpherePreservingLayer(1)
    with pytest.raises(ValueError, match="sign must be 1 or -1"):
        GradientLayer(3, sign=2)
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        GradientLayer(3, h=0.0)
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        SpherePreservingLayer(3, h=-1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        GradientLayer(3, activation="swish")
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        SpherePreservingLayer(3, n_steps=0)
    with pytest.raises(ValueError, match="last dimension 3"):
        GradientLayer(3)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="last dimension 3"):
        SpherePreservingLayer(3)(torch.randn(2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        SpherePreservingLayer(3)(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="depth must be an int >= 1"):
        gradient_sphere_network(2, 2, width=3, depth=0)
    with pytest.raises(ValueError, match="rank must be an int >= 1"):
        SpherePreservingLayer(3, rank=0)
    with pytest.raises(TypeError, match="rank must be an int"):
        gradient_sphere_network(2, 2, width=3, depth=1, rank=1.5)
    with pytest.raises(ValueError, match="dim >= 2"):
        companion.LowRankSpherePreservingField(1)
    with pytest.raises(TypeError, match="learn_step must be True or False"):
        SpherePreservingLayer(3, learn_step="yes")


def test_loading_refuses_settings_the_layer_cannot_run():
    sphere = SpherePreservingLayer(3, method="exp")
    state = sphere.state_dict()
    state["_extra_state"] = {**state["_extra_state"], "method": "euler"}  # a tampered or foreign checkpoint
    with pytest.raises(ValueError, match="cannot run in place of 'cayley'"):
        SpherePreservingLayer(3).load_state_dict(state)
    state["_extra_state"]["method"] = "rk5"
    with pytest.raises(ValueError, match="unknown saved method 'rk5'"):
        SpherePreservingLayer(3).load_state_dict(state)
    state["_extra_state"] = {**sphere.state_dict()["_extra_state"], "h": -1.0}
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        SpherePreservingLayer(3).load_state_dict(state)
    gradient = GradientLayer(3).state_dict()
    gradient["field._extra_state"] = {"activation": "swish", "sign": 1}
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        GradientLayer(3).load_state_dict(gradient)
    with pytest.raises(ValueError, match="do not name"):
        GradientLayer(3).load_state_dict(SpherePreservingLayer(3, hidden=16).state_dict(), strict=False)
