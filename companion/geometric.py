r"""Geometric one-step integrators: symplectic steps for separable Hamiltonians and norm-exact steps.

The symplectic Euler and Störmer--Verlet steps keep symplecticity (and so volume) for separable Hamiltonians
:math:`H(q,p)=T(p)+U(q)`; the Cayley, exponential, low-rank and plane-rotation steps of
:math:`\dot x = S(x)x` with :math:`S^\top=-S` keep the Euclidean norm exactly. The method objects
(``SYMPLECTIC_EULER``, ``CAYLEY``, ...) and their registry live in :mod:`companion.integrators`; the step
functions are here and are re-exported at the top level of ``companion``.

References
----------
E. Hairer, C. Lubich, G. Wanner, *Geometric Numerical Integration*, 2nd ed., Springer (2006).
"""

from __future__ import annotations

import torch

from ._checks import check_callable, check_positive_int, check_tensor
from .integrators import SYMPLECTIC_EULER, Field, GeometricMethod, Step, _check_step, require_method

__all__ = [
    "integrate_separable",
    "symplectic_euler_step",
    "stormer_verlet_step",
    "cayley_step",
    "exp_step",
    "rotation_step",
    "low_rank_cayley_step",
    "low_rank_exp_step",
]


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
        Step size, non-zero and finite; a negative step integrates backward in time.

    Returns
    -------
    tuple of torch.Tensor
        ``(q_next, p_next)``.

    Raises
    ------
    TypeError, ValueError
        If the gradients are not callable, ``q``/``p`` differ in shape or ``h`` is zero or not finite.
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
    h: Step,
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
    h : float or scalar tensor
        Step size, non-zero and finite (negative: backward in time).
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
    h = _check_step(h)
    step = symplectic_euler_step if method.key == SYMPLECTIC_EULER.key else stormer_verlet_step  # by key, as copied
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
        raise ValueError(
            f"S must have shape (..., {d}, {d}) to act on x of shape {tuple(x.shape)}, got {tuple(S.shape)}."
        )
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
        Step size, non-zero and finite; a negative step is the inverse map (a step backward in time).

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

    The map is the same orthogonal Cayley transform, at a cost of :math:`O(\text{dim}\cdot\text{rank}^2 +
    \text{rank}^3)` per sample instead of :math:`O(\text{dim}^3)`. :math:`S` is skew by construction: nothing is
    checked on values.

    **Guarantee.** :math:`\|x_{n+1}\| = \|x_n\|` to a few units of rounding for every finite ``U``, ``V`` and ``h``
    (near-parallel, parallel or zero factors, huge steps, float32 included). The formula above does not give that
    in floating point (its Gram matrix :math:`W^\top W` is ill-conditioned for near-parallel factors, and a large
    :math:`h` amplifies the error), so the step is computed in an orthonormal basis :math:`Q` of the columns of
    :math:`W` (Gram--Schmidt twice, a column within rounding of the span of the earlier ones dropped), where
    :math:`S = QKQ^\top` with :math:`K` skew exactly, and the small orthogonal matrix is re-orthogonalised (QR).
    For ``rank=1`` no system is solved: :math:`S = \omega(e_1e_2^\top - e_2e_1^\top)` with :math:`e_1, e_2`
    orthonormal and :math:`\omega = \|u\|\,\|v - (e_1\cdot v)e_1\|` (not the cancelling
    :math:`\|u\|^2\|v\|^2 - (u\cdot v)^2`), and the step turns :math:`x`'s component in the plane of :math:`e_1,
    e_2` by the angle :math:`\theta = 2\arctan(h\omega/2)`, from its half-angle sine and cosine (nothing overflows).
    The gradient is exact also where the factors degenerate to :math:`S = 0` (a zero factor, :math:`U = V`).

    Parameters
    ----------
    U, V : torch.Tensor
        Factors, shape ``(..., dim, rank)`` each.
    x : torch.Tensor
        States, shape ``(..., dim)``.
    h : float or scalar tensor
        Step size, non-zero and finite; a negative step is the inverse map (a step backward in time).

    Raises
    ------
    TypeError, ValueError
        If the factors do not match ``x`` in shape, are not floating point, or ``h`` is not a non-zero finite step.
    """
    _check_factors(U, V, x)
    return _low_rank_cayley_step_unchecked(U, V, x, _check_step(h))


def low_rank_exp_step(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    r"""The step :math:`x\mapsto\exp(hS)\,x` of :func:`exp_step` for :math:`S = UV^\top - VU^\top`.

    With :math:`S = WJW^\top` as in :func:`low_rank_cayley_step`,
    :math:`\exp(hS) = I + W\varphi(hJW^\top W)\,hJW^\top` with :math:`\varphi(A) = (e^A - I)/A`, and
    :math:`\varphi(A)b` is the last column of the exponential of the ``2 rank + 1`` square matrix
    :math:`\begin{pmatrix}A & b\\ 0 & 0\end{pmatrix}`. For ``rank=1``, Rodrigues' formula
    :math:`\exp(hS) = I + \frac{\sin h\omega}{\omega}S + \frac{1-\cos h\omega}{\omega^2}S^2`. The guarantee
    and its computation are those of :func:`low_rank_cayley_step` (for ``rank=1`` the angle is :math:`h\omega`,
    its half-angle sine and cosine taken directly, so a huge :math:`h\omega` still gives a rotation; for larger
    ranks the matrix exponential of :math:`hK`). Arguments and errors as :func:`low_rank_cayley_step`.
    """
    _check_factors(U, V, x)
    return _low_rank_exp_step_unchecked(U, V, x, _check_step(h))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1, keepdim=True)


def _scaled(w: torch.Tensor, dims: tuple[int, ...] = (-1,)) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w / m, m)``, ``m`` the largest ``|w|`` over ``dims`` (1 where ``w`` is 0): norms of ``w / m`` neither
    overflow nor underflow. ``m`` is held constant for the gradient: every use below is homogeneous in it."""
    largest = w.detach().abs().amax(dim=dims, keepdim=True)
    scale = torch.where(largest > 0, largest, 1.0)
    return w / scale, scale


def _norm(w: torch.Tensor) -> torch.Tensor:
    """The Euclidean norm over the last dimension (kept), with gradient 0 rather than NaN at ``w = 0``."""
    square = _dot(w, w)
    positive = square > 0
    return torch.where(positive, torch.where(positive, square, 1.0).sqrt(), 0.0)


def _reciprocal(norm: torch.Tensor) -> torch.Tensor:
    """``1 / norm``, and 0 where ``norm`` is 0."""
    positive = norm > 0
    return torch.where(positive, 1.0 / torch.where(positive, norm, 1.0), 0.0)


def _remainder(w: torch.Tensor, basis: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The part of ``w`` (largest entry 1, or 0) orthogonal to the orthonormal (or 0) ``basis``: ``(r, |r|, m)``,
    the remainder being ``m r``.

    Gram--Schmidt twice ("twice is enough"), scaling by the largest entry in between. When the second projection
    removes more than half of what the first left, ``w`` lies in the span of the basis to rounding (the remainder
    is rounding error, of any direction): then ``|r|`` is 0, and the remainder is dropped, a perturbation of
    ``w`` by a few units of rounding. So ``r / |r|`` is orthogonal to the basis to rounding, for every input.
    """
    scale = torch.ones_like(w[..., :1])
    first = None
    for repeat in range(2 if basis else 0):
        for q in basis:
            w = torch.addcmul(w, q, _dot(q, w), value=-1.0)
        if repeat == 0:
            w, scale = _scaled(w)
            first = _dot(w, w)
    size = _dot(w, w)
    kept = size > (0.25 * first if first is not None else 0.0)
    return w, torch.where(kept, torch.where(kept, size, 1.0).sqrt(), 0.0), scale


def _orthonormal(columns: list[torch.Tensor]) -> list[torch.Tensor]:
    """Orthonormal (or 0) vectors spanning the columns (largest entry 1, or 0) in turn, by :func:`_remainder`."""
    basis: list[torch.Tensor] = []
    for w in columns:
        remainder, norm, _ = _remainder(w, basis)
        basis.append(remainder * _reciprocal(norm))
    return basis


def _exp_half_angle(half: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`\\sin` and :math:`\\cos` of half the angle :math:`h\\omega` of the exponential step."""
    return torch.sin(half), torch.cos(half)


def _cayley_half_angle(half: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same for the Cayley step, whose angle :math:`\\theta` has :math:`\\tan(\\theta/2) = h\\omega/2` (no overflow)."""
    radius = torch.hypot(torch.ones_like(half), half)
    return half / radius, 1.0 / radius


def _rank_one_step(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step, half_angle) -> torch.Tensor:
    r"""The rotation by :math:`\theta` of :math:`x` in the plane of :math:`u, v` (``half_angle`` gives the half angle).

    With :math:`e_1 = u/\|u\|` and :math:`w = v - (e_1\cdot v)e_1` (:func:`_remainder`, of the scaled factors),
    :math:`S = uv^\top - vu^\top = uw^\top - wu^\top = \omega(e_1e_2^\top - e_2e_1^\top)` with :math:`e_2 = w/\|w\|`
    and :math:`\omega = \|u\|\,\|w\|`: no cancelling :math:`\|u\|^2\|v\|^2 - (u\cdot v)^2`. Every function of
    :math:`hS` keeping the norm rotates the plane by an angle :math:`\theta(h\omega)`, and the step is
    :math:`x + (\cos\theta - 1)(ae_1 + be_2) + \frac{\sin\theta}{\omega}\big(u(w\cdot x) - w(u\cdot x)\big)`,
    :math:`a, b` the coordinates of :math:`x`: no term cancels, so it is orthogonal to rounding for every finite
    :math:`u, v, h` (half angles from a sine and a cosine or a ``hypot``: nothing overflows). A :math:`w` within
    rounding of 0 (parallel factors) is dropped but keeps its gradient, so the gradient is exact also where
    :math:`S = 0`.
    """
    u, u_scale = _scaled(U.squeeze(-1))  # squeeze: views whose backward copies nothing
    v, v_scale = _scaled(V.squeeze(-1))
    u_norm = _norm(u)
    e1 = u * _reciprocal(u_norm)
    w, w_norm, w_scale = _remainder(v, [e1])  # the remainder is w_scale * w
    w = torch.where(w_norm > 0, w, w - w.detach())
    e2 = w * _reciprocal(w_norm)
    kappa = u_norm * (w_scale * w_norm)  # omega / (u_scale v_scale)
    half = torch.nan_to_num((0.5 * h * kappa) * u_scale * v_scale, nan=0.0)  # an overflow becomes the largest float
    sin_half, cos_half = half_angle(half)
    sin, cos_minus_one = 2.0 * sin_half * cos_half, -2.0 * sin_half * sin_half
    a, b = _dot(e1, x), _dot(e2, x)
    nonzero = (
        kappa > 0
    )  # (sin(theta) / omega) u_scale v_scale w_scale, at omega = 0 its limit h u_scale v_scale w_scale
    ratio = torch.where(nonzero, sin / torch.where(nonzero, kappa, 1.0), h * u_scale * v_scale) * w_scale
    turned = torch.nan_to_num(ratio, 0.0, 0.0, 0.0) * (u * _dot(w, x) - w * _dot(u, x))
    return torch.addcmul(torch.addcmul(x + turned, cos_minus_one * a, e1), cos_minus_one * b, e2)


def _orthogonalized(M: torch.Tensor) -> torch.Tensor:
    """The orthogonal factor of the QR factorisation of ``M`` (signs making ``R``'s diagonal positive).

    For an ``M`` orthogonal up to ``delta`` it differs from ``M`` by ``O(delta)`` and is orthogonal to rounding
    whatever ``delta`` (Householder QR), also where a solve broke down: a NaN or an infinity counts as 0, and ``M``
    is scaled by its largest entry (the same factor ``Q``, no overflow).
    """
    Q, R = torch.linalg.qr(_scaled(torch.nan_to_num(M, 0.0, 0.0, 0.0), (-2, -1))[0])
    signs = torch.where(R.diagonal(dim1=-2, dim2=-1) < 0, -1.0, 1.0)
    return Q * signs.unsqueeze(-2)


def _cayley_matrix(A: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    return torch.linalg.solve_ex(eye - 0.5 * A, eye + 0.5 * A)[0]


def _low_rank_step(
    U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step, small_map, largest: float
) -> torch.Tensor:
    r""":math:`x + Q^\top(M - I)Qx` with orthonormal rows :math:`Q`, :math:`S = Q^\top KQ`, :math:`M` = ``small_map`` (:math:`hK`).

    :math:`Q` (``2 rank`` x ``dim``) comes from :func:`_orthonormal` of the columns of :math:`[U\;V]` (each
    scaled by its largest entry), :math:`K = AB^\top - BA^\top` with :math:`A = QU`, :math:`B = QV` is skew
    exactly, and the small orthogonal :math:`M` is made orthogonal to rounding by :func:`_orthogonalized` (a solve
    or a matrix exponential of a large :math:`hK` loses orthogonality in proportion to its norm). So the step keeps
    the norm to rounding for every finite factor and step, and is :math:`\exp(hS)x` or the Cayley step to the
    accuracy of ``small_map``. The entries of :math:`hK` are kept below ``largest`` by scaling :math:`h` down (an
    overflow included), where the rounding of :math:`hS` alone already makes the angles uncertain by radians
    (exponential) or the map :math:`-I` on the range of :math:`S` to rounding (Cayley).
    """
    rank = U.shape[-1]
    U, U_scale = _scaled(U, (-2, -1))
    V, V_scale = _scaled(V, (-2, -1))
    W = torch.cat([U, V], dim=-1)
    Q = torch.stack(_orthonormal([_scaled(column)[0] for column in W.unbind(-1)]), dim=-2)
    coefficients = Q @ W  # the coordinates of U and V
    P = coefficients[..., :rank] @ coefficients[..., rank:].transpose(-1, -2)
    K = P - P.transpose(-1, -2)
    scale = torch.nan_to_num((h * U_scale) * V_scale)  # an overflow becomes the largest float
    bound = largest / K.detach().abs().amax(dim=(-2, -1), keepdim=True)  # infinite where K = 0
    M = _orthogonalized(small_map(torch.minimum(torch.maximum(scale, -bound), bound) * K))
    coordinates = Q @ x.unsqueeze(-1)
    step = x + ((M @ coordinates - coordinates).transpose(-1, -2) @ Q).squeeze(-2)
    if not torch.is_grad_enabled():
        return step
    # Where the factors degenerate to S = 0 (a zero factor, U = V) the basis cannot carry the gradient: there the
    # step's derivative is that of hSx, so the basis's own hSx is swapped for the direct U(V^T x) - V(U^T x).
    products = x.unsqueeze(-2) @ W
    direct = (W @ torch.cat([products[..., rank:], -products[..., :rank]], dim=-1).transpose(-1, -2)).squeeze(-1)
    basis = ((K @ coordinates).transpose(-1, -2) @ Q).squeeze(-2)
    gap = ((h * U_scale.squeeze(-1)) * V_scale.squeeze(-1)) * (direct - basis)
    return step + torch.nan_to_num(gap - gap.detach(), 0.0, 0.0, 0.0)


def _low_rank_cayley_step_unchecked(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    if U.shape[-1] == 1:
        return _rank_one_step(U, V, x, h, _cayley_half_angle)
    return _low_rank_step(U, V, x, h, _cayley_matrix, torch.finfo(x.dtype).eps ** -2)


def _low_rank_exp_step_unchecked(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    if U.shape[-1] == 1:
        return _rank_one_step(U, V, x, h, _exp_half_angle)
    return _low_rank_step(U, V, x, h, torch.linalg.matrix_exp, 1 / (64 * torch.finfo(x.dtype).eps))


def rotation_step(v: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    r"""Norm-exact step along a tangent velocity: the rotation of :math:`x` towards :math:`v` by angle :math:`h\|v\|/\|x\|`.

    For a sphere-preserving field :math:`\dot x = S(x)x`, take :math:`v = S(x_n)x_n`. The rank-two skew
    matrix :math:`\tilde S = (vx^\top - xv^\top)/\|x\|^2` has :math:`\tilde Sx = v`, and its exponential
    acts in the plane of :math:`x` and :math:`v` only:

    .. math::

        \exp(h\tilde S)\,x = \cos(\omega h)\,x + \frac{\sin(\omega h)}{\omega}\,v,
        \qquad \omega = \|v\|/\|x\| .

    So the step is :func:`exp_step` with the frozen :math:`\tilde S` (first order for
    :math:`\dot x = S(x)x`) at the cost of a few vector operations: no matrix is formed or factorised.

    **Guarantee.** :math:`\|x_{n+1}\| = \|x_n\|` to a few units of rounding for every finite ``v``, ``x`` and
    ``h``. ``v`` is projected onto the tangent space twice (rounding in :math:`x\cdot v` cannot change the norm;
    a ``v`` radial to rounding has no tangent part), the step is computed as
    :math:`\cos\theta\,x + \sin\theta\,\|x\|\,v/\|v\|` with the sine and cosine of the same angle
    :math:`\theta = h\omega` (taken from the half angle, however large), and norms are taken of vectors scaled by
    their largest entry (no overflow or underflow).

    Parameters
    ----------
    v : torch.Tensor
        Velocities, shape ``(..., dim)``, tangent to the sphere at ``x``.
    x : torch.Tensor
        States, same shape.
    h : float or scalar tensor
        Step size, non-zero and finite; a negative step rotates the other way (backward in time).

    Raises
    ------
    ValueError
        If ``v`` and ``x`` differ in shape or ``h`` is not a non-zero finite step.
    """
    check_tensor(v, "v", min_ndim=1)
    check_tensor(x, "x", min_ndim=1)
    if v.shape != x.shape:
        raise ValueError(f"v and x must have the same shape, got {tuple(v.shape)} and {tuple(x.shape)}.")
    h = _check_step(h)
    return _rotation_step_unchecked(v, x, h)


def _rotation_step_unchecked(v: torch.Tensor, x: torch.Tensor, h: Step) -> torch.Tensor:
    x_unit, x_scale = _scaled(x)
    x_norm = _norm(x_unit)  # |x| = x_scale * x_norm, without overflow
    v, v_scale = _scaled(v)
    tangent, tangent_norm, tangent_scale = _remainder(v, [x_unit * _reciprocal(x_norm)])  # v_t = v_scale * scale * t
    kept = tangent_norm > 0  # else v is radial to rounding: no tangent part, but the gradient of the projection
    tangent = torch.where(kept, tangent, tangent - tangent.detach())
    # half the angle h omega, omega = |v_t| / |x|; an overflow becomes the largest float, and 0 / 0 (x = 0) zero
    half = torch.nan_to_num((0.5 * h * tangent_norm) * (v_scale * tangent_scale) / (x_scale * x_norm), nan=0.0)
    sin_half, cos_half = torch.sin(half), torch.cos(half)
    # sin(h omega) / omega * v_t = sin(h omega) |x| v_t / |v_t|, whose limit at v_t = 0 is h v_t
    limit = torch.nan_to_num(h * v_scale * tangent_scale, posinf=0.0, neginf=0.0)
    coefficient = torch.where(kept, 2.0 * sin_half * cos_half * (x_scale * x_norm) * _reciprocal(tangent_norm), limit)
    return x - (2.0 * sin_half * sin_half) * x + coefficient * tangent
