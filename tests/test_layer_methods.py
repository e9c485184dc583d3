"""Each layer is the map it claims, for every method it accepts; and it accepts exactly those methods.

A property test passes for any map that keeps the property: the Störmer--Verlet step of a symplectic layer
replaced by symplectic Euler, or projected Euler without its tangent projection, keep every property the
other tests measure. So each (layer class, accepted method) pair gets an **exact-value test** here: the layer's
output against the step written out again in this file, from the formulas of the docstrings (the layer's own
field is evaluated from its parameters where the docstring gives the formula), in float64 to 1e-12. Layers
with a step and a vector field also get an **order test** (global error of ``n_steps`` steps, or local error of
one step, against a fine hand-written RK4 reference, halving the step).

The second half checks the guard (issue "companion keeps its word"): construction, ``layer.method = ...`` and
``load_state_dict`` accept the same methods, and a method that takes a registered key with other content is
refused everywhere.
"""

from __future__ import annotations

import copy
import importlib
import math
import pkgutil

import pytest
import torch

import companion as C
from companion import pde
from companion.diagnostics import empirical_order
from companion.integrators import METHODS, PROPERTY_METHODS, TABLEAUS
from companion.layers import StepSize
from companion.structured import PositiveMassPreservingLayer

pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-12  # float64, a handful of operations in another order

#: A Runge--Kutta method of the user's own (Ralston's second-order method, Ralston 1962), under its own key.
RALSTON = C.ButcherTableau("Ralston", a=((), (2 / 3,)), b=(0.25, 0.75), order=2, key="ralston")


def _points(batch: int, dim: int, seed: int = 1, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(batch, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _close(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).detach().abs().max() / (1.0 + expected.detach().abs().max()))


# --- explicit Runge--Kutta steps, written out from their textbook definitions (not from the registry) ---------
# Each takes a field f(t, x); the stages are at t + c_i h.


def _euler(f, t, x, h):
    return x + h * f(t, x)


def _midpoint(f, t, x, h):
    return x + h * f(t + h / 2, x + h / 2 * f(t, x))


def _heun(f, t, x, h):
    k1 = f(t, x)
    k2 = f(t + h, x + h * k1)
    return x + h / 2 * (k1 + k2)


def _kutta3(f, t, x, h):
    k1 = f(t, x)
    k2 = f(t + h / 2, x + h / 2 * k1)
    k3 = f(t + h, x - h * k1 + 2 * h * k2)
    return x + h / 6 * (k1 + 4 * k2 + k3)


def _rk4(f, t, x, h):
    k1 = f(t, x)
    k2 = f(t + h / 2, x + h / 2 * k1)
    k3 = f(t + h / 2, x + h / 2 * k2)
    k4 = f(t + h, x + h * k3)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def _rk38(f, t, x, h):
    k1 = f(t, x)
    k2 = f(t + h / 3, x + h / 3 * k1)
    k3 = f(t + 2 * h / 3, x - h / 3 * k1 + h * k2)
    k4 = f(t + h, x + h * k1 - h * k2 + h * k3)
    return x + h / 8 * (k1 + 3 * k2 + 3 * k3 + k4)


def _ralston(f, t, x, h):
    k1 = f(t, x)
    k2 = f(t + 2 * h / 3, x + 2 * h / 3 * k1)
    return x + h * (k1 / 4 + 3 * k2 / 4)


HAND_RK = {
    "euler": _euler,
    "midpoint": _midpoint,
    "heun": _heun,
    "kutta3": _kutta3,
    "rk4": _rk4,
    "rk38": _rk38,
    "ralston": _ralston,
}
RK_METHODS = {**TABLEAUS, "ralston": RALSTON}
RK_ORDERS = {"euler": 1, "midpoint": 2, "heun": 2, "kutta3": 3, "rk4": 4, "rk38": 4, "ralston": 2}


def _hand_steps(step, f, x, h, n, t0=0.0):
    for k in range(n):
        x = step(f, t0 + k * h, x, h)
    return x


def _reference(f, x, t_end, n=400):
    """The exact flow at ``t_end`` of an autonomous field, to ~1e-13: hand-written RK4 with ``n`` steps."""
    return _hand_steps(_rk4, lambda t, z: f(z), x, t_end / n, n)


class _TimeField(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x)) * torch.cos(3 * t)


# --- exact values: every (layer class, accepted method) pair ----------------------------------------------------


@pytest.mark.parametrize("key", list(RK_METHODS))
def test_flow_layer_is_its_runge_kutta_steps(key: str) -> None:
    torch.manual_seed(0)
    field = C.MLPField(3, 6).double()
    x = _points(4, 3)
    layer = C.FlowLayer(field, h=0.4, n_steps=2, method=RK_METHODS[key])
    expected = _hand_steps(HAND_RK[key], lambda t, z: field(z), x, 0.2, 2)
    assert _close(layer(x), expected) < TOLERANCE
    timed = _TimeField(3).double()
    layer = C.FlowLayer(timed, h=0.6, n_steps=3, method=RK_METHODS[key], time_dependent=True, t0=0.3)
    expected = _hand_steps(HAND_RK[key], lambda t, z: timed(torch.as_tensor(t, dtype=z.dtype), z), x, 0.2, 3, t0=0.3)
    assert _close(layer(x), expected) < TOLERANCE


@pytest.mark.parametrize("key", list(RK_METHODS))
def test_flow_layer_converges_with_the_order_of_its_method(key: str) -> None:
    torch.manual_seed(0)
    field = C.MLPField(3, 6).double()
    x = _points(4, 3, scale=0.5)
    with torch.no_grad():
        exact = _reference(field, x, 1.0)
        counts = (4, 8, 16) if RK_ORDERS[key] < 4 else (2, 4, 8)
        hs = [1.0 / n for n in counts]
        errors = [
            float((C.FlowLayer(field, h=1.0, n_steps=n, method=RK_METHODS[key])(x) - exact).norm()) for n in counts
        ]
    assert abs(empirical_order(hs, errors) - RK_ORDERS[key]) < 0.3, errors


@pytest.mark.parametrize("key", list(RK_METHODS))
def test_mass_layer_is_its_runge_kutta_steps(key: str) -> None:
    torch.manual_seed(0)
    layer = C.MassPreservingLayer(4, hidden=6, h=0.5, n_steps=2, method=RK_METHODS[key]).double()
    x = _points(3, 4)
    expected = _hand_steps(HAND_RK[key], lambda t, z: layer.field(z), x, 0.25, 2)
    assert _close(layer(x), expected) < TOLERANCE


def _gradient(field: C.GradientField, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\pm A^\top(\alpha\odot\sigma(Az+b))` from the parameters, for tanh (the docstring's formula)."""
    A, b = field.inner.weight, field.inner.bias
    return field.sign * (field.alpha * torch.tanh(z @ A.T + b)) @ A


def test_gradient_layer_is_its_euler_steps() -> None:
    torch.manual_seed(0)
    layer = C.GradientLayer(3, hidden=5, h=0.6, sign=-1, n_steps=2).double()
    x = _points(4, 3)
    expected = x
    for _ in range(2):
        expected = expected + 0.3 * _gradient(layer.field, expected)
    assert _close(layer(x), expected) < TOLERANCE


def _sphere_step(key: str, S: torch.Tensor, x: torch.Tensor, tau: float) -> torch.Tensor:
    """The three norm-exact steps with a dense frozen skew ``S``, as the docstring of SpherePreservingLayer writes them."""
    column = x.unsqueeze(-1)
    if key == "cayley":
        eye = torch.eye(x.shape[-1], dtype=x.dtype)
        return torch.linalg.solve(eye - tau / 2 * S, column + tau / 2 * S @ column).squeeze(-1)
    if key == "exp":
        return (torch.linalg.matrix_exp(tau * S) @ column).squeeze(-1)
    v = (S @ column).squeeze(-1)  # rotation in the plane of x and S x, by the angle tau |v| / |x|
    v = v - x * (x * v).sum(-1, keepdim=True) / (x * x).sum(-1, keepdim=True)
    omega = v.norm(dim=-1, keepdim=True) / x.norm(dim=-1, keepdim=True)
    return torch.cos(omega * tau) * x + torch.sin(omega * tau) / omega * v


@pytest.mark.parametrize("rank", [1, 2, None])
@pytest.mark.parametrize("key", PROPERTY_METHODS["norm"])
def test_sphere_layer_is_its_norm_exact_steps(key: str, rank: int | None) -> None:
    torch.manual_seed(0)
    layer = C.SpherePreservingLayer(4, hidden=6, h=0.8, n_steps=2, method=key, rank=rank).double()
    x = _points(5, 4)
    expected = x
    for _ in range(2):  # S frozen at the state of each sub-step
        expected = _sphere_step(key, layer.field.skew(expected), expected, 0.4)
    assert _close(layer(x), expected) < TOLERANCE


def _symplectic_fields(layer: C.SymplecticLayer):
    return (lambda p: _gradient(layer.kinetic, p)), (lambda q: _gradient(layer.potential, q))


def _symplectic_step(key: str, dT, dU, q, p, h):
    if key == "symplectic_euler":  # q' = q + h dT(p), p' = p - h dU(q')
        q = q + h * dT(p)
        return q, p - h * dU(q)
    p_half = p - h / 2 * dU(q)  # Störmer--Verlet (leapfrog)
    q = q + h * dT(p_half)
    return q, p_half - h / 2 * dU(q)


@pytest.mark.parametrize("key", PROPERTY_METHODS["symplecticity"])
def test_symplectic_layer_is_its_symplectic_step(key: str) -> None:
    torch.manual_seed(0)
    layer = C.SymplecticLayer(6, hidden=5, h=0.3, method=key).double()
    x = _points(4, 6)
    q, p = _symplectic_step(key, *_symplectic_fields(layer), x[:, :3], x[:, 3:], 0.3)
    assert _close(layer(x), torch.cat([q, p], -1)) < TOLERANCE


@pytest.mark.parametrize("key", PROPERTY_METHODS["symplecticity"])
def test_symplectic_layer_has_the_local_order_of_its_method(key: str) -> None:
    # one step of a method of order p is off the exact flow by O(h^(p+1))
    order = METHODS[key].order
    x = _points(4, 6, scale=0.5)
    hs, errors = [0.2, 0.1, 0.05], []
    with torch.no_grad():
        for h in hs:
            torch.manual_seed(0)
            layer = C.SymplecticLayer(6, hidden=5, h=h, method=key).double()
            dT, dU = _symplectic_fields(layer)
            exact = _reference(lambda z, dT=dT, dU=dU: torch.cat([dT(z[:, 3:]), -dU(z[:, :3])], -1), x, h, n=50)
            errors.append(float((layer(x) - exact).norm()))
    assert abs(empirical_order(hs, errors) - (order + 1)) < 0.3, errors


def _block_update(update, others: torch.Tensor) -> torch.Tensor:
    r""":math:`g_i(x_{-i}) = \Sigma(A_ix_{-i}+a_i)`, or :math:`C_i\Sigma(\cdot)+c_i` with a hidden layer (tanh)."""
    value = torch.tanh(others @ update.inner.weight.T + update.inner.bias)
    return value if update.outer is None else value @ update.outer.weight.T + update.outer.bias


def _shear(layer, x: torch.Tensor, block: int, step: float) -> torch.Tensor:
    start = sum(layer.blocks[:block])
    stop = start + layer.blocks[block]
    others = torch.cat([x[:, :start], x[:, stop:]], -1)
    x = x.clone()
    x[:, start:stop] = x[:, start:stop] + step * _block_update(layer.updates[block], others)
    return x


def _volume_step(key: str, layer, x: torch.Tensor, h: float) -> torch.Tensor:
    m = len(layer.blocks)
    if key == "symplectic_euler":  # Lie--Trotter: blocks 1..m in turn, full steps
        shears = [(i, h) for i in range(m)]
    else:  # Strang: half steps of 1..m-1, a full step of m, half steps back
        shears = [(i, h / 2) for i in range(m - 1)] + [(m - 1, h)] + [(i, h / 2) for i in reversed(range(m - 1))]
    for block, step in shears:
        x = _shear(layer, x, block, step)
    return x


@pytest.mark.parametrize("blocks, hidden", [(None, None), ((1, 3, 1), 3)])
@pytest.mark.parametrize("key", PROPERTY_METHODS["volume"])
def test_volume_layer_is_its_shear_composition(key: str, blocks, hidden) -> None:
    torch.manual_seed(0)
    dim = 4 if blocks is None else sum(blocks)
    layer = C.VolumePreservingLayer(dim, blocks=blocks, hidden=hidden, h=0.3, method=key).double()
    x = _points(4, dim)
    assert _close(layer(x), _volume_step(key, layer, x, 0.3)) < TOLERANCE


@pytest.mark.parametrize("key", PROPERTY_METHODS["volume"])
def test_volume_layer_has_the_local_order_of_its_method(key: str) -> None:
    order = METHODS[key].order
    x = _points(4, 5, scale=0.5)
    hs, errors = [0.2, 0.1, 0.05], []
    with torch.no_grad():
        for h in hs:
            torch.manual_seed(0)
            layer = C.VolumePreservingLayer(5, blocks=(1, 3, 1), h=h, method=key).double()

            def field(z: torch.Tensor, layer=layer) -> torch.Tensor:  # the field x_i' = g_i(x_{-i}), all blocks
                return sum(_shear(layer, z, i, 1.0) - z for i in range(3))

            errors.append(float((layer(x) - _reference(field, x, h, n=50)).norm()))
    assert abs(empirical_order(hs, errors) - (order + 1)) < 0.3, errors


def _exit_step(rates: torch.Tensor, x: torch.Tensor, h: float) -> torch.Tensor:
    r""":math:`x_i^+ = e^{-h\lambda_i}x_i + \sum_{j\ne i} r_{ji}\,\frac{1-e^{-h\lambda_j}}{\lambda_j}x_j`,
    :math:`\lambda_j = \sum_i r_{ji}`, element by element."""
    out = torch.empty_like(x)
    lam = rates.sum(-1)
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            total = math.exp(-h * lam[b, i]) * x[b, i]
            for j in range(x.shape[1]):
                if j != i:
                    total = total + rates[b, j, i] * (1 - math.exp(-h * lam[b, j])) / lam[b, j] * x[b, j]
            out[b, i] = total
    return out


def test_positive_mass_layer_is_its_exponential_exit_steps() -> None:
    torch.manual_seed(0)
    layer = PositiveMassPreservingLayer(3, hidden=5, h=0.8, n_steps=2).double()
    x = _points(4, 3).abs()
    expected = x
    with torch.no_grad():
        for _ in range(2):
            expected = _exit_step(layer.field.rates(expected), expected, 0.4)
        assert _close(layer(x), expected) < TOLERANCE


#: Every (layer class, method key) pair the exact-value tests above cover.
EXACT_VALUE_TESTED = {
    C.FlowLayer: set(RK_METHODS),
    C.MassPreservingLayer: set(RK_METHODS),
    C.GradientLayer: {"euler"},
    C.SpherePreservingLayer: set(PROPERTY_METHODS["norm"]),
    C.SymplecticLayer: set(PROPERTY_METHODS["symplecticity"]),
    C.VolumePreservingLayer: set(PROPERTY_METHODS["volume"]),
    PositiveMassPreservingLayer: {"exponential_exit"},
}


# --- projected Euler of chapter 4 (MethodOfLinesNetwork(projected=True)) ---------------------------------------


def test_projected_euler_by_hand() -> None:
    # U = e_11 (norm 1), F(U) = [[1, 1], [0, 0]], dt = 0.5: the normal part of F is <U, F> U / <U, U> = U, the
    # tangent part [[0, 1], [0, 0]]; V = [[1, 0.5], [0, 0]], |V| = sqrt(5)/2, and the step is V / |V|.
    U = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    G = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    network = pde.MethodOfLinesNetwork(lambda V: G.expand_as(V), dt=0.5, projected=True)
    expected = torch.tensor([[2.0, 1.0], [0.0, 0.0]], dtype=torch.float64) / math.sqrt(5.0)
    assert _close(network(U), expected) < TOLERANCE
    # renormalising U + dt F alone would give [[3, 1], [0, 0]] / sqrt(10); plain Euler [[1.5, 0.5], [0, 0]]
    plain = pde.MethodOfLinesNetwork(lambda V: G.expand_as(V), dt=0.5)
    assert _close(plain(U), torch.tensor([[1.5, 0.5], [0.0, 0.0]], dtype=torch.float64)) < TOLERANCE


def _projected_euler(field, U: torch.Tensor, dt: float, substeps: int, reference_norm=None) -> torch.Tensor:
    """The docstring's step, one grid at a time: V = U + h (F - U <U,F>/<U,U>), U <- V |U0| / |V|."""
    out = []
    for b in range(U.shape[0]):
        u = U[b]
        norm = u.norm() if reference_norm is None else reference_norm[b]
        for _ in range(substeps):
            f = field(u.unsqueeze(0))[0]
            v = u + dt / substeps * (f - u * (u * f).sum() / (u * u).sum())
            u = v * norm / v.norm()
        out.append(u)
    return torch.stack(out)


@pytest.mark.parametrize("projected", [False, True])
def test_method_of_lines_network_is_its_euler_or_projected_euler_steps(projected: bool) -> None:
    torch.manual_seed(0)
    field = pde.ConvRHS(4, kernel_size=3).double()  # a learned field: it has a normal part to remove
    U = torch.randn(3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    network = pde.MethodOfLinesNetwork(field, dt=0.05, substeps=3, projected=projected)
    with torch.no_grad():
        if projected:
            expected = _projected_euler(field, U, 0.05, 3)
            norms = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
            assert _close(network(U, norms), _projected_euler(field, U, 0.05, 3, norms)) < TOLERANCE
        else:
            expected = U
            for _ in range(3):
                expected = expected + 0.05 / 3 * field(expected)
        assert _close(network(U), expected) < TOLERANCE


# --- the guard: which methods each layer accepts, wherever its method is set ------------------------------------

#: Each layer class with a method: how to build it with a given method, and the methods it must accept.
BUILDERS = {
    C.FlowLayer: (lambda m: C.FlowLayer(C.MLPField(3, 5), method=m), {*TABLEAUS, "ralston"}),
    C.GradientLayer: (None, {"euler"}),  # built without a method: Euler only
    C.SpherePreservingLayer: (lambda m: C.SpherePreservingLayer(3, hidden=5, method=m), set(PROPERTY_METHODS["norm"])),
    C.SymplecticLayer: (lambda m: C.SymplecticLayer(4, hidden=5, method=m), set(PROPERTY_METHODS["symplecticity"])),
    C.VolumePreservingLayer: (lambda m: C.VolumePreservingLayer(4, method=m), set(PROPERTY_METHODS["volume"])),
    C.MassPreservingLayer: (lambda m: C.MassPreservingLayer(3, hidden=5, method=m), {*TABLEAUS, "ralston"}),
    PositiveMassPreservingLayer: (
        lambda m: PositiveMassPreservingLayer(3, hidden=5, method=m),
        set(PROPERTY_METHODS["positivity"]),
    ),
}
CANDIDATES = {**METHODS, "ralston": RALSTON}


def _layer_classes_with_a_method() -> set[type]:
    classes = set()
    for package in (C, importlib.import_module("companion.structured")):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name in getattr(module, "__all__", ()):
                value = getattr(module, name)
                if isinstance(value, type) and issubclass(value, StepSize) and "_check_method" in _defined(value):
                    classes.add(value)
    return classes


def _defined(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ if klass is not StepSize for name in vars(klass)}


def test_every_layer_with_a_method_is_checked_here() -> None:
    missing = _layer_classes_with_a_method() - set(BUILDERS)
    assert not missing, f"layer classes with a method but no entry in BUILDERS: {missing}"
    assert all(EXACT_VALUE_TESTED[cls] == accepted for cls, (_, accepted) in BUILDERS.items())


def _accepts(make, method) -> bool:
    try:
        make(method)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("cls", list(BUILDERS), ids=lambda cls: cls.__name__)
def test_construction_and_assignment_accept_the_same_methods(cls) -> None:
    make, accepted = BUILDERS[cls]
    layer = C.GradientLayer(3, hidden=5) if make is None else make(CANDIDATES[sorted(accepted)[0]])
    original = layer.method
    for key, method in CANDIDATES.items():
        if make is not None:
            assert _accepts(make, method) == (key in accepted), key
        for value in (method, key) if key in METHODS else (method,):  # by object and by name
            if key in accepted:
                layer.method = value
                assert layer.method == method and layer.settings()["method"] == key
                layer.method = original
            else:
                with pytest.raises(ValueError):
                    layer.method = value
                assert layer.method is original


@pytest.mark.parametrize("cls", list(BUILDERS), ids=lambda cls: cls.__name__)
def test_loading_accepts_the_methods_of_construction(cls) -> None:
    make, accepted = BUILDERS[cls]
    layer = C.GradientLayer(3, hidden=5) if make is None else make(sorted(accepted)[0])
    state = layer.state_dict()
    for key in METHODS:
        saved = {**state, "_extra_state": {**state["_extra_state"], "method": key}}
        if key in accepted:
            layer.load_state_dict(saved)
            assert layer.method is METHODS[key]
        else:
            with pytest.raises(ValueError, match="cannot run in place of"):
                layer.load_state_dict(saved)


def test_a_method_with_a_registered_key_must_be_the_registered_method() -> None:
    false_verlet = C.ButcherTableau("explicit Euler", a=((),), b=(1.0,), order=1, key="stormer_verlet")
    propertyless = C.GeometricMethod("symplectic_euler", "symplectic Euler", 1, frozenset())
    slow_rk4 = C.ButcherTableau("classical Runge-Kutta (RK4)", a=C.RK4.a, b=C.RK4.b, order=2, key="rk4")
    for method, differs in (
        (false_verlet, "a ButcherTableau, not a GeometricMethod"),
        (propertyless, "preserves"),
        (slow_rk4, "order"),
    ):
        for build in (
            lambda m: C.SymplecticLayer(4, method=m),
            lambda m: C.FlowLayer(C.MLPField(2), method=m),
            C.get_method,
            lambda m: C.require_method("symplecticity", m),
        ):
            with pytest.raises(ValueError, match=f"must be the registered .*{differs}.*key of its own"):
                build(method)
    layer = C.SymplecticLayer(4)
    with pytest.raises(ValueError, match="must be the registered"):
        layer.method = false_verlet
    with pytest.raises(ValueError, match="not a registered method"):
        C.SpherePreservingLayer(3, method=C.GeometricMethod("my_rotation", "mine", 1, frozenset({"norm"})))
    with pytest.raises(ValueError, match="no explicit Runge-Kutta method keeps norm"):
        C.ButcherTableau("dishonest", a=((),), b=(1.0,), order=1, preserves=frozenset({"norm"}), key="dishonest")
    # an equal copy is the registered method itself; a tableau of the user's own under its own key is accepted
    assert C.get_method(copy.deepcopy(C.RK4)) is C.RK4
    assert C.get_method(C.GeometricMethod("cayley", "Cayley step", 1, frozenset({"norm"}))) is C.CAYLEY
    assert C.require_method("linear_invariants", RALSTON) is RALSTON
    with pytest.raises(ValueError, match="does not keep symplecticity"):
        C.require_method("symplecticity", RALSTON)


def test_copied_methods_run_the_method_they_are() -> None:
    q0, p0 = _points(3, 2), _points(3, 2, seed=2)
    for key in PROPERTY_METHODS["symplecticity"]:
        ours = C.integrate_separable(torch.sin, lambda q: q**3, q0, p0, h=0.1, n_steps=3, method=METHODS[key])
        copied = C.integrate_separable(
            torch.sin, lambda q: q**3, q0, p0, h=0.1, n_steps=3, method=copy.deepcopy(METHODS[key])
        )
        assert all(torch.equal(a, b) for a, b in zip(ours, copied))
    assert PositiveMassPreservingLayer(3, method=copy.deepcopy(C.EXPONENTIAL_EXIT)).method is C.EXPONENTIAL_EXIT
    mass = C.MassPreservingLayer(3)
    with pytest.raises(ValueError, match="explicit Runge-Kutta method"):  # was a bare AttributeError in forward
        mass.method = C.CAYLEY
