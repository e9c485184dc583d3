r"""Layers as integrator steps, and networks as compositions of them.

A layer is :math:`n` steps of a one-step method :math:`\Psi^{h}_{F_\theta}` applied to a parametric
vector field; a network is :math:`\mathcal N = P\circ\Psi^{h_M}_{F_M}\circ\cdots\circ\Psi^{h_1}_{F_1}\circ L`
with a lifting :math:`L` and a projection :math:`P` where the width changes. With explicit Euler and
:class:`~companion.fields.MLPField` the layer is the ResNet layer :math:`x + hB\sigma(Ax+b)`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ._checks import check_choice, check_positive, check_positive_int, check_tensor
from .fields import ACTIVATIONS, MLPField
from .integrators import EULER, ButcherTableau, _rk_step_unchecked

__all__ = ["FlowLayer", "FlowNetwork", "resnet", "mlp"]


class FlowLayer(nn.Module):
    r"""``n_steps`` Runge--Kutta steps of size ``h / n_steps`` of a vector field: :math:`x\mapsto(\Psi^{h/n}_F)^n(x)`.

    Parameters
    ----------
    field : nn.Module
        The vector field :math:`F_\theta`, mapping ``(batch, dim)`` to ``(batch, dim)``.
    h : float
        Total step (time the layer integrates for), > 0.
    n_steps : int
        Number of sub-steps, >= 1.
    tableau : ButcherTableau
        The explicit Runge--Kutta method (default explicit Euler: the ResNet layer).
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.

    Raises
    ------
    TypeError, ValueError
        If ``field`` is not an ``nn.Module``, ``h`` is not positive, ``n_steps`` not an int >= 1 or
        ``tableau`` not a ButcherTableau.
    """

    def __init__(
        self,
        field: nn.Module,
        *,
        h: float = 1.0,
        n_steps: int = 1,
        tableau: ButcherTableau = EULER,
        learn_step: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(field, nn.Module):
            raise TypeError(f"field must be an nn.Module (e.g. companion.fields.MLPField), got {type(field).__name__}.")
        if not isinstance(tableau, ButcherTableau):
            raise TypeError(f"tableau must be a ButcherTableau such as companion.RK4, got {type(tableau).__name__}.")
        self.field = field
        self.n_steps = check_positive_int(n_steps, "n_steps")
        self.tableau = tableau
        h = check_positive(h, "h")
        if learn_step:
            self.raw_h = nn.Parameter(torch.tensor(h))
        else:
            self.register_buffer("raw_h", torch.tensor(h), persistent=False)
        self.learn_step = learn_step

    @property
    def h(self) -> torch.Tensor:
        """The layer's total step, a positive scalar tensor."""
        return self.raw_h.abs()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", min_ndim=1)
        h = (self.h / self.n_steps).to(x.dtype) if self.learn_step else float(self.raw_h) / self.n_steps
        for _ in range(self.n_steps):
            x = _rk_step_unchecked(self.field, x, h, self.tableau)
        return x


class FlowNetwork(nn.Module):
    r"""A composition :math:`P\circ f_M\circ\cdots\circ f_1\circ L` of layers of equal width.

    Parameters
    ----------
    layers : sequence of nn.Module
        The dynamic layers :math:`f_i`, each mapping ``(batch, width)`` to ``(batch, width)``.
    in_dim, width, out_dim : int
        Input, layer and output widths. The lifting :math:`L` and projection :math:`P` are linear
        maps, left out (identity) where the widths already agree.

    Raises
    ------
    TypeError, ValueError
        If ``layers`` is empty or holds something that is not an ``nn.Module``, or a width is bad.
    """

    def __init__(self, layers: Sequence[nn.Module], *, in_dim: int, width: int, out_dim: int) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("width", width), ("out_dim", out_dim)):
            check_positive_int(value, name)
        layers = list(layers)
        if not layers or not all(isinstance(layer, nn.Module) for layer in layers):
            raise TypeError("layers must be a non-empty sequence of nn.Module objects.")
        self.in_dim = in_dim
        self.lift = nn.Identity() if in_dim == width else nn.Linear(in_dim, width)
        self.layers = nn.Sequential(*layers)
        self.projection = nn.Identity() if out_dim == width else nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.in_dim)
        return self.projection(self.layers(self.lift(x)))


def resnet(
    in_dim: int,
    out_dim: int,
    *,
    width: int,
    depth: int,
    hidden: int | None = None,
    T: float = 1.0,
    tableau: ButcherTableau = EULER,
    activation: str = "tanh",
) -> FlowNetwork:
    r"""A ResNet as a discretised ODE: ``depth`` layers of one step :math:`h = T/\text{depth}` each.

    Each layer is :math:`x + h B_i\sigma(A_ix+b_i)` (with ``tableau=EULER``) or any other
    Runge--Kutta step of the same field.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output sizes.
    width : int
        State dimension of the ODE.
    depth : int
        Number of layers (time steps).
    hidden : int, optional
        Hidden width of each field (default ``width``).
    T : float
        Final time; the step is ``T / depth``.
    tableau : ButcherTableau
        The integrator.
    activation : str
        The field's activation.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, a non-positive ``T`` or an unknown activation.
    """
    check_positive_int(depth, "depth")
    check_positive(T, "T")
    hidden = width if hidden is None else hidden
    layers = [FlowLayer(MLPField(width, hidden, activation=activation), h=T / depth, tableau=tableau) for _ in range(depth)]
    return FlowNetwork(layers, in_dim=in_dim, width=width, out_dim=out_dim)


def mlp(in_dim: int, out_dim: int, *, width: int, depth: int, activation: str = "tanh") -> nn.Sequential:
    r"""A plain multilayer perceptron with ``depth`` hidden layers :math:`x\mapsto\sigma(Ax+b)` (no skips).

    Raises
    ------
    TypeError, ValueError
        On bad sizes or an unknown activation.
    """
    for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width), ("depth", depth)):
        check_positive_int(value, name)
    check_choice(activation, "activation", ACTIVATIONS)
    sigma = ACTIVATIONS[activation][0]
    modules: list[nn.Module] = []
    size = in_dim
    for _ in range(depth):
        modules += [nn.Linear(size, width), _Activation(sigma)]
        size = width
    modules.append(nn.Linear(size, out_dim))
    return nn.Sequential(*modules)


class _Activation(nn.Module):
    def __init__(self, sigma: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigma(x)
