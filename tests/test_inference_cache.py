"""Weight-derived values cached in eval mode (companion.lipschitz.inference): the same function, never stale."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import companion
from companion import lipschitz
from companion.lipschitz import layers as lipschitz_layers


def _models():
    torch.manual_seed(0)
    dense = lipschitz.lipschitz_classifier(6, 3, width=8, depth=2)
    switching = lipschitz.lipschitz_classifier(6, 3, width=8, depth=2, kind="switching")
    conv = nn.Sequential(
        lipschitz.NonExpansiveConvLayer(2, kernel_size=3), nn.Flatten(), lipschitz.NormalizedLinear(50, 3)
    )
    return {"nonexpansive": (dense, (5, 6)), "switching": (switching, (5, 6)), "conv": (conv, (5, 2, 5, 5))}


MODELS = list(_models())


def _pair(name):
    model, shape = _models()[name]
    return model.double(), torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("name", MODELS)
def test_eval_reuses_the_derived_values_and_computes_the_same_function(name, monkeypatch):
    model, x = _pair(name)
    with torch.no_grad():
        expected = model(x)  # training mode: computed afresh
    model.eval()
    with torch.no_grad():
        first = model(x)
    calls = []
    original = lipschitz_layers.dense_operator_norm
    monkeypatch.setattr(lipschitz_layers, "dense_operator_norm", lambda w: calls.append(1) or original(w))
    with torch.no_grad():
        again = model(x)
    assert torch.equal(first, expected) and torch.equal(again, expected)
    assert calls == []  # nothing re-derived (the conv model's norms are FFT-based, also cached)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("edit", ["data", "load_state_dict", "optimizer"])
def test_a_changed_parameter_is_seen_however_it_changed(name, edit):
    model, x = _pair(name)
    model.eval()
    with torch.no_grad():
        model(x)  # fills the cache
    weight = next(p for n, p in model.named_parameters() if n.endswith("weight"))
    if edit == "data":
        weight.data.mul_(1e3)  # no version bump through .data
    elif edit == "load_state_dict":
        state = {k: v * 3 if k.endswith("weight") else v for k, v in model.state_dict().items()}
        model.load_state_dict(state)
    else:
        model.train()
        companion.fit(model, (x, torch.zeros(len(x), dtype=torch.long)), epochs=1, loss="cross_entropy", lr=0.5)
        model.eval()
    fresh = copy.deepcopy(model).train()
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))


@pytest.mark.parametrize("name", MODELS)
def test_gradients_with_respect_to_the_weights_are_unchanged_in_eval_mode(name):
    model, x = _pair(name)
    model.eval()
    with torch.no_grad():
        model(x)
    grads = torch.autograd.grad(model(x).square().sum(), list(model.parameters()), allow_unused=True)
    reference = copy.deepcopy(model).train()
    expected = torch.autograd.grad(reference(x).square().sum(), list(reference.parameters()), allow_unused=True)
    for got, want in zip(grads, expected):
        assert (got is None and want is None) or torch.equal(got, want)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_attacks_reuse_the_cache_leave_the_parameters_alone_and_agree_with_no_cache(name, monkeypatch):
    model, x = _pair(name)
    labels = model(x).argmax(1).detach()
    model.eval()
    before = [p.requires_grad for p in model.parameters()]
    adversarial, fooled = lipschitz.apgd_l2(model, x, labels, epsilon=0.5, steps=10)
    assert [p.requires_grad for p in model.parameters()] == before
    assert all(p.grad is None for p in model.parameters())
    uncached = copy.deepcopy(model)
    monkeypatch.setattr(lipschitz.DerivedCache, "derived", lambda self, name, compute, *inputs: compute())
    again, fooled_again = lipschitz.apgd_l2(uncached, x, labels, epsilon=0.5, steps=10)
    assert torch.equal(adversarial, again) and torch.equal(fooled, fooled_again)


@pytest.mark.parametrize("name", MODELS)
def test_copies_carry_no_cache_and_compute_the_same_function(name):
    model, x = _pair(name)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert not any("_derived_cache" in vars(m) for m in copied.modules())
        with torch.no_grad():
            assert torch.equal(copied(x), expected)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


def test_functional_call_with_other_parameters_is_not_answered_from_the_cache():
    model, x = _pair("nonexpansive")
    model.eval()
    with torch.no_grad():
        model(x)
        other = {k: v * 5 for k, v in model.named_parameters()}
        got = torch.func.functional_call(model, other, (x,))
        reference = copy.deepcopy(model)
        reference.load_state_dict({**reference.state_dict(), **other})
        assert torch.equal(got, reference.train()(x))
    jacobian = torch.func.jacrev(lambda p: torch.func.functional_call(model, p, (x,)).sum())(
        dict(model.named_parameters())
    )
    assert all(torch.isfinite(j).all() for j in jacobian.values())


def test_values_cached_in_inference_mode_are_not_reused_under_autograd():
    model, x = _pair("nonexpansive")
    model.eval()
    with torch.inference_mode():
        model(x)
    labels = torch.zeros(len(x), dtype=torch.long)
    lipschitz.pgd_l2(model, x, labels, epsilon=0.1, steps=2)  # would fail on an inference tensor saved for backward


def test_a_change_of_one_ulp_is_seen():
    model, x = _pair("nonexpansive")
    model.eval()
    with torch.no_grad():
        model(x)
        weight = model[1].weight
        weight.data[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(float("inf"), dtype=weight.dtype))
        assert torch.equal(model(x), copy.deepcopy(model).train()(x))
        assert torch.equal(model[1].step(), copy.deepcopy(model[1]).train().step())


def test_a_changed_setting_is_seen_not_only_a_changed_weight():
    torch.manual_seed(0)
    zeros = lipschitz.NonExpansiveConvLayer(1, padding_mode="zeros", h=100.0).eval()
    circular = lipschitz.NonExpansiveConvLayer(1, padding_mode="circular", h=100.0).eval()
    circular.load_state_dict(zeros.state_dict() | {"_extra_state": circular.state_dict()["_extra_state"]})
    x = torch.randn(1, 1, 3, 3)
    with torch.no_grad():
        zeros(x)  # caches the step of the zero-padded operator
        zeros.load_state_dict(circular.state_dict())  # same weights, padding now circular
        assert zeros.padding_mode == "circular"
        assert torch.equal(zeros(x), copy.deepcopy(zeros).train()(x))


def test_a_parametrised_weight_is_read_through_its_parametrisation():
    model, x = _pair("nonexpansive")
    layer = model[1]
    nn.utils.parametrize.register_parametrization(layer, "weight", _Scale())
    model.eval()
    with torch.no_grad():
        model(x)
        layer.parametrizations.weight.original.mul_(3.0)
        assert torch.equal(model(x), copy.deepcopy(model).train()(x))


class _Scale(nn.Module):
    def forward(self, weight):
        return 2.0 * weight


def test_forward_mode_derivatives_in_eval_mode_are_not_answered_from_the_cache():
    import torch.autograd.forward_ad as fwAD

    model, x = _pair("nonexpansive")
    layer = model[1].eval()
    z = torch.randn(5, 8, dtype=torch.float64)
    tangent = torch.randn_like(layer.weight)
    with torch.no_grad():
        layer(z)  # fills the cache
    expected = torch.func.jvp(
        lambda w: torch.func.functional_call(layer, {"weight": w}, (z,)), (layer.weight,), (tangent,)
    )
    with fwAD.dual_level():
        params = {k: v for k, v in layer.named_parameters()}
        params["weight"] = fwAD.make_dual(layer.weight.detach(), tangent)
        got = fwAD.unpack_dual(torch.func.functional_call(layer, params, (z,))).tangent
    torch.testing.assert_close(got, expected[1])


def test_inputs_only_is_local_to_its_thread():
    import threading

    model, x = _pair("nonexpansive")
    model.eval()
    entered, release = threading.Event(), threading.Event()

    def attack_in_background():
        with lipschitz.inputs_only():
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=attack_in_background)
    worker.start()
    entered.wait(10)
    try:
        grads = torch.autograd.grad(model(x).square().sum(), list(model.parameters()))
    finally:
        release.set()
        worker.join()
    reference = copy.deepcopy(model).train()
    expected = torch.autograd.grad(reference(x).square().sum(), list(reference.parameters()))
    for got, want in zip(grads, expected):
        assert torch.equal(got, want)
