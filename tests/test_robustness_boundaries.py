"""The robustness functions and the convolution layers at the edges of their API: labels outside the model's
classes, empty batches, inputs of another dtype than the model's, circular kernels wider than the image."""

from __future__ import annotations

import pytest
import torch

import companion
from companion.lipschitz import NonExpansiveConvLayer, conv2d_same, conv2d_same_adjoint, conv_power_iteration
from companion.lipschitz.robustness import (
    certificate_check,
    certified_accuracy,
    network_certified_radius,
    robust_accuracy,
    robustness_curve,
    robustness_report,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _model_and_data():
    torch.manual_seed(0)
    model = companion.lipschitz_classifier(4, 10, width=8, depth=1).eval()
    return model, torch.rand(6, 4), torch.tensor([0, 1, 2, 3, 4, 5])


CALLS = {
    "certified_accuracy": lambda m, x, y: certified_accuracy(m, x, y, lipschitz=1.0, epsilon=0.1),
    "certificate_check": lambda m, x, y: certificate_check(m, x, y, lipschitz=1.0, steps=5),
    "robust_accuracy": lambda m, x, y: robust_accuracy(m, x, y, epsilon=0.1, steps=5),
    "robustness_curve": lambda m, x, y: robustness_curve(m, x, y, [0.0, 0.1], steps=5),
    "robustness_report": lambda m, x, y: robustness_report(m, x, y, epsilon=0.1, lipschitz=1.0, steps=5),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("bad, shown", [(10, "from 0 to 10"), (-1, "from -1 to 5")])
def test_labels_outside_the_classes_are_refused(name, bad, shown):
    model, x, y = _model_and_data()
    y[2] = bad
    with pytest.raises(
        ValueError,
        match=rf"labels must be class indices 0\.\.9 \(the model has 10 outputs\), "
        rf"got values {shown}",
    ):
        CALLS[name](model, x, y)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_empty_batches_are_refused(name):
    model, x, y = _model_and_data()
    with pytest.raises(ValueError, match=r"inputs must hold at least one sample, got shape \(0, 4\)"):
        CALLS[name](model, x[:0], y[:0])


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize(
    "dtype, fix",
    [
        (torch.float64, r"model\.double\(\)"),
        (torch.float16, r"model\.half\(\)"),
        (torch.bfloat16, r"model\.bfloat16\(\)"),
        (torch.int64, r"x\.float\(\)"),
    ],
)
def test_inputs_of_another_dtype_are_refused_with_both_dtypes_named(name, dtype, fix):
    model, x, y = _model_and_data()
    with pytest.raises(
        TypeError,
        match=rf"inputs have dtype {dtype} but the model's parameters are "
        rf"torch\.float32.*{fix}",
    ):
        CALLS[name](model, x.to(dtype), y)
    with pytest.raises(TypeError, match=rf"inputs have dtype {dtype}"):
        network_certified_radius(model, x.to(dtype), lipschitz=1.0)


def test_matching_data_still_work_and_agree():
    model, x, y = _model_and_data()
    y = model(x).argmax(1)
    radius = network_certified_radius(model, x, lipschitz=1.0)
    assert certified_accuracy(model, x, y, lipschitz=1.0, epsilon=0.0) == float((radius > 0).float().mean())
    report = robustness_report(model, x, y, epsilon=0.0, lipschitz=1.0, steps=5)
    assert report.clean == 1.0 and report.attacked == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda w, x: conv2d_same(x, w, padding_mode="circular"),
        lambda w, x: conv2d_same_adjoint(x, w, padding_mode="circular"),
        lambda w, x: conv_power_iteration(w, tuple(x.shape[-2:]), padding_mode="circular", iterations=2),
    ],
)
def test_circular_kernels_wider_than_twice_the_image_are_refused(call):
    weight = torch.randn(1, 1, 7, 7)
    with pytest.raises(ValueError, match=r"7x7 kernel needs images of at least 3x3 pixels.*got images of 2x5"):
        call(weight, torch.randn(1, 1, 2, 5))
    call(weight, torch.randn(1, 1, 3, 3))  # the padding wraps once: allowed


def test_conv_layer_refuses_small_images_before_computing():
    layer = NonExpansiveConvLayer(1, kernel_size=7, padding_mode="circular")
    with pytest.raises(ValueError, match="needs images of at least 3x3 pixels"):
        layer(torch.randn(2, 1, 2, 2))
    assert layer(torch.randn(2, 1, 3, 3)).shape == (2, 1, 3, 3)
    zero_padded = NonExpansiveConvLayer(1, kernel_size=7)
    assert zero_padded(torch.randn(2, 1, 2, 2)).shape == (2, 1, 2, 2)  # zero padding has no such limit
