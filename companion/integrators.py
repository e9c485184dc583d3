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

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ._checks import check_callable, check_positive, check_positive_int, check_tensor

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
        If the tableau is not explicit, the weights do not sum to one or the order is not positive.
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
                raise ValueError(f"{self.name}: explicit methods need row {i} of a to have {i} entries, got {len(row)}.")
        if abs(sum(self.b) - 1.0) > 1e-12:
            raise ValueError(f"{self.name}: the weights b must sum to 1 (consistency), got {sum(self.b)}.")
        check_positive_int(self.order, "order")
        # Non-zero coefficients only: the stage loop skips the zeros of sparse tableaus such as RK4.
        sparse = tuple(tuple((j, aij) for j, aij in enumerate(row) if aij != 0.0) for row in self.a)
        object.__setattr__(self, "_stage_terms", sparse)
        object.__setattr__(self, "_weight_terms", tuple((i, bi) for i, bi in enumerate(self.b) if bi != 0.0))
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
    "3/8 rule",
    a=((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)),
    b=(1 / 8, 3 / 8, 3 / 8, 1 / 8),
    order=4,
    key="rk38",
)
TABLEAUS: dict[str, ButcherTableau] = {t.key: t for t in (EULER, MIDPOINT, HEUN, KUTTA3, RK4, RK38)}

#: Symplectic Euler and Störmer--Verlet keep symplecticity (separable Hamiltonians, shear compositions) and so volume.
SYMPLECTIC_EULER = GeometricMethod("symplectic_euler", "symplectic Euler", 1, frozenset({"symplecticity", "volume"}))
STORMER_VERLET = GeometricMethod("stormer_verlet", "Störmer-Verlet", 2, frozenset({"symplecticity", "volume"}))
#: Norm-exact steps for :math:`\dot x = S(x)x`, :math:`S` skew, with :math:`S` frozen over the step (first order).
CAYLEY = GeometricMethod("cayley", "Cayley step", 1, frozenset({"norm"}))
EXP = GeometricMethod("exp", "matrix-exponential step", 1, frozenset({"norm"}))
ROTATION = GeometricMethod("rotation", "plane-rotation step", 1, frozenset({"norm"}))
#: The exponential exit step of compartmental fields (:func:`companion.structured.exponential_exit_step`): keeps
#: the total mass of the compartments and their non-negativity for every step size.
EXPONENTIAL_EXIT = GeometricMethod("exponential_exit", "exponential exit step", 1, frozenset({"mass", "positivity"}))

#: Every method by its key: the names accepted wherever a ``method`` (or ``tableau``) is asked for.
METHODS: dict[str, ButcherTableau | GeometricMethod] = {
    **TABLEAUS, **{m.key: m for m in (SYMPLECTIC_EULER, STORMER_VERLET, CAYLEY, EXP, ROTATION, EXPONENTIAL_EXIT)}
}
Method = ButcherTableau | GeometricMethod
#: Keys of the methods that keep symplecticity (for separable Hamiltonians) and, with it, volume.
SYMPLECTIC_METHODS = tuple(k for k, m in METHODS.items() if "symplecticity" in m.preserves)
#: Keys of the methods that keep the Euclidean norm exactly for fields :math:`S(x)x`, :math:`S` skew.
NORM_EXACT_METHODS = tuple(k for k, m in METHODS.items() if "norm" in m.preserves)


def get_method(method: Method | str, *, name: str = "method") -> Method:
    """The method object for ``method``, given as an object of this module or by its key (e.g. ``"rk4"``).

    Raises
    ------
    TypeError
        If ``method`` is neither a method object nor a string.
    ValueError
        If the string is not the key of a method; the message lists the keys.
    """
    if isinstance(method, (ButcherTableau, GeometricMethod)):
        return method
    if not isinstance(method, str):
        raise TypeError(
            f"{name} must be a method of companion.integrators (e.g. companion.RK4) or its name (e.g. 'rk4'), "
            f"got {type(method).__name__}."
        )
    if method not in METHODS:
        raise ValueError(f"unknown {name} {method!r}; choose one of {', '.join(map(repr, METHODS))}.")
    return METHODS[method]


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


def _combine(x: torch.Tensor, terms, ks: list[torch.Tensor], h: Step) -> torch.Tensor:
    """Return ``x + h * sum(coef * ks[j])`` over the non-zero ``terms``.

    Plain products and sums only: ``torch.add(x, k, alpha=a)`` would save a kernel in eager mode, but
    ``torch.compile``'s inductor fuses it into an ``addmm`` and drops ``alpha`` (a silent wrong answer).
    """
    if not terms:
        return x
    total = None
    for j, coef in terms:
        term = ks[j] if coef == 1.0 else coef * ks[j]
        total = term if total is None else total + term
    return x + h * total


def _check_step(h: Step) -> Step:
    """A positive finite number, or a floating scalar tensor with a positive finite value.

    The value of a tensor step is checked outside ``torch.compile`` (where reading it would break the graph);
    layers call the unchecked steps and validate their step where it is set.
    """
    if isinstance(h, torch.Tensor):
        if h.numel() != 1:
            raise ValueError(f"h must be a scalar step size, got a tensor of shape {tuple(h.shape)}.")
        if not torch.is_floating_point(h):
            raise TypeError(f"h must be a floating-point scalar tensor or a positive number, got dtype {h.dtype}.")
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(h).all() & (h > 0).all()):
            raise ValueError(f"h must be a finite step > 0, got the tensor {h.detach().cpu().reshape(()).item()!r}.")
        return h
    return check_positive(h, "h")


def _check_time(t, name: str) -> float | torch.Tensor:
    if isinstance(t, torch.Tensor):
        if t.numel() != 1 or not torch.is_floating_point(t):
            raise ValueError(f"{name} must be a number or a floating scalar tensor, got a tensor of shape {tuple(t.shape)}.")
        return t.reshape(())
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise TypeError(f"{name} must be a finite number or a scalar tensor, got {t!r}.")
    return float(t)


def _start_time(time_dependent: bool, t, name: str) -> float | torch.Tensor | None:
    """The start time for a field ``f(t, x)``, or ``None`` for an autonomous field ``f(x)``."""
    if not isinstance(time_dependent, bool):
        raise TypeError(f"time_dependent must be True or False, got {time_dependent!r}.")
    if not time_dependent:
        if t is not None:
            raise ValueError(
                f"{name} is the time passed to a field f(t, x); pass time_dependent=True for such a field "
                f"(an autonomous field f(x) takes no time)."
            )
        return None
    return 0.0 if t is None else _check_time(t, name)


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
        Step size: a positive number, or a floating scalar tensor with a positive value (e.g. a learned step).
    tableau : ButcherTableau or str
        The method, as an object (``EULER``, ``HEUN``, ``RK4``, ...) or its name (``"rk4"``).
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
        If ``f`` is not callable, ``x`` is not a floating tensor, ``tableau`` is not a method or its name.
    ValueError
        If ``h`` is not positive and finite (number or tensor), ``tableau`` is not a Runge--Kutta method,
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
    return _rk_step_unchecked(f, x, h, tableau, t)


def _stage_time(t: float | torch.Tensor, c: float, h: Step, x: torch.Tensor) -> torch.Tensor:
    time = t + c * h if c != 0.0 else t
    if isinstance(time, torch.Tensor):
        return time.to(dtype=x.dtype, device=x.device)
    return torch.tensor(time, dtype=x.dtype, device=x.device)


def _rk_step_unchecked(
    f: Field, x: torch.Tensor, h: Step, tableau: ButcherTableau, t: float | torch.Tensor | None = None
) -> torch.Tensor:
    """One step without validating the arguments; ``t`` is ``None`` for an autonomous field ``f(x)``.

    Checks only what a shape reveals (static under ``torch.compile``): the field must return ``x``'s shape.
    """
    ks: list[torch.Tensor] = []
    for terms, c in zip(tableau._stage_terms, tableau._nodes):
        stage = _combine(x, terms, ks, h)
        k = f(stage) if t is None else f(_stage_time(t, c, h, x), stage)
        if not isinstance(k, torch.Tensor) or k.shape != x.shape:
            got = f"shape {tuple(k.shape)}" if isinstance(k, torch.Tensor) else type(k).__name__
            raise ValueError(
                f"the vector field must return a tensor of the state's shape {tuple(x.shape)}, got {got}; "
                "a field maps (..., dim) to (..., dim) (e.g. nn.Linear(dim, dim), not nn.Linear(dim, 1))."
            )
        ks.append(k)
    return _combine(x, tableau._weight_terms, ks, h)


def integrate(
    f: Field,
    x0: torch.Tensor,
    *,
    h: float,
    n_steps: int,
    tableau: ButcherTableau | str = RK4,
    time_dependent: bool = False,
    t0: float | None = None,
) -> torch.Tensor:
    r"""Fixed-step trajectory :math:`x_0, \Psi^h(x_0), \dots, (\Psi^h)^{n}(x_0)`.

    Parameters
    ----------
    f : callable
        Vector field ``f(x)``, or ``f(t, x)`` with ``time_dependent=True``.
    x0 : torch.Tensor
        Initial state, shape ``(..., dim)``.
    h : float
        Step size, > 0.
    n_steps : int
        Number of steps, >= 1.
    tableau : ButcherTableau or str
        The Runge--Kutta method, as an object or its name.
    time_dependent : bool
        Whether ``f`` takes the time as its first argument.
    t0 : float, optional
        Initial time (default 0), only with ``time_dependent=True``; step ``n`` starts at :math:`t_0 + nh`.

    Returns
    -------
    torch.Tensor
        Shape ``(n_steps + 1, *x0.shape)``; entry ``n`` approximates :math:`x(t_0 + nh)`.

    Raises
    ------
    TypeError, ValueError
        As :func:`rk_step`, and if ``n_steps`` is not an int >= 1 or ``h`` is not a positive number.

    Notes
    -----
    ``integrate(f, x0, h=h, n_steps=n, tableau=RK38, time_dependent=True, t0=t0)[-1]`` equals
    ``torchdiffeq.odeint(f, x0, torch.linspace(t0, t0 + n * h, n + 1), method="rk4")[-1]`` to rounding
    (torchdiffeq's fixed-step ``"rk4"`` is the 3/8 rule).
    """
    check_callable(f, "f")
    check_tensor(x0, "x0", min_ndim=1)
    h = check_positive(h, "h")
    check_positive_int(n_steps, "n_steps")
    tableau = get_tableau(tableau)
    start = _start_time(time_dependent, t0, "t0")
    states = [x0]
    x = x0
    for n in range(n_steps):
        t = None if start is None else start + n * h
        x = _rk_step_unchecked(f, x, h, tableau, t)
        states.append(x)
    return torch.stack(states)


#: Which methods keep which property (keys of :data:`METHODS`), from each method's ``preserves``. Every
#: Runge--Kutta method keeps linear invariants; the symplectic methods keep symplecticity and volume (for separable
#: Hamiltonians / shear splittings); the norm-exact steps keep the Euclidean norm.
PROPERTY_METHODS: dict[str, tuple[str, ...]] = {
    prop: tuple(k for k, m in METHODS.items() if prop in m.preserves)
    for prop in ("linear_invariants", "symplecticity", "volume", "norm", "positivity")
}


def require_method(prop: str, method: Method | str) -> Method:
    """The method object for ``method`` (an object or its key), checked to keep the property ``prop``.

    Raises
    ------
    TypeError
        If ``method`` is neither a method object nor a string.
    ValueError
        If the property or the method is unknown, or the method cannot keep the property; the message names
        methods that do.
    """
    if prop not in PROPERTY_METHODS:
        raise ValueError(f"unknown property {prop!r}; choose one of {', '.join(map(repr, PROPERTY_METHODS))}.")
    resolved = get_method(method)
    allowed = PROPERTY_METHODS[prop]
    if resolved.key not in allowed:
        raise ValueError(
            f"the integrator {resolved.key!r} does not keep {prop}; use one of {', '.join(map(repr, allowed))} "
            "(the design recipe: pick a method that keeps the property at the discrete level)."
        )
    return resolved
