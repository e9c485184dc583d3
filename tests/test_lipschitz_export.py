"""``companion.lipschitz.export``: plain layers that compute the trained network's function, whose certificate
holds for whatever the stored tensors are (crafted, edited, copied), and clear errors where it has no plain form;
and the recipe's options of ``lipschitz_classifier``."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import companion
from companion import lipschitz
from companion.lipschitz import PlainGradientStep, export, lipschitz_classifier, network_certified_radius

pytestmark = pytest.mark.usefixtures("one_thread")


def _recipe(dtype=torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    mean = torch.rand(12)
    model = lipschitz_classifier(
        12, 4, width=12, depth=3, hidden=17, h=0.5, lift=False, preprocessing=lipschitz.Standardize(mean, 1.0)
    )
    with torch.no_grad():  # steps both below and at their bound 2/||A||^2
        model[1].raw_step.fill_(0.1)
        model[2].raw_step.fill_(50.0)
        for layer in model[1:4]:
            layer.bias.normal_()
        model[-1].weight.mul_(3.0)  # a head normalised by its norm
    return model.to(dtype)


def _inputs(dtype, n=64, dim=12):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(1), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("training", [True, False])
def test_the_export_computes_the_same_function_and_leaves_the_model_alone(dtype, training):
    model = _recipe(dtype).train(training)
    before = copy.deepcopy(model.state_dict())
    x = _inputs(dtype)
    exported = export(model)
    with torch.no_grad():
        assert torch.equal(exported(x), model(x))  # the same operations: bit for bit
    assert model.training is training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if isinstance(v, torch.Tensor))
    assert not exported.training and not any(p.requires_grad for p in exported.parameters())
    assert [type(m) for m in exported] == [lipschitz.Standardize, *[PlainGradientStep] * 3, nn.Linear]


def test_the_exports_bound_is_recomputed_and_one_where_the_layer_enforced_it():
    model = _recipe(torch.float64)
    exported = export(model)
    for step in exported[1:4]:
        assert step.lipschitz_bound() <= 1 + 1e-12  # h <= 2/||A||^2, at the bound for the second layer
    assert companion.network_lipschitz_bound(exported) <= 1 + 1e-12
    with torch.no_grad():
        exported[2].step.mul_(10.0)  # an edit that breaks the step condition
    assert exported[2].lipschitz_bound() > 5.0
    assert companion.network_lipschitz_bound(exported) > 5.0


@pytest.mark.parametrize("step", [-0.3, 0.05, 3.0, 40.0])
def test_the_plain_steps_bound_covers_its_measured_jacobian(step):
    """For any stored tensors (negative, small, too large steps) the bound is at least the Jacobian's norm."""
    torch.manual_seed(2)
    weight, bias = torch.randn(9, 5, dtype=torch.float64), torch.randn(9, dtype=torch.float64)
    layer = PlainGradientStep(weight, bias, torch.tensor(step, dtype=torch.float64), activation="leaky_relu")
    bound = layer.lipschitz_bound()
    for x in torch.randn(20, 5, dtype=torch.float64):
        jacobian = torch.autograd.functional.jacobian(layer, x[None])[0, :, 0]
        assert float(torch.linalg.matrix_norm(jacobian, 2)) <= bound * (1 + 1e-12)


@pytest.mark.parametrize("dtype, big", [(torch.float32, 1e8), (torch.float64, 1e17), (torch.float32, 1e3)])
def test_certificates_of_an_export_with_cancelling_values_hold_on_a_line(dtype, big):
    """A step whose two rows cancel huge biases (chapter 6's crafted-weight rule): the export's radii, from its
    own recomputed bound and the rounding analysis of its plain steps, hold by direct evaluation on a line, and
    are the trained module's radii (0 where the rounding could exceed the margin)."""
    first, layer, last = lipschitz.NormalizedLinear(1, 2), lipschitz.NonExpansiveLayer(2, hidden=2), nn.Linear(2, 2)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [0.0]]))
        first.bias.zero_()
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        layer.bias.fill_(big)
        layer.raw_step.fill_(1.0)
        last.weight.copy_(torch.eye(2))
        last.bias.zero_()
    model = nn.Sequential(first, layer, last).to(dtype).eval()
    exported = export(model)
    positions = torch.linspace(-40.0, 40.0, 4001, dtype=dtype)
    with torch.no_grad():
        classes = exported(positions[:, None]).argmax(1)
    radius = network_certified_radius(
        exported, positions[:, None], lipschitz=companion.network_lipschitz_bound(exported)
    )
    distance = (positions[:, None] - positions[None, :]).abs().double()
    broken = (distance < radius.double()[:, None]) & (classes[:, None] != classes[None, :])
    assert int(broken.any(1).sum()) == 0
    trained = network_certified_radius(model, positions[:, None], lipschitz=1.0)
    assert torch.allclose(radius, trained, rtol=1e-4, atol=0)
    assert (float(radius.max()) > 10) is (big < 1e4)  # certifies where the rounding allows


def test_copies_and_saved_exports_compute_the_same_function():
    exported = export(_recipe())
    x = _inputs(torch.float32)
    with torch.no_grad():
        expected = exported(x)
        buffer = io.BytesIO()
        torch.save(exported, buffer)
        buffer.seek(0)
        copies = [copy.deepcopy(exported), pickle.loads(pickle.dumps(exported)), torch.load(buffer, weights_only=False)]
        restored = export(_recipe())
        restored.load_state_dict(exported.state_dict())
        for other in [*copies, restored]:
            assert torch.equal(other(x), expected)


def test_torch_func_agrees_with_the_export():
    exported = export(_recipe(torch.float64))
    x = _inputs(torch.float64, n=3)
    jacobians = torch.func.vmap(torch.func.jacrev(lambda z: exported(z[None])[0]))(x)
    for row, jac in zip(x, jacobians):
        expected = torch.autograd.functional.jacobian(lambda z: exported(z[None])[0], row)
        assert torch.allclose(jac, expected)


@pytest.mark.parametrize("name, value", [("step", float("nan")), ("step", float("inf")), ("weight", float("inf"))])
def test_a_non_finite_stored_tensor_certifies_nothing(name, value):
    exported = export(_recipe(torch.float64))
    state = exported.state_dict()
    state[f"2.{name}"] = state[f"2.{name}"].clone().fill_(value) if name == "step" else state[f"2.{name}"].clone()
    if name == "weight":
        state["2.weight"][0, 0] = value
    exported.load_state_dict(state)
    assert exported[2].lipschitz_bound() == float("inf")
    assert companion.network_lipschitz_bound(exported) == float("inf")
    with pytest.raises(ValueError, match="finite"):  # no certificate from an infinite bound: an error, not radii
        network_certified_radius(
            exported, _inputs(torch.float64), lipschitz=companion.network_lipschitz_bound(exported)
        )


def test_a_saved_step_restores_its_activation():
    step = PlainGradientStep(torch.eye(3), torch.zeros(3), torch.tensor(0.5), activation="tanh")
    other = PlainGradientStep(torch.eye(3), torch.zeros(3), torch.tensor(0.5))
    other.load_state_dict(step.state_dict())
    assert other.activation == "tanh"


def test_models_without_a_plain_form_and_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="SwitchingLayer"):
        export(lipschitz_classifier(4, 2, width=4, depth=1, kind="switching"))
    with pytest.raises(TypeError, match="NonExpansiveConvLayer"):
        export(nn.Sequential(lipschitz.NonExpansiveConvLayer(2)))
    with pytest.raises(TypeError, match="nn.Module"):
        export(lambda x: x)
    hooked = lipschitz_classifier(4, 2, width=4, depth=1)
    hooked[1].register_forward_hook(lambda module, inputs, output: output * 2)
    with pytest.raises(TypeError, match="hooks"):
        export(hooked)
    with pytest.raises(ValueError, match="shapes"):
        PlainGradientStep(torch.eye(3), torch.zeros(2), torch.tensor(0.5))
    with pytest.raises(ValueError, match="finite"):
        PlainGradientStep(torch.eye(3), torch.zeros(3), torch.tensor(float("nan")))
    with pytest.raises(ValueError, match="activation"):
        PlainGradientStep(torch.eye(3), torch.zeros(3), torch.tensor(0.5), activation="gelu")
    with pytest.raises(ValueError, match="last dimension|last_dim|features|shape"):
        export(_recipe())[1](torch.zeros(2, 5))


def test_the_recipe_options_of_lipschitz_classifier():
    torch.manual_seed(0)
    model = lipschitz_classifier(64, 10, width=64, depth=5, hidden=90, h=0.5, lift=False)
    assert sum(p.numel() for p in model.parameters()) == 29_905
    assert [layer.hidden for layer in model[:5]] == [90] * 5
    assert all(float(layer.raw_step.detach()) == 0.5 for layer in model[:5])
    assert companion.network_lipschitz_bound(model) == 1.0
    with pytest.raises(ValueError, match="in_dim == width"):
        lipschitz_classifier(64, 10, width=32, depth=2, lift=False)
    with pytest.raises(TypeError, match="lift"):
        lipschitz_classifier(64, 10, width=64, depth=2, lift="no")
    with pytest.raises(ValueError, match="switching"):
        lipschitz_classifier(64, 10, width=64, depth=2, kind="switching", hidden=90)
    with pytest.raises(ValueError, match="h"):
        lipschitz_classifier(64, 10, width=64, depth=2, h=-1.0)
