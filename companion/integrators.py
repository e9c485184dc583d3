r"""One-step integrators: explicit Runge--Kutta methods, symplectic methods and norm-exact steps.

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
    "integrate_separable",
    "symplectic_euler_step",
    "stormer_verlet_step",
    "cayley_step",
    "exp_step",
    "rotation_step",
    "low_rank_cayley_step",
    "low_rank_exp_step",
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


def _check_partitioned(q: torch.Tensor, p: torch.Tensor) -> None:
    check_tensor(q, "q", min_ndim=1)
    check_tensor(p, "p", min_ndim=1)
    if q.shape != p.shape:
        raise ValueError(f"q and p must have the same shape, got {tuple(q.shape)} and {tuple(p.shape)}.")


def symplectic_euler_step(
    dT_dp: Field, dU_dq: Field, q: torch.Tensor, p: torch.Tensor, h: Step
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step of symplectic Euler for a separable Hamiltonian :math:`H(q,p) = T(p) + U(q)`.

    .. math:: q_{n+1} = q_n + h\,\nabla T(p_n), \qquad p_{n+1} = p_n - h\,\nabla U(q_{n+1}).

    It is a composition of two shears, so it is symplectic (:math:`J^\top\Omega J=\Omega`) and
    volume-preserving for every step size; order 1.

    Parameters
    ----------
    dT_dp, dU_dq : callable
        Gradients of the kinetic and potential parts, each mapping ``(..., n)`` to ``(..., n)``.
    q, p : torch.Tensor
        Positions and momenta, same shape ``(..., n)``.
    h : float or scalar tensor
        Step size.

    Returns
    -------
    tuple of torch.Tensor
        ``(q_next, p_next)``.

    Raises
    ------
    TypeError, ValueError
        If the gradients are not callable, ``q``/``p`` differ in shape or ``h`` is not positive.
    """
    check_callable(dT_dp, "dT_dp")
    check_callable(dU_dq, "dU_dq")
    _check_partitioned(q, p)
    return _symplectic_euler_step_unchecked(dT_dp, dU_dq, q, p, _check_step(h))


def _symplectic_euler_step_unchecked(dT_dp: Field, dU_dq: Field, q: torch.Tensor, p: torch.Tensor, h: Step):
    q_next = q + h * dT_dp(p)
    p_next = p - h * dU_dq(q_next)
    return q_next, p_next


def stormer_verlet_step(
    dT_dp: Field, dU_dq: Field, q: torch.Tensor, p: torch.Tensor, h: Step
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One Störmer--Verlet (leapfrog) step for :math:`H(q,p) = T(p) + U(q)`.

    .. math:: p_{1/2} = p_n - \tfrac h2\nabla U(q_n),\quad q_{n+1} = q_n + h\nabla T(p_{1/2}),\quad
              p_{n+1} = p_{1/2} - \tfrac h2 \nabla U(q_{n+1}).

    Symmetric and symplectic, order 2. Arguments, returns and errors as :func:`symplectic_euler_step`.
    """
    check_callable(dT_dp, "dT_dp")
    check_callable(dU_dq, "dU_dq")
    _check_partitioned(q, p)
    return _stormer_verlet_step_unchecked(dT_dp, dU_dq, q, p, _check_step(h))


def _stormer_verlet_step_unchecked(dT_dp: Field, dU_dq: Field, q: torch.Tensor, p: torch.Tensor, h: Step):
    p_half = p - 0.5 * h * dU_dq(q)
    q_next = q + h * dT_dp(p_half)
    p_next = p_half - 0.5 * h * dU_dq(q_next)
    return q_next, p_next


def integrate_separable(
    dT_dp: Field,
    dU_dq: Field,
    q0: torch.Tensor,
    p0: torch.Tensor,
    *,
    h: float,
    n_steps: int,
    method: GeometricMethod | str = "symplectic_euler",
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Fixed-step trajectory of a symplectic method for :math:`H(q,p) = T(p) + U(q)`.

    Parameters
    ----------
    dT_dp, dU_dq : callable
        Gradients of the kinetic and potential parts.
    q0, p0 : torch.Tensor
        Initial positions and momenta, same shape ``(..., n)``.
    h : float
        Step size, > 0.
    n_steps : int
        Number of steps, >= 1.
    method : SYMPLECTIC_EULER, STORMER_VERLET, or their keys "symplectic_euler", "stormer_verlet"
        The symplectic method.

    Returns
    -------
    tuple of torch.Tensor
        ``(q, p)``, each of shape ``(n_steps + 1, *q0.shape)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`symplectic_euler_step`, on a bad count or an unknown method.
    """
    method = require_method("symplecticity", method)
    check_positive_int(n_steps, "n_steps")
    h = check_positive(h, "h")
    step = symplectic_euler_step if method is SYMPLECTIC_EULER else stormer_verlet_step
    qs, ps = [q0], [p0]
    q, p = q0, p0
    for _ in range(n_steps):
        q, p = step(dT_dp, dU_dq, q, p, h)
        qs.append(q)
        ps.append(p)
    return torch.stack(qs), torch.stack(ps)


def _check_skew(S: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Shapes always; skew-symmetry of the values outside ``torch.compile`` (reading values breaks a graph)."""
    check_tensor(S, "S", min_ndim=2)
    check_tensor(x, "x", min_ndim=1)
    d = x.shape[-1]
    if S.shape[-2:] != (d, d):
        raise ValueError(f"S must have shape (..., {d}, {d}) to act on x of shape {tuple(x.shape)}, got {tuple(S.shape)}.")
    if not torch.compiler.is_compiling():
        S_values = S.detach()
        asym = (S_values + S_values.transpose(-1, -2)).abs().max()
        if asym > 1e-6 * max(1.0, float(S_values.abs().max())):
            raise ValueError(f"S must be skew-symmetric (S^T = -S); max |S + S^T| = {float(asym):.3g}.")
    return S


def cayley_step(S: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    r"""Norm-exact step :math:`x \mapsto (I - \tfrac h2 S)^{-1}(I + \tfrac h2 S)\,x` for skew :math:`S`.

    The Cayley transform of a skew matrix is orthogonal, so :math:`\|x_{n+1}\| = \|x_n\|` to rounding
    for every step size. With :math:`S = S(x_n)` frozen it is a first-order method for
    :math:`\dot x = S(x)x` (second order when :math:`S` is constant).

    Parameters
    ----------
    S : torch.Tensor
        Skew-symmetric matrices, shape ``(dim, dim)`` or ``(batch, dim, dim)``.
    x : torch.Tensor
        States, shape ``(dim,)`` or ``(batch, dim)``.
    h : float or scalar tensor
        Step size.

    Raises
    ------
    ValueError
        If ``S`` is not skew-symmetric or its shape does not match ``x``. The skew-symmetry is checked on
        the values of ``S`` (so not inside ``torch.compile``, and not under ``torch.func.vmap`` when ``S``
        depends on the mapped input); the layers build :math:`S` skew by construction and skip the check.
    """
    _check_skew(S, x)
    return _cayley_step_unchecked(S, x, _check_step(h))


def _cayley_step_unchecked(S: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    rhs = x.unsqueeze(-1) + 0.5 * h * (S @ x.unsqueeze(-1))
    return torch.linalg.solve(eye - 0.5 * h * S, rhs).squeeze(-1)


def exp_step(S: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    r"""Norm-exact step :math:`x \mapsto \exp(hS)\,x` for skew :math:`S` (exact flow when :math:`S` is constant).

    Arguments and errors as :func:`cayley_step`.
    """
    _check_skew(S, x)
    return _exp_step_unchecked(S, x, _check_step(h))


def _exp_step_unchecked(S: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    return (torch.linalg.matrix_exp(h * S) @ x.unsqueeze(-1)).squeeze(-1)


def _check_factors(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor) -> None:
    check_tensor(U, "U", min_ndim=2)
    check_tensor(V, "V", min_ndim=2)
    check_tensor(x, "x", min_ndim=1)
    if U.shape != V.shape or U.shape[:-1] != x.shape:
        raise ValueError(
            f"U and V must both have shape (*x.shape, rank) = {(*x.shape, 'rank')}, "
            f"got {tuple(U.shape)} and {tuple(V.shape)} for x of shape {tuple(x.shape)}."
        )


def low_rank_cayley_step(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    r"""The Cayley step of :func:`cayley_step` for the low-rank skew matrix :math:`S = UV^\top - VU^\top`.

    With :math:`W = [U\;V]` (``dim`` x ``2 rank``) and :math:`J = \begin{pmatrix}0 & I\\ -I & 0\end{pmatrix}`,
    :math:`S = WJW^\top`, and the Woodbury identity turns the ``dim`` x ``dim`` solve into a
    ``2 rank`` x ``2 rank`` one:

    .. math:: (I - \tfrac h2 S)^{-1}(I + \tfrac h2 S)\,x = x + h\,W\big(I - \tfrac h2 JW^\top W\big)^{-1}JW^\top x .

    The map is the same orthogonal Cayley transform, so the norm is kept to rounding for every step size,
    at a cost of :math:`O(\text{dim}\cdot\text{rank}^2 + \text{rank}^3)` per sample instead of
    :math:`O(\text{dim}^3)`. For ``rank=1`` no system is solved: :math:`S^3 = -\omega^2S` with
    :math:`\omega^2 = \|u\|^2\|v\|^2 - (u\cdot v)^2`, and the step is
    :math:`x + \frac{h}{D}Sx + \frac{h^2}{2D}S^2x`, :math:`D = 1 + h^2\omega^2/4`.
    :math:`S` is skew by construction: nothing is checked on values.

    Parameters
    ----------
    U, V : torch.Tensor
        Factors, shape ``(..., dim, rank)`` each.
    x : torch.Tensor
        States, shape ``(..., dim)``.
    h : float or scalar tensor
        Step size.

    Raises
    ------
    TypeError, ValueError
        If the factors do not match ``x`` in shape, are not floating point, or ``h`` is not positive.
    """
    _check_factors(U, V, x)
    return _low_rank_cayley_step_unchecked(U, V, x, _check_step(h))


def low_rank_exp_step(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    r"""The step :math:`x\mapsto\exp(hS)\,x` of :func:`exp_step` for :math:`S = UV^\top - VU^\top`.

    With :math:`S = WJW^\top` as in :func:`low_rank_cayley_step`,
    :math:`\exp(hS) = I + W\varphi(hJW^\top W)\,hJW^\top` with :math:`\varphi(A) = (e^A - I)/A`, and
    :math:`\varphi(A)b` is the last column of the exponential of the ``2 rank + 1`` square matrix
    :math:`\begin{pmatrix}A & b\\ 0 & 0\end{pmatrix}`. For ``rank=1``, Rodrigues' formula
    :math:`\exp(hS) = I + \frac{\sin h\omega}{\omega}S + \frac{1-\cos h\omega}{\omega^2}S^2` (see
    :func:`low_rank_cayley_step` for :math:`\omega`). Arguments and errors as :func:`low_rank_cayley_step`.
    """
    _check_factors(U, V, x)
    return _low_rank_exp_step_unchecked(U, V, x, _check_step(h))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1, keepdim=True)


def _low_rank_parts(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor):
    """:math:`W = [U\\;V]`, :math:`JW^\\top x` and :math:`JW^\\top W` (``J`` swaps the halves and negates the second)."""
    rank = U.shape[-1]
    W = torch.cat([U, V], dim=-1)
    Wx = (x.unsqueeze(-2) @ W).squeeze(-2)
    JWx = torch.cat([Wx[..., rank:], -Wx[..., :rank]], dim=-1)
    G = W.transpose(-1, -2) @ W
    JG = torch.cat([G[..., rank:, :], -G[..., :rank, :]], dim=-2)
    return W, JWx, JG


def _rank_one_step(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, coefficients) -> torch.Tensor:
    r""":math:`x + c_1Sx + c_2S^2x` for :math:`S = uv^\top - vu^\top`, with :math:`(c_1, c_2)` = ``coefficients(w2)``.

    :math:`S` acts on the plane of :math:`u, v` as :math:`\omega` times a rotation by a right angle and vanishes
    on its orthogonal complement, :math:`\omega^2 = \|u\|^2\|v\|^2 - (u\cdot v)^2`, so :math:`S^3 = -\omega^2S`
    and every function of :math:`hS` is :math:`I + c_1S + c_2S^2` (Rodrigues' formula). With
    :math:`Sx = u(v\cdot x) - v(u\cdot x)` and :math:`S^2x = u(v\cdot Sx) - v(u\cdot Sx)` the step is
    :math:`x + \alpha u + \beta v`: five dot products and a few scalar operations per sample.
    """
    u, v = U.squeeze(-1), V.squeeze(-1)  # views whose backward copies nothing (indexing would scatter into zeros)
    uu, vv, uv, ux, vx = _dot(u, u), _dot(v, v), _dot(u, v), _dot(u, x), _dot(v, x)
    c1, c2 = coefficients((uu * vv - uv * uv).clamp_min(0.0))
    alpha = c1 * vx + c2 * (uv * vx - vv * ux)  # the u-coefficient of c1 S x + c2 S^2 x
    beta = -c1 * ux - c2 * (uu * vx - uv * ux)  # and its v-coefficient
    return x + alpha * u + beta * v


def _low_rank_cayley_step_unchecked(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    if U.shape[-1] == 1:
        def cayley(omega2):  # (I - h/2 S)^{-1}(I + h/2 S) = I + h/D S + h^2/(2D) S^2, D = 1 + h^2 w^2 / 4
            denominator = 1.0 + (0.25 * h * h) * omega2
            return h / denominator, (0.5 * h * h) / denominator

        return _rank_one_step(U, V, x, cayley)
    W, JWx, JG = _low_rank_parts(U, V, x)
    eye = torch.eye(JG.shape[-1], dtype=x.dtype, device=x.device)
    coefficients = torch.linalg.solve(eye - (0.5 * h) * JG, JWx.unsqueeze(-1))
    return x + h * (W @ coefficients).squeeze(-1)


def _low_rank_exp_step_unchecked(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    if U.shape[-1] == 1:
        def exponential(omega2):  # sin(hw)/w and (1 - cos(hw))/w^2, through sinc: no branch at w = 0
            omega = omega2.clamp_min(torch.finfo(x.dtype).tiny).sqrt()
            half = torch.sinc((h / (2 * math.pi)) * omega)
            return h * torch.sinc((h / math.pi) * omega), (0.5 * h * h) * half * half

        return _rank_one_step(U, V, x, exponential)
    W, JWx, JG = _low_rank_parts(U, V, x)
    top = torch.cat([h * JG, (h * JWx).unsqueeze(-1)], dim=-1)
    augmented = torch.cat([top, torch.zeros_like(top[..., :1, :])], dim=-2)
    phi_b = torch.linalg.matrix_exp(augmented)[..., :-1, -1:]
    return x + (W @ phi_b).squeeze(-1)


def rotation_step(v: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    r"""Norm-exact step along a tangent velocity: the rotation of :math:`x` towards :math:`v` by angle :math:`h\|v\|/\|x\|`.

    For a sphere-preserving field :math:`\dot x = S(x)x`, take :math:`v = S(x_n)x_n`. The rank-two skew
    matrix :math:`\tilde S = (vx^\top - xv^\top)/\|x\|^2` has :math:`\tilde Sx = v`, and its exponential
    acts in the plane of :math:`x` and :math:`v` only:

    .. math::

        \exp(h\tilde S)\,x = \cos(\omega h)\,x + \frac{\sin(\omega h)}{\omega}\,v,
        \qquad \omega = \|v\|/\|x\| .

    So the step is :func:`exp_step` with the frozen :math:`\tilde S` (first order for
    :math:`\dot x = S(x)x`, norm kept to rounding for every :math:`h`) at the cost of a few vector
    operations: no matrix is formed or factorised. ``v`` is first projected onto the tangent space
    (:math:`v \leftarrow v - x\,(x\cdot v)/\|x\|^2`) so that rounding in :math:`x\cdot v` cannot change the norm.

    Parameters
    ----------
    v : torch.Tensor
        Velocities, shape ``(..., dim)``, tangent to the sphere at ``x``.
    x : torch.Tensor
        States, same shape.
    h : float or scalar tensor
        Step size.

    Raises
    ------
    ValueError
        If ``v`` and ``x`` differ in shape or ``h`` is not positive.
    """
    check_tensor(v, "v", min_ndim=1)
    check_tensor(x, "x", min_ndim=1)
    if v.shape != x.shape:
        raise ValueError(f"v and x must have the same shape, got {tuple(v.shape)} and {tuple(x.shape)}.")
    h = _check_step(h)
    return _rotation_step_unchecked(v, x, h)


def _rotation_step_unchecked(v: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    tiny = torch.finfo(x.dtype).tiny
    norm_x2 = (x * x).sum(-1, keepdim=True).clamp_min(tiny)
    v = v - x * ((x * v).sum(-1, keepdim=True) / norm_x2)
    omega = (v.norm(dim=-1, keepdim=True) / norm_x2.sqrt())
    angle = omega * h
    # sin(omega h) / omega = h * sinc(omega h / pi), well defined at omega = 0.
    return torch.cos(angle) * x + (h * torch.sinc(angle / torch.pi)) * v

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
