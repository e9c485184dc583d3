r"""Parametric vector fields :math:`x \mapsto F_\theta(x)` as ``nn.Module`` objects.

Each family is chosen for the property its exact flow has, for **every** value of the parameters:

- :class:`MLPField`: :math:`B\sigma(Ax+b)`, the plain ResNet field (no property);
- :class:`GradientField`: :math:`\pm\nabla V_\theta(x)`, a gradient field (symmetric Jacobian);
- :class:`LowRankSpherePreservingField`: :math:`S_\theta(x)\,x` with :math:`S = UV^\top - VU^\top` (cheap, the default
  of :class:`~companion.layers.SpherePreservingLayer`) and :class:`SpherePreservingField` (every entry of :math:`S`
  learned), both with :math:`S^\top=-S`, whose flows keep :math:`\|x\|_2`;
- :class:`MassPreservingField`: :math:`(A_\theta(x)-A_\theta(x)^\top)\mathbf 1`, whose flow keeps :math:`\mathbf 1^\top x`.

The integrator decides whether a layer built from the field keeps the property too; see
:mod:`companion.layers`.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023), A3071--A3094.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_choice, check_positive_int, check_tensor
from ._settings import FixedSettings

__all__ = [
    "ACTIVATIONS",
    "MLPField",
    "GradientField",
    "SpherePreservingField",
    "LowRankSpherePreservingField",
    "MassPreservingField",
    "skew_from_entries",
]

_LOG2 = math.log(2.0)


def _log_cosh(x: torch.Tensor) -> torch.Tensor:
    return x + F.softplus(-2.0 * x) - _LOG2


#: Activation name -> (sigma, gamma) with gamma' = sigma and gamma(0) finite, so that
#: :math:`\nabla \sum_j \alpha_j\gamma(a_j^\top x + b_j) = A^\top(\alpha\odot\sigma(Ax+b))`.
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "tanh": (torch.tanh, _log_cosh),
    "sigmoid": (torch.sigmoid, F.softplus),
    "relu": (F.relu, lambda x: 0.5 * F.relu(x) ** 2),
}


class _ActivationSetting(FixedSettings):
    """A field whose fixed setting is its activation (by name): shown in ``repr``, saved and restored by loading."""

    _settings = ("activation",)

    def _configure(self, *, activation: str) -> None:
        check_choice(activation, "activation", ACTIVATIONS)
        self.activation = activation

    @property
    def sigma(self) -> Callable[[torch.Tensor], torch.Tensor]:
        r"""The activation function :math:`\sigma`."""
        return ACTIVATIONS[self.activation][0]

    def _one_hidden_layer(self, hidden: int, outputs: int, *, activation: str, bias: bool = True) -> None:
        r"""Set the activation and the layers of :math:`C\sigma(Bx+c)`: ``inner`` (``dim`` to ``hidden``), ``outer``."""
        self._configure(activation=activation)
        self.inner = nn.Linear(self.dim, hidden)
        self.outer = nn.Linear(hidden, outputs, bias=bias)


class MLPField(_ActivationSetting, nn.Module):
    r"""The plain ResNet vector field :math:`F_\theta(x) = B\,\sigma(Ax + b)`.

    Parameters
    ----------
    dim : int
        State dimension.
    hidden : int
        Width of the hidden layer (rows of :math:`A`).
    activation : {"tanh", "sigmoid", "relu"}
        The component-wise :math:`\sigma`.

    Raises
    ------
    TypeError, ValueError
        If ``dim`` or ``hidden`` is not an int >= 1 or the activation is unknown.
    """

    def __init__(self, dim: int, hidden: int = 16, *, activation: str = "tanh") -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(hidden, "hidden")
        self._one_hidden_layer(hidden, dim, activation=activation, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        return self.outer(self.sigma(self.inner(x)))


class GradientField(_ActivationSetting, nn.Module):
    r"""A gradient vector field :math:`\pm\nabla V_\theta` with :math:`V_\theta(x) = \sum_j \alpha_j\gamma(a_j^\top x + b_j)`.

    .. math:: \nabla V_\theta(x) = A^\top\big(\alpha\odot\sigma(Ax+b)\big), \qquad \gamma' = \sigma .

    Its Jacobian :math:`A^\top\operatorname{diag}(\alpha\odot\sigma'(Ax+b))A` is symmetric for every
    parameter value. With ``sign=-1`` and :math:`\alpha\ge 0`, :math:`\sigma` non-decreasing, the field
    is :math:`-\nabla` of a convex function, whose flow is non-expansive.

    Parameters
    ----------
    dim : int
        State dimension.
    hidden : int
        Number of ridge functions (rows of :math:`A`).
    activation : {"tanh", "sigmoid", "relu"}
        :math:`\sigma`; :math:`\gamma` is its antiderivative.
    sign : {1, -1}
        Ascent (+1) or descent (-1) direction.

    Raises
    ------
    TypeError, ValueError
        On a bad ``dim``/``hidden``, unknown activation or a sign other than 1 or -1.
    """

    def __init__(self, dim: int, hidden: int = 16, *, activation: str = "tanh", sign: int = 1) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(hidden, "hidden")
        self._configure(activation=activation, sign=sign)
        self.inner = nn.Linear(dim, hidden)
        self.alpha = nn.Parameter(torch.empty(hidden).uniform_(-1.0, 1.0) / math.sqrt(hidden))

    _settings = ("activation", "sign")

    def _configure(self, *, activation: str, sign: int) -> None:
        if isinstance(sign, bool) or sign not in (1, -1):
            raise ValueError(f"sign must be 1 or -1, got {sign!r}.")
        super()._configure(activation=activation)
        self.sign = int(sign)

    @property
    def gamma(self) -> Callable[[torch.Tensor], torch.Tensor]:
        r"""The antiderivative :math:`\gamma` of the activation (:math:`\gamma' = \sigma`)."""
        return ACTIVATIONS[self.activation][1]

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        r"""The potential :math:`\pm V_\theta(x)`, shape ``x.shape[:-1]``."""
        check_tensor(x, "x", last_dim=self.dim)
        return self.sign * (self.gamma(self.inner(x)) * self.alpha).sum(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        return self.sign * (self.sigma(self.inner(x)) * self.alpha) @ self.inner.weight


def skew_from_entries(entries: torch.Tensor, dim: int) -> torch.Tensor:
    r"""Skew-symmetric matrices from their strictly upper-triangular entries.

    Parameters
    ----------
    entries : torch.Tensor
        Shape ``(..., dim*(dim-1)/2)``, the entries above the diagonal row by row.
    dim : int
        Matrix size.

    Returns
    -------
    torch.Tensor
        Shape ``(..., dim, dim)`` with :math:`S^\top = -S` exactly.

    Raises
    ------
    ValueError
        If the last dimension of ``entries`` is not ``dim*(dim-1)/2``.
    """
    check_positive_int(dim, "dim")
    n = dim * (dim - 1) // 2
    check_tensor(entries, "entries", min_ndim=1, last_dim=n)
    rows, cols = torch.triu_indices(dim, dim, offset=1, device=entries.device)
    upper = entries.new_zeros(*entries.shape[:-1], dim, dim)
    upper[..., rows, cols] = entries
    return upper - upper.transpose(-1, -2)


class SpherePreservingField(_ActivationSetting, nn.Module):
    r"""A sphere-preserving field :math:`X(x) = S_\theta(x)\,x` with :math:`S_\theta(x)` skew-symmetric.

    The entries of :math:`S_\theta(x)` above the diagonal come from a one-hidden-layer network
    :math:`C\sigma(Bx+c)`. Since :math:`x^\top S x = 0`, :math:`\tfrac{d}{dt}\|x\|^2 = 0`: the exact flow
    keeps the Euclidean norm for every parameter value.

    Parameters
    ----------
    dim : int
        State dimension, >= 2.
    hidden : int
        Width of the network producing the skew entries.
    activation : str
        :math:`\sigma`, as in :class:`MLPField`.

    Raises
    ------
    ValueError
        If ``dim < 2`` (no non-zero skew matrix exists).
    """

    def __init__(self, dim: int, hidden: int = 16, *, activation: str = "tanh") -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"SpherePreservingField needs dim >= 2 (in 1-D every skew matrix is 0), got dim={dim}.")
        check_positive_int(hidden, "hidden")
        self._one_hidden_layer(hidden, dim * (dim - 1) // 2, activation=activation)

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        """The skew matrices :math:`S_\\theta(x)`, shape ``(..., dim, dim)``."""
        check_tensor(x, "x", last_dim=self.dim)
        return skew_from_entries(self.outer(self.sigma(self.inner(x))), self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        # S(x) = K_0 + sum_k sigma_k(x) K_k with K_k the skew matrix of column k of the outer weights,
        # so S(x) x = K_0 x + sum_k sigma_k(x) (K_k x): one matrix product for all K_k x, no per-sample matrix.
        hidden = self.sigma(self.inner(x))
        stacked = torch.cat([self.outer.bias.unsqueeze(-1), self.outer.weight], dim=-1)  # (pairs, hidden + 1)
        skews = skew_from_entries(stacked.T, self.dim)  # (hidden + 1, dim, dim)
        products = (x @ skews.flatten(0, 1).T).unflatten(-1, (skews.shape[0], self.dim))  # K_k x for every k
        return products[..., 0, :] + (hidden.unsqueeze(-1) * products[..., 1:, :]).sum(-2)


class LowRankSpherePreservingField(_ActivationSetting, nn.Module):
    r"""A sphere-preserving field :math:`X(x) = S_\theta(x)\,x` with the low-rank skew matrix
    :math:`S_\theta(x) = U(x)V(x)^\top - V(x)U(x)^\top`.

    The factors :math:`U(x), V(x)\in\mathbb R^{\text{dim}\times\text{rank}}` come from a one-hidden-layer
    network :math:`C\sigma(Bx+c)`. :math:`S^\top = -S` by construction, so :math:`x^\top S x = 0` and the exact
    flow keeps :math:`\|x\|` for every parameter value. The field costs
    :math:`O(\text{dim}\cdot\text{rank})` per sample beyond the network,
    :math:`X = U(V^\top x) - V(U^\top x)`, and no ``dim`` x ``dim`` matrix is formed.

    Rank one already loses no generality for the field: every sphere-preserving field :math:`X_S` is
    :math:`S(x)x` with :math:`S = uv^\top - vu^\top`, :math:`u = X_S(x)/\|x\|^2`, :math:`v = x` (the matrix of
    :func:`companion.presnov.decomposition.skew_matrix`), and a one-hidden-layer network approximates both factors.

    Parameters
    ----------
    dim : int
        State dimension, >= 2.
    hidden : int
        Width of the network producing the factors.
    rank : int
        Number of columns of :math:`U` and :math:`V` (:math:`S` has rank at most ``2 * rank``), >= 1.
    activation : str
        :math:`\sigma`, as in :class:`MLPField`.

    Raises
    ------
    TypeError, ValueError
        If ``dim < 2``, ``hidden`` or ``rank`` is not an int >= 1, or the activation is unknown.
    """

    def __init__(self, dim: int, hidden: int = 16, *, rank: int = 1, activation: str = "tanh") -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(
                f"LowRankSpherePreservingField needs dim >= 2 (in 1-D every skew matrix is 0), got dim={dim}."
            )
        check_positive_int(hidden, "hidden")
        self.rank = check_positive_int(rank, "rank")
        self._one_hidden_layer(hidden, 2 * dim * rank, activation=activation)

    def factors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The factors :math:`U(x)` and :math:`V(x)`, each of shape ``(..., dim, rank)``."""
        check_tensor(x, "x", last_dim=self.dim)
        rows = self.outer(self.sigma(self.inner(x))).unflatten(-1, (2 * self.rank, self.dim))
        U, V = rows.chunk(2, dim=-2)  # views with contiguous columns: the backward is one cheap concatenation
        return U.transpose(-1, -2), V.transpose(-1, -2)

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        """The skew matrices :math:`S_\\theta(x) = UV^\\top - VU^\\top`, shape ``(..., dim, dim)``."""
        U, V = self.factors(x)
        product = U @ V.transpose(-1, -2)
        return product - product.transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        U, V = self.factors(x)
        if self.rank == 1:  # dot products: faster than a batch of tiny matrix products on a CPU
            u, v = U.squeeze(-1), V.squeeze(-1)
            return u * (v * x).sum(-1, keepdim=True) - v * (u * x).sum(-1, keepdim=True)
        row = x.unsqueeze(-2)
        return (U @ (row @ V).transpose(-1, -2) - V @ (row @ U).transpose(-1, -2)).squeeze(-1)


class MassPreservingField(_ActivationSetting, nn.Module):
    r"""A mass-preserving field :math:`F(x) = (A_\theta(x) - A_\theta(x)^\top)\mathbf 1`.

    :math:`\mathbf 1^\top (A - A^\top)\mathbf 1 = 0`, so :math:`\tfrac{d}{dt}\sum_i x_i = 0` for every
    parameter value, and every Runge--Kutta method keeps the sum exactly.

    The entries of :math:`A_\theta(x)` come from :math:`C\sigma(Bx+c)` (shape ``dim*dim``).

    Parameters
    ----------
    dim : int
        State dimension, >= 2.
    hidden : int
        Hidden width.
    activation : str
        :math:`\sigma`, as in :class:`MLPField`.

    Raises
    ------
    ValueError
        If ``dim < 2``.
    """

    def __init__(self, dim: int, hidden: int = 16, *, activation: str = "tanh") -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"MassPreservingField needs dim >= 2 (in 1-D the only such field is 0), got dim={dim}.")
        check_positive_int(hidden, "hidden")
        self._one_hidden_layer(hidden, dim * dim, activation=activation)

    def effective_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The matrix :math:`M` and vector :math:`m` with :math:`(A_\theta(x)-A_\theta(x)^\top)\mathbf 1 = M\sigma(Bx+c) + m`.

        :math:`A_\theta(x)` is linear in :math:`\sigma(Bx+c)`, and so is its row-sum minus column-sum:
        :math:`M = \sum_j C_{(\cdot j)} - \sum_i C_{(i\cdot)}`. Every column of :math:`M` (and :math:`m`)
        sums to zero. Evaluating the field through :math:`M` costs :math:`O(\text{dim}\cdot\text{hidden})`
        per sample instead of :math:`O(\text{dim}^2\cdot\text{hidden})`, for exactly the same function.
        """
        weight = self.outer.weight.unflatten(0, (self.dim, self.dim))  # (dim, dim, hidden): entry (i, j) of A
        bias = self.outer.bias.unflatten(0, (self.dim, self.dim))
        return weight.sum(1) - weight.sum(0), bias.sum(1) - bias.sum(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        # (A - A^T) 1 = row sums minus column sums, evaluated through the effective weights.
        weight, bias = self.effective_weights()
        return torch.nn.functional.linear(self.sigma(self.inner(x)), weight, bias)
