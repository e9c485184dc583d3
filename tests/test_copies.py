"""A copy computes the same function: every layer of the registry, with every method it accepts.

``copy.deepcopy``, ``pickle``, ``torch.save(model)``/``torch.load`` and what is built on them
(``torch.optim.swa_utils.AveragedModel``, ``torch.func`` ensembles over a deep-copied base) once switched
``SymplecticLayer`` and ``VolumePreservingLayer`` from symplectic Euler to Störmer--Verlet and ``SpherePreservingLayer``
from Cayley or rotation to exp: the layers told their methods apart by identity, and a copied method was a new
object. Here every entry of the registry of ``tests/test_compile.py``, built with each method its layers accept,
is copied in each of those ways; each copy must give bit-identical outputs, the same ``repr``, settings and state
dict, and hold the very method objects of the original.
"""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from test_compile import ALL_CASES, Case
from torch import nn
from torch.optim.swa_utils import AveragedModel

import companion as C
from companion.integrators import METHODS

pytestmark = pytest.mark.usefixtures("one_thread")

#: A Runge--Kutta method of the user's own (Ralston's), under its own key: copied by content, not by key.
RALSTON = C.ButcherTableau("Ralston", a=((), (2 / 3,)), b=(0.25, 0.75), order=2, key="ralston")
CANDIDATES = [*METHODS.values(), RALSTON]


def _build(case: Case, method) -> nn.Module:
    torch.manual_seed(0)
    settings = case.settings if method is None else {**case.settings, "method": method}
    return case.build(**settings)


def _accepted(case: Case) -> list:
    """The methods the entry can be built with (``[None]``, its own settings, for entries without a method)."""
    try:
        _build(case, C.EULER)
    except TypeError:  # the builder takes no method
        return [None]
    except ValueError:
        pass
    accepted = []
    for method in CANDIDATES:
        try:
            _build(case, method)
        except ValueError:
            continue
        accepted.append(method)
    return accepted


VARIANTS = [
    pytest.param(case, method, id=case.name if method is None else f"{case.name}-{method.key}")
    for case in ALL_CASES
    for method in _accepted(case)
]


def test_every_entry_with_a_method_is_copied_with_several() -> None:
    # a registry entry whose builder takes a method, but no candidate is accepted, would hide from this file
    with_method = {case.name: methods for case in ALL_CASES if (methods := _accepted(case)) != [None]}
    assert with_method and all(methods for methods in with_method.values()), with_method
    assert len(with_method["FlowLayer-rk4"]) == 7 and len(with_method["SpherePreservingLayer-cayley-rank1"]) == 3


def _saved_whole(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _same_state(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def _methods(model: nn.Module) -> list:
    return [module.__dict__["method"] for module in model.modules() if "method" in module.__dict__]


def _settings(model: nn.Module) -> list:
    return [module.settings() for module in model.modules() if callable(getattr(module, "settings", None))]


@pytest.mark.parametrize("case, method", VARIANTS)
def test_copies_compute_the_same_function(case: Case, method) -> None:
    model = _build(case, method)
    copies = {  # made before the first call, so that nothing a call may update differs
        "deepcopy": copy.deepcopy(model),
        "pickle": pickle.loads(pickle.dumps(model)),
        "torch.save": _saved_whole(model),
        "AveragedModel": AveragedModel(model),
    }
    x = case.inputs()
    with torch.no_grad():
        expected = model(x)
        for how, clone in copies.items():
            assert torch.equal(clone(x), expected), f"{how}: the copy computes another function"
    for how, clone in copies.items():
        inner = clone.module if how == "AveragedModel" else clone
        assert repr(inner) == repr(model), how
        assert _settings(inner) == _settings(model), how
        assert _same_state(inner.state_dict(), model.state_dict()), how
        for ours, theirs in zip(_methods(model), _methods(inner), strict=True):
            registered = METHODS.get(ours.key) is ours
            assert theirs is ours if registered else theirs == ours, f"{how}: {theirs!r} for {ours!r}"


ENSEMBLE_VARIANTS = [param for param in VARIANTS if param.values[1] is not None]


@pytest.mark.parametrize("case, method", ENSEMBLE_VARIANTS)
def test_ensembles_over_a_deep_copied_base(case: Case, method) -> None:
    # the torch.func recipe for model ensembling: stacked parameters, called through a copy on the meta device
    models = [_build(case, method).double()]
    torch.manual_seed(1)
    models.append(copy.deepcopy(models[0]))
    with torch.no_grad():
        for parameter in models[1].parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    parameters, buffers = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def call(parameters, buffers, x):
        return torch.func.functional_call(base, (parameters, buffers), (x,))

    x = case.inputs().double()
    with torch.no_grad():
        outputs = torch.func.vmap(call, in_dims=(0, 0, None))(parameters, buffers, x)
        for output, model in zip(outputs, models, strict=True):
            expected = model(x)
            assert float((output - expected).abs().max()) < 1e-12 * (1 + float(expected.abs().max()))


def test_a_trained_sphere_network_keeps_its_fit_when_copied() -> None:
    # the reproduction: a gradient-sphere network fitted with Cayley steps, then deep-copied
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = torch.stack([x[:, 0] * x[:, 1], torch.sin(x[:, 0])], -1)
    for method in ("cayley", "rotation"):
        net = C.gradient_sphere_network(2, 2, width=3, depth=2, hidden=8, h=0.5, method=method)
        optimiser = torch.optim.Adam(net.parameters(), lr=0.02)
        for _ in range(60):
            optimiser.zero_grad()
            loss = (net(x) - y).square().mean()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            assert torch.equal(copy.deepcopy(net)(x), net(x))
            assert torch.equal(AveragedModel(net)(x), net(x))
