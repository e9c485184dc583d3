"""The offset cross-entropy loss (companion.lipschitz.robustness.offset_cross_entropy): its closed form, the hinge it
tends to as the temperature goes to 0 and the bounds around that hinge, its gradient, its use in ``fit``, and its
errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import companion
from companion.lipschitz import offset_cross_entropy

pytestmark = pytest.mark.usefixtures("one_thread")

D = torch.float64


def _identity_loss(loss, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss of ``logits`` themselves: the model is the identity map."""
    return loss(nn.Identity(), logits, labels)


def _max_hinge(logits: torch.Tensor, labels: torch.Tensor, offset: float) -> torch.Tensor:
    """max(0, max_{k != y} f_k - f_y + offset) per row."""
    true = logits.gather(1, labels[:, None])
    rivals = logits.scatter(1, labels[:, None], -math.inf)
    return (rivals.max(1).values - true[:, 0] + offset).clamp_min(0)


def test_the_closed_form_in_float64() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(50, 10, generator=generator, dtype=D)
    labels = torch.randint(0, 10, (50,), generator=generator)
    offset, t = 1.3, 0.4
    true = logits.gather(1, labels[:, None])
    terms = torch.exp((logits - true + offset) / t).scatter(1, labels[:, None], 0.0)
    expected = (t * torch.log1p(terms.sum(1))).mean()
    got = _identity_loss(offset_cross_entropy(offset, temperature=t), logits, labels)
    assert got.dtype == D
    assert abs(float(got - expected)) < 1e-13


def test_offset_zero_and_temperature_one_is_the_cross_entropy() -> None:
    logits, labels = torch.randn(20, 7, dtype=D), torch.randint(0, 7, (20,))
    got = _identity_loss(offset_cross_entropy(0.0, temperature=1.0), logits, labels)
    assert abs(float(got - F.cross_entropy(logits, labels))) < 1e-14


@given(
    seed=st.integers(0, 2**31 - 1),
    offset=st.floats(0.0, 3.0),
    temperature=st.floats(1e-3, 5.0),
    classes=st.integers(2, 12),
)
def test_between_the_max_hinge_and_the_hinge_plus_t_log_c(seed, offset, temperature, classes) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(16, classes, generator=generator, dtype=D)
    labels = torch.randint(0, classes, (16,), generator=generator)
    loss = offset_cross_entropy(offset, temperature=temperature)
    per_row = torch.stack([_identity_loss(loss, logits[i : i + 1], labels[i : i + 1]) for i in range(16)])
    hinge = _max_hinge(logits, labels, offset)
    slack = 1e-12 * (1 + hinge)
    assert bool((per_row >= hinge - slack).all())
    assert bool((per_row <= hinge + temperature * math.log(classes) + slack).all())


def test_a_cold_temperature_gives_the_hinge_on_the_largest_rival() -> None:
    logits = torch.tensor([[2.0, 1.5, -1.0], [0.0, 3.0, 0.5], [5.0, 0.0, 0.0]], dtype=D)
    labels = torch.tensor([0, 0, 0])
    loss = offset_cross_entropy(1.0, temperature=1e-4)
    got = torch.stack([_identity_loss(loss, logits[i : i + 1], labels[i : i + 1]) for i in range(3)])
    assert torch.allclose(got, torch.tensor([0.5, 4.0, 0.0], dtype=D), atol=1e-3)


def test_the_gradient_lowers_the_true_logit_s_loss_and_sums_to_zero() -> None:
    logits = torch.randn(8, 5, dtype=D, requires_grad=True)
    labels = torch.randint(0, 5, (8,))
    _identity_loss(offset_cross_entropy(0.7), logits, labels).backward()
    grad = logits.grad
    assert bool((grad.gather(1, labels[:, None]) < 0).all())  # raising the true logit lowers the loss
    assert float(grad.sum(1).abs().max()) < 1e-15  # adding a constant to every logit changes nothing


def test_fit_trains_a_non_expansive_classifier_with_it() -> None:
    (x, y), _ = companion.digits(seed=0)
    x, y = x[:256], y[:256]
    companion.seed_everything(0)
    model = companion.lipschitz_classifier(64, 10, width=16, depth=2)
    loss = companion.offset_cross_entropy(1.0)
    history = companion.fit(model, (x, y), epochs=8, lr=1e-2, loss=loss, progress=False)
    assert history.loss[-1] < 0.6 * history.loss[0]
    assert companion.accuracy(model, x, y) > 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"offset": -0.1}, ValueError, "offset must be a finite number >= 0"),
        ({"offset": math.nan}, ValueError, "offset must be a finite number >= 0"),
        ({"offset": math.inf}, ValueError, "offset must be a finite number >= 0"),
        ({"offset": True}, TypeError, "offset must be a number >= 0, got bool"),
        ({"offset": "1"}, TypeError, "offset must be a number >= 0, got str"),
        ({"offset": 1.0, "temperature": 0.0}, ValueError, "temperature"),
        ({"offset": 1.0, "temperature": -1.0}, ValueError, "temperature"),
        ({"offset": 1.0, "temperature": math.nan}, ValueError, "temperature"),
    ],
)
def test_bad_arguments_are_refused_with_clear_errors(kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        offset_cross_entropy(**kwargs)


def test_exported_beside_the_hinge_loss() -> None:
    assert companion.offset_cross_entropy is offset_cross_entropy
    assert "offset_cross_entropy" in companion.__all__ and "offset_cross_entropy" in companion.lipschitz.__all__


def test_the_loss_refuses_labels_and_inputs_that_do_not_fit_the_model() -> None:
    import pytest
    import torch
    from torch import nn

    import companion

    loss = companion.offset_cross_entropy(1.0, temperature=0.1)
    model, x = nn.Linear(4, 3), torch.rand(5, 4)
    for labels in (torch.tensor([0, 1, 2, 0, 3]), torch.tensor([0, 1, 2, 0, -1])):
        with pytest.raises(ValueError, match="class indices"):
            loss(model, x, labels)
    with pytest.raises(TypeError, match="integer"):
        loss(model, x, torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0]))
    with pytest.raises(TypeError, match="dtype"):
        loss(model, x.double(), torch.tensor([0, 1, 2, 0, 1]))
