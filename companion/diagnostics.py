r"""Model-agnostic checks that return numbers.

Every function takes any callable map (a layer, a network, an integrator step) and returns a float,
so that tests can assert on it with a stated tolerance and notebooks can plot it. Jacobians are
computed per sample with :func:`torch.func.jacrev` and :func:`torch.func.vmap`; use float64 to
measure properties that hold exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ._checks import check_callable, check_even, check_positive, check_positive_int, check_tensor

__all__ = [
    "empirical_order",
    "global_errors",
    "jacobians",
    "jacobian_determinant_error",
    "symplecticity_error",
    "symmetry_error",
    "linear_invariant_drift",
    "norm_drift",
    "lipschitz_lower_bound",
    "jacobian_spectral_norm",
    "canonical_symplectic_matrix",
]

Map = Callable[[torch.Tensor], torch.Tensor]


def empirical_order(step_sizes: Sequence[float], errors: Sequence[float]) -> float:
    r"""Least-squares slope of :math:`\log(\text{error})` against :math:`\log(h)`.

    For a method of order :math:`p`, :math:`\text{error}\approx Ch^p`, so the slope is :math:`p`.

    Parameters
    ----------
    step_sizes : sequence of float
        At least two distinct positive step sizes.
    errors : sequence of float
        The matching positive errors.

    Returns
    -------
    float
        The fitted slope.

    Raises
    ------
    ValueError
        If the lengths differ, fewer than two points are given, or a value is not positive and finite.
    """
    hs = [float(h) for h in step_sizes]
    es = [float(e) for e in errors]
    if len(hs) != len(es):
        raise ValueError(f"step_sizes and errors must have the same length, got {len(hs)} and {len(es)}.")
    if len(hs) < 2:
        raise ValueError("need at least two (step size, error) pairs to fit an order.")
    for name, values in (("step_sizes", hs), ("errors", es)):
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(
                f"{name} must all be finite and > 0 (an error of 0 means rounding dominates), got {values}."
            )
    lx = [math.log(h) for h in hs]
    ly = [math.log(e) for e in es]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    if sxx == 0:
        raise ValueError("step_sizes must not all be equal.")
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx


def global_errors(
    step: Callable[[torch.Tensor, float], torch.Tensor],
    x0: torch.Tensor,
    exact: torch.Tensor,
    *,
    t_end: float,
    n_steps: Sequence[int],
) -> tuple[list[float], list[float]]:
    r"""Global errors :math:`\|x_N - x(t_{end})\|` of a one-step method for several step counts.

    Parameters
    ----------
    step : callable
        ``step(x, h)`` returns the next state, e.g. ``lambda x, h: rk_step(f, x, h, RK4)``.
    x0 : torch.Tensor
        Initial state.
    exact : torch.Tensor
        The exact solution at ``t_end``, same shape as ``x0``.
    t_end : float
        Final time, > 0.
    n_steps : sequence of int
        Step counts :math:`N`; the step size is :math:`t_{end}/N`.

    Returns
    -------
    tuple of list of float
        ``(step_sizes, errors)``, ready for :func:`empirical_order`.

    Raises
    ------
    TypeError, ValueError
        On a step that is not callable, mismatched shapes, a non-positive time or count.
    """
    check_callable(step, "step")
    check_tensor(x0, "x0", min_ndim=1)
    check_tensor(exact, "exact", min_ndim=1)
    if exact.shape != x0.shape:
        raise ValueError(f"exact must have the shape of x0 {tuple(x0.shape)}, got {tuple(exact.shape)}.")
    t_end = check_positive(t_end, "t_end")
    hs, errors = [], []
    with torch.no_grad():
        for n in n_steps:
            check_positive_int(n, "n_steps entries")
            x, h = x0, t_end / n
            for _ in range(n):
                x = step(x, h)
            hs.append(h)
            errors.append(float((x - exact).norm()))
    return hs, errors


def jacobians(f: Map, x: torch.Tensor) -> torch.Tensor:
    r"""Per-sample Jacobians :math:`\partial f(x_i)/\partial x_i`.

    Parameters
    ----------
    f : callable
        Maps ``(batch, dim)`` to ``(batch, out)`` sample by sample (no coupling across the batch).
    x : torch.Tensor
        Points, shape ``(batch, dim)``.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, out, dim)``.

    Raises
    ------
    TypeError, ValueError
        If ``f`` is not callable or ``x`` is not a floating ``(batch, dim)`` tensor.
    """
    check_callable(f, "f")
    check_tensor(x, "x", ndim=2)
    single = lambda z: f(z.unsqueeze(0)).squeeze(0)  # noqa: E731
    return torch.func.vmap(torch.func.jacrev(single))(x)


def jacobian_determinant_error(f: Map, x: torch.Tensor) -> float:
    r""":math:`\max_i |\det J_f(x_i) - 1|`: zero for a volume-preserving map."""
    jac = jacobians(f, x)
    if jac.shape[-1] != jac.shape[-2]:
        raise ValueError(f"f must map R^d to R^d to have a determinant, got Jacobians of shape {tuple(jac.shape[1:])}.")
    return float((torch.linalg.det(jac) - 1.0).abs().max().detach())


def canonical_symplectic_matrix(dim: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""The matrix :math:`\Omega = \begin{pmatrix}0 & I\\ -I & 0\end{pmatrix}` of size ``dim`` (even)."""
    check_even(dim, "dim")
    n = dim // 2
    eye = torch.eye(n, dtype=dtype)
    zero = torch.zeros(n, n, dtype=dtype)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)


def symplecticity_error(f: Map, x: torch.Tensor) -> float:
    r""":math:`\max_i \max|J^\top\Omega J - \Omega|` over the points: zero for a symplectic map of :math:`(q,p)`."""
    jac = jacobians(f, x)
    omega = canonical_symplectic_matrix(x.shape[-1], dtype=x.dtype).to(x.device)
    return float((jac.transpose(-1, -2) @ omega @ jac - omega).abs().max().detach())


def symmetry_error(f: Map, x: torch.Tensor) -> float:
    r""":math:`\max_i\max|J - J^\top|`: zero when :math:`f` is a gradient field."""
    jac = jacobians(f, x)
    return float((jac - jac.transpose(-1, -2)).abs().max().detach())


def linear_invariant_drift(f: Map, x: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    r""":math:`\max_i |w^\top f(x_i) - w^\top x_i|`, with :math:`w = \mathbf 1` (the mass) by default.

    Raises
    ------
    ValueError
        If ``weights`` does not match the state dimension or ``f`` changes the dimension.
    """
    check_callable(f, "f")
    check_tensor(x, "x", ndim=2)
    w = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device) if weights is None else weights
    check_tensor(w, "weights", ndim=1, last_dim=x.shape[-1])
    with torch.no_grad():
        y = f(x)
    if y.shape != x.shape:
        raise ValueError(f"f must keep the shape {tuple(x.shape)} to compare invariants, got {tuple(y.shape)}.")
    return float((y @ w - x @ w).abs().max())


def norm_drift(f: Map, x: torch.Tensor) -> float:
    r""":math:`\max_i \big|\|f(x_i)\| - \|x_i\|\big| / \|x_i\|`: zero for a norm-preserving map."""
    check_callable(f, "f")
    check_tensor(x, "x", ndim=2)
    with torch.no_grad():
        y = f(x)
    if y.shape != x.shape:
        raise ValueError(f"f must keep the shape {tuple(x.shape)} to compare norms, got {tuple(y.shape)}.")
    nx = x.norm(dim=-1)
    return float(((y.norm(dim=-1) - nx).abs() / nx.clamp_min(torch.finfo(x.dtype).tiny)).max())


def lipschitz_lower_bound(f: Map, x: torch.Tensor, *, n_pairs: int = 1000, radius: float = 0.1, seed: int = 0) -> float:
    r"""A lower bound on :math:`\operatorname{Lip}(f)`: the largest ratio :math:`\|f(y)-f(z)\|/\|y-z\|` seen.

    Pairs are drawn as :math:`y = x_i`, :math:`z = x_i + \delta` with :math:`\delta` uniform on the
    sphere of the given radius, and between random points of ``x``.

    Parameters
    ----------
    f : callable
        Any map of ``(batch, dim)`` tensors.
    x : torch.Tensor
        Anchor points, shape ``(batch, dim)``.
    n_pairs : int
        Number of pairs of each kind.
    radius : float
        Size of the local perturbations.
    seed : int
        Seed of the generator drawing the pairs.

    Raises
    ------
    TypeError, ValueError
        On a bad map, points, count or radius.
    """
    check_callable(f, "f")
    check_tensor(x, "x", ndim=2)
    check_positive_int(n_pairs, "n_pairs")
    check_positive(radius, "radius")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    idx = torch.randint(len(x), (n_pairs,), generator=gen)
    jdx = torch.randint(len(x), (n_pairs,), generator=gen)
    delta = torch.randn(n_pairs, x.shape[1], generator=gen, dtype=x.dtype).to(x.device)
    delta = radius * delta / delta.norm(dim=-1, keepdim=True)
    y = torch.cat([x[idx], x[idx]])
    z = torch.cat([x[idx] + delta, x[jdx]])
    with torch.no_grad():
        num = (f(y) - f(z)).flatten(1).norm(dim=-1)
    den = (y - z).flatten(1).norm(dim=-1)
    keep = den > 0
    return float((num[keep] / den[keep]).max())


def jacobian_spectral_norm(f: Map, x: torch.Tensor) -> float:
    r""":math:`\max_i\|J_f(x_i)\|_2`, the largest local Lipschitz constant at the given points."""
    return float(torch.linalg.matrix_norm(jacobians(f, x), ord=2).max().detach())
