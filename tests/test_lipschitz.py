"""Tests of companion.lipschitz and companion.robustness: norms are upper bounds, layers are 1-Lipschitz
for every parameter value, certificates hold, the attack works."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import companion
from companion.data import digits
from companion.lipschitz import (
    NonExpansiveConvLayer,
    NonExpansiveLayer,
    NormalizedLinear,
    Standardize,
    SwitchingLayer,
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
from companion.robustness import (
    certificate_check,
    certified_accuracy,
    certified_radius,
    pgd_l2,
    robust_accuracy,
    robustness_curve,
    robustness_report,
)

D = torch.float64


def _randomize(module: nn.Module, seed: int, scale: float) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(2, 8), hidden=st.integers(1, 10),
       scale=st.floats(0.05, 5.0), activation=st.sampled_from(["relu", "leaky_relu", "tanh"]))
def test_nonexpansive_layer_is_one_lipschitz_for_random_weights(seed, dim, hidden, scale, activation):
    layer = _randomize(NonExpansiveLayer(dim, hidden=hidden, activation=activation, negative_slope=0.3), seed, scale).to(D)
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


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 5.0), mode=st.sampled_from(["zeros", "circular"]))
def test_conv_layer_is_one_lipschitz_for_random_weights(seed, scale, mode):
    layer = _randomize(NonExpansiveConvLayer(2, hidden_channels=3, padding_mode=mode), seed, scale).to(D)
    flat = lambda z: layer(z.reshape(-1, 2, 5, 5)).flatten(1)  # noqa: E731
    x = torch.randn(10, 50, generator=torch.Generator().manual_seed(seed), dtype=D)
    assert companion.jacobian_spectral_norm(flat, x) <= 1 + 1e-6


def test_step_condition_is_enforced_and_sharp():
    layer = NonExpansiveLayer(3, step=50.0).to(D)
    assert float(layer.step().detach()) == pytest.approx(2 / float(dense_operator_norm(layer.weight.detach())) ** 2, rel=1e-12)
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


def test_certified_radius_formula():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.5, 0.2]], dtype=D)
    radius = certified_radius(logits, lipschitz=2.0)
    assert torch.allclose(radius, torch.tensor([2.0, 0.3], dtype=D) / (2 * math.sqrt(2)))


def test_certificate_holds_and_attack_finds_examples_outside():
    torch.manual_seed(0)
    model = nn.Sequential(NormalizedLinear(2, 2, bias=True)).to(D)
    x = torch.rand(64, 2, generator=torch.Generator().manual_seed(0), dtype=D)
    labels = model(x).argmax(1)
    attempts, found = certificate_check(model, x, labels, lipschitz=1.0, steps=30, restarts=1)
    assert attempts == 64 and found == 0
    # a linear classifier is fooled exactly beyond its distance to the boundary: m / ||w_1 - w_0|| <= sqrt(2) r
    w = model[0].normalized_weight()
    distance = (model(x).max(1).values - model(x).min(1).values) / (w[0] - w[1]).norm()
    eps = float(distance.max()) * 1.05
    _, fooled = pgd_l2(model, x, labels, epsilon=eps, steps=50, bounds=None)
    assert bool(fooled[distance.argmax()])


def test_attack_on_digits_beats_random_noise_and_is_monotone():
    (xtr, ytr), (xte, yte) = digits(seed=0)
    torch.manual_seed(0)  # the model is initialised from the global generator
    model = companion.mlp(64, 10, width=32, depth=1, activation="relu")
    companion.fit(model, (xtr, ytr), epochs=8, lr=5e-3, loss="cross_entropy", progress=False)
    x, y = xte[:200], yte[:200]
    clean = companion.accuracy(model, x, y)
    curve = robustness_curve(model, x, y, [0.0, 0.5, 1.0, 2.0], steps=20)
    assert curve[0] == pytest.approx(clean)
    assert all(a >= b for a, b in zip(curve, curve[1:]))
    assert curve[2] < clean - 0.3
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = (x + 1.0 * noise / noise.norm(dim=1, keepdim=True)).clamp(0, 1)
    assert companion.accuracy(model, noisy, y) > curve[2] + 0.2
    adversarial, fooled = pgd_l2(model, x, y, epsilon=1.0, steps=20)
    assert float((adversarial - x).norm(dim=1).max()) <= 1.0 + 1e-5
    assert float(adversarial.min()) >= 0.0 and float(adversarial.max()) <= 1.0
    report = robustness_report(model, x, y, epsilon=1.0, steps=20)
    assert report.certified is None and report.attacked == pytest.approx(curve[2], abs=0.02)


def test_digits_data():
    (xtr, ytr), (xte, yte) = digits(seed=0, test_fraction=0.25)
    assert xtr.shape[1] == 64 and len(xtr) + len(xte) == 1797 and len(xte) == 449
    assert float(xtr.min()) == 0.0 and float(xtr.max()) == 1.0 and ytr.dtype == torch.int64
    (xi, _), _ = digits(seed=0, image=True, dtype=torch.float64)
    assert xi.shape[1:] == (1, 8, 8) and xi.dtype == D
    assert torch.equal(digits(seed=3)[1][1], digits(seed=3)[1][1])


def test_validation_errors():
    with pytest.raises(ValueError, match="activation"):
        NonExpansiveLayer(3, activation="sigmoid")
    with pytest.raises(ValueError, match="negative_slope"):
        NonExpansiveLayer(3, activation="leaky_relu", negative_slope=2.0)
    with pytest.raises(ValueError, match="step"):
        NonExpansiveLayer(3, step=0.0)
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
    with pytest.raises(ValueError, match="lipschitz"):
        certified_radius(torch.zeros(2, 3), lipschitz=0.0)
    model = nn.Linear(2, 2)
    x, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        pgd_l2(model, x, y, epsilon=-1.0)
    with pytest.raises(ValueError, match="loss"):
        pgd_l2(model, x, y, epsilon=1.0, loss="hinge")
    with pytest.raises(ValueError, match="restarts"):
        pgd_l2(model, x, y, epsilon=1.0, restarts=-1)
    with pytest.raises(ValueError, match="same length"):
        robust_accuracy(model, x, y[:2], epsilon=1.0)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        certified_accuracy(model, x, y, lipschitz=1.0, epsilon=-0.1)
    with pytest.raises(ValueError, match="fraction"):
        certificate_check(model, x, y, lipschitz=1.0, fraction=1.5)
