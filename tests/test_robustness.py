"""Tests of companion.lipschitz.robustness: certified radii (safe against rounding), certificate checks, reports, and the
make_moons reproduction of issue 14 (no clipping unless asked)."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import make_moons
from torch import nn

import companion
from companion.data import digits
from companion.lipschitz import NormalizedLinear
from companion.lipschitz.robustness import (
    RobustnessReport,
    certificate_check,
    certified_accuracy,
    certified_radius,
    pgd_l2,
    robust_accuracy,
    robustness_curve,
    robustness_report,
    rounding_allowance,
)

pytestmark = pytest.mark.usefixtures("one_thread")

D = torch.float64


def test_certified_radius_formula():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.5, 0.2]], dtype=D)
    radius = certified_radius(logits, lipschitz=2.0, rounding=0.0)
    assert torch.allclose(radius, torch.tensor([2.0, 0.3], dtype=D) / (2 * math.sqrt(2)), rtol=1e-15)
    # the default allowance in float64 changes the radii by about 1e-13 only
    assert torch.allclose(certified_radius(logits, lipschitz=2.0), radius, rtol=1e-11)
    assert rounding_allowance(torch.float32) == pytest.approx(1024 * 2.0**-23)


def test_float32_radii_never_exceed_the_exact_distance():
    """A float32 linear classifier, points within float32 rounding of its decision boundary: the margin computed
    in float32 can be larger than the exact one, and the exact-arithmetic formula then certifies points that lie
    on the wrong side. With the rounding allowance no radius exceeds the exact (float64) distance."""
    generator = torch.Generator().manual_seed(0)
    layer = NormalizedLinear(8, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(2, 8, generator=generator))
        layer.bias.copy_(torch.tensor([40.0, -40.0]))
    weight, bias = layer.normalized_weight().detach().double(), layer.bias.detach().double()
    normal = weight[0] - weight[1]
    # points at signed distance 1e-6 .. 1 from the boundary, with large logits (large rounding)
    base = torch.randn(400, 8, generator=generator, dtype=D) * 30
    offset = (base @ normal + bias[0] - bias[1]) / normal.norm() ** 2
    distance = torch.logspace(-6, 0, 400, dtype=D) * torch.where(torch.arange(400) % 2 == 0, 1.0, -1.0)
    points = base - offset[:, None] * normal + distance[:, None] * normal / normal.norm()
    x = points.float()
    exact_logits = x.double() @ weight.T + bias  # the float32 network's function, in exact arithmetic
    exact_distance = (exact_logits[:, 0] - exact_logits[:, 1]).abs() / normal.norm()
    with torch.no_grad():
        logits = layer(x)
    lipschitz = companion.network_lipschitz_bound(layer)
    naive = certified_radius(logits, lipschitz=lipschitz, rounding=0.0).double()
    safe = certified_radius(logits, lipschitz=lipschitz).double()
    predicted_right = logits.argmax(1) == exact_logits.argmax(1)
    assert bool(((naive > exact_distance) | ~predicted_right & (naive > 0)).any())  # the problem is real
    assert bool((safe <= exact_distance).all()) and bool((safe[~predicted_right] == 0).all())


def test_certified_accuracy_and_report():
    model = nn.Sequential(NormalizedLinear(2, 2)).to(D)
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(1), dtype=D)
    y = model(x).argmax(1)
    assert certified_accuracy(model, x, y, lipschitz=1.0, epsilon=0.0) == pytest.approx(1.0)
    radius = certified_radius(model(x), lipschitz=1.0)
    expected = float((radius > 0.05).double().mean())
    report = robustness_report(model, x, y, epsilon=0.05, lipschitz=1.0)
    assert isinstance(report, RobustnessReport) and report.certified == pytest.approx(expected)
    assert report.certified <= report.attacked <= report.clean == 1.0
    assert "attacked (apgd)" in str(report) and "certified" in str(report)


def test_certificate_holds_and_attack_finds_examples_outside():
    torch.manual_seed(0)
    model = nn.Sequential(NormalizedLinear(2, 2, bias=True)).to(D)
    x = torch.rand(64, 2, generator=torch.Generator().manual_seed(0), dtype=D)
    labels = model(x).argmax(1)
    attempts, found = certificate_check(model, x, labels, lipschitz=1.0, steps=30, restarts=1)
    assert attempts == 64 and found == 0
    # a linear classifier is fooled exactly beyond its distance to the boundary: m / ||w_1 - w_0|| <= sqrt(2) r
    with torch.no_grad():
        w = model[0].normalized_weight()
        distance = (model(x).max(1).values - model(x).min(1).values) / (w[0] - w[1]).norm()
    eps = float(distance.max()) * 1.05
    for attack in ("apgd", "pgd"):
        assert robust_accuracy(model, x, labels, epsilon=eps, attack=attack, steps=50) == 0.0


def _moons_classifier():
    x, y = make_moons(300, noise=0.1, random_state=0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(0)
    model = companion.lipschitz_classifier(2, 2, width=16, depth=3)
    companion.fit(model, (x, y), epochs=10, lr=1e-2, loss=companion.hinge_loss(0.5), progress=False, seed=0)
    return model.eval(), x, y


def test_make_moons_reproduction_no_clipping_by_default():
    """Issue 14: data in [-1.2, 2.2] were clipped to [0, 1] by default, so the attack 'fooled' points at eps = 0
    and the certificate check reported adversarial examples inside certified radii."""
    model, x, y = _moons_classifier()
    assert float(x.min()) < -1 and float(x.max()) > 2
    clean = companion.accuracy(model, x, y)
    assert clean > 0.8
    for attack in ("apgd", "pgd"):
        assert robust_accuracy(model, x, y, epsilon=0.0, attack=attack) == pytest.approx(clean, abs=1e-6)
    bound = companion.network_lipschitz_bound(model)
    attempts, found = certificate_check(model, x, y, lipschitz=bound)
    assert attempts > 200 and found == 0
    # bounds that do not contain the data are refused instead of silently clipping
    with pytest.raises(ValueError, match="outside bounds"):
        robust_accuracy(model, x, y, epsilon=0.1, bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="outside bounds"):
        certificate_check(model, x, y, lipschitz=bound, attack="pgd", bounds=(0.0, 1.0))


def test_attack_on_digits_beats_random_noise_and_is_monotone():
    (xtr, ytr), (xte, yte) = digits(seed=0)
    torch.manual_seed(0)  # the model is initialised from the global generator
    model = companion.mlp(64, 10, width=32, depth=1, activation="relu")
    companion.fit(model, (xtr, ytr), epochs=8, lr=5e-3, loss="cross_entropy", progress=False)
    x, y = xte[:200], yte[:200]
    clean = companion.accuracy(model, x, y)
    curve = robustness_curve(model, x, y, [0.0, 0.5, 1.0, 2.0], steps=20, bounds=(0.0, 1.0))
    assert curve[0] == pytest.approx(clean)
    assert all(a >= b for a, b in zip(curve, curve[1:]))
    assert curve[2] < clean - 0.3
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = (x + 1.0 * noise / noise.norm(dim=1, keepdim=True)).clamp(0, 1)
    assert companion.accuracy(model, noisy, y) > curve[2] + 0.2
    adversarial, fooled = pgd_l2(model, x, y, epsilon=1.0, steps=20, bounds=(0.0, 1.0))
    assert float((adversarial - x).norm(dim=1).max()) <= 1.0 + 1e-5
    assert float(adversarial.min()) >= 0.0 and float(adversarial.max()) <= 1.0
    report = robustness_report(model, x, y, epsilon=1.0, steps=20, bounds=(0.0, 1.0))
    assert report.certified is None and report.attacked == pytest.approx(curve[2], abs=0.02)


def test_validation_errors():
    model = nn.Linear(2, 2)
    x, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="lipschitz"):
        certified_radius(torch.zeros(2, 3), lipschitz=0.0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        certified_radius(torch.zeros(2, 1), lipschitz=1.0)
    with pytest.raises(ValueError, match="rounding"):
        certified_radius(torch.zeros(2, 3), lipschitz=1.0, rounding=-1e-3)
    with pytest.raises(TypeError, match="dtype"):
        rounding_allowance(torch.int64)
    with pytest.raises(ValueError, match="same length"):
        robust_accuracy(model, x, y[:2], epsilon=1.0)
    with pytest.raises(ValueError, match="unknown attack"):
        robust_accuracy(model, x, y, epsilon=1.0, attack="fgsm")
    with pytest.raises(TypeError, match="unexpected keyword"):
        robust_accuracy(model, x, y, epsilon=1.0, relative_step=0.1)  # a PGD option given to APGD
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        certified_accuracy(model, x, y, lipschitz=1.0, epsilon=-0.1)
    with pytest.raises(ValueError, match="fraction"):
        certificate_check(model, x, y, lipschitz=1.0, fraction=1.5)
    with pytest.raises(ValueError, match="at least one radius"):
        robustness_curve(model, x, y, [])


def test_accuracies_are_exact_fractions_in_float32():
    """539 samples, 526 right: a float32 mean gives 0.97588127..., the exact fraction 526/539 = 0.97588126...;
    curves compared point by point (certified <= attacked <= clean) need the exact one."""
    n, right = 539, 526
    x = torch.zeros(n, 2)
    x[:, 0] = 1.0
    x[right:, 0] = -1.0  # these are predicted as class 1
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    y = torch.zeros(n, dtype=torch.long)
    assert certified_accuracy(model, x, y, lipschitz=1.0, epsilon=0.0) == right / n
    report = robustness_report(model, x, y, epsilon=0.0, lipschitz=1.0)
    assert report.clean == right / n == report.certified
    assert robust_accuracy(model, x, y, epsilon=0.0) == right / n
