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

import math

import torch

from ._checks import check_callable, check_positive, check_positive_int, check_tensor
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
