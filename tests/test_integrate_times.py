"""States at observation times, and integration backward in time, against torchdiffeq's fixed-grid solvers.

Issue "companion keeps its word", items 3 and 4: ``integrate(f, x0, t=times)`` returns the states at a list of
(irregular, increasing or decreasing) times in one call with ``torchdiffeq.odeint``'s fixed-grid semantics (one
step from each time to the next), and a negative step integrates backward in time, as torchdiffeq does for
decreasing times.
"""

from __future__ import annotations

import math

import pytest
import torch

import companion
from companion import EULER, MIDPOINT, RK4, RK38, integrate, integrate_separable, rk_step

torchdiffeq = pytest.importorskip("torchdiffeq")

pytestmark = pytest.mark.usefixtures("one_thread")

#: torchdiffeq's fixed-grid method names and ours (its "rk4" is Kutta's 3/8 rule).
PAIRS = [("euler", EULER), ("midpoint", MIDPOINT), ("rk4", RK38)]
IRREGULAR = [0.0, 0.1, 0.35, 1.0]


def autonomous(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[..., 1], -torch.sin(x[..., 0]) - 0.1 * x[..., 1]], dim=-1)


def time_dependent(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.cos(3.0 * t) * autonomous(x) + torch.sin(t) * x


def _x0() -> torch.Tensor:
    return torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)


@pytest.mark.parametrize("theirs, ours", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize(
    "times",
    [IRREGULAR, [1.0, 0.7, 0.2, -0.5], [0.0, 0.013, 0.5, 0.51, 2.0, 2.2]],
    ids=["issue", "decreasing", "irregular"],
)
@pytest.mark.parametrize("dependent", [False, True], ids=["f(x)", "f(t, x)"])
def test_states_at_times_are_odeint_on_the_same_grid(theirs, ours, times, dependent) -> None:
    t = torch.tensor(times, dtype=torch.float64)
    field = time_dependent if dependent else autonomous
    reference = torchdiffeq.odeint(field if dependent else (lambda s, x: autonomous(x)), _x0(), t, method=theirs)
    states = integrate(field, _x0(), t=t, tableau=ours, time_dependent=dependent)
    assert states.shape == (len(times), *_x0().shape) and states.dtype == torch.float64
    assert torch.equal(states[0], _x0())
    assert float((states - reference).abs().max()) < 1e-12


def test_times_may_be_a_list_and_the_method_a_name() -> None:
    t = torch.tensor(IRREGULAR, dtype=torch.float64)
    assert torch.equal(
        integrate(autonomous, _x0(), t=IRREGULAR, tableau="RK38"), integrate(autonomous, _x0(), t=t, tableau=RK38)
    )


def test_n_steps_splits_each_gap_into_equal_steps() -> None:
    # with t, n_steps is the number of equal steps per gap: the states are those of the fixed-step trajectory
    trajectory = integrate(autonomous, _x0(), h=0.1, n_steps=10, tableau=RK4)
    states = integrate(autonomous, _x0(), t=[0.0, 0.5, 1.0], n_steps=5, tableau=RK4)
    assert float((states - trajectory[[0, 5, 10]]).abs().max()) < 1e-14
    # and the error at the observation times shrinks at the method's order (4)
    exact = integrate(autonomous, _x0(), t=IRREGULAR, n_steps=400, tableau=RK4)
    errors = [
        float((integrate(autonomous, _x0(), t=IRREGULAR, n_steps=n, tableau=RK4) - exact).abs().max()) for n in (4, 8)
    ]
    assert math.log2(errors[0] / errors[1]) > 3.5


def test_the_gradient_with_respect_to_the_times_flows() -> None:
    # one Euler step from t0 to t1: x1 = x0 + (t1 - t0) f(x0), so d x1 / d t1 = f(x0)
    t = torch.tensor([0.0, 0.3], dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
    states = integrate(autonomous, x0, t=t, tableau=EULER)
    (gradient,) = torch.autograd.grad(states[-1].sum(), t)
    assert float(gradient[1]) == pytest.approx(float(autonomous(x0).sum()), abs=1e-15)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(t=IRREGULAR, h=0.1), ValueError, "not both"),
        (dict(t=IRREGULAR, t0=0.5, time_dependent=True), ValueError, "not both"),
        (dict(), TypeError, "needs the step h and the number of steps n_steps, or the observation times t"),
        (dict(h=0.1), TypeError, "needs the step h"),
        (dict(t=[0.0]), ValueError, "at least two times"),
        (dict(t=[0.0, 0.5, 0.2]), ValueError, "strictly increasing or strictly decreasing"),
        (dict(t=[0.0, 0.5, 0.5]), ValueError, "strictly increasing or strictly decreasing"),
        (dict(t=[0.0, float("nan")]), ValueError, "finite"),
        (dict(t=torch.tensor([0, 1])), TypeError, "floating-point tensor of times"),
        (dict(t=torch.zeros(2, 2)), ValueError, "1-D list"),
        (dict(t="0 1"), TypeError, "1-D tensor or a list of times"),
        (dict(t=[0.0, True]), TypeError, r"t\[1\] must be a finite number"),
        (dict(t=IRREGULAR, n_steps=0), ValueError, "n_steps must be an int >= 1"),
    ],
)
def test_bad_times_are_refused(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        integrate(autonomous, _x0(), **kwargs)


# --- item 3: backward in time ---------------------------------------------------------------------------------


def test_forward_then_backward_with_rk4_returns_to_the_start_to_fourth_order() -> None:
    x0 = _x0()
    gaps = []
    for n in (10, 20, 40):
        h = 1.0 / n
        x1 = integrate(autonomous, x0, h=h, n_steps=n, tableau=RK4)[-1]
        back = integrate(autonomous, x1, h=-h, n_steps=n, tableau=RK4)[-1]
        gaps.append(float((back - x0).abs().max()))
    assert gaps[-1] < 1e-6
    assert all(math.log2(a / b) > 3.5 for a, b in zip(gaps, gaps[1:]))  # O(h^4)


@pytest.mark.parametrize("theirs, ours", PAIRS, ids=[p[0] for p in PAIRS])
def test_a_negative_step_is_odeint_on_a_decreasing_grid(theirs, ours) -> None:
    t = torch.linspace(1.0, 0.0, 11, dtype=torch.float64)
    reference = torchdiffeq.odeint(time_dependent, _x0(), t, method=theirs)
    trajectory = integrate(time_dependent, _x0(), h=-0.1, n_steps=10, tableau=ours, time_dependent=True, t0=1.0)
    assert float((trajectory - reference).abs().max()) < 1e-12
    one = rk_step(time_dependent, _x0(), torch.tensor(-0.1, dtype=torch.float64), ours, time_dependent=True, t=1.0)
    assert float((one - reference[1]).abs().max()) < 1e-13


def test_the_time_passed_to_the_field_decreases_with_a_negative_step() -> None:
    seen = []

    def recorder(t, x):
        seen.append(float(t))
        return -x

    rk_step(recorder, torch.ones(2, dtype=torch.float64), -0.5, RK4, time_dependent=True, t=2.0)
    assert seen == [2.0, 1.75, 1.75, 1.5]


def test_stormer_verlet_runs_backward_to_the_start() -> None:
    # Stormer-Verlet is symmetric: its step of -h is the inverse of its step of h, to rounding
    q0, p0 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    q, p = integrate_separable(lambda p: p, lambda q: q**3, q0, p0, h=0.1, n_steps=50, method="stormer_verlet")
    back_q, back_p = integrate_separable(
        lambda p: p, lambda q: q**3, q[-1], p[-1], h=-0.1, n_steps=50, method="stormer_verlet"
    )
    assert float((back_q[-1] - q0).abs().max()) < 1e-12 and float((back_p[-1] - p0).abs().max()) < 1e-12


def test_layers_keep_their_step_positive() -> None:
    # a layer integrates forward in time; a learned step is kept positive by abs
    for build in (
        lambda h: companion.FlowLayer(companion.MLPField(2), h=h),
        lambda h: companion.SpherePreservingLayer(3, h=h),
    ):
        with pytest.raises(ValueError, match="h must be a finite number > 0"):
            build(-0.1)
