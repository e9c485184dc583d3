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

from .._checks import check_even, check_positive_int, check_tensor
from ..fields import GradientField
from ..geometric import _stormer_verlet_step_unchecked, _symplectic_euler_step_unchecked
from ..integrators import SYMPLECTIC_EULER, GeometricMethod, require_method
from ..layers import StepSize

__all__ = ["SymplecticLayer"]


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
