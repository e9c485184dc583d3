"""Tests of companion.lipschitz (and companion.lipschitz.operator_norms, companion.lipschitz.switching): norms are upper bounds,
layers are 1-Lipschitz for every parameter value, and every layer works under torch.compile and torch.func,
shows its settings and restores them from a state dict."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import companion
from companion.lipschitz import (
    NonExpansiveConvLayer,
    NonExpansiveLayer,
    NormalizedLinear,
    Standardize,
    SwitchingLayer,
    admissible_expansive_step,
    conv2d_same,
    conv2d_same_adjoint,
    conv_operator_norm,
    conv_power_iteration,
    dense_operator_norm,
    network_lipschitz_bound,
    periodic_conv_operator_norm,
    reshaped_kernel_norm,
    switching_lipschitz_bound,
)
from companion.lipschitz.switching import _orthogonal

pytestmark = pytest.mark.usefixtures("one_thread")

D = torch.float64


def _randomize(module: nn.Module, seed: int, scale: float) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    dim=st.integers(2, 8),
    hidden=st.integers(1, 10),
    scale=st.floats(0.05, 5.0),
    activation=st.sampled_from(["relu", "leaky_relu", "tanh"]),
)
def test_nonexpansive_layer_is_one_lipschitz_for_random_weights(seed, dim, hidden, scale, activation):
    layer = NonExpansiveLayer(dim, hidden=hidden, activation=activation, negative_slope=0.3)
    layer = _randomize(layer, seed, scale).to(D)
    x = torch.randn(40, dim, generator=torch.Generator().manual_seed(seed + 1), dtype=D) * 3
    assert companion.jacobian_spectral_norm(layer, x) <= 1 + 1e-6
    assert companion.lipschitz_lower_bound(layer, x, n_pairs=300, seed=seed) <= 1 + 1e-9


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(2, 6), scale=st.floats(0.05, 5.0))
def test_switching_layer_is_one_lipschitz_for_random_weights(seed, dim, scale):
    layer = _randomize(SwitchingLayer(dim), seed, scale).to(D)
    x = torch.randn(30, dim, generator=torch.Generator().manual_seed(seed + 1), dtype=D) * 3
    assert layer.lipschitz_bound() <= 1 + 1e-12
    assert companion.jacobian_spectral_norm(layer, x) <= 1 + 1e-6
    assert companion.lipschitz_lower_bound(layer, x, n_pairs=300, seed=seed) <= 1 + 1e-9


@pytest.mark.parametrize("scale", [1e3, 1e5, 1e6, 1e9, 1e30])
def test_switching_layer_stays_one_lipschitz_in_float32_at_huge_weights(scale):
    """The float32 exponential of a large skew matrix is not orthogonal (norm 1.3 at 1e5, 5 at 1e6, inf beyond);
    the layer's matrices must be, for every parameter value, and pairs must not stretch beyond the bound."""
    layer = _randomize(SwitchingLayer(16), 0, 1.0)
    with torch.no_grad():
        layer.raw_expansive.mul_(scale)
        layer.raw_contractive.mul_(scale)
        layer.raw_h_expansive.fill_(1e3)
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(1)) * 3
    for raw in (layer.raw_expansive, layer.raw_contractive):
        assert float(torch.linalg.matrix_norm(_orthogonal(raw), 2)) <= 1 + 1e-5
    bound = layer.lipschitz_bound()
    assert bound <= 1 + 1e-6
    assert companion.lipschitz_lower_bound(layer, x, n_pairs=2000, seed=0) <= bound * (1 + 1e-4)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 5.0), mode=st.sampled_from(["zeros", "circular"]))
def test_conv_layer_is_one_lipschitz_for_random_weights(seed, scale, mode):
    layer = _randomize(NonExpansiveConvLayer(2, hidden_channels=3, padding_mode=mode), seed, scale).to(D)
    flat = lambda z: layer(z.reshape(-1, 2, 5, 5)).flatten(1)  # noqa: E731
    x = torch.randn(10, 50, generator=torch.Generator().manual_seed(seed), dtype=D)
    assert companion.jacobian_spectral_norm(flat, x) <= 1 + 1e-6


def test_step_condition_is_enforced_and_sharp():
    layer = NonExpansiveLayer(3, h=50.0).to(D)
    norm = float(dense_operator_norm(layer.weight.detach()))
    assert float(layer.step().detach()) == pytest.approx(2 / norm**2, rel=1e-12)
    # a linear layer (relu on a positive region) at h = 2/||A||^2 has an eigenvalue -1: the bound is sharp
    with torch.no_grad():
        layer.weight.copy_(torch.diag(torch.tensor([2.0, 1.0, 0.5], dtype=D)))
        layer.bias.fill_(100.0)
    x = torch.zeros(1, 3, dtype=D)
    assert companion.jacobian_spectral_norm(layer, x) == pytest.approx(1.0, abs=1e-12)


def test_dense_norm_is_exact():
    w = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=D)
    assert float(dense_operator_norm(w)) == pytest.approx(float(torch.linalg.svdvals(w)[0]), rel=1e-12)


def _conv_matrix(weight, size, mode):
    c_in = weight.shape[1]
    basis = torch.eye(c_in * size * size, dtype=D).reshape(-1, c_in, size, size)
    return conv2d_same(basis, weight, padding_mode=mode).flatten(1).T


@pytest.mark.parametrize("mode", ["zeros", "circular"])
def test_adjoint_matches_inner_product(mode):
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(3, 2, 3, 3, generator=gen, dtype=D)
    x, z = torch.randn(2, 2, 6, 6, generator=gen, dtype=D), torch.randn(2, 3, 6, 6, generator=gen, dtype=D)
    lhs = (conv2d_same(x, weight, padding_mode=mode) * z).sum()
    rhs = (x * conv2d_same_adjoint(z, weight, padding_mode=mode)).sum()
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-12)


def test_conv_norms_are_bounds_on_twenty_kernels():
    gen = torch.Generator().manual_seed(2)
    for trial in range(20):
        k = (1, 3, 5)[trial % 3]
        size = 4 + trial % 5
        weight = torch.randn(2 + trial % 3, 1 + trial % 2, k, k, generator=gen, dtype=D)
        for mode in ("zeros", "circular"):
            exact = float(torch.linalg.svdvals(_conv_matrix(weight, size, mode))[0])
            bound = float(conv_operator_norm(weight, (size, size), padding_mode=mode))
            estimate = conv_power_iteration(weight, (size, size), padding_mode=mode, iterations=60, seed=trial)
            assert bound >= estimate * (1 - 1e-9)
            assert bound >= exact * (1 - 1e-9)
            assert estimate <= exact * (1 + 1e-9)
            if mode == "circular":
                assert bound == pytest.approx(exact, rel=1e-9)


def test_periodic_norm_wraps_kernels_larger_than_the_image():
    weight = torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(3), dtype=D)
    exact = float(torch.linalg.svdvals(_conv_matrix(weight, 3, "circular"))[0])
    assert float(periodic_conv_operator_norm(weight, (3, 3))) == pytest.approx(exact, rel=1e-9)


def test_reshaped_kernel_norm_is_not_a_bound():
    weight = torch.ones(1, 1, 3, 3, dtype=D)  # the 3x3 box filter: operator norm 9, reshaped norm 3
    assert float(reshaped_kernel_norm(weight)) == pytest.approx(3.0)
    assert float(periodic_conv_operator_norm(weight, (8, 8))) == pytest.approx(9.0)


@pytest.mark.parametrize("h_c, expected", [(0.11, 0.948025), (1.0, 0.75)])
def test_switching_region(h_c, expected):
    assert switching_lipschitz_bound(h_c, 0.0) == pytest.approx(expected, rel=1e-12)
    assert switching_lipschitz_bound(0.11, 0.05) == pytest.approx(0.99543, abs=1e-5)  # the paper's corner


def test_network_bound_counts_preprocessing():
    net = nn.Sequential(Standardize(0.5, 0.25), NormalizedLinear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[3].weight.copy_(torch.tensor([[3.0, 0, 0], [0, 1.0, 0]]))
    assert network_lipschitz_bound(net) == pytest.approx(4.0 * 3.0, rel=1e-6)
    with pytest.raises(TypeError, match="no Lipschitz bound known"):
        network_lipschitz_bound(nn.Sequential(nn.Conv2d(1, 1, 3)))


def test_validation_errors():
    with pytest.raises(ValueError, match="activation"):
        NonExpansiveLayer(3, activation="sigmoid")
    with pytest.raises(ValueError, match="negative_slope"):
        NonExpansiveLayer(3, activation="leaky_relu", negative_slope=2.0)
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        NonExpansiveLayer(3, h=0.0)
    with pytest.raises(ValueError, match="last dimension 3"):
        NonExpansiveLayer(3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        NonExpansiveConvLayer(2, kernel_size=4)
    with pytest.raises(ValueError, match="padding_mode"):
        NonExpansiveConvLayer(2, padding_mode="reflect")
    with pytest.raises(ValueError, match="channels"):
        NonExpansiveConvLayer(2)(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="contractive_range"):
        SwitchingLayer(3, contractive_range=(0.5, 2.5))
    with pytest.raises(TypeError, match="input_size"):
        conv_operator_norm(torch.zeros(1, 1, 3, 3), 8)
    with pytest.raises(ValueError, match="slope"):
        SwitchingLayer(3, slope=0.0)
    with pytest.raises(TypeError, match="contractive_range"):
        SwitchingLayer(3, contractive_range=0.5)
    with pytest.raises(ValueError, match="std must be > 0"):
        Standardize(0.0, torch.tensor([1.0, 0.0]))


def test_admissible_region_edge():
    # the upper edge h_E(h_C) makes the product bound exactly 1, and is highest at h_C = a S
    for h_c in (0.11, 0.5, 1.0, 1.89):
        assert switching_lipschitz_bound(h_c, admissible_expansive_step(h_c)) == pytest.approx(1.0, rel=1e-12)
    assert admissible_expansive_step(1.0) == pytest.approx(1 / 0.75 - 1, rel=1e-12)
    assert admissible_expansive_step(1.0) > max(admissible_expansive_step(h) for h in (0.9, 1.1))


# -- every layer under torch.compile and torch.func, with its settings in repr and in the state dict --


def _layers():
    """(name, factory, input shape) for every layer class of the module, with non-default settings."""
    return [
        ("dense", lambda: NonExpansiveLayer(5, hidden=7, h=10.0, activation="leaky_relu", negative_slope=0.2), (6, 5)),
        ("dense-fixed-step", lambda: NonExpansiveLayer(5, h=0.3, activation="tanh", learn_step=False), (6, 5)),
        ("conv", lambda: NonExpansiveConvLayer(2, hidden_channels=3, h=10.0), (3, 2, 5, 5)),
        ("conv-circular", lambda: NonExpansiveConvLayer(2, padding_mode="circular", activation="tanh"), (3, 2, 5, 5)),
        ("switching", lambda: SwitchingLayer(4, contractive_range=(0.2, 1.5), slope=0.4, n_steps=3), (6, 4)),
        ("normalized-linear", lambda: NormalizedLinear(4, 3), (6, 4)),
        ("standardize", lambda: Standardize(0.5, 0.25), (6, 4)),
        ("classifier", lambda: companion.lipschitz_classifier(6, 3, width=5, depth=2, kind="switching"), (6, 6)),
    ]


LAYERS = _layers()
IDS = [name for name, _, _ in LAYERS]


def _scrambled(factory, seed):
    torch.manual_seed(seed)
    return _randomize(factory(), seed, 0.7)


@pytest.mark.parametrize("name, factory, shape", LAYERS, ids=IDS)
def test_vmap_jacrev_and_fullgraph_capture(name, factory, shape):
    layer = _scrambled(factory, 1)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    jac = torch.func.vmap(torch.func.jacrev(layer))(x)
    reference = torch.autograd.functional.jacobian(lambda z: layer(z[None])[0], x[0])
    assert torch.allclose(jac[0], reference, atol=1e-5)
    # one graph, no data-dependent Python branching (eager backend: only the capture is tested here)
    captured = torch.compile(layer, fullgraph=True, backend="eager")
    assert torch.equal(captured(x), layer(x))


def _compiled_agrees(layer: nn.Module, x: torch.Tensor) -> None:
    torch._dynamo.reset()
    with torch.no_grad():
        eager, compiled = layer(x), torch.compile(layer, fullgraph=True)(x)
    assert torch.allclose(compiled, eager, rtol=1e-5, atol=1e-5 * float(eager.abs().max()))


def test_inductor_agrees_with_eager_on_a_chain_of_dense_layers():
    torch.manual_seed(3)
    chain = nn.Sequential(
        Standardize(0.3, 0.4),
        NormalizedLinear(6, 5),
        NonExpansiveLayer(5, hidden=7, h=10.0),
        SwitchingLayer(5, slope=0.4, n_steps=3),
        NonExpansiveLayer(5, activation="tanh"),
        NormalizedLinear(5, 3),
    )
    _compiled_agrees(_randomize(chain, 3, 0.7), torch.randn(8, 6, generator=torch.Generator().manual_seed(4)))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["zeros", "circular"])
def test_inductor_agrees_with_eager_on_the_conv_layer(mode):
    layer = _randomize(NonExpansiveConvLayer(2, hidden_channels=3, padding_mode=mode, h=10.0), 5, 0.7)
    _compiled_agrees(layer, torch.randn(3, 2, 6, 6, generator=torch.Generator().manual_seed(6)))


@pytest.mark.parametrize("name, factory, shape", LAYERS, ids=IDS)
def test_state_dict_round_trip_restores_settings(name, factory, shape):
    saved = _scrambled(factory, 5)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(6))
    buffer = io.BytesIO()
    torch.save(saved.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    loaded = _default_like(saved)
    loaded.load_state_dict(state)
    assert repr(loaded) == repr(saved)
    assert torch.equal(loaded(x), saved(x))


def _default_like(module: nn.Module) -> nn.Module:
    """A module of the same sizes built with the default settings (what a user loading a checkpoint may build)."""
    if isinstance(module, NonExpansiveLayer):
        return NonExpansiveLayer(module.dim, hidden=module.weight.shape[0], learn_step=module.learn_step)
    if isinstance(module, NonExpansiveConvLayer):
        hidden = module.weight.shape[0]
        return NonExpansiveConvLayer(module.channels, hidden_channels=hidden, learn_step=module.learn_step)
    if isinstance(module, SwitchingLayer):
        return SwitchingLayer(module.dim)
    if isinstance(module, Standardize):
        return Standardize(0.0, 1.0)
    if isinstance(module, NormalizedLinear):
        return NormalizedLinear(module.in_features, module.out_features)
    return companion.lipschitz_classifier(6, 3, width=5, depth=2, kind="switching")


def test_repr_shows_fixed_settings():
    assert "activation='tanh'" in repr(NonExpansiveLayer(3, activation="tanh"))
    assert "padding_mode='circular'" in repr(NonExpansiveConvLayer(2, padding_mode="circular"))
    text = repr(SwitchingLayer(3, contractive_range=(0.2, 1.5), slope=0.4, n_steps=3))
    assert "contractive_range=(0.2, 1.5)" in text and "slope=0.4" in text and "n_steps=3" in text
    assert "mean=0.5, std=0.25" in repr(Standardize(0.5, 0.25))


def test_loading_invalid_settings_is_refused():
    layer = SwitchingLayer(3)
    state = layer.state_dict()
    state["_extra_state"] = {"contractive_range": (0.5, 3.0), "slope": 0.5, "n_steps": 2}
    with pytest.raises(ValueError, match="contractive_range"):
        layer.load_state_dict(state)
    state["_extra_state"] = {"slope": 0.5}
    with pytest.raises(ValueError, match="saved settings"):
        layer.load_state_dict(state)
    standardize = Standardize(0.0, 1.0)
    with pytest.raises(ValueError, match="std must be > 0"):
        standardize.load_state_dict({"mean": torch.tensor(0.0), "std": torch.tensor(-1.0)})


def test_a_head_with_rows_normalised_one_by_one_is_counted_at_its_spectral_norm():
    torch.manual_seed(3)
    head = nn.Linear(16, 10)
    with torch.no_grad():
        head.weight.copy_(head.weight / head.weight.norm(dim=1, keepdim=True))
    bound = companion.network_lipschitz_bound(head)
    assert bound == pytest.approx(float(torch.linalg.matrix_norm(head.weight, ord=2)), rel=1e-6)
    assert 1.0 < bound <= 10**0.5 + 1e-6  # each logit 1-Lipschitz, the vector of logits not


def test_conv_norm_gradient_exists_for_near_orthogonal_kernels_and_matches_the_svd_where_it_converges():
    from companion.lipschitz import operator_norms

    torch.manual_seed(0)
    small = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: operator_norms.periodic_conv_operator_norm(w, (6, 6)), (small,))
    blocks = torch.fft.fft2(torch.nn.functional.pad(small, (0, 3, 0, 3))).permute(2, 3, 0, 1)
    reference = torch.linalg.matrix_norm(blocks, ord=2).max()
    (expected,) = torch.autograd.grad(reference, small)
    (got,) = torch.autograd.grad(operator_norms.periodic_conv_operator_norm(small, (6, 6)), small)
    torch.testing.assert_close(got, expected)
    # A delta-orthogonal start (every frequency block the same orthogonal matrix, all singular values equal): the
    # full SVD that matrix_norm's backward needs may not converge on such blocks; the norm's gradient still exists.
    kernel = torch.zeros(64, 64, 3, 3)
    kernel[:, :, 1, 1] = torch.linalg.qr(torch.randn(64, 64)).Q
    kernel = (kernel + 1e-7 * torch.randn_like(kernel)).requires_grad_(True)
    value = companion.conv_operator_norm(kernel, (8, 8))
    (gradient,) = torch.autograd.grad(value, kernel)
    assert abs(float(value) - 1) < 1e-4 and torch.isfinite(gradient).all() and gradient.abs().sum() > 0


@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1.0, 1e15])
def test_conv_norm_gradient_is_scale_invariant_from_tiny_to_huge_kernels(scale):
    torch.manual_seed(1)
    base = torch.randn(3, 3, 3, 3)
    unit = base.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(companion.conv_operator_norm(unit, (8, 8)), unit)
    kernel = (base * scale).requires_grad_(True)
    value = companion.conv_operator_norm(kernel, (8, 8))
    (gradient,) = torch.autograd.grad(value, kernel)
    assert torch.isfinite(value) and torch.isfinite(gradient).all()
    torch.testing.assert_close(gradient, reference, rtol=1e-4, atol=1e-6)  # the gradient of a norm is 0-homogeneous
