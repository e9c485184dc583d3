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

from ._checks import check_even, check_positive, check_positive_int, check_tensor
from .fields import GradientField
from .integrators import require_method, stormer_verlet_step, symplectic_euler_step

__all__ = ["SymplecticLayer"]


class SymplecticLayer(nn.Module):
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
    method : {"symplectic_euler", "stormer_verlet"}
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
        method: str = "symplectic_euler",
        learn_step: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_even(dim, "dim")
        hidden = dim if hidden is None else check_positive_int(hidden, "hidden")
        self.method = require_method("symplecticity", method)
        self._step = symplectic_euler_step if method == "symplectic_euler" else stormer_verlet_step
        n = dim // 2
        self.kinetic = GradientField(n, hidden, activation=activation)
        self.potential = GradientField(n, hidden, activation=activation)
        h = check_positive(h, "h")
        self.raw_h = nn.Parameter(torch.tensor(h)) if learn_step else None
        self._h = h

    @property
    def h(self) -> float | torch.Tensor:
        """The step size (a float, or a positive scalar tensor when learned)."""
        return self._h if self.raw_h is None else self.raw_h.abs()

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
