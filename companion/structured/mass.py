r"""Mass-preserving layers and networks: skew fields stepped by any Runge--Kutta method, lifts and projections.

The public names are re-exported by :mod:`companion.structured` (and :class:`MassPreservingLayer` by
``companion``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._checks import check_positive_int, check_tensor
from ..fields import MassPreservingField
from ..integrators import EULER, ButcherTableau, _rk_step_unchecked, get_tableau
from ..layers import StepSize

__all__ = ["MassPreservingLayer", "MassLift", "MassProjection", "mass_preserving_network"]


class MassPreservingLayer(StepSize, nn.Module):
    r"""Runge--Kutta steps of the mass-preserving field :math:`\dot x = (A_\theta(x) - A_\theta(x)^\top)\mathbf 1`.

    The field is :class:`~companion.fields.MassPreservingField`. Since :math:`\mathbf 1^\top(A-A^\top)\mathbf 1 = 0`,
    every stage :math:`k_i` has zero sum, and an explicit Runge--Kutta step
    :math:`x + h\sum_i b_ik_i` changes :math:`\mathbf 1^\top x` by exactly zero: the mass is kept for
    every parameter value, step size and Runge--Kutta method in exact arithmetic. The sign of the entries is
    *not* kept: for concentrations that must stay :math:`\ge 0` use
    :class:`~companion.structured.positive.PositiveMassPreservingLayer`.

    **In floating point** the stages sum to zero only up to the rounding of the field's terms, which is relative
    to the weights, not to the mass: with :math:`k = M\sigma + m` (the field's
    :meth:`~companion.fields.MassPreservingField.effective_weights`) and a bounded activation (tanh, sigmoid), one
    step of an :math:`s`-stage method changes the sum by at most
    :math:`\gamma_{\text{hidden}+s+4}\big(\lVert x\rVert_1
    + h\sum_i\lvert b_i\rvert(\lVert M\rVert_1 + \lVert m\rVert_1)\big)`, entrywise 1-norms (measured in float32: below half of :math:`u(\dots)`). So weights that are huge
    compared with the state lose the mass to rounding (float32, mass 10, field weights scaled by :math:`10^6`:
    drift 0.09; by :math:`10^{10}`: drift :math:`10^3`), and weights beyond the float range give inf or NaN;
    with ReLU the stages grow with the state and no such bound holds. Keep the weights moderate (weight decay),
    or use :class:`~companion.structured.positive.PositiveMassPreservingLayer`, whose drift is a few units of roundoff
    of the mass itself for every weight.

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
        self.hidden = hidden
        self._init_step(h, learn_step)

    def _check_method(self, method: object) -> ButcherTableau:
        return get_tableau(method, name="method")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        h = self._sub_step(x, self.n_steps)
        for _ in range(self.n_steps):
            x = _rk_step_unchecked(self.field, x, h, self.method)
        return x

    def extra_repr(self) -> str:
        return ", ".join(filter(None, [f"dim={self.dim}, hidden={self.hidden}", super().extra_repr()]))


class MassLift(nn.Module):
    r"""Mass-preserving lift :math:`L(x_1,\dots,x_k) = (x_1,\dots,x_k,0,\dots,0)` from width ``in_dim`` to ``out_dim``.

    It keeps the sum and the sign of every entry.

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
            raise ValueError(
                f"a lift needs out_dim >= in_dim, got {in_dim} -> {out_dim}; use MassProjection to shrink."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.in_dim)
        return torch.nn.functional.pad(x, (0, self.out_dim - self.in_dim))

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}"


class MassProjection(nn.Module):
    r"""Mass-preserving projection :math:`P(x)_i = x_i + \tfrac1k\sum_{j>k}x_j`, :math:`i\le k`, to width :math:`k` = ``out_dim``.

    The entries that are dropped are spread evenly over the ``k`` kept ones, so
    :math:`\sum_i P(x)_i = \sum_j x_j`; a non-negative input gives a non-negative output (sums of
    non-negative numbers).

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

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}"


def _mass_network(
    widths: Sequence[int], layers_per_block: int, make_layer: Callable[[int], nn.Module]
) -> nn.Sequential:
    """Lift / project between consecutive widths and put ``layers_per_block`` layers at every interior width."""
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
            modules += [make_layer(width) for _ in range(layers_per_block)]
    return nn.Sequential(*modules)


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
    layers_per_block : int
        Number of :class:`MassPreservingLayer` s in each block (one block per interior width), >= 1.
    hidden : int
        Hidden width of the field of every layer: the number of units :math:`\sigma(Bx+c)` from which the entries
        of :math:`A_\theta(x)` are computed (the same for every block, whatever its width).
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

    def make_layer(width: int) -> nn.Module:
        return MassPreservingLayer(
            width, hidden=hidden, h=h, method=method, activation=activation, learn_step=learn_step
        )

    return _mass_network(widths, layers_per_block, make_layer)
