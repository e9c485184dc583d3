"""One rule for scalars, case-insensitive method names, and a hint when a field's signature does not fit the call.

Issue "companion keeps its word", items 2 and 5. A step or a time is a Python or NumPy real number, or a floating
tensor with one element (a 0-d tensor; a one-element tensor is read as its value), everywhere: the routines
(``rk_step``, ``integrate``, the geometric steps) and the layers. Routines take any finite non-zero step (negative:
backward in time), layers a step > 0. Method names match in any case. A field ``f(t, x)`` passed without
``time_dependent=True`` (or ``f(x)`` with it) gets a ``TypeError`` that says so.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

import companion
from companion import (
    RK4,
    FlowLayer,
    MLPField,
    SpherePreservingLayer,
    cayley_step,
    get_method,
    integrate,
    integrate_separable,
    low_rank_cayley_step,
    rk_step,
    rotation_step,
    symplectic_euler_step,
)

pytestmark = pytest.mark.usefixtures("one_thread")

X = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)

#: Every accepted form of the step 0.25 (exactly representable, so every form is the same number).
STEPS = [
    0.25,
    np.float32(0.25),
    np.float64(0.25),
    torch.tensor(0.25),
    torch.tensor([0.25], dtype=torch.float64),
    torch.tensor([[0.25]], dtype=torch.float32),
]
STEP_IDS = ["float", "np.float32", "np.float64", "0-d tensor", "(1,) tensor", "(1, 1) tensor"]


def field(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[..., 1], -x[..., 0]], dim=-1)


def time_field(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.cos(t) * field(x)


@pytest.mark.parametrize("h", STEPS, ids=STEP_IDS)
def test_every_form_of_a_step_is_accepted_everywhere(h) -> None:
    reference = rk_step(field, X, 0.25, RK4)
    assert torch.equal(rk_step(field, X, h, RK4), reference)
    assert torch.equal(integrate(field, X, h=h, n_steps=1, tableau=RK4)[-1], reference)
    with torch.no_grad():
        assert torch.equal(FlowLayer(field, h=h, method=RK4).double()(X), reference)
    assert FlowLayer(field, h=h).settings()["h"] == 0.25
    assert SpherePreservingLayer(3, h=h).settings()["h"] == 0.25
    S = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    assert torch.equal(cayley_step(S, X, h), cayley_step(S, X, 0.25))
    assert torch.equal(rotation_step(field(X), X, h), rotation_step(field(X), X, 0.25))
    U, V = X.unsqueeze(-1), field(X).unsqueeze(-1)
    assert torch.equal(low_rank_cayley_step(U, V, X, h), low_rank_cayley_step(U, V, X, 0.25))
    q, p = symplectic_euler_step(lambda p: p, lambda q: q, X, X, h)
    assert torch.equal(q, X + 0.25 * X)
    qs, _ = integrate_separable(lambda p: p, lambda q: q, X, X, h=h, n_steps=1)
    assert torch.equal(qs[-1], q)


@pytest.mark.parametrize(
    "t",
    [0.5, np.float32(0.5), np.float64(0.5), 1, torch.tensor(0.5), torch.tensor([0.5])],
    ids=["float", "np.float32", "np.float64", "int", "0-d tensor", "(1,) tensor"],
)
def test_every_form_of_a_time_is_accepted(t) -> None:
    reference = rk_step(time_field, X, 0.25, RK4, time_dependent=True, t=float(t))
    assert torch.equal(rk_step(time_field, X, 0.25, RK4, time_dependent=True, t=t), reference)
    assert torch.equal(integrate(time_field, X, h=0.25, n_steps=1, time_dependent=True, t0=t)[-1], reference)
    with torch.no_grad():
        layer = FlowLayer(time_field, h=0.25, method=RK4, time_dependent=True, t0=t).double()
        assert torch.equal(layer(X), reference)


def test_a_tensor_step_keeps_its_graph_in_the_routines() -> None:
    h = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(rk_step(field, X, h, "euler").sum(), h)
    assert float(gradient) == pytest.approx(float(field(X).sum()))


@pytest.mark.parametrize(
    "h, error, match",
    [
        (True, TypeError, "got True of type bool"),
        (np.bool_(True), TypeError, "of type bool"),
        (1j, TypeError, "of type complex"),
        ("0.1", TypeError, "of type str"),
        (None, TypeError, "of type NoneType|needs the step h"),
        (torch.tensor(1), TypeError, "floating-point scalar tensor"),
        (torch.tensor(0.1 + 0j), TypeError, "floating-point scalar tensor"),
        (torch.ones(2), ValueError, "h must be a scalar step size"),
        (0, ValueError, "h must be a finite non-zero number"),
        (0.0, ValueError, "h must be a finite non-zero number"),
        (float("nan"), ValueError, "h must be a finite non-zero number"),
        (float("inf"), ValueError, "h must be a finite non-zero number"),
        (10**400, ValueError, "h must be a finite non-zero number"),
        (torch.tensor(float("-inf")), ValueError, "got the tensor -inf"),
    ],
    ids=lambda value: repr(value)[:24],
)
def test_bad_steps_are_refused_by_the_routines(h, error, match) -> None:
    for call in (
        lambda: rk_step(field, X, h),
        lambda: integrate(field, X, h=h, n_steps=2),
        lambda: rotation_step(field(X), X, h),
    ):
        with pytest.raises(error, match=match):
            call()


@pytest.mark.parametrize(
    "h, error, match",
    [
        (-0.1, ValueError, "h must be a finite number > 0"),
        (0.0, ValueError, "h must be a finite number > 0"),
        (torch.tensor(-0.1), ValueError, "h must be a finite number > 0"),
        (True, TypeError, "of type bool"),
        (torch.ones(2), ValueError, "scalar"),
        (torch.tensor(0.1, requires_grad=True), ValueError, "learn_step=True"),
    ],
    ids=lambda value: repr(value)[:24],
)
def test_bad_steps_are_refused_by_the_layers(h, error, match) -> None:
    for build in (
        lambda: FlowLayer(field, h=h),
        lambda: SpherePreservingLayer(3, h=h),
        lambda: companion.GradientLayer(3, h=h),
    ):
        with pytest.raises(error, match=match):
            build()


def test_negative_steps_are_accepted_by_the_routines_and_undo_the_step() -> None:
    forward = rk_step(field, X, 0.01, RK4)
    assert float((rk_step(field, forward, -0.01, RK4) - X).abs().max()) < 1e-10  # O(h^5)
    S = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    assert float((cayley_step(S, cayley_step(S, X, 0.3), -0.3) - X).abs().max()) < 1e-15


# --- method names in any case ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["RK4", "Rk4", "rk4"])
def test_method_names_match_in_any_case(name) -> None:
    assert get_method(name) is RK4
    assert FlowLayer(MLPField(2), method=name).method is RK4
    assert torch.equal(rk_step(field, X, 0.1, name), rk_step(field, X, 0.1, RK4))
    assert torch.equal(integrate(field, X, h=0.1, n_steps=2, tableau=name), integrate(field, X, h=0.1, n_steps=2))
    assert SpherePreservingLayer(3, method="CAYLEY").method is companion.CAYLEY
    assert get_method("Stormer_Verlet") is companion.STORMER_VERLET
    with pytest.raises(ValueError, match="unknown method 'RK5'"):  # the message shows the name as given
        get_method("RK5")


# --- item 5: f(x) against f(t, x) ------------------------------------------------------------------------------


class TimeModule(nn.Module):
    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return time_field(t, x)


class StateModule(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return field(x)


def _with_parameter(t, x, scale):
    return scale * time_field(t, x)


TWO_ARGUMENTS = [time_field, lambda t, x: time_field(t, x), TimeModule(), functools.partial(_with_parameter, scale=2.0)]
ONE_ARGUMENT = [field, lambda x: field(x), StateModule(), functools.partial(_with_parameter, 0.0, scale=2.0)]
IDS = ["function", "lambda", "nn.Module", "functools.partial"]


@pytest.mark.parametrize("f", TWO_ARGUMENTS, ids=IDS)
def test_a_field_of_t_and_x_without_time_dependent_gets_a_hint(f) -> None:
    match = r"takes \(t, x\): pass time_dependent=True"
    for call in (
        lambda: rk_step(f, X, 0.1),
        lambda: integrate(f, X, h=0.1, n_steps=2),
        lambda: integrate(f, X, t=[0.0, 0.5]),
        lambda: FlowLayer(f),
    ):
        with pytest.raises(TypeError, match=match):
            call()


@pytest.mark.parametrize("f", ONE_ARGUMENT, ids=IDS)
def test_a_field_of_x_with_time_dependent_gets_a_hint(f) -> None:
    match = r"takes \(x\) alone: drop time_dependent=True"
    for call in (
        lambda: rk_step(f, X, 0.1, time_dependent=True),
        lambda: FlowLayer(f, time_dependent=True),
        lambda: integrate(f, X, h=0.1, n_steps=2, time_dependent=True),
        lambda: integrate(f, X, t=[0.0, 0.5], time_dependent=True),
    ):
        with pytest.raises(TypeError, match=match):
            call()


def test_fields_that_take_either_call_and_other_type_errors_pass_unchanged() -> None:
    def either(first, second=None):  # f(x) or f(t, x)
        return field(first if second is None else second)

    def variadic(*args):
        return field(args[-1])

    for f in (either, variadic):
        rk_step(f, X, 0.1)
        rk_step(f, X, 0.1, time_dependent=True)

    def broken(x):
        raise TypeError("a bug inside the field")

    with pytest.raises(TypeError, match="a bug inside the field"):
        rk_step(broken, X, 0.1)


def test_loading_a_time_dependent_layer_into_a_layer_of_a_field_of_x_gets_the_hint() -> None:
    saved = FlowLayer(TimeModule(), time_dependent=True, t0=0.5)
    with pytest.raises(TypeError, match=r"takes \(x\) alone"):
        FlowLayer(StateModule()).load_state_dict(saved.state_dict())
