r"""The symplectic layer: a separable neural Hamiltonian stepped by a symplectic method.

The layer follows the design recipe: a family of vector fields whose exact flows are symplectic (Hamiltonian
fields), and an integrator that keeps symplecticity at the discrete level (symplectic Euler or
Störmer--Verlet). The property then holds for **every** value of the parameters, by construction.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023), A3071--A3094.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_even, check_positive, check_positive_int, check_tensor
from ..fields import GradientField
from ..geometric import _stormer_verlet_step_unchecked, _symplectic_euler_step_unchecked
from ..integrators import SYMPLECTIC_EULER, GeometricMethod, require_method
from ..layers import FlowNetwork, StepSize

__all__ = ["SymplecticLayer", "symplectic_network"]


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
        n = dim // 2
        self.kinetic = GradientField(n, hidden, activation=activation)
        self.potential = GradientField(n, hidden, activation=activation)
        self.hidden = hidden
        self._init_step(h, learn_step)

    def _check_method(self, method: object) -> GeometricMethod:
        return require_method("symplecticity", method)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's Hamiltonian :math:`H_\\theta(q, p)`, shape ``x.shape[:-1]``."""
        check_tensor(x, "x", last_dim=self.dim)
        q, p = x.chunk(2, dim=-1)
        return self.kinetic.potential(p) + self.potential.potential(q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        q, p = x.chunk(2, dim=-1)
        # The method is read at call time (restorable by load_state_dict); the unchecked steps read no tensor value,
        # so a learned step costs no device synchronisation and torch.func/compile see no data-dependent branch.
        if self.method.key == SYMPLECTIC_EULER.key:  # by key: a copy of the method is the same method
            step = _symplectic_euler_step_unchecked
        else:
            step = _stormer_verlet_step_unchecked
        q, p = step(self.kinetic, self.potential, q, p, self._sub_step(x, 1))
        return torch.cat([q, p], dim=-1)

    def extra_repr(self) -> str:
        return ", ".join(filter(None, [f"dim={self.dim}, hidden={self.hidden}", super().extra_repr()]))


def symplectic_network(
    in_dim: int,
    out_dim: int,
    *,
    width: int,
    depth: int,
    hidden: int | None = None,
    T: float = 1.0,
    activation: str = "tanh",
    method: GeometricMethod | str = "symplectic_euler",
) -> FlowNetwork:
    r"""``depth`` :class:`SymplecticLayer` steps of size :math:`h = T/\text{depth}`: a symplectic network.

    Built as :func:`~companion.layers.resnet` builds a ResNet. The states have the even dimension ``width``
    (:math:`q` its first half, :math:`p` its second); a linear lift from ``in_dim`` and a linear projection to
    ``out_dim`` are added where the sizes differ (:class:`~companion.layers.FlowNetwork`).

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output sizes.
    width : int
        Even state dimension of the layers.
    depth : int
        Number of layers (time steps).
    hidden : int, optional
        Ridge functions in each part of every layer's Hamiltonian (default ``width``).
    T : float
        Final time; the step is ``T / depth``.
    activation : str
        The Hamiltonians' activation :math:`\sigma = \gamma'`.
    method : SYMPLECTIC_EULER, STORMER_VERLET or their names
        The symplectic integrator of every layer.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, an odd ``width``, a non-positive ``T`` or a method that does not keep symplecticity.
    """
    check_even(width, "width")
    check_positive_int(depth, "depth")
    h = check_positive(T, "T") / depth
    layers = [SymplecticLayer(width, hidden=hidden, h=h, activation=activation, method=method) for _ in range(depth)]
    return FlowNetwork(layers, in_dim=in_dim, width=width, out_dim=out_dim)
