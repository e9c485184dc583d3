"""Fields, layers, networks, diagnostics, data and the training loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import companion as C
from companion.fields import skew_from_entries

pytestmark = pytest.mark.usefixtures("float64_by_default")


# --- fields and layers ---------------------------------------------------------------------------


def test_euler_flow_layer_is_the_resnet_layer() -> None:
    torch.manual_seed(0)
    field = C.MLPField(3, 5)
    layer = C.FlowLayer(field, h=0.2)
    x = torch.randn(4, 3)
    assert torch.allclose(layer(x), x + 0.2 * field.outer(torch.tanh(field.inner(x))), atol=1e-15)


def test_flow_layer_substeps_converge_to_the_flow() -> None:
    torch.manual_seed(0)
    field = C.MLPField(2, 4)
    x = torch.randn(3, 2)
    reference = C.integrate(field, x, h=1e-3, n_steps=1000, tableau=C.RK4)[-1]
    with torch.no_grad():
        errors = [float((C.FlowLayer(field, h=1.0, n_steps=n)(x) - reference).norm()) for n in (10, 20, 40)]
    assert abs(C.empirical_order([0.1, 0.05, 0.025], errors) - 1.0) < 0.1


def test_learned_step_is_positive_and_trainable() -> None:
    layer = C.FlowLayer(C.MLPField(2, 3), h=0.5, learn_step=True)
    layer.raw_h.data.fill_(-0.3)
    assert float(layer.h) == pytest.approx(0.3)
    layer(torch.randn(5, 2)).sum().backward()
    assert layer.raw_h.grad is not None


def test_gradient_field_is_a_gradient() -> None:
    torch.manual_seed(1)
    field = C.GradientField(3, 7, activation="tanh")
    x = torch.randn(6, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(field.potential(x).sum(), x)
    assert torch.allclose(field(x), grad, atol=1e-12)
    assert C.symmetry_error(field, x.detach()) < 1e-12


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_potential_antiderivative(activation: str) -> None:
    sigma, gamma = C.fields.ACTIVATIONS[activation]
    s = torch.linspace(-3, 3, 61, requires_grad=True)
    (derivative,) = torch.autograd.grad(gamma(s).sum(), s)
    assert torch.allclose(derivative, sigma(s.detach()), atol=1e-12)


def test_skew_and_sphere_and_mass_fields() -> None:
    torch.manual_seed(2)
    s = skew_from_entries(torch.randn(5, 6), 4)
    assert torch.equal(s, -s.transpose(-1, -2))
    x = torch.randn(5, 4)
    assert float((C.SpherePreservingField(4, 8)(x) * x).sum(-1).abs().max()) < 1e-12
    assert float(C.MassPreservingField(4, 8)(x).sum(-1).abs().max()) < 1e-12


def test_resnet_and_mlp_shapes() -> None:
    net = C.resnet(4, 2, width=6, depth=3, T=1.0, method=C.HEUN)
    assert net(torch.randn(10, 4)).shape == (10, 2)
    assert len(net.layers) == 3 and float(net.layers[0].h) == pytest.approx(1 / 3)
    assert C.mlp(4, 2, width=5, depth=3)(torch.randn(10, 4)).shape == (10, 2)
    same = C.FlowNetwork([C.FlowLayer(C.MLPField(3))], in_dim=3, width=3, out_dim=3)
    assert isinstance(same.lift, nn.Identity) and isinstance(same.projection, nn.Identity)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: C.MLPField(0), ValueError, "dim must be an int >= 1"),
        (lambda: C.MLPField(2, activation="swish"), ValueError, "unknown activation 'swish'"),
        (lambda: C.GradientField(2, sign=0), ValueError, "sign must be 1 or -1"),
        (lambda: C.SpherePreservingField(1), ValueError, "dim >= 2"),
        (lambda: C.MassPreservingField(1), ValueError, "dim >= 2"),
        (lambda: C.MLPField(3)(torch.randn(4, 2)), ValueError, "last dimension 3"),
        (lambda: C.FlowLayer(3), TypeError, "field must be callable"),
        (lambda: C.FlowLayer(C.MLPField(2), h=0), ValueError, "h must be a finite number > 0"),
        (lambda: C.FlowLayer(C.MLPField(2), n_steps=1.5), TypeError, "n_steps must be an int"),
        (lambda: C.FlowNetwork([], in_dim=2, width=2, out_dim=2), TypeError, "non-empty sequence"),
        (lambda: C.resnet(2, 2, width=3, depth=0), ValueError, "depth must be an int >= 1"),
        (lambda: C.mlp(2, 2, width=3, depth=2, activation="gelu"), ValueError, "unknown activation"),
        (lambda: C.SymplecticLayer(3), ValueError, "dim must be even"),
        (lambda: C.SymplecticLayer(4, method="rk4"), ValueError, "does not keep symplecticity"),
        (lambda: skew_from_entries(torch.randn(2, 5), 4), ValueError, "last dimension 6"),
    ],
)
def test_bad_input_is_refused(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --- diagnostics -----------------------------------------------------------------------------------


def test_empirical_order_recovers_a_power_law() -> None:
    hs = [0.1, 0.05, 0.025]
    assert C.empirical_order(hs, [3 * h**2.5 for h in hs]) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="same length"):
        C.empirical_order([0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match="finite and > 0"):
        C.empirical_order([0.1, 0.2], [0.0, 1.0])
    with pytest.raises(ValueError, match="at least two"):
        C.empirical_order([0.1], [1.0])


def test_diagnostics_on_known_maps() -> None:
    x = torch.randn(8, 4)
    rotation = torch.linalg.matrix_exp(torch.tensor([[0, 1.0], [-1.0, 0]]))
    q_rot = torch.block_diag(rotation, rotation)
    assert C.jacobian_determinant_error(lambda z: z @ q_rot.T, x) < 1e-12
    assert C.norm_drift(lambda z: z @ q_rot.T, x) < 1e-12
    assert C.jacobian_determinant_error(lambda z: 2 * z, x) == pytest.approx(15.0)
    assert C.symplecticity_error(lambda z: 2 * z, x) == pytest.approx(3.0)
    assert C.linear_invariant_drift(lambda z: z + 1, x) == pytest.approx(4.0)
    assert C.jacobian_spectral_norm(lambda z: 3 * z, x) == pytest.approx(3.0)
    assert C.lipschitz_lower_bound(lambda z: 3 * z, x) == pytest.approx(3.0)
    assert C.lipschitz_lower_bound(torch.tanh, x) <= 1.0 + 1e-12


def test_diagnostics_refuse_bad_maps() -> None:
    with pytest.raises(ValueError, match="R\\^d to R\\^d"):
        C.jacobian_determinant_error(lambda z: z[:, :2], torch.randn(3, 4))
    with pytest.raises(ValueError, match="keep the shape"):
        C.norm_drift(lambda z: z[:, :2], torch.randn(3, 4))
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        C.jacobians(lambda z: z, torch.randn(3))
    with pytest.raises(ValueError, match="dim must be even"):
        C.symplecticity_error(lambda z: z, torch.randn(3, 3))


# --- data and training ----------------------------------------------------------------------------


def test_swiss_roll_is_seeded_and_balanced() -> None:
    x, y = C.swiss_roll(101, seed=3)
    x2, _ = C.swiss_roll(101, seed=3)
    assert torch.equal(x, x2) and x.shape == (101, 4) and abs(int(y.sum()) - 50) <= 1
    assert float(x[:, [1, 3]].abs().max()) == 0.0  # embedded as (x1, 0, x2, 0)
    with pytest.raises(ValueError, match="n must be >= 2"):
        C.swiss_roll(1)


def test_train_test_split() -> None:
    x, y = torch.arange(10.0), torch.arange(10)
    (xtr, ytr), (xte, yte) = C.train_test_split(x, y, test_fraction=0.3, seed=0)
    assert len(xte) == 3 and torch.equal(xtr.long(), ytr) and set(torch.cat([ytr, yte]).tolist()) == set(range(10))
    with pytest.raises(ValueError, match="same length"):
        C.train_test_split(x, y[:5])
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        C.train_test_split(x, test_fraction=1.0)


def test_fit_learns_a_linear_map_and_is_reproducible() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=gen)
    target = x @ torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]])
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        history = C.fit(
            model,
            (x, target),
            epochs=60,
            lr=0.05,
            batch_size=32,
            schedule="cosine",
            validation=(x, target),
            progress=False,
        )
        losses.append(history.loss[-1])
    assert history.val_loss[-1] < 1e-4 and len(history.loss) == 60 and history.seconds > 0
    assert losses[0] == losses[1]


def test_fit_with_a_callable_loss_and_after_step() -> None:
    model = nn.Linear(2, 1, bias=False)
    calls = []
    loss = lambda m, u, v: ((m(u) - v) ** 2).mean()  # noqa: E731
    C.fit(
        model,
        (torch.randn(64, 2), torch.randn(64, 1)),
        epochs=2,
        batch_size=16,
        loss=loss,
        after_step=lambda m: calls.append(1),
        progress=False,
    )
    assert len(calls) == 8


def test_accuracy() -> None:
    model = nn.Identity()
    assert C.accuracy(
        model, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1, 1])
    ) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(epochs=0), ValueError, "epochs must be an int >= 1"),
        (dict(epochs=1, lr=-1.0), ValueError, "lr must be a finite number > 0"),
        (dict(epochs=1, loss="hinge"), ValueError, "unknown loss 'hinge'"),
        (dict(epochs=1, optimizer="lbfgs"), ValueError, "unknown optimizer"),
        (dict(epochs=1, schedule="linear"), ValueError, "unknown schedule"),
        (dict(epochs=1, weight_decay=-1.0), ValueError, "weight_decay must be >= 0"),
        (dict(epochs=1, compile="yes"), TypeError, "compile must be True or False"),
        (dict(epochs=1, seed=1.5), TypeError, "seed must be an int"),
        (dict(epochs=1, batch_size=0), ValueError, "batch_size must be an int >= 1"),
    ],
)
def test_fit_refuses_bad_options(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        C.fit(nn.Linear(2, 1), (torch.randn(4, 2), torch.randn(4, 1)), progress=False, **kwargs)


def test_fit_refuses_bad_data() -> None:
    with pytest.raises(TypeError, match="tuple of tensors"):
        C.fit(nn.Linear(2, 1), torch.randn(4, 2), epochs=1)
    with pytest.raises(ValueError, match="same length"):
        C.fit(nn.Linear(2, 1), (torch.randn(4, 2), torch.randn(3, 1)), epochs=1)
    with pytest.raises(TypeError, match="nn.Module"):
        C.fit(lambda x: x, (torch.randn(4, 2),), epochs=1)


@pytest.mark.slow
def test_fit_with_compile_gives_the_eager_losses() -> None:
    torch.set_default_dtype(torch.float32)  # compiled float32 steps, as a user runs them
    try:
        x = torch.randn(128, 3, generator=torch.Generator().manual_seed(0))
        y = torch.sin(x[:, :2])
        histories = []
        for compile_ in (False, True):
            torch.manual_seed(0)
            model = C.resnet(3, 2, width=4, depth=3, method="rk4")
            histories.append(C.fit(model, (x, y), epochs=3, batch_size=32, compile=compile_, progress=False))
        assert max(abs(a - b) / a for a, b in zip(histories[0].loss, histories[1].loss)) < 1e-4
    finally:
        torch.set_default_dtype(torch.float64)


def test_fit_refuses_an_empty_data_loader() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    empty = DataLoader(TensorDataset(torch.randn(0, 2), torch.randn(0, 1)), batch_size=4)
    with pytest.raises(ValueError, match="yields no batch"):
        C.fit(nn.Linear(2, 1), empty, epochs=1, progress=False)


def test_seed_everything() -> None:
    C.seed_everything(5)
    a = torch.rand(3)
    C.seed_everything(5)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(TypeError, match="seed must be an int"):
        C.seed_everything(1.5)


def test_fit_uses_the_fused_adam_with_the_same_update_rule() -> None:
    """fit's Adam is PyTorch's fused kernel on CPU; over 20 steps it follows the plain loop to float64 rounding."""
    from companion.training import _make_optimizer

    torch.manual_seed(0)
    x, y = torch.randn(64, 3, dtype=torch.float64), torch.randn(64, 2, dtype=torch.float64)
    models = [torch.nn.Linear(3, 2).double() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    fused = _make_optimizer("adam", list(models[0].parameters()), lr=1e-2, weight_decay=1e-4)
    plain = torch.optim.Adam(models[1].parameters(), lr=1e-2, weight_decay=1e-4)
    assert fused.defaults["fused"] is True
    for _ in range(20):
        for model, opt in zip(models, (fused, plain)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
