"""Tests of companion.lipschitz.attacks: APGD and PGD against brute force and exact answers, their bookkeeping, and the
rule that no default changes the data."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.lipschitz.attacks import apgd_checkpoints, apgd_l2, pgd_l2

pytestmark = pytest.mark.usefixtures("one_thread")

D = torch.float64


def _small_relu_net(seed: int, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, classes)).to(D)


def _brute_force_fooled(model, x, y, eps, radii=60, angles=360):
    """Misclassified anywhere on a polar grid of each disc (including its rim)."""
    r = torch.linspace(0, 1, radii, dtype=D)[1:] * eps
    theta = torch.linspace(0, 2 * math.pi, angles + 1, dtype=D)[:-1]
    offsets = torch.stack([torch.outer(r, theta.cos()), torch.outer(r, theta.sin())], -1).reshape(-1, 2)
    with torch.no_grad():
        logits = model(x[:, None, :] + offsets[None])  # (points, grid, classes)
    return (logits.argmax(-1) != y[:, None]).any(1) | (model(x).argmax(1) != y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_apgd_finds_everything_brute_force_finds(seed):
    model = _small_relu_net(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 2, generator=generator, dtype=D)
    with torch.no_grad():
        y = model(x).argmax(1)
        y[:5] = (y[:5] + 1) % 3  # a few misclassified points: fooled at any radius
    for eps in (0.05, 0.2):
        brute = _brute_force_fooled(model, x, y, eps)
        adversarial, fooled = apgd_l2(model, x, y, epsilon=eps, steps=60)
        assert bool(fooled[brute].all()), f"missed {int((brute & ~fooled).sum())} points at eps={eps}"
        assert 0 < int(brute.sum()) < len(x)  # the test is not vacuous
        # every claim is real: inside the ball and misclassified
        with torch.no_grad():
            wrong = model(adversarial).argmax(1) != y
        assert bool(wrong[fooled].all())
        assert float((adversarial - x).norm(dim=1).max()) <= eps * (1 + 1e-12)


def test_apgd_is_exact_on_a_linear_classifier():
    """For f(x) = Wx + b the smallest adversarial radius is min_k (f_y - f_k) / ||w_y - w_k||."""
    generator = torch.Generator().manual_seed(3)
    model = nn.Linear(10, 5).to(D)
    with torch.no_grad():
        model.weight.copy_(torch.randn(5, 10, generator=generator, dtype=D))
    x = torch.randn(100, 10, generator=generator, dtype=D)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    w = model.weight.detach()
    gaps = logits.gather(1, y[:, None]) - logits  # (points, classes)
    lengths = (w[y][:, None, :] - w[None]).norm(dim=-1)  # ||w_y - w_k||
    distance = torch.where(lengths > 0, gaps / lengths.clamp_min(1e-300), torch.inf).min(1).values
    _, inside = apgd_l2(model, x, y, epsilon=0.99 * distance, steps=20)
    _, outside = apgd_l2(model, x, y, epsilon=1.01 * distance, steps=20)
    assert not bool(inside.any()) and bool(outside.all())


def test_zero_radius_and_clean_errors_change_nothing():
    model = _small_relu_net(4)
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(4), dtype=D) * 3
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:3] = (y[:3] + 1) % 3
    for attack in (apgd_l2, pgd_l2):
        adversarial, fooled = attack(model, x, y, epsilon=0.0)
        assert torch.equal(adversarial, x) and torch.equal(fooled, torch.arange(40) < 3)
        # per-point radii, some zero: those points are left exactly as they are
        eps = torch.where(torch.arange(40) % 2 == 0, 0.0, 0.3).to(D)
        adversarial, _ = attack(model, x, y, epsilon=eps)
        assert torch.equal(adversarial[::2], x[::2])


def test_bounds_clip_only_when_given_and_must_contain_the_data():
    model = _small_relu_net(5)
    x = torch.rand(30, 2, generator=torch.Generator().manual_seed(5), dtype=D) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    for attack in (apgd_l2, pgd_l2):
        adversarial, _ = attack(model, x, y, epsilon=0.5, bounds=(0.0, 1.0))
        assert float(adversarial.min()) >= 0.0 and float(adversarial.max()) <= 1.0
        assert float((adversarial - x).norm(dim=1).max()) <= 0.5 * (1 + 1e-12)
        with pytest.raises(ValueError, match=r"outside bounds=\(0, 0.5\)"):
            attack(model, x, y, epsilon=0.5, bounds=(0.0, 0.5))
        with pytest.raises(ValueError, match="low < high"):
            attack(model, x, y, epsilon=0.5, bounds=(1.0, 0.0))
        with pytest.raises(TypeError, match="pair"):
            attack(model, x, y, epsilon=0.5, bounds=1.0)


def test_apgd_is_at_least_as_strong_as_pgd_and_more_targets_help():
    model = _small_relu_net(6, classes=6)
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(6), dtype=D)
    with torch.no_grad():
        y = model(x).argmax(1)
    _, by_pgd = pgd_l2(model, x, y, epsilon=0.15, steps=50)
    _, by_apgd = apgd_l2(model, x, y, epsilon=0.15, steps=50)
    _, by_untargeted = apgd_l2(model, x, y, epsilon=0.15, steps=50, targets=0)
    assert int(by_apgd.sum()) >= int(by_pgd.sum()) and int(by_apgd.sum()) >= int(by_untargeted.sum())
    # more runs never fool fewer points
    _, by_stronger = apgd_l2(model, x, y, epsilon=0.15, steps=100, restarts=2)
    assert int(by_stronger.sum()) >= int(by_apgd.sum())


def test_checkpoints_follow_the_paper():
    # p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (increments 0.19, 0.16, 0.13, 0.10, 0.07, 0.06, 0.06)
    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert all(0 < c <= 10 for c in apgd_checkpoints(10))


def test_float32_and_model_untouched():
    model = _small_relu_net(7).float()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(7))
    y = torch.zeros(20, dtype=torch.int32)  # int32 labels are accepted
    adversarial, fooled = apgd_l2(model.train(), x, y, epsilon=0.3, steps=10, restarts=1)
    assert adversarial.dtype == torch.float32 and fooled.shape == (20,)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_validation_errors():
    model = nn.Linear(2, 2)
    x, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64)
    for attack in (apgd_l2, pgd_l2):
        with pytest.raises(ValueError, match="epsilon must be >= 0"):
            attack(model, x, y, epsilon=-1.0)
        with pytest.raises(ValueError, match="epsilon must be >= 0"):
            attack(model, x, y, epsilon=float("nan"))
        with pytest.raises(ValueError, match=r"shape \(3,\)"):
            attack(model, x, y, epsilon=torch.ones(2))
        with pytest.raises(ValueError, match="restarts"):
            attack(model, x, y, epsilon=1.0, restarts=-1)
        with pytest.raises(TypeError, match="steps"):
            attack(model, x, y, epsilon=1.0, steps=2.5)
        with pytest.raises(TypeError, match="callable"):
            attack("model", x, y, epsilon=1.0)
        with pytest.raises(TypeError, match="integer tensor"):
            attack(model, x, y.float(), epsilon=1.0)
    with pytest.raises(ValueError, match="targets"):
        apgd_l2(model, x, y, epsilon=1.0, targets=-1)
    with pytest.raises(ValueError, match="loss"):
        pgd_l2(model, x, y, epsilon=1.0, loss="hinge")
    with pytest.raises(ValueError, match="at least one objective"):
        pgd_l2(model, x, y, epsilon=1.0, loss=())


def test_adversarial_loss_is_the_cross_entropy_at_a_pgd_point_inside_the_ball():
    """The loss equals the cross-entropy at its own PGD iterate: that point lies in the ball and the box, and its
    loss is above the clean loss for a model that the attack can push (a linear one); the parameters get the
    gradient of that loss and no gradient from the attack; the global seed fixes the random starts."""
    from torch.nn import functional as F

    from companion.lipschitz.attacks import adversarial_loss

    torch.manual_seed(0)
    model = nn.Linear(4, 3).to(D)
    x = torch.rand(32, 4, dtype=D) * 0.5 + 0.25
    y = torch.randint(0, 3, (32,))
    points = []
    original = model.forward
    model.forward = lambda z: (points.append(z.detach()), original(z))[1]
    torch.manual_seed(3)
    value = adversarial_loss(0.2, steps=5, bounds=(0.0, 1.0))(model, x, y)
    model.forward = original
    final = points[-1]
    assert float((final - x).norm(dim=1).max()) <= 0.2 + 1e-12
    assert float(final.min()) >= 0.0 and float(final.max()) <= 1.0
    assert torch.allclose(value, F.cross_entropy(model(final), y))
    assert float(value.detach()) > float(F.cross_entropy(model(x), y).detach())
    assert model.weight.grad is None  # the attack leaves no parameter gradient behind
    value.backward()
    assert float(model.weight.grad.abs().sum()) > 0
    torch.manual_seed(3)
    again = adversarial_loss(0.2, steps=5, bounds=(0.0, 1.0))(model, x, y)
    assert torch.equal(again.detach(), value.detach())


def test_adversarial_loss_attacks_in_eval_mode_and_copies_like_a_value():
    """No batch statistics are updated by the attack (only by the returned loss's forward pass, in the model's own
    mode); copies and pickles compute the same loss."""
    import copy
    import pickle

    from companion.lipschitz.attacks import adversarial_loss

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).to(D)
    x, y = torch.rand(16, 4, dtype=D), torch.randint(0, 3, (16,))
    loss = adversarial_loss(0.3, steps=5)
    model.train()
    loss(model, x, y)
    assert int(model[1].num_batches_tracked) == 1 and model.training
    for twin in (copy.deepcopy(loss), pickle.loads(pickle.dumps(loss))):
        assert repr(twin) == repr(loss)
        torch.manual_seed(5)
        first = loss(model.eval(), x, y)
        torch.manual_seed(5)
        assert torch.equal(twin(model, x, y), first)


def test_validation_with_a_random_loss_does_not_change_the_training():
    """fit evaluates the validation loss without consuming the training's random numbers."""
    import companion
    from companion.lipschitz.attacks import adversarial_loss

    x, y = torch.rand(64, 4, dtype=D), torch.randint(0, 3, (64,))
    weights = []
    for validation in (None, (x[:16], y[:16])):
        torch.manual_seed(0)
        model = nn.Linear(4, 3).to(D)
        companion.fit(
            model,
            (x, y),
            epochs=2,
            batch_size=16,
            loss=adversarial_loss(0.2, steps=2),
            validation=validation,
            seed=0,
            progress=False,
        )
        weights.append(model.weight.detach().clone())
    assert torch.equal(*weights)


def test_adversarial_loss_refuses_bad_settings_and_data():
    from companion.lipschitz.attacks import adversarial_loss

    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            adversarial_loss(bad)
    with pytest.raises((TypeError, ValueError)):
        adversarial_loss(0.5, steps=0)
    for bounds in ((1.0, 0.0), (0.0, float("nan")), (0.0,), 5):
        with pytest.raises((TypeError, ValueError)):
            adversarial_loss(0.5, bounds=bounds)
    loss = adversarial_loss(0.5, bounds=(0.0, 1.0))
    model = nn.Linear(4, 3).to(D)
    with pytest.raises(ValueError, match="outside bounds"):
        loss(model, torch.full((2, 4), 2.0, dtype=D), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        loss(model, torch.rand(2, 4, dtype=D), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="class indices"):
        loss(model, torch.rand(2, 4, dtype=D), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="finite"):
        adversarial_loss(0.5)(model, torch.full((2, 4), float("nan"), dtype=D), torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        loss(model, torch.rand(0, 4, dtype=D), torch.zeros(0, dtype=torch.long))
    with pytest.raises(TypeError, match="dtype"):
        loss(model, torch.rand(2, 4), torch.tensor([0, 1]))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        loss(model, torch.rand(2, 4, dtype=D), torch.tensor([0, 1]))
