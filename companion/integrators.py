r"""One-step integrators: explicit Runge--Kutta methods, the registry of every method and the property guard.

A residual layer :math:`x \mapsto x + h F(x)` is one explicit Euler step of :math:`\dot x = F(x)`.
Any one-step method :math:`\Psi^h_F` gives a layer in the same way, and the layer inherits the
method's properties. This module holds the methods as pure functions; each method declares its
order and the geometric properties it keeps (``preserves``), and the tests measure both.

References
----------
E. Hairer, C. Lubich, G. Wanner, *Geometric Numerical Integration*, 2nd ed., Springer (2006).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ._checks import check_callable, check_positive_int, check_tensor, check_times, explain_field_calls
from ._checks import check_step as _check_step
from ._checks import start_time as _start_time

__all__ = [
    "ButcherTableau",
    "GeometricMethod",
    "SYMPLECTIC_EULER",
    "STORMER_VERLET",
    "CAYLEY",
    "EXP",
    "ROTATION",
    "EXPONENTIAL_EXIT",
    "METHODS",
    "get_method",
    "get_tableau",
    "EULER",
    "MIDPOINT",
    "HEUN",
    "KUTTA3",
    "RK4",
    "RK38",
    "TABLEAUS",
    "rk_step",
    "integrate",
    "SYMPLECTIC_METHODS",
    "NORM_EXACT_METHODS",
    "PROPERTY_METHODS",
    "require_method",
]

Field = Callable[[torch.Tensor], torch.Tensor]
Step = float | torch.Tensor


Plan = tuple[tuple[int, int, tuple[int, ...]], ...]


def _plan(a: tuple[tuple[float, ...], ...], b: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[Plan, ...], Plan]:
    r"""The stage loop's plan of a tableau: its distinct non-zero coefficients, and each combination by them.

    A combination :math:`\sum_j c_j k_j` becomes groups ``(v, first, rest)``, one per distinct value
    ``values[v]`` of the non-zero :math:`c_j`, meaning ``values[v] * (k[first] + k[rest[0]] + ...)``: the zeros of
    sparse tableaus are skipped, and equal weights share one product (RK4's 1/6, 1/3, 1/3, 1/6 cost two).
    """
    values: list[float] = []

    def groups(coefficients: tuple[float, ...]) -> Plan:
        indices: dict[float, list[int]] = {}
        for j, coefficient in enumerate(coefficients):
            if coefficient != 0.0:
                indices.setdefault(coefficient, []).append(j)
        for coefficient in indices:
            if coefficient not in values:
                values.append(coefficient)
        return tuple((values.index(c), js[0], tuple(js[1:])) for c, js in indices.items())

    stages = tuple(groups(row) for row in a)
    weights = groups(b)
    return tuple(values), stages, weights


@dataclass(frozen=True)
class ButcherTableau:
    r"""An explicit Runge--Kutta method given by its Butcher tableau.

    .. math:: k_i = F\Big(x + h\sum_{j<i} a_{ij} k_j\Big), \qquad
              \Psi^h_F(x) = x + h \sum_i b_i k_i .

    Parameters
    ----------
    name : str
        Human-readable name.
    a : tuple of tuple of float
        Strictly lower-triangular stage matrix, ``a[i][j]`` for ``j < i`` (row ``i`` has ``i`` entries).
    b : tuple of float
        Weights, summing to one.
    order : int
        Classical order of accuracy; the global error is :math:`O(h^{order})`.

    Notes
    -----
    Every Runge--Kutta method keeps linear first integrals :math:`w^\top x` exactly, so ``preserves``
    contains ``"linear_invariants"``; no explicit Runge--Kutta method is symplectic or keeps norms.

    Raises
    ------
    ValueError
        If the tableau is not explicit, the weights do not sum to one, the order is not positive, or ``preserves``
        names a property no explicit Runge--Kutta method keeps (symplecticity, volume, norm, positivity).
    """

    name: str
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    preserves: frozenset[str] = field(default=frozenset({"linear_invariants"}))
    key: str = ""

    def __post_init__(self) -> None:
        stages = len(self.b)
        if stages < 1 or len(self.a) != stages:
            raise ValueError(f"{self.name}: a must have one row per weight in b ({stages}), got {len(self.a)} rows.")
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(
                    f"{self.name}: explicit methods need row {i} of a to have {i} entries, got {len(row)}."
                )
        if abs(sum(self.b) - 1.0) > 1e-12:
            raise ValueError(f"{self.name}: the weights b must sum to 1 (consistency), got {sum(self.b)}.")
        check_positive_int(self.order, "order")
        impossible = sorted(set(self.preserves) & _NOT_KEPT_BY_RUNGE_KUTTA)
        if impossible:
            raise ValueError(
                f"{self.name}: no explicit Runge-Kutta method keeps {', '.join(impossible)} for every step size, got "
                f"preserves={set(self.preserves)}; declare what the method keeps (the default "
                "frozenset({'linear_invariants'}) holds for every explicit Runge-Kutta method)."
            )
        values, stage_plans, weight_plan = _plan(self.a, self.b)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_stage_plans", stage_plans)
        object.__setattr__(self, "_weight_plan", weight_plan)
        object.__setattr__(self, "_nodes", tuple(sum(row) for row in self.a))

    @property
    def stages(self) -> int:
        """Number of evaluations of the vector field per step."""
        return len(self.b)

    @property
    def c(self) -> tuple[float, ...]:
        """Nodes :math:`c_i = \\sum_j a_{ij}` (the stage times for non-autonomous fields)."""
        return tuple(sum(row) for row in self.a)

    def __repr__(self) -> str:
        return f"ButcherTableau({self.key or self.name!r}, stages={self.stages}, order={self.order})"

    def __reduce_ex__(self, protocol):
        return _reduce_method(self, protocol)


@dataclass(frozen=True)
class GeometricMethod:
    r"""A one-step method that is not a Runge--Kutta tableau: a symplectic splitting or a norm-exact step.

    Layers take it (or its ``key``) as their ``method`` exactly as they take a :class:`ButcherTableau`; the step
    itself is carried out by the layer (:func:`symplectic_euler_step`, :func:`stormer_verlet_step`,
    :func:`cayley_step`, :func:`exp_step`, :func:`rotation_step`), because it needs the structure of the field
    (a separable Hamiltonian, a skew matrix) and not only its values.

    Attributes
    ----------
    key : str
        The name accepted wherever a method is asked for, e.g. ``"stormer_verlet"``.
    name : str
        Human-readable name.
    order : int
        Order of accuracy of the step for its class of fields.
    preserves : frozenset of str
        The properties the step keeps for every step size (``"symplecticity"``, ``"volume"``, ``"norm"``).
    """

    key: str
    name: str
    order: int
    preserves: frozenset[str]

    def __repr__(self) -> str:
        return f"GeometricMethod({self.key!r}, order={self.order})"

    def __reduce_ex__(self, protocol):
        return _reduce_method(self, protocol)


#: Properties that no explicit Runge--Kutta method keeps for every step size (a tableau declaring one is refused).
_NOT_KEPT_BY_RUNGE_KUTTA = frozenset({"symplecticity", "volume", "norm", "positivity"})


def _reduce_method(method, protocol):
    """Copy, pickle and save a registered method by its key (``deepcopy``, ``pickle`` and ``torch.save`` give back
    the registry's own object, so a copied layer runs the method of the original), any other by its content."""
    if METHODS.get(method.key) == method:
        return (get_method, (method.key,))
    return object.__reduce_ex__(method, protocol)


EULER = ButcherTableau("explicit Euler", a=((),), b=(1.0,), order=1, key="euler")
MIDPOINT = ButcherTableau("explicit midpoint", a=((), (0.5,)), b=(0.0, 1.0), order=2, key="midpoint")
HEUN = ButcherTableau("Heun", a=((), (1.0,)), b=(0.5, 0.5), order=2, key="heun")
KUTTA3 = ButcherTableau(
    "Kutta's third-order method", a=((), (0.5,), (-1.0, 2.0)), b=(1 / 6, 2 / 3, 1 / 6), order=3, key="kutta3"
)
RK4 = ButcherTableau(
    "classical Runge-Kutta (RK4)",
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    order=4,
    key="rk4",
)
#: Kutta's 3/8 rule: fourth order like RK4, with a smaller error constant. It is the method behind
#: ``torchdiffeq.odeint(method="rk4")``.
RK38 = ButcherTableau(
    "3/8 rule", a=((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)), b=(1 / 8, 3 / 8, 3 / 8, 1 / 8), order=4, key="rk38"
)
TABLEAUS: dict[str, ButcherTableau] = {t.key: t for t in (EULER, MIDPOINT, HEUN, KUTTA3, RK4, RK38)}

#: Symplectic Euler and Störmer--Verlet keep symplecticity (separable Hamiltonians, shear compositions) and so volume.
SYMPLECTIC_EULER = GeometricMethod("symplectic_euler", "symplectic Euler", 1, frozenset({"symplecticity", "volume"}))
STORMER_VERLET = GeometricMethod("stormer_verlet", "Störmer-Verlet", 2, frozenset({"symplecticity", "volume"}))
#: Norm-exact steps for :math:`\dot x = S(x)x`, :math:`S` skew, with :math:`S` frozen over the step (first order).
CAYLEY = GeometricMethod("cayley", "Cayley step", 1, frozenset({"norm"}))
EXP = GeometricMethod("exp", "matrix-exponential step", 1, frozenset({"norm"}))
ROTATION = GeometricMethod("rotation", "plane-rotation step", 1, frozenset({"norm"}))
#: The exponential exit step of compartmental fields (:func:`companion.structured.positive.exponential_exit_step`): keeps
#: the total mass of the compartments and their non-negativity for every step size.
EXPONENTIAL_EXIT = GeometricMethod("exponential_exit", "exponential exit step", 1, frozenset({"mass", "positivity"}))

#: Every method by its key: the names accepted wherever a ``method`` (or ``tableau``) is asked for.
METHODS: dict[str, ButcherTableau | GeometricMethod] = {
    **TABLEAUS,
    **{m.key: m for m in (SYMPLECTIC_EULER, STORMER_VERLET, CAYLEY, EXP, ROTATION, EXPONENTIAL_EXIT)},
}
Method = ButcherTableau | GeometricMethod
#: Keys of the methods that keep symplecticity (for separable Hamiltonians) and, with it, volume.
SYMPLECTIC_METHODS = tuple(k for k, m in METHODS.items() if "symplecticity" in m.preserves)
#: Keys of the methods that keep the Euclidean norm exactly for fields :math:`S(x)x`, :math:`S` skew.
NORM_EXACT_METHODS = tuple(k for k, m in METHODS.items() if "norm" in m.preserves)


def get_method(method: Method | str, *, name: str = "method") -> Method:
    """The method object for ``method``, given as an object of this module or by its key (e.g. ``"rk4"``).

    A method's identity is its content: an object whose ``key`` names a registered method must equal it (a copy of
    ``RK4`` gives ``RK4`` itself), and a :class:`ButcherTableau` of the user's own is accepted under a key of its own.

    Raises
    ------
    TypeError
        If ``method`` is neither a method object nor a string.
    ValueError
        If the string is not the key of a method (the message lists the keys); if an object takes the key of a
        registered method but has other content (coefficients, order, properties); or if it is a
        :class:`GeometricMethod` that is not registered (no layer knows how to run it).
    """
    if isinstance(method, (ButcherTableau, GeometricMethod)):
        return _registered_or_own(method, name)
    if not isinstance(method, str):
        raise TypeError(
            f"{name} must be a method of companion.integrators (e.g. companion.RK4) or its name (e.g. 'rk4'), "
            f"got {type(method).__name__}."
        )
    key = method.lower()  # names match case-insensitively: "RK4" is companion.RK4
    if key not in METHODS:
        raise ValueError(f"unknown {name} {method!r}; choose one of {', '.join(map(repr, METHODS))}.")
    return METHODS[key]


def _registered_or_own(method: Method, name: str) -> Method:
    """The registered method equal to ``method``, or a tableau of the user's own under a key no method has."""
    registered = METHODS.get(method.key)
    if registered is method or (registered is not None and registered == method):
        return registered
    if registered is not None:
        if type(method) is not type(registered):
            differs = f"a {type(method).__name__}, not a {type(registered).__name__}"
        else:
            fields = [
                f.name for f in dataclasses.fields(registered) if getattr(method, f.name) != getattr(registered, f.name)
            ]
            differs = f"other {', '.join(fields)}"
        raise ValueError(
            f"{name}: a method with key {method.key!r} must be the registered {registered.name} ({registered!r}); "
            f"got {method!r}, {differs}. Use companion.integrators.METHODS[{method.key!r}] (or the name "
            f"{method.key!r}), or give your method a key of its own."
        )
    if isinstance(method, GeometricMethod):
        geometric = [k for k, m in METHODS.items() if isinstance(m, GeometricMethod)]
        raise ValueError(
            f"{name}: {method!r} is not a registered method; a GeometricMethod is carried out by the layer or step "
            f"function that knows its key ({', '.join(map(repr, geometric))}), so a new one cannot be passed as a "
            "method (write its step function, or a ButcherTableau for a Runge-Kutta method)."
        )
    return method


def get_tableau(tableau: ButcherTableau | str, *, name: str = "tableau") -> ButcherTableau:
    """Like :func:`get_method`, for routines that run explicit Runge--Kutta methods only.

    Raises
    ------
    TypeError, ValueError
        As :func:`get_method`, and if the method is not a Runge--Kutta tableau (the message names the layer or
        step function that runs it).
    """
    method = get_method(tableau, name=name)
    if not isinstance(method, ButcherTableau):
        raise ValueError(
            f"{name} must be an explicit Runge-Kutta method ({', '.join(map(repr, TABLEAUS))}), got {method.key!r}; "
            f"{method.name} is run by the layers that need it (SymplecticLayer, VolumePreservingLayer, "
            "SpherePreservingLayer) or by its step function."
        )
    return method


def _scaled_coefficients(tableau: ButcherTableau, h: Step, x: torch.Tensor) -> list[torch.Tensor | None]:
    """Each distinct coefficient of ``tableau`` times the step ``h``, as a scalar tensor (``None`` for exactly 1).

    Made once per call, not once per stage: a product of a tensor and a Python number wraps the number in a
    new tensor and converts it to the tensor's dtype every time (on a CPU that costs more than the product of
    a small state), while a scalar tensor of that dtype is used as it is, with the same values. Half-precision
    states get float32 scalars, which their kernels use unrounded, as they use a Python number. A product by
    exactly one is left out, e.g. in the explicit Euler step of size 1.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    if isinstance(h, torch.Tensor):
        h = h.to(dtype)
        return [h if c == 1.0 else c * h for c in tableau._values]
    return [None if c * h == 1.0 else torch.scalar_tensor(c * h, dtype=dtype, device=x.device) for c in tableau._values]


def _combine(
    x: torch.Tensor, plan: Plan, ks: list[torch.Tensor], coefficients: list[torch.Tensor | None], fused: bool
) -> torch.Tensor:
    """Return ``x + sum(coefficients[v] * (ks[first] + ...))`` over the groups ``(v, first, rest)`` of ``plan``.

    Each group is added to ``x`` in turn, with ``fused=True`` by one ``torch.addcmul`` (a product and a sum in
    one kernel, rounded once). Half-precision states take a product and a sum instead: ``addcmul`` would round
    the coefficient to their precision. No ``torch.add(x, k, alpha=a)``: ``torch.compile``'s inductor fused it
    into an ``addmm`` and dropped ``alpha`` (a silent wrong answer).
    """
    for value, first, rest in plan:
        term = ks[first]
        for j in rest:
            term = term + ks[j]
        coefficient = coefficients[value]
        if coefficient is None:
            x = x + term
        elif fused:
            x = torch.addcmul(x, term, coefficient)
        else:
            x = x + term * coefficient
    return x


def rk_step(
    f: Field,
    x: torch.Tensor,
    h: Step,
    tableau: ButcherTableau | str = RK4,
    *,
    time_dependent: bool = False,
    t: float | torch.Tensor | None = None,
) -> torch.Tensor:
    r"""One explicit Runge--Kutta step :math:`\Psi^h_f(x)` of :math:`\dot x = f(x)` or :math:`\dot x = f(t, x)`.

    .. math:: k_i = f\Big(t + c_ih,\; x + h\sum_{j<i} a_{ij}k_j\Big), \qquad \Psi^h(x) = x + h\sum_i b_ik_i .

    Parameters
    ----------
    f : callable
        Vector field. Called as ``f(x)``, or as ``f(t, x)`` (the convention of ``torchdiffeq``) when
        ``time_dependent=True``; it maps a tensor of shape ``(..., dim)`` to the same shape.
    x : torch.Tensor
        State, shape ``(..., dim)``, floating point.
    h : float or scalar tensor
        Step size: a Python or NumPy number, or a floating tensor with one element (e.g. a learned step); finite
        and non-zero, a negative step integrating backward in time (as torchdiffeq does for decreasing times).
    tableau : ButcherTableau or str
        The method, as an object (``EULER``, ``HEUN``, ``RK4``, ...) or its name in any case (``"rk4"``, ``"RK4"``).
    time_dependent : bool
        Whether ``f`` takes the time as its first argument.
    t : float or scalar tensor, optional
        Time of the state ``x`` (default 0), only with ``time_dependent=True``. The stages are evaluated at
        :math:`t + c_ih`, each passed to ``f`` as a scalar tensor of ``x``'s dtype and device.

    Returns
    -------
    torch.Tensor
        :math:`x + h\sum_i b_i k_i`, same shape as ``x``. The local error is :math:`O(h^{p+1})` with
        :math:`p` = ``tableau.order``.

    Raises
    ------
    TypeError
        If ``f`` is not callable, ``x`` is not a floating tensor, ``tableau`` is not a method or its name, or
        ``f`` takes ``(t, x)`` without ``time_dependent=True`` (or ``(x)`` with it): the message says which.
    ValueError
        If ``h`` is zero or not finite (number or tensor), ``tableau`` is not a Runge--Kutta method,
        ``f`` returns a shape other than ``x.shape``, or ``t`` is given for an autonomous field.

    Examples
    --------
    >>> import torch
    >>> x1 = rk_step(lambda x: -x, torch.ones(1, dtype=torch.float64), 0.1, RK4)
    >>> x2 = rk_step(lambda t, x: -t * x, torch.ones(1), 0.1, "rk4",
    ...              time_dependent=True, t=1.0)
    """
    check_callable(f, "f")
    check_tensor(x, "x", min_ndim=1)
    tableau = get_tableau(tableau)
    h = _check_step(h)
    t = _start_time(time_dependent, t, "t")
    with explain_field_calls(f, time_dependent):
        return _rk_step_unchecked(f, x, h, tableau, t)


def _stage_time(t: float | torch.Tensor, c: float, h: Step, x: torch.Tensor) -> torch.Tensor:
    time = t + c * h if c != 0.0 else t
    if isinstance(time, torch.Tensor):
        return time.to(dtype=x.dtype, device=x.device)
    return torch.scalar_tensor(time, dtype=x.dtype, device=x.device)


def _check_field_output(k, x: torch.Tensor) -> None:
    if not isinstance(k, torch.Tensor) or k.shape != x.shape:
        got = f"shape {tuple(k.shape)}" if isinstance(k, torch.Tensor) else type(k).__name__
        raise ValueError(
            f"the vector field must return a tensor of the state's shape {tuple(x.shape)}, got {got}; "
            "a field maps (..., dim) to (..., dim) (e.g. nn.Linear(dim, dim), not nn.Linear(dim, 1))."
        )


def _rk_stages(
    f: Field,
    x: torch.Tensor,
    tableau: ButcherTableau,
    coefficients: list[torch.Tensor | None],
    times: tuple[torch.Tensor, ...] | None,
    check_shape: bool,
) -> torch.Tensor:
    """One step: the stages :math:`k_i` in turn, then their weighted sum (``times`` ``None`` for a field ``f(x)``)."""
    fused = x.dtype in (torch.float32, torch.float64)
    ks: list[torch.Tensor] = []
    for i, plan in enumerate(tableau._stage_plans):
        stage = _combine(x, plan, ks, coefficients, fused)
        k = f(stage) if times is None else f(times[i], stage)
        if check_shape:
            _check_field_output(k, x)
            check_shape = False
        ks.append(k)
    return _combine(x, tableau._weight_plan, ks, coefficients, fused)


def _rk_steps_unchecked(
    f: Field,
    x: torch.Tensor,
    h: Step,
    tableau: ButcherTableau,
    n_steps: int,
    t0: float | torch.Tensor | None = None,
    *,
    trajectory: bool = False,
) -> torch.Tensor:
    """``n_steps`` steps of size ``h`` without validating the arguments; ``t0`` is ``None`` for a field ``f(x)``.

    Returns the last state, or with ``trajectory=True`` every state stacked, shape ``(n_steps + 1, *x.shape)``.
    The coefficients are scaled once for all steps, and the field's output is checked once, at the first stage
    (a shape is static under ``torch.compile``): the field must return ``x``'s shape.
    """
    coefficients = _scaled_coefficients(tableau, h, x)
    states = [x]
    for n in range(n_steps):
        t = None if t0 is None else t0 + n * h
        times = None if t is None else tuple(_stage_time(t, c, h, x) for c in tableau._nodes)
        x = _rk_stages(f, x, tableau, coefficients, times, check_shape=n == 0)
        if trajectory:
            states.append(x)
    return torch.stack(states) if trajectory else x


def _rk_step_unchecked(
    f: Field, x: torch.Tensor, h: Step, tableau: ButcherTableau, t: float | torch.Tensor | None = None
) -> torch.Tensor:
    """One step without validating the arguments; ``t`` is ``None`` for an autonomous field ``f(x)``.

    Checks only what a shape reveals (static under ``torch.compile``): the field must return ``x``'s shape.
    """
    return _rk_steps_unchecked(f, x, h, tableau, 1, t)


def _states_at_times(
    f: Field, x0: torch.Tensor, times: torch.Tensor, n_steps: int, tableau: ButcherTableau, time_dependent: bool
) -> torch.Tensor:
    states = [x0]  # at the times, times[0] that of x0, by n_steps equal steps from each time to the next
    for start, end in zip(times[:-1], times[1:]):
        step = end - start if n_steps == 1 else (end - start) / n_steps
        states.append(_rk_steps_unchecked(f, states[-1], step, tableau, n_steps, start if time_dependent else None))
    return torch.stack(states)


def integrate(
    f: Field,
    x0: torch.Tensor,
    *,
    h: Step | None = None,
    n_steps: int | None = None,
    tableau: ButcherTableau | str = RK4,
    time_dependent: bool = False,
    t0: float | torch.Tensor | None = None,
    t: torch.Tensor | Sequence[float] | None = None,
) -> torch.Tensor:
    r"""Fixed-step trajectory :math:`x_0, \Psi^h(x_0), \dots, (\Psi^h)^{n}(x_0)`, or the states at the times ``t``.

    Parameters
    ----------
    f : callable
        Vector field ``f(x)``, or ``f(t, x)`` with ``time_dependent=True``.
    x0 : torch.Tensor
        Initial state, shape ``(..., dim)``.
    h : float or scalar tensor
        Step size, finite and non-zero (negative: backward in time), as for :func:`rk_step`; not with ``t``.
    n_steps : int
        Number of steps, >= 1; with ``t``, the number of equal steps from each time to the next (default 1).
    tableau : ButcherTableau or str
        The Runge--Kutta method, as an object or its name.
    time_dependent : bool
        Whether ``f`` takes the time as its first argument.
    t0 : float or scalar tensor, optional
        Initial time (default 0), only with ``time_dependent=True`` and ``h``; step ``n`` starts at :math:`t_0 + nh`.
    t : 1-D tensor or sequence of numbers, optional
        Observation times (``t[0]`` that of ``x0``), strictly increasing or decreasing, irregular gaps allowed.

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps + 1, *x0.shape)``, entry ``n`` approximating :math:`x(t_0 + nh)`; with ``t``, shape
        ``(len(t), *x0.shape)``, entry ``k`` approximating :math:`x(t_k)`.

    Raises
    ------
    TypeError, ValueError
        As :func:`rk_step`; if ``n_steps`` is not an int >= 1; if neither ``h`` and ``n_steps`` nor ``t`` is
        given, or ``t`` comes with ``h`` or ``t0``; if ``t`` holds fewer than two finite, strictly monotone times.

    Notes
    -----
    With ``t`` it is torchdiffeq's fixed-grid ``odeint(f, x0, t, method=...)``, one step per gap: ``integrate(f, x0,
    t=t, tableau=RK38, time_dependent=True)`` equals ``odeint(f, x0, t, method="rk4")`` to rounding (the 3/8 rule).
    Its ``options=dict(step_size=s)`` interpolates linearly between the points of one grid; ``n_steps`` splits each
    gap into equal steps instead, so every state keeps the method's order.
    """
    check_callable(f, "f")
    check_tensor(x0, "x0", min_ndim=1)
    tableau = get_tableau(tableau)
    if t is not None:
        if h is not None or t0 is not None:
            raise ValueError("pass the times t or a step h (and t0), not both: t sets the steps, n_steps per gap.")
        n_steps = check_positive_int(1 if n_steps is None else n_steps, "n_steps")
        _start_time(time_dependent, None, "t0")
        times = check_times(t, x0)
        with explain_field_calls(f, time_dependent):
            return _states_at_times(f, x0, times, n_steps, tableau, time_dependent)
    if h is None or n_steps is None:
        raise TypeError("integrate needs the step h and the number of steps n_steps, or the observation times t.")
    h = _check_step(h)
    check_positive_int(n_steps, "n_steps")
    start = _start_time(time_dependent, t0, "t0")
    with explain_field_calls(f, time_dependent):
        return _rk_steps_unchecked(f, x0, h, tableau, n_steps, start, trajectory=True)


#: Which methods keep which property (keys of :data:`METHODS`), from each method's ``preserves``. Every
#: Runge--Kutta method keeps linear invariants; the symplectic methods keep symplecticity and volume (for separable
#: Hamiltonians / shear splittings); the norm-exact steps keep the Euclidean norm.
PROPERTY_METHODS: dict[str, tuple[str, ...]] = {
    prop: tuple(k for k, m in METHODS.items() if prop in m.preserves)
    for prop in ("linear_invariants", "symplecticity", "volume", "norm", "positivity")
}


def require_method(prop: str, method: Method | str) -> Method:
    """The method object for ``method`` (an object or its key), checked to keep the property ``prop``.

    A registered method keeps what its registry entry declares; a :class:`ButcherTableau` of the user's own (under a
    key of its own) keeps what it declares, which can only be ``"linear_invariants"``.

    Raises
    ------
    TypeError
        If ``method`` is neither a method object nor a string.
    ValueError
        If the property or the method is unknown, the method takes a registered key with other content (see
        :func:`get_method`), or the method cannot keep the property; the message names methods that do.
    """
    if prop not in PROPERTY_METHODS:
        raise ValueError(f"unknown property {prop!r}; choose one of {', '.join(map(repr, PROPERTY_METHODS))}.")
    resolved = get_method(method)
    allowed = PROPERTY_METHODS[prop]
    # A registered method by its key (get_method checked its content); a tableau of the user's own by what it
    # declares, which can only be what every explicit Runge--Kutta method keeps (ButcherTableau checks that).
    own_tableau = isinstance(resolved, ButcherTableau) and METHODS.get(resolved.key) is not resolved
    if resolved.key not in allowed and not (own_tableau and prop in resolved.preserves):
        raise ValueError(
            f"the integrator {resolved.key!r} does not keep {prop}; use one of {', '.join(map(repr, allowed))} "
            "(the design recipe: pick a method that keeps the property at the discrete level)."
        )
    return resolved
