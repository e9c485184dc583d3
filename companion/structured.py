r"""Layers with prescribed geometric properties: symplecticity, volume and mass preservation.

Each layer follows the design recipe: a family of vector fields whose exact flows have the
property, and an integrator that keeps it at the discrete level. The property then holds for
**every** value of the parameters, by construction.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023), A3071--A3094.
"""

from __future__ import annotations

import torch
from torch import nn

from typing import Sequence

from ._checks import check_choice, check_even, check_positive_int, check_tensor
from .fields import ACTIVATIONS, GradientField, MassPreservingField
from .layers import StepSize
from .integrators import (
    EULER,
    SYMPLECTIC_EULER,
    ButcherTableau,
    GeometricMethod,
    _rk_step_unchecked,
    get_tableau,
    require_method,
    stormer_verlet_step,
    symplectic_euler_step,
)

__all__ = [
    "SymplecticLayer",
    "VolumePreservingLayer",
    "MassPreservingLayer",
    "MassLift",
    "MassProjection",
    "mass_preserving_network",
]


class SymplecticLayer(StepSize, nn.Module):
    r"""A symplectic step of a separable neural Hamiltonian on the state :math:`x = (q, p)`.

    .. math:: H_\theta(q,p) = \langle \alpha, \gamma(Bp+b)\rangle + \langle \beta, \gamma(Cq+c)\rangle,

    integrated by symplectic Euler (:math:`\hat q = q + hB^\top(\alpha\odot\sigma(Bp+b))`,
    :math:`\hat p = p - hC^\top(\beta\odot\sigma(C\hat q+c))`) or Störmer--Verlet. The Jacobian
    :math:`J` satisfies :math:`J^\top\Omega J = \Omega` for every parameter value and step size, so
    :math:`\det J = 1` and :math:`\|J\|_2 \ge 1` (no vanishing gradients through the layer).

    Parameters
    ----------
    dim : int
        Even state dimension; :math:`q` is the first half, :math:`p` the second.
    hidden : int, optional
        Ridge functions in each part of the Hamiltonian (default ``dim``).
    h : float
        Step size, > 0.
    activation : str
        :math:`\sigma = \gamma'`, see :data:`companion.fields.ACTIVATIONS`.
    method : SYMPLECTIC_EULER, STORMER_VERLET or their names "symplectic_euler", "stormer_verlet"
        The symplectic integrator. A non-symplectic method (e.g. ``"rk4"``) is refused.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.

    Raises
    ------
    ValueError
        If ``dim`` is odd, ``h`` is not positive or ``method`` does not keep symplecticity.
    """

    def __init__(
        self,
        dim: int,
        *,
        hidden: int | None = None,
        h: float = 0.1,
        activation: str = "tanh",
        method: GeometricMethod | str = "symplectic_euler",
        learn_step: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_even(dim, "dim")
        hidden = dim if hidden is None else check_positive_int(hidden, "hidden")
        self.method = require_method("symplecticity", method)
        self._step = symplectic_euler_step if self.method is SYMPLECTIC_EULER else stormer_verlet_step
        n = dim // 2
        self.kinetic = GradientField(n, hidden, activation=activation)
        self.potential = GradientField(n, hidden, activation=activation)
        self._init_step(h, learn_step)


    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's Hamiltonian :math:`H_\\theta(q, p)`, shape ``x.shape[:-1]``."""
        check_tensor(x, "x", last_dim=self.dim)
        q, p = x.chunk(2, dim=-1)
        return self.kinetic.potential(p) + self.potential.potential(q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        q, p = x.chunk(2, dim=-1)
        q, p = self._step(self.kinetic, self.potential, q, p, self.h)
        return torch.cat([q, p], dim=-1)


def _sigma(activation: str):
    check_choice(activation, "activation", ACTIVATIONS)
    return ACTIVATIONS[activation][0]


class VolumePreservingLayer(StepSize, nn.Module):
    r"""A volume-preserving step of the divergence-free field :math:`(\dot x, \dot v) = (\Sigma(Av+a), \Sigma(Bx+b))`.

    With ``method="symplectic_euler"`` (the default) the layer is the composition of two shears

    .. math:: \hat x = x + h\,\Sigma(Av + a), \qquad \hat v = v + h\,\Sigma(B\hat x + b),

    and with ``method="stormer_verlet"`` the symmetric composition of three (half step in :math:`x`,
    full step in :math:`v`, half step in :math:`x`). A shear :math:`(x, v)\mapsto(x + g(v), v)` has a
    block-triangular Jacobian with identity diagonal blocks, so :math:`\det J = 1` exactly, for every
    parameter value and step size; and it is inverted in closed form by subtracting the same update
    (:meth:`inverse`). :math:`\Sigma` acts component-wise.

    Parameters
    ----------
    dim : int
        Even state dimension; :math:`x` is the first half, :math:`v` the second.
    h : float
        Step size, > 0.
    activation : {"tanh", "sigmoid", "relu"}
        The component-wise :math:`\Sigma`.
    method : SYMPLECTIC_EULER, STORMER_VERLET or their names
        The shear composition. A method that does not keep volume (e.g. ``"rk4"``) is refused.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.

    Raises
    ------
    ValueError
        If ``dim`` is odd, ``h`` is not positive, the activation is unknown or ``method`` does not
        keep volume.

    References
    ----------
    E. Celledoni et al., *Dynamical systems' based neural networks*, SIAM J. Sci. Comput. (2023).
    """

    def __init__(
        self,
        dim: int,
        *,
        h: float = 0.1,
        activation: str = "tanh",
        method: GeometricMethod | str = "symplectic_euler",
        learn_step: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_even(dim, "dim")
        self.method = require_method("volume", method)
        self.sigma = _sigma(activation)
        n = dim // 2
        self.x_update = nn.Linear(n, n)  # A v + a
        self.v_update = nn.Linear(n, n)  # B x + b
        self._init_step(h, learn_step)


    def _shear_x(self, x: torch.Tensor, v: torch.Tensor, h) -> torch.Tensor:
        return x + h * self.sigma(self.x_update(v))

    def _shear_v(self, x: torch.Tensor, v: torch.Tensor, h) -> torch.Tensor:
        return v + h * self.sigma(self.v_update(x))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        check_tensor(state, "x", last_dim=self.dim)
        x, v = state.chunk(2, dim=-1)
        h = self.h
        if self.method is SYMPLECTIC_EULER:
            x = self._shear_x(x, v, h)
            v = self._shear_v(x, v, h)
        else:
            x = self._shear_x(x, v, 0.5 * h)
            v = self._shear_v(x, v, h)
            x = self._shear_x(x, v, 0.5 * h)
        return torch.cat([x, v], dim=-1)

    def inverse(self, state: torch.Tensor) -> torch.Tensor:
        r"""The exact inverse map: undo the shears in reverse order (:math:`v = \hat v - h\Sigma(B\hat x+b)`, ...).

        Parameters
        ----------
        state : torch.Tensor
            Shape ``(batch, dim)``, an output of :meth:`forward`.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, dim)``; ``layer.inverse(layer(x))`` equals ``x`` up to rounding.
        """
        check_tensor(state, "x", last_dim=self.dim)
        x, v = state.chunk(2, dim=-1)
        h = self.h
        if self.method is SYMPLECTIC_EULER:
            v = self._shear_v(x, v, -h)
            x = self._shear_x(x, v, -h)
        else:
            x = self._shear_x(x, v, -0.5 * h)
            v = self._shear_v(x, v, -h)
            x = self._shear_x(x, v, -0.5 * h)
        return torch.cat([x, v], dim=-1)


class MassPreservingLayer(StepSize, nn.Module):
    r"""Runge--Kutta steps of the mass-preserving field :math:`\dot x = (A_\theta(x) - A_\theta(x)^\top)\mathbf 1`.

    The field is :class:`~companion.fields.MassPreservingField`. Since :math:`\mathbf 1^\top(A-A^\top)\mathbf 1 = 0`,
    every stage :math:`k_i` has zero sum, and an explicit Runge--Kutta step
    :math:`x + h\sum_i b_ik_i` changes :math:`\mathbf 1^\top x` by exactly zero: the mass is kept for
    every parameter value, step size and Runge--Kutta method (up to rounding).

    Parameters
    ----------
    dim : int
        State dimension, >= 2.
    hidden : int, optional
        Hidden width of the field (default ``4 * dim``).
    h : float
        Total step of the layer, > 0.
    n_steps : int
        Number of Runge--Kutta sub-steps of size ``h / n_steps``.
    method : ButcherTableau or str
        Any explicit Runge--Kutta method, e.g. ``companion.RK4`` or ``"heun"``; a method that is not
        Runge--Kutta (e.g. ``"cayley"``) is refused.
    activation : {"tanh", "sigmoid", "relu"}
        Activation of the field.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs`` (the authors learn one step per layer).

    Raises
    ------
    TypeError, ValueError
        On ``dim < 2``, a non-positive ``h``, a bad ``n_steps``, an unknown activation, or a
        ``method`` that is not a Runge--Kutta method.

    References
    ----------
    E. Celledoni et al., *Dynamical systems' based neural networks*, SIAM J. Sci. Comput. (2023), §4.
    """

    def __init__(
        self,
        dim: int,
        *,
        hidden: int | None = None,
        h: float = 0.1,
        n_steps: int = 1,
        method: ButcherTableau | str = EULER,
        activation: str = "tanh",
        learn_step: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        hidden = 4 * dim if hidden is None else check_positive_int(hidden, "hidden")
        self.method = get_tableau(method, name="method")  # every explicit Runge--Kutta method keeps the sum
        self.n_steps = check_positive_int(n_steps, "n_steps")
        self.field = MassPreservingField(dim, hidden, activation=activation)
        self._init_step(h, learn_step)


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        h = self._sub_step(x, self.n_steps)
        for _ in range(self.n_steps):
            x = _rk_step_unchecked(self.field, x, h, self.method)
        return x


class MassLift(nn.Module):
    r"""Mass-preserving lift :math:`L(x_1,\dots,x_k) = (x_1,\dots,x_k,0,\dots,0)` from width ``in_dim`` to ``out_dim``.

    Raises
    ------
    ValueError
        If ``out_dim < in_dim``.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = check_positive_int(in_dim, "in_dim")
        self.out_dim = check_positive_int(out_dim, "out_dim")
        if out_dim < in_dim:
            raise ValueError(f"a lift needs out_dim >= in_dim, got {in_dim} -> {out_dim}; use MassProjection to shrink.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.in_dim)
        return torch.nn.functional.pad(x, (0, self.out_dim - self.in_dim))


class MassProjection(nn.Module):
    r"""Mass-preserving projection :math:`P(x)_i = x_i + \tfrac1k\sum_{j>k}x_j`, :math:`i\le k`, to width :math:`k` = ``out_dim``.

    The entries that are dropped are spread evenly over the ``k`` kept ones, so
    :math:`\sum_i P(x)_i = \sum_j x_j`.

    Raises
    ------
    ValueError
        If ``out_dim > in_dim``.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = check_positive_int(in_dim, "in_dim")
        self.out_dim = check_positive_int(out_dim, "out_dim")
        if out_dim > in_dim:
            raise ValueError(f"a projection needs out_dim <= in_dim, got {in_dim} -> {out_dim}; use MassLift to grow.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.in_dim)
        kept, dropped = x[..., : self.out_dim], x[..., self.out_dim :]
        return kept + dropped.sum(-1, keepdim=True) / self.out_dim


def mass_preserving_network(
    widths: Sequence[int] = (3, 10, 10, 15, 3),
    *,
    layers_per_block: int = 3,
    hidden: int = 50,
    h: float = 0.1,
    method: ButcherTableau | str = EULER,
    activation: str = "relu",
    learn_step: bool = True,
) -> nn.Sequential:
    r"""A network that keeps :math:`\sum_i x_i` from input to output, changing width on the way.

    For consecutive widths :math:`w_{j-1}\to w_j` it inserts a :class:`MassLift` (growing), a
    :class:`MassProjection` (shrinking) or nothing (equal), then, for every interior width, a block of
    ``layers_per_block`` :class:`MassPreservingLayer` s. The default ``(3, 10, 10, 15, 3)`` is the
    SIR network of Celledoni et al. (2023): Lift(10)-Block, Block, Lift(15)-Block, Proj(3).

    Parameters
    ----------
    widths : sequence of int
        Input width, the widths of the blocks, output width; at least three entries.
    layers_per_block, hidden : int
        Layers per block and hidden width of each field.
    h, method, activation, learn_step
        Passed to every :class:`MassPreservingLayer`.

    Returns
    -------
    nn.Sequential
        Maps ``(batch, widths[0])`` to ``(batch, widths[-1])`` with equal sums.

    Raises
    ------
    TypeError, ValueError
        On fewer than three widths, a width < 2 inside, or bad layer options.
    """
    widths = [check_positive_int(w, "widths[i]") for w in widths]
    if len(widths) < 3:
        raise ValueError(f"widths needs an input, at least one block and an output width, got {widths}.")
    check_positive_int(layers_per_block, "layers_per_block")
    modules: list[nn.Module] = []
    for j, (previous, width) in enumerate(zip(widths[:-1], widths[1:])):
        if width > previous:
            modules.append(MassLift(previous, width))
        elif width < previous:
            modules.append(MassProjection(previous, width))
        if j < len(widths) - 2:
            modules += [
                MassPreservingLayer(width, hidden=hidden, h=h, method=method, activation=activation, learn_step=learn_step)
                for _ in range(layers_per_block)
            ]
    return nn.Sequential(*modules)
