"""Integrators: declared orders measured, structure kept, bad input refused."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import companion
from companion import (
    EULER,
    HEUN,
    KUTTA3,
    MIDPOINT,
    RK4,
    ButcherTableau,
    cayley_step,
    empirical_order,
    exp_step,
    integrate,
    require_method,
    rk_step,
    stormer_verlet_step,
    symplectic_euler_step,
)
from companion.integrators import METHODS, TABLEAUS, get_method

pytestmark = pytest.mark.usefixtures("float64_by_default")


def rotation(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[..., 1], -x[..., 0]], -1)


def exact_rotation(x0: torch.Tensor, t: float) -> torch.Tensor:
    c, s = math.cos(t), math.sin(t)
    return torch.stack([c * x0[..., 0] + s * x0[..., 1], -s * x0[..., 0] + c * x0[..., 1]], -1)


def logistic_errors(tableau: ButcherTableau, steps=(10, 20, 40, 80)) -> tuple[list[float], list[float]]:
    # x' = x (1 - x), x(0) = 0.1: exact x(t) = 1 / (1 + 9 e^{-t}); a nonlinear problem.
    x0 = torch.tensor([0.1])
    hs, errs = [], []
    for n in steps:
        h = 1.0 / n
        xn = integrate(lambda x: x * (1 - x), x0, h=h, n_steps=n, tableau=tableau)[-1]
        hs.append(h)
        errs.append(abs(float(xn) - 1 / (1 + 9 * math.exp(-1.0))))
    return hs, errs


@pytest.mark.parametrize("tableau", list(TABLEAUS.values()), ids=lambda t: t.name)
def test_declared_order_is_measured(tableau: ButcherTableau) -> None:
    hs, errs = logistic_errors(tableau)
    assert abs(empirical_order(hs, errs) - tableau.order) < 0.1


@pytest.mark.parametrize("tableau", list(TABLEAUS.values()), ids=lambda t: t.name)
def test_tableau_consistency(tableau: ButcherTableau) -> None:
    assert abs(sum(tableau.b) - 1) < 1e-14
    assert len(tableau.c) == tableau.stages


def test_rk_step_matches_hand_written_heun() -> None:
    f = lambda x: torch.sin(x)  # noqa: E731
    x = torch.randn(7, 3)
    k1 = f(x)
    k2 = f(x + 0.3 * k1)
    assert torch.allclose(rk_step(f, x, 0.3, HEUN), x + 0.15 * (k1 + k2), atol=1e-15)


def test_rk_step_accepts_tensor_step_and_is_differentiable() -> None:
    h = torch.tensor(0.1, requires_grad=True)
    x = torch.ones(2, 2)
    y = rk_step(lambda z: -z, x, h, RK4)
    y.sum().backward()
    # d/dh of (1 - h + h^2/2 - h^3/6 + h^4/24) per entry, times 4 entries
    expected = 4 * (-1 + 0.1 - 0.01 / 2 + 0.001 / 6)
    assert abs(float(h.grad) - expected) < 1e-12


@given(st.sampled_from(list(TABLEAUS.values())), st.floats(0.01, 2.0), st.integers(0, 2**31 - 1))
@settings(max_examples=50, deadline=None)
def test_every_rk_method_keeps_linear_invariants(tableau, h, seed) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(4, 4, generator=gen)
    f = lambda x: torch.tanh(x @ a)  # noqa: E731  # any nonlinear field ...
    w = torch.randn(4, generator=gen)
    proj = torch.eye(4) - torch.outer(w, w) / (w @ w)  # fields orthogonal to w keep w^T x
    g = lambda x: f(x) @ proj  # noqa: E731
    x = torch.randn(16, 4, generator=gen)
    y = rk_step(g, x, h, tableau)
    assert float((y @ w - x @ w).abs().max()) < 1e-12


def pendulum_parts():
    return (lambda p: p), (lambda q: torch.sin(q))


@pytest.mark.parametrize("step, order", [(symplectic_euler_step, 1), (stormer_verlet_step, 2)])
def test_symplectic_methods_orders(step, order) -> None:
    dT, dU = pendulum_parts()
    q0, p0 = torch.tensor([1.0]), torch.tensor([0.0])
    # reference by RK4 with a tiny step
    ref = integrate(
        lambda x: torch.cat([x[..., 1:], -torch.sin(x[..., :1])], -1), torch.tensor([1.0, 0.0]), h=1e-4, n_steps=10000
    )[-1]
    hs, errs = [], []
    for n in (20, 40, 80, 160):
        q, p = q0, p0
        for _ in range(n):
            q, p = step(dT, dU, q, p, 1.0 / n)
        hs.append(1.0 / n)
        errs.append(float((torch.cat([q, p]) - ref).norm()))
    assert abs(empirical_order(hs, errs) - order) < 0.1


def test_symplectic_euler_energy_is_bounded_explicit_euler_is_not() -> None:
    dT, dU = pendulum_parts()
    energy = lambda q, p: 0.5 * p**2 - torch.cos(q)  # noqa: E731
    q, p = torch.tensor([1.0]), torch.tensor([0.0])
    e0 = energy(q, p)
    x = torch.tensor([1.0, 0.0])
    worst_symplectic = 0.0
    for _ in range(10_000):
        q, p = symplectic_euler_step(dT, dU, q, p, 0.05)
        worst_symplectic = max(worst_symplectic, float((energy(q, p) - e0).abs()))
    traj = integrate(
        lambda z: torch.cat([z[..., 1:], -torch.sin(z[..., :1])], -1), x, h=0.05, n_steps=10_000, tableau=EULER
    )
    euler_drift = float((energy(traj[-1, 0], traj[-1, 1]) - e0).abs())
    assert worst_symplectic < 0.05
    assert euler_drift > 1.0


@given(st.integers(2, 6), st.floats(0.01, 10.0), st.integers(0, 2**31 - 1))
@settings(max_examples=50, deadline=None)
def test_norm_exact_steps_keep_the_norm(dim, h, seed) -> None:
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(5, dim, dim, generator=gen)
    s = m - m.transpose(-1, -2)
    x = torch.randn(5, dim, generator=gen)
    for step in (cayley_step, exp_step):
        y = step(s, x, h)
        assert float((y.norm(dim=-1) - x.norm(dim=-1)).abs().max()) < 1e-12 * (1 + h)


def test_exp_step_is_the_exact_flow_for_constant_skew() -> None:
    s = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    x = torch.tensor([[1.0, 0.0]])
    assert torch.allclose(exp_step(s, x, 0.7), exact_rotation(x, 0.7), atol=1e-14)


def test_require_method() -> None:
    assert require_method("symplecticity", "stormer_verlet") is companion.STORMER_VERLET
    assert require_method("linear_invariants", companion.RK4) is companion.RK4
    with pytest.raises(ValueError, match="does not keep symplecticity; use one of 'symplectic_euler'"):
        require_method("symplecticity", "rk4")
    with pytest.raises(ValueError, match="unknown property"):
        require_method("energy", "rk4")


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: rk_step(lambda x: x, [1.0], 0.1, RK4), TypeError, "must be a torch.Tensor"),
        (lambda: rk_step(lambda x: x, torch.ones(2), 0.0, RK4), ValueError, "h must be a finite non-zero number"),
        (
            lambda: rk_step(lambda x: x, torch.ones(2), 0.1, 4),
            TypeError,
            "tableau must be a method of companion.integrators",
        ),
        (lambda: rk_step(3, torch.ones(2), 0.1, RK4), TypeError, "callable"),
        (lambda: rk_step(lambda x: x, torch.ones(2, dtype=torch.int64), 0.1, RK4), TypeError, "floating-point"),
        (lambda: rk_step(lambda x: x, torch.ones(2), torch.ones(2), RK4), ValueError, "scalar step size"),
        (lambda: integrate(lambda x: x, torch.ones(2), h=0.1, n_steps=0), ValueError, "n_steps must be an int >= 1"),
        (lambda: ButcherTableau("bad", a=((), (1.0,)), b=(0.5, 0.6), order=1), ValueError, "sum to 1"),
        (lambda: ButcherTableau("implicit", a=((0.5,),), b=(1.0,), order=1), ValueError, "explicit methods"),
        (
            lambda: symplectic_euler_step(lambda p: p, lambda q: q, torch.ones(2), torch.ones(3), 0.1),
            ValueError,
            "same shape",
        ),
        (lambda: cayley_step(torch.eye(2), torch.ones(1, 2), 0.1), ValueError, "skew-symmetric"),
        (lambda: exp_step(torch.zeros(3, 3), torch.ones(1, 2), 0.1), ValueError, "must have shape"),
    ],
)
def test_bad_input_is_refused(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_repr_names_the_order() -> None:
    assert "order=4" in repr(RK4) and MIDPOINT.order == 2 and KUTTA3.order == 3


@given(st.integers(2, 6), st.floats(0.01, 10.0), st.integers(0, 2**31 - 1))
@settings(max_examples=50, deadline=None)
def test_rotation_step_is_the_exponential_of_the_rank_two_skew_matrix(dim, h, seed) -> None:
    from companion import rotation_step

    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(4, dim, dim, generator=gen)
    s = m - m.transpose(-1, -2)
    x = torch.randn(4, dim, generator=gen)
    v = (s @ x.unsqueeze(-1)).squeeze(-1)
    rank_two = (v.unsqueeze(-1) * x.unsqueeze(-2) - x.unsqueeze(-1) * v.unsqueeze(-2)) / (x * x).sum(-1)[:, None, None]
    y = rotation_step(v, x, h)
    assert float((y.norm(dim=-1) - x.norm(dim=-1)).abs().max()) < 1e-12 * (1 + h)
    assert torch.allclose(y, exp_step(rank_two, x, h), atol=1e-10 * (1 + h))


def test_rotation_step_is_first_order_and_handles_zero_velocity() -> None:
    from companion import rotation_step

    s = torch.tensor([[0.0, 1.0, 0.5], [-1.0, 0.0, -0.3], [-0.5, 0.3, 0.0]])
    field = lambda x: ((s * (1 + x[..., :1, None] ** 2)) @ x.unsqueeze(-1)).squeeze(-1)  # noqa: E731  # S(x) x
    x0 = torch.tensor([[1.0, 0.5, -0.2]])
    reference = integrate(field, x0, h=1e-3, n_steps=1000)[-1]
    hs, errors = [], []
    for n in (10, 20, 40, 80):
        x = x0
        for _ in range(n):
            x = rotation_step(field(x), x, 1.0 / n)
        hs.append(1.0 / n)
        errors.append(float((x - reference).norm()))
    assert abs(empirical_order(hs, errors) - 1.0) < 0.15
    assert torch.equal(rotation_step(torch.zeros(1, 3), x0, 0.5), x0)
    with pytest.raises(ValueError, match="same shape"):
        rotation_step(torch.zeros(1, 2), x0, 0.5)


def test_rk38_agrees_with_torchdiffeq_rk4_to_rounding() -> None:
    torchdiffeq = pytest.importorskip("torchdiffeq")  # benchmark-only dependency, pinned in requirements.txt
    from companion import RK38, MLPField

    torch.manual_seed(0)
    field = MLPField(3, 8).double()
    x0 = torch.randn(5, 3)
    grid = torch.linspace(0, 1, 21)
    with torch.no_grad():
        ours = integrate(field, x0, h=0.05, n_steps=20, tableau=RK38)[-1]
        theirs = torchdiffeq.odeint(lambda t, x: field(x), x0, grid, method="rk4")[-1]
    assert float((ours - theirs).abs().max()) < 1e-13


def test_methods_are_given_as_objects_or_names_everywhere() -> None:
    x = torch.ones(3, 2, dtype=torch.float64)
    assert torch.equal(rk_step(lambda z: -z, x, 0.1, "rk4"), rk_step(lambda z: -z, x, 0.1, companion.RK4))
    assert torch.equal(
        integrate(lambda z: -z, x, h=0.1, n_steps=3, tableau="heun"),
        integrate(lambda z: -z, x, h=0.1, n_steps=3, tableau=companion.HEUN),
    )
    for key, method in METHODS.items():
        assert get_method(key) is method and get_method(method) is method and method.key == key
    layers = [
        companion.FlowLayer(torch.nn.Linear(2, 2), method="rk4"),
        companion.MassPreservingLayer(3, method="rk4"),
        companion.SymplecticLayer(2, method="stormer_verlet"),
        companion.VolumePreservingLayer(2, method="stormer_verlet"),
        companion.SpherePreservingLayer(3, method="rotation"),
    ]
    for layer in layers:
        assert layer.method is get_method(layer.method.key)
    with pytest.raises(ValueError, match="method must be an explicit Runge-Kutta method"):
        companion.FlowLayer(torch.nn.Linear(2, 2), method="cayley")
    with pytest.raises(ValueError, match="unknown tableau 'rk5'"):
        rk_step(lambda z: -z, x, 0.1, "rk5")


# --- fields that depend on time, f(t, x), as torchdiffeq users write them ---------------------------------


def gaussian_decay(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -2.0 * t * x  # exact solution x(t) = x(t0) exp(-(t^2 - t0^2))


@pytest.mark.parametrize("tableau", list(TABLEAUS.values()), ids=lambda t: t.name)
def test_time_dependent_fields_keep_the_declared_order(tableau: ButcherTableau) -> None:
    # the stages are evaluated at t + c_i h: with the times wrong, every method would drop to order 1
    t0, t_end = 0.5, 1.5
    x0 = torch.tensor([1.0, -2.0])
    exact = x0 * math.exp(-(t_end**2 - t0**2))
    hs, errors = [], []
    for n in (10, 20, 40, 80):
        h = (t_end - t0) / n
        x = integrate(gaussian_decay, x0, h=h, n_steps=n, tableau=tableau, time_dependent=True, t0=t0)[-1]
        hs.append(h)
        errors.append(float((x - exact).norm()))
    assert abs(empirical_order(hs, errors) - tableau.order) < 0.15


def test_rk_step_passes_the_stage_times_as_tensors() -> None:
    seen = []

    def field(t, x):
        seen.append(t)
        return torch.zeros_like(x)

    rk_step(field, torch.ones(2), 0.3, companion.RK38, time_dependent=True, t=1.0)
    assert [float(t) for t in seen] == pytest.approx([1.0, 1.1, 1.2, 1.3])
    assert all(isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.ndim == 0 for t in seen)


@pytest.mark.parametrize(
    "theirs_name, ours", [("euler", companion.EULER), ("midpoint", companion.MIDPOINT), ("rk4", companion.RK38)]
)
def test_time_dependent_fields_match_torchdiffeq_call_for_call(theirs_name, ours) -> None:
    # the table of the API page: odeint(f, x0, grid, method=theirs_name) == integrate(..., tableau=ours)
    torchdiffeq = pytest.importorskip("torchdiffeq")
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 3).double()

    def field(t, x):  # one function for both libraries, unchanged
        return torch.tanh(layer(x)) * torch.cos(3 * t) + torch.sin(t)

    x0 = torch.randn(5, 3)
    t0, h, n = 0.2, 0.05, 20
    grid = t0 + h * torch.arange(n + 1, dtype=torch.float64)
    with torch.no_grad():
        trajectory = integrate(field, x0, h=h, n_steps=n, tableau=ours, time_dependent=True, t0=t0)
        theirs = torchdiffeq.odeint(field, x0, grid, method=theirs_name)
    assert float((trajectory - theirs).abs().max()) < 1e-13
    layer_form = companion.FlowLayer(field, h=h * n, n_steps=n, method=ours, time_dependent=True, t0=t0)
    with torch.no_grad():
        assert float((layer_form(x0) - theirs[-1]).abs().max()) < 1e-13


# --- issue 14, item 6: a tensor step and the field's shape are validated ------------------------------


@pytest.mark.parametrize("h", [torch.tensor(0.0), torch.tensor(float("nan")), torch.tensor(float("inf"))])
def test_a_tensor_step_that_is_zero_or_not_finite_is_refused(h) -> None:  # negative: backward in time
    with pytest.raises(ValueError, match="h must be a finite non-zero number"):
        rk_step(lambda x: -x, torch.ones(2), h)


def test_an_integer_tensor_step_is_refused() -> None:
    with pytest.raises(TypeError, match="floating-point scalar tensor"):
        rk_step(lambda x: -x, torch.ones(2), torch.tensor(1))


@pytest.mark.parametrize(
    "field",
    [lambda x: torch.ones(3, 1, 2), lambda x: x[..., :1], lambda x: x.sum(), lambda x: 1.0],
    ids=["broadcasting", "fewer-columns", "scalar", "not-a-tensor"],
)
def test_a_field_that_changes_the_shape_is_refused(field) -> None:
    with pytest.raises(ValueError, match="must return a tensor of the state's shape"):
        rk_step(field, torch.randn(4, 2), 0.1)


def test_a_flow_layer_of_a_shape_changing_field_is_refused() -> None:
    layer = companion.FlowLayer(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match=r"state's shape \(4, 2\), got shape \(4, 1\)"):
        layer(torch.randn(4, 2))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: rk_step(lambda x: x, torch.ones(2), 0.1, t=1.0), ValueError, "pass time_dependent=True"),
        (
            lambda: integrate(lambda x: x, torch.ones(2), h=0.1, n_steps=2, t0=1.0),
            ValueError,
            "pass time_dependent=True",
        ),
        (
            lambda: rk_step(gaussian_decay, torch.ones(2), 0.1, time_dependent=1),
            TypeError,
            "time_dependent must be True or False",
        ),
        (
            lambda: rk_step(gaussian_decay, torch.ones(2), 0.1, time_dependent=True, t="0"),
            TypeError,
            "t must be a finite number",
        ),
        (
            lambda: rk_step(gaussian_decay, torch.ones(2), 0.1, time_dependent=True, t=torch.ones(2)),
            ValueError,
            "scalar tensor",
        ),
        (lambda: companion.FlowLayer(torch.nn.Linear(2, 2), t0=1.0), ValueError, "pass time_dependent=True"),
        (
            lambda: companion.low_rank_cayley_step(torch.ones(3, 2, 1), torch.ones(3, 2, 2), torch.ones(3, 2), 0.1),
            ValueError,
            "U and V must both have shape",
        ),
        (
            lambda: companion.low_rank_exp_step(torch.ones(3, 2, 1), torch.ones(3, 2, 1), torch.ones(3, 3), 0.1),
            ValueError,
            "U and V must both have shape",
        ),
        (
            lambda: companion.low_rank_cayley_step(torch.ones(3, 2, 1), torch.ones(3, 2, 1), torch.ones(3, 2), 0.0),
            ValueError,
            "h must be a finite non-zero number",
        ),
    ],
)
def test_bad_time_and_factor_arguments_are_refused(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --- the stage loop: zero coefficients skipped, equal weights share a product, the field checked once per call ---


def textbook_rk_step(f, x: torch.Tensor, h: float, tableau: ButcherTableau) -> torch.Tensor:
    """Every term of the tableau, zeros included, in the order of the formula."""
    ks = []
    for row in tableau.a:
        ks.append(f(x + h * sum((aij * k for aij, k in zip(row, ks)), torch.zeros_like(x))))
    return x + h * sum((bi * k for bi, k in zip(tableau.b, ks)), torch.zeros_like(x))


@pytest.mark.parametrize("tableau", list(TABLEAUS.values()), ids=lambda t: t.name)
def test_the_stage_loop_agrees_with_every_term_of_the_tableau(tableau: ButcherTableau) -> None:
    # the loop skips zero coefficients (RK4's a_31 = a_41 = a_42 = 0) and sums equal weights before one product
    # (RK4's b_1 = b_4, b_2 = b_3): another order of the same operations, so equal to float64 rounding
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 3)
    f = lambda x: torch.tanh(layer(x))  # noqa: E731
    x = torch.randn(16, 3)
    with torch.no_grad():
        for h in (0.1, 0.7, 2.0):
            ours, textbook = rk_step(f, x, h, tableau), textbook_rk_step(f, x, h, tableau)
            assert float((ours - textbook).abs().max()) <= 8 * torch.finfo(x.dtype).eps * (1 + float(x.abs().max()))


def test_a_step_of_size_one_adds_the_field_without_a_product() -> None:
    x = torch.randn(5, 2)
    assert torch.equal(rk_step(torch.sin, x, 1.0, EULER), x + torch.sin(x))
    assert torch.equal(companion.FlowLayer(torch.sin)(x), x + torch.sin(x))  # the ResNet layer with h = 1


def test_a_tensor_step_gives_the_numbers_of_the_same_float_step() -> None:
    x = torch.randn(4, 3)
    for tableau in TABLEAUS.values():
        assert torch.equal(rk_step(torch.sin, x, torch.tensor(0.3), tableau), rk_step(torch.sin, x, 0.3, tableau))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_steps_multiply_by_unrounded_coefficients(dtype) -> None:
    # a Python number multiplies a half-precision tensor in float32; the stage loop's scalar tensors must too
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 4).to(dtype)
    x = torch.randn(64, 4).to(dtype)
    with torch.no_grad():
        assert torch.equal(rk_step(layer, x, 0.1, EULER), x + 0.1 * layer(x))
        assert torch.equal(rk_step(layer, x, 0.1, HEUN), x + 0.05 * (layer(x) + layer(x + 0.1 * layer(x))))


def test_integrate_and_layers_take_the_steps_of_rk_step() -> None:
    x = torch.randn(6, 2)
    trajectory = integrate(rotation, x, h=0.25, n_steps=3, tableau=RK4)
    state = x
    for n in range(1, 4):
        state = rk_step(rotation, state, 0.25, RK4)
        assert torch.equal(trajectory[n], state)
    assert torch.equal(companion.FlowLayer(rotation, h=0.75, n_steps=3, method="rk4")(x), state)  # 0.75 / 3 = 0.25


@pytest.mark.parametrize(
    "field",
    [lambda x: torch.ones(3, 1, 2), lambda x: x[..., :1], lambda x: x.sum(), lambda x: 1.0],
    ids=["broadcasting", "fewer-columns", "scalar", "not-a-tensor"],
)
def test_the_field_check_fires_in_integrate_and_in_layers_of_several_steps(field) -> None:
    # the field's output is checked once per call (at the first stage), no longer at every stage
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="must return a tensor of the state's shape"):
        integrate(field, x, h=0.1, n_steps=5, tableau=RK4)
    with pytest.raises(ValueError, match="must return a tensor of the state's shape"):
        companion.FlowLayer(field, h=0.5, n_steps=5, method="rk4")(x)
    with pytest.raises(ValueError, match="must return a tensor of the state's shape"):
        companion.FlowLayer(lambda t, x: field(x), n_steps=2, method="rk38", time_dependent=True)(x)
