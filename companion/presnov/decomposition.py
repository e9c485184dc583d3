r"""The Presnov decomposition of a vector field into a gradient and a sphere-preserving part.

Every :math:`C^1` vector field :math:`F` on :math:`\mathbb R^n` splits uniquely as

.. math:: F(x) = \nabla V(x) + X_S(x), \qquad x\cdot X_S(x) = 0, \qquad V(0) = 0,

and the potential has the closed form :math:`V(x) = \int_0^1 x\cdot F(sx)\,ds`. The gradient part
comes from automatic differentiation; the sphere-preserving part is the rest. This module computes
both parts for any field given as a callable, writes the sphere part as :math:`S(x)x` with
:math:`S` skew, and composes the flows of the two parts (Lie--Trotter and Strang splitting), the
numerical core of the universal-approximation argument.

References
----------
A. Presnov, *Non-local decomposition of vector fields*, Chaos Solitons Fractals 14 (2002), 759--764.

E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023), A3071--A3094.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch

from .._checks import check_callable, check_choice, check_positive, check_positive_int, check_tensor
from ..integrators import RK4, ButcherTableau, _rk_step_unchecked, get_tableau, integrate

__all__ = [
    "gauss_legendre",
    "potential",
    "decompose",
    "presnov_parts",
    "skew_matrix",
    "splitting_flow",
    "splitting_errors",
    "SPLITTING_SCHEMES",
]

Field = Callable[[torch.Tensor], torch.Tensor]

#: Splitting schemes for two flows, with their order: Lie--Trotter (1) and Strang (2).
SPLITTING_SCHEMES: dict[str, int] = {"lie_trotter": 1, "strang": 2}


def gauss_legendre(nodes: int, *, dtype: torch.dtype = torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gauss--Legendre nodes and weights on :math:`[0, 1]`.

    The rule :math:`\sum_k w_k g(s_k)` integrates polynomials of degree :math:`\le 2\,\text{nodes}-1`
    exactly, and smooth :math:`g` with an error that decays exponentially in ``nodes``.

    Returns
    -------
    tuple of torch.Tensor
        ``(s, w)``, each of shape ``(nodes,)``; ``w`` sums to one.

    Raises
    ------
    TypeError, ValueError
        If ``nodes`` is not an int >= 1.
    """
    check_positive_int(nodes, "nodes")
    s, w = _gauss_legendre_table(nodes)
    return torch.tensor(s, dtype=dtype, device=device), torch.tensor(w, dtype=dtype, device=device)


@lru_cache(maxsize=64)
def _gauss_legendre_table(nodes: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    t, w = np.polynomial.legendre.leggauss(nodes)
    return tuple(((t + 1.0) / 2.0).tolist()), tuple((w / 2.0).tolist())


def _check_field_input(field: Field, x: torch.Tensor, nodes: int) -> None:
    check_callable(field, "field")
    check_tensor(x, "x", ndim=2)
    check_positive_int(nodes, "nodes")


def _potential(field: Field, x: torch.Tensor, nodes: int) -> torch.Tensor:
    s, w = gauss_legendre(nodes, dtype=x.dtype, device=x.device)
    points = (s[:, None, None] * x.unsqueeze(0)).reshape(-1, x.shape[-1])
    values = field(points)
    if not isinstance(values, torch.Tensor) or values.shape != points.shape:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(
            f"field must map (batch, dim) tensors to (batch, dim) tensors, got {got} for input {tuple(points.shape)}."
        )
    values = values.reshape(nodes, *x.shape)
    return torch.einsum("k,kbd,bd->b", w, values, x)


def potential(field: Field, x: torch.Tensor, *, nodes: int = 16) -> torch.Tensor:
    r"""The Presnov potential :math:`V(x) = \int_0^1 x\cdot F(sx)\,ds` by Gauss--Legendre quadrature.

    Parameters
    ----------
    field : callable
        The vector field :math:`F`, mapping ``(batch, dim)`` to ``(batch, dim)`` sample by sample.
    x : torch.Tensor
        Points, shape ``(batch, dim)``, floating point.
    nodes : int
        Number of quadrature nodes.

    Returns
    -------
    torch.Tensor
        Shape ``(batch,)``; :math:`V(0) = 0` exactly.

    Raises
    ------
    TypeError, ValueError
        If ``field`` is not callable, ``x`` is not a floating ``(batch, dim)`` tensor, ``nodes`` is not
        an int >= 1, or ``field`` changes the shape.
    """
    _check_field_input(field, x, nodes)
    return _potential(field, x, nodes)


#: Points used by the differentiability check of :func:`decompose`, and its tolerance on the median relative
#: gap between autograd's and a central finite difference's directional derivative, by dtype.
_CHECK_POINTS = 8
_CHECK_TOLERANCE = {torch.float64: 1e-6}
_DEFAULT_CHECK_TOLERANCE = 1e-2


def _autograd_directional_derivative(field: Field, points: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """:math:`J_F(x)e` per point by autograd (the vector-Jacobian product differentiated once more)."""
    zeros = torch.zeros_like(points)
    with torch.enable_grad():
        point = points.clone().requires_grad_(True)
        values = field(point)
        if not values.requires_grad:
            return zeros
        weights = torch.zeros_like(values, requires_grad=True)
        (vjp,) = torch.autograd.grad((values * weights).sum(), point, create_graph=True, allow_unused=True)
        if vjp is None or not vjp.requires_grad:
            return zeros
        (jvp,) = torch.autograd.grad((vjp * direction).sum(), weights, allow_unused=True)
    return zeros if jvp is None else jvp.detach()


def _check_differentiable(field: Field, x: torch.Tensor) -> None:
    r"""Refuse a field whose autograd derivative is not its derivative (computed through NumPy, ``.detach()``...).

    The gradient part of the decomposition is :math:`\nabla V` by autograd, so a field that autograd cannot
    differentiate gives a wrong split without any error. On up to ``_CHECK_POINTS`` points, compare
    :math:`J_F(x)e` by autograd with a central difference of :math:`F` along a fixed pseudo-random unit
    direction :math:`e`; the median relative gap must be below the tolerance (rounding and truncation for a
    differentiable field, of order one for a field whose derivative autograd misses). A field whose second
    derivative autograd cannot form (a custom function without double backward) is not checked.
    """
    points = x[:_CHECK_POINTS].detach()
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(points.shape, generator=generator, dtype=torch.float64)
    direction = (direction / direction.norm(dim=-1, keepdim=True)).to(dtype=points.dtype, device=points.device)
    with torch.no_grad():
        if not isinstance(field(points), torch.Tensor) or field(points).shape != points.shape:
            return  # the shape check of the quadrature reports this
    try:
        autograd_derivative = _autograd_directional_derivative(field, points, direction)
    except RuntimeError:
        return
    eps = torch.finfo(points.dtype).eps
    step = eps ** (1 / 3) * points.abs().amax(-1, keepdim=True).clamp_min(1.0).sqrt()
    with torch.no_grad():
        finite_difference = (field(points + step * direction) - field(points - step * direction)) / (2 * step)
        size = finite_difference.norm(dim=-1) + autograd_derivative.norm(dim=-1) + eps
        gap = float(((autograd_derivative - finite_difference).norm(dim=-1) / size).median())
    tolerance = _CHECK_TOLERANCE.get(points.dtype, _DEFAULT_CHECK_TOLERANCE)
    if not gap <= tolerance:
        raise ValueError(
            "field is not differentiable by autograd: its autograd derivative disagrees with finite differences "
            f"(median relative gap {gap:.2g} > {tolerance:g} at {len(points)} points), so the gradient part would be "
            "wrong. Write the field with torch operations (no NumPy, .detach(), .item() or tensors rebuilt from values)."
        )


def decompose(
    field: Field, x: torch.Tensor, *, nodes: int = 16, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The Presnov decomposition :math:`F(x) = \nabla V(x) + X_S(x)` at the points ``x``.

    .. math:: V(x) = \int_0^1 x\cdot F(sx)\,ds \approx \sum_{k} w_k\, x\cdot F(s_k x), \qquad
              X_S(x) = F(x) - \nabla V(x).

    Since :math:`\tfrac{d}{d\lambda}V(\lambda x)|_{\lambda=1} = x\cdot F(x)`, we have
    :math:`x\cdot\nabla V(x) = x\cdot F(x)`, hence :math:`x\cdot X_S(x) = 0`: the sphere part is
    tangent to the spheres :math:`\|x\| = \text{const}` and its flow keeps the norm. The
    decomposition with :math:`V(0)=0` is unique.

    Parameters
    ----------
    field : callable
        The :math:`C^1` vector field :math:`F`, mapping ``(batch, dim)`` to ``(batch, dim)`` sample by
        sample and differentiable by autograd (a torch function or ``nn.Module``).
    x : torch.Tensor
        Points, shape ``(batch, dim)``, float32 or float64, any ``dim >= 1``.
    nodes : int
        Gauss--Legendre nodes of the radial integral (exact for polynomial fields of degree
        ``<= 2*nodes - 1``; exponentially convergent for analytic fields).
    create_graph : bool
        Keep the autograd graph (to differentiate the parts further, e.g. in a loss). By default the
        returned tensors are detached.

    Returns
    -------
    tuple of torch.Tensor
        ``(V, gradient_part, sphere_part)`` of shapes ``(batch,)``, ``(batch, dim)``, ``(batch, dim)``.
        :math:`x\cdot X_S(x) = 0` holds up to the quadrature error and rounding.

    Raises
    ------
    TypeError, ValueError
        If ``field`` is not callable, ``x`` is not a floating ``(batch, dim)`` tensor, ``nodes`` is not
        an int >= 1, ``field`` does not keep the shape, or autograd cannot differentiate ``field`` (e.g. it is
        computed through NumPy): on a few of the points its autograd directional derivative is compared with
        a finite difference, and a disagreement is an error instead of a wrong split.

    References
    ----------
    A. Presnov, Chaos Solitons Fractals 14 (2002), 759--764.

    Examples
    --------
    >>> import torch
    >>> # a sphere-preserving part plus the gradient of |x|^2 / 2
    >>> rotation = lambda x: torch.stack([-x[:, 1], x[:, 0]], -1) + x
    >>> V, grad, sphere = decompose(rotation, torch.randn(5, 2, dtype=torch.float64))
    """
    _check_field_input(field, x, nodes)
    _check_differentiable(field, x)
    return _decompose(field, x, nodes, create_graph)


def _decompose(
    field: Field, x: torch.Tensor, nodes: int, create_graph: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        point = x if x.requires_grad else x.detach().requires_grad_(True)
        values = _potential(field, point, nodes)
        (gradient,) = torch.autograd.grad(values.sum(), point, create_graph=create_graph)
        sphere = field(point) - gradient
    if not create_graph:
        return values.detach(), gradient.detach(), sphere.detach()
    return values, gradient, sphere


def presnov_parts(field: Field, *, nodes: int = 16) -> tuple[Field, Field]:
    r"""The two Presnov parts of ``field`` as vector fields: ``(gradient_part, sphere_part)``.

    Each callable maps ``(batch, dim)`` to ``(batch, dim)`` and calls :func:`decompose` (its check that
    autograd differentiates ``field`` runs on the first call); use them to integrate the flows of
    :math:`\nabla V` and :math:`X_S` separately (see :func:`splitting_flow`).

    Raises
    ------
    TypeError, ValueError
        If ``field`` is not callable or ``nodes`` is not an int >= 1.
    """
    check_callable(field, "field")
    check_positive_int(nodes, "nodes")
    checked = []  # the differentiability check of decompose runs on the first call only

    def parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if checked:
            _check_field_input(field, x, nodes)
            return _decompose(field, x, nodes, False)
        values = decompose(field, x, nodes=nodes)
        checked.append(True)
        return values

    def gradient_part(x: torch.Tensor) -> torch.Tensor:
        return parts(x)[1]

    def sphere_part(x: torch.Tensor) -> torch.Tensor:
        return parts(x)[2]

    return gradient_part, sphere_part


def skew_matrix(x: torch.Tensor, sphere_part: torch.Tensor) -> torch.Tensor:
    r"""A skew matrix :math:`S(x)` with :math:`S(x)\,x = X_S(x)`: :math:`S = (X_S x^\top - x X_S^\top)/\|x\|^2`.

    If :math:`x\cdot X_S = 0` then :math:`Sx = X_S`. At :math:`x = 0` the zero matrix is returned.

    Parameters
    ----------
    x, sphere_part : torch.Tensor
        Shape ``(batch, dim)`` each.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, dim, dim)``, exactly skew-symmetric.

    Raises
    ------
    TypeError, ValueError
        If the inputs are not floating ``(batch, dim)`` tensors of the same shape.
    """
    check_tensor(x, "x", ndim=2)
    check_tensor(sphere_part, "sphere_part", ndim=2, last_dim=x.shape[-1])
    if sphere_part.shape != x.shape:
        raise ValueError(
            f"x and sphere_part must have the same shape, got {tuple(x.shape)} and {tuple(sphere_part.shape)}."
        )
    outer = sphere_part.unsqueeze(-1) * x.unsqueeze(-2)
    norm2 = (x * x).sum(-1)
    scale = torch.where(norm2 > 0, 1.0 / norm2.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(norm2))
    return (outer - outer.transpose(-1, -2)) * scale[:, None, None]


def _sub_flow(f: Field, x: torch.Tensor, h: float, substeps: int, tableau: ButcherTableau) -> torch.Tensor:
    for _ in range(substeps):
        x = _rk_step_unchecked(f, x, h / substeps, tableau)
    return x


def splitting_flow(
    first: Field,
    second: Field,
    x: torch.Tensor,
    *,
    t: float,
    n_steps: int,
    scheme: str = "lie_trotter",
    substeps: int = 2,
    tableau: ButcherTableau | str = RK4,
) -> torch.Tensor:
    r"""Approximate the time-:math:`t` flow of ``first + second`` by composing the flows of the parts.

    With :math:`h = t/\text{n\_steps}`, one step is

    * Lie--Trotter: :math:`\varphi^h_{\text{second}}\circ\varphi^h_{\text{first}}` (global error :math:`O(h)`),
    * Strang: :math:`\varphi^{h/2}_{\text{first}}\circ\varphi^h_{\text{second}}\circ\varphi^{h/2}_{\text{first}}`
      (global error :math:`O(h^2)`).

    Each partial flow :math:`\varphi^h` is approximated by ``substeps`` steps of the Runge--Kutta
    ``tableau`` (default RK4), accurate enough that the splitting error dominates.

    Parameters
    ----------
    first, second : callable
        The two vector fields, each mapping ``(batch, dim)`` to ``(batch, dim)``.
    x : torch.Tensor
        Initial points, shape ``(batch, dim)``.
    t : float
        Final time, > 0.
    n_steps : int
        Number of splitting steps.
    scheme : {"lie_trotter", "strang"}
        The composition.
    substeps : int
        Runge--Kutta steps per partial flow.
    tableau : ButcherTableau
        Integrator of the partial flows.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, dim)``.

    Raises
    ------
    TypeError, ValueError
        On non-callable fields, a bad ``x``, non-positive ``t``/``n_steps``/``substeps``, an unknown
        scheme or a ``tableau`` that is not a ButcherTableau.
    """
    check_callable(first, "first")
    check_callable(second, "second")
    check_tensor(x, "x", ndim=2)
    t = check_positive(t, "t")
    check_positive_int(n_steps, "n_steps")
    check_positive_int(substeps, "substeps")
    check_choice(scheme, "scheme", SPLITTING_SCHEMES)
    tableau = get_tableau(tableau)
    h = t / n_steps
    for _ in range(n_steps):
        if scheme == "lie_trotter":
            x = _sub_flow(first, x, h, substeps, tableau)
            x = _sub_flow(second, x, h, substeps, tableau)
        else:
            x = _sub_flow(first, x, h / 2, substeps, tableau)
            x = _sub_flow(second, x, h, 2 * substeps, tableau)
            x = _sub_flow(first, x, h / 2, substeps, tableau)
    return x


def splitting_errors(
    field: Field,
    x: torch.Tensor,
    *,
    t: float = 1.0,
    n_steps: Sequence[int] = (4, 8, 16, 32, 64),
    schemes: Sequence[str] = ("lie_trotter", "strang"),
    nodes: int = 16,
    substeps: int = 2,
    reference_steps: int = 1000,
) -> tuple[list[float], dict[str, list[float]]]:
    r"""Error of splitting ``field`` into its Presnov parts, against its own flow, for several step sizes.

    The reference :math:`\varphi^t_F(x)` is RK4 with ``reference_steps`` steps; each scheme composes
    the flows of :math:`\nabla V` and :math:`X_S` (:func:`presnov_parts`, :func:`splitting_flow`). The
    error is :math:`\max_i\|\cdot\|_2` over the points. Feed the result to
    :func:`companion.diagnostics.empirical_order` to measure the orders (1 for Lie--Trotter, 2 for Strang).

    Returns
    -------
    tuple
        ``(step_sizes, errors)`` with ``errors[scheme]`` one float per entry of ``n_steps``.

    Raises
    ------
    TypeError, ValueError
        As :func:`splitting_flow`, and on an empty ``n_steps``.
    """
    check_callable(field, "field")
    check_tensor(x, "x", ndim=2)
    t = check_positive(t, "t")
    check_positive_int(reference_steps, "reference_steps")
    n_steps = [check_positive_int(n, "n_steps") for n in n_steps]
    if not n_steps:
        raise ValueError("n_steps must hold at least one number of steps.")
    for scheme in schemes:
        check_choice(scheme, "scheme", SPLITTING_SCHEMES)
    gradient_part, sphere_part = presnov_parts(field, nodes=nodes)
    with torch.no_grad():
        reference = integrate(field, x, h=t / reference_steps, n_steps=reference_steps, tableau=RK4)[-1]
    errors: dict[str, list[float]] = {scheme: [] for scheme in schemes}
    for scheme in schemes:
        for n in n_steps:
            y = splitting_flow(gradient_part, sphere_part, x, t=t, n_steps=n, scheme=scheme, substeps=substeps)
            errors[scheme].append(float((y - reference).norm(dim=-1).max()))
    return [t / n for n in n_steps], errors
