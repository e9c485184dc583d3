"""Certified radii hold for every parameter value: crafted weights whose inner values are huge and cancel.

The logits-level allowance of ``certified_radius`` follows the size of the logits; these networks keep small
logits and a Lipschitz bound of 1 but make the float32 (or float64) logits wrong by far more. For each, the
problem is shown to be real for the logits-level radii, and the model-level radii
(``network_certified_radius``, ``certified_accuracy``, ``certificate_check``) are checked by direct evaluation:
no point of a fine grid inside a certified ball has another class, and the attack finds nothing inside.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import companion
from companion.lipschitz import (
    NonExpansiveConvLayer,
    NonExpansiveLayer,
    NormalizedLinear,
    Standardize,
    SwitchingLayer,
    lipschitz_classifier,
)
from companion.lipschitz.robustness import (
    apgd_l2,
    certificate_check,
    certified_accuracy,
    certified_radius,
    network_certified_radius,
)
from companion.lipschitz.rounding import _switching_substeps, forward_rounding

pytestmark = pytest.mark.usefixtures("one_thread")

#: float32 and float64, each with a cancelling value far beyond its precision.
PRECISIONS = [(torch.float32, 1e8), (torch.float64, 1e17)]


def _violations(inputs: torch.Tensor, positions: torch.Tensor, logits: torch.Tensor, radius: torch.Tensor) -> int:
    """Points of a line (at ``positions``) whose certified ball holds a point of the line with another class."""
    classes = logits.argmax(1)
    distance = (positions[:, None] - positions[None, :]).abs().double()
    broken = (distance < radius.double()[:, None]) & (classes[:, None] != classes[None, :])
    return int(broken.any(1).sum())


def _check_line(model: nn.Module, inputs: torch.Tensor, positions: torch.Tensor) -> None:
    """The logits-level radii are broken on this line; the model-level ones hold, by direct evaluation."""
    with torch.no_grad():
        logits = model(inputs)
    assert _violations(inputs, positions, logits, certified_radius(logits, lipschitz=1.0)) > 0  # the problem is real
    radius = network_certified_radius(model, inputs, lipschitz=1.0)
    assert _violations(inputs, positions, logits, radius) == 0


def _issue_example(dtype: torch.dtype, big: float) -> nn.Sequential:
    """The issue's network: first bias (big, 0), last bias (-big, 1), identity weights; the function is
    x -> (x, 1) for x > 0 and Lipschitz bound 1."""
    torch.manual_seed(0)
    model = lipschitz_classifier(1, 2, width=2, depth=1)
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2, 1))
        model[0].bias.copy_(torch.tensor([big, 0.0]))
        model[2].weight.copy_(torch.eye(2))
        model[2].bias.copy_(torch.tensor([-big, 1.0]))
    return model.to(dtype).eval()


@pytest.mark.parametrize("dtype, big", [(torch.float32, 1e8), (torch.float64, 6e16)])  # both: 8 units in the last place
def test_issue_example_is_certified_only_where_it_holds(dtype, big):
    model = _issue_example(dtype, big)
    x = torch.tensor([[4.01], [0.9]], dtype=dtype)
    with torch.no_grad():
        logits = model(x)
    assert logits[0].argmax() != logits[1].argmax()  # 0.9, at distance 3.11 from 4.01, has the other class
    assert float(certified_radius(logits, lipschitz=1.0)[0]) > 3.11  # the logits-level radius claims it
    assert float(network_certified_radius(model, x, lipschitz=1.0)[0]) < 3.11
    positions = torch.linspace(-40.0, 40.0, 4001, dtype=dtype)
    _check_line(model, positions[:, None], positions)
    labels = model(positions[:, None]).argmax(1)
    assert certificate_check(model, positions[:, None], labels, lipschitz=1.0, steps=20)[1] == 0


def _reflection(dtype: torch.dtype, big: float) -> nn.Sequential:
    """x -> (x, 0) -> a NonExpansiveLayer with rows a and -a, both biased by ``big`` (so the update
    A^T relu(Az + b) = 2 a a^T z is the difference of two huge numbers) -> the identity."""
    first, layer, last = NormalizedLinear(1, 2), NonExpansiveLayer(2, hidden=2), NormalizedLinear(2, 2)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [0.0]]))
        first.bias.zero_()
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        layer.bias.fill_(big)
        layer.raw_step.fill_(1.0)
        last.weight.copy_(torch.eye(2))
        last.bias.zero_()
    return nn.Sequential(first, layer, last).to(dtype).eval()


@pytest.mark.parametrize("dtype, big", PRECISIONS)
def test_values_that_cancel_inside_a_layer_are_counted(dtype, big):
    """Every stage's input and output are small here: a bound from the modules' outputs alone is broken too."""
    model = _reflection(dtype, big)
    positions = torch.linspace(-40.0, 40.0, 4001, dtype=dtype)
    _check_line(model, positions[:, None], positions)


def _conv_reflection(dtype: torch.dtype, big: float, padding_mode: str) -> nn.Sequential:
    conv = NonExpansiveConvLayer(1, hidden_channels=2, kernel_size=3, padding_mode=padding_mode)
    last = NormalizedLinear(4, 2)
    with torch.no_grad():
        kernel = torch.zeros(3, 3)
        kernel[1, 1] = 1.0
        conv.weight.copy_(torch.stack([kernel, -kernel])[:, None])
        conv.bias.fill_(big)
        conv.raw_step.fill_(1.0)
        last.weight.zero_()
        last.weight[0, 0] = 1.0
        last.bias.zero_()
    return nn.Sequential(conv, nn.Flatten(), last).to(dtype).eval()


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
@pytest.mark.parametrize("dtype, big", PRECISIONS)
def test_convolution_with_cancelling_biases(dtype, big, padding_mode):
    model = _conv_reflection(dtype, big, padding_mode)
    positions = torch.linspace(-40.0, 40.0, 2001, dtype=dtype)
    images = torch.zeros(len(positions), 1, 2, 2, dtype=dtype)
    images[:, 0, 0, 0] = positions  # a line through image space
    _check_line(model, images, positions)


@pytest.mark.parametrize("dtype, big", [(torch.float32, 1e7), (torch.float64, 1e15)])
def test_switching_layer_with_huge_biases(dtype, big):
    torch.manual_seed(1)
    first, switching, last = NormalizedLinear(1, 3), SwitchingLayer(3), NormalizedLinear(3, 2)
    with torch.no_grad():
        switching.raw_contractive.normal_()
        switching.raw_expansive.normal_()
        switching.raw_h_expansive.fill_(0.3)
        switching.bias_contractive.fill_(big)
        switching.bias_expansive.fill_(-big)
    model = nn.Sequential(first, switching, last).to(dtype).eval()
    positions = torch.linspace(-40.0, 40.0, 4001, dtype=dtype)
    with torch.no_grad():
        last.bias.copy_(-model(positions[2000:2001, None])[0])  # both classes on the line
    _check_line(model, positions[:, None], positions)


def test_switching_analysis_follows_the_layer():
    """The rounding analysis replays the layer's sub-steps; the replay ends where the layer's forward pass does."""
    torch.manual_seed(0)
    layer = SwitchingLayer(5, n_steps=3).double()
    with torch.no_grad():
        layer.raw_expansive.normal_()
        layer.raw_h_expansive.fill_(0.2)
    x = torch.randn(7, 5, dtype=torch.float64)
    substeps = _switching_substeps(layer, x)
    assert len(substeps) == 4
    with torch.no_grad():
        assert torch.allclose(substeps[-1][2], layer(x), rtol=1e-13, atol=1e-13)


def _trained_digits_classifier() -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    (x_train, y_train), (x_test, y_test) = companion.digits(seed=0)
    companion.seed_everything(0)
    model = lipschitz_classifier(64, 10, width=32, depth=2)
    companion.fit(model, (x_train, y_train), epochs=6, lr=1e-2, loss=companion.hinge_loss(1.0), progress=False)
    return model.eval(), x_test[:300], y_test[:300]


def _shifted(model: nn.Sequential, shift: float, dtype: torch.dtype) -> nn.Sequential:
    """The same function with every hidden state moved by ``shift * 1``: the biases absorb the shift."""
    shifted = copy.deepcopy(model).to(dtype)
    with torch.no_grad():
        shifted[0].bias += shift
        for layer in list(shifted)[1:-1]:
            layer.bias -= shift * layer.weight.sum(1)
        shifted[-1].bias -= shift * shifted[-1].normalized_weight().sum(1)
    return shifted


@pytest.fixture(scope="module")
def digits_classifier():
    return _trained_digits_classifier()


@pytest.mark.parametrize("dtype, shift", [(torch.float32, 1e5), (torch.float32, 1e6), (torch.float64, 1e14)])
def test_trained_network_with_shifted_hidden_states(digits_classifier, dtype, shift):
    model, x, y = digits_classifier
    shifted, x = _shifted(model, shift, dtype), x.to(dtype)
    with torch.no_grad():
        logits = shifted(x)
    old = certified_radius(logits, lipschitz=1.0)
    keep = (logits.argmax(1) == y) & (old > 0)
    _, fooled = apgd_l2(shifted, x[keep], y[keep], epsilon=0.999 * old[keep], steps=20, targets=3)
    assert int(fooled.sum()) > 0  # the logits-level radii are broken
    assert certificate_check(shifted, x, y, lipschitz=1.0, steps=20, targets=3)[1] == 0


def test_small_shifts_keep_most_of_the_certificates(digits_classifier):
    model, x, y = digits_classifier
    base = network_certified_radius(model, x, lipschitz=1.0)
    for shift, kept in ((10.0, 0.95), (100.0, 0.8)):
        shifted = _shifted(model, shift, torch.float32)
        radius = network_certified_radius(shifted, x, lipschitz=1.0)
        assert float(radius.sum() / base.sum()) > kept
        attempts, found = certificate_check(shifted, x, y, lipschitz=1.0, steps=20, targets=3)
        assert attempts > 200 and found == 0


def test_ordinary_weights_lose_almost_nothing(digits_classifier):
    """For the trained network the allowance is tiny: radii within 1 % of the exact-arithmetic m / (sqrt(2) L)."""
    model, x, y = digits_classifier
    exact = network_certified_radius(model, x, lipschitz=1.0, rounding=0.0)
    radius = network_certified_radius(model, x, lipschitz=1.0)
    with torch.no_grad():
        logits = model(x)
    top = logits.double().topk(2, 1).values
    assert torch.allclose(exact.double(), (top[:, 0] - top[:, 1]) / 2**0.5, rtol=1e-6)
    assert bool((radius <= exact).all())
    assert bool((radius >= 0.99 * exact - 0.005).all())
    assert (
        certified_accuracy(model, x, y, lipschitz=1.0, epsilon=0.3)
        >= certified_accuracy(model, x, y, lipschitz=1.0, epsilon=0.3, rounding=0.0) - 0.01
    )


def test_preprocessing_and_unknown_modules():
    """Standardize counts in the bound; a module the analysis does not know is one opaque stage (assumed)."""
    torch.manual_seed(0)
    model = lipschitz_classifier(4, 3, width=8, depth=2, preprocessing=Standardize(0.5, 0.25)).eval()
    bound = companion.network_lipschitz_bound(model)
    assert bound == pytest.approx(4.0)
    x = torch.rand(50, 4)
    radius = network_certified_radius(model, x, lipschitz=bound)
    exact = network_certified_radius(model, x, lipschitz=bound, rounding=0.0)
    assert bool((radius <= exact).all()) and bool((radius >= exact - 1e-3).all())

    class Wrapped(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, inputs):
            return self.inner(inputs)

    _, alpha, beta = forward_rounding(Wrapped(model), x, lipschitz=bound)
    assert bool((alpha > 0).all()) and beta > bound
    opaque = network_certified_radius(Wrapped(model), x, lipschitz=bound)
    assert bool((opaque <= exact).all()) and bool((opaque >= exact - 1e-3).all())
