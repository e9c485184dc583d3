r"""Layers that keep the mass **and** the sign: compartmental fields and the exponential exit step.

A reaction network, an epidemic model or a Markov chain moves non-negative amounts between compartments.
Its field has the compartmental (Kolmogorov) form

.. math:: F_i(x) = \sum_{j\ne i}\big(r_{ji}(x)\,x_j - r_{ij}(x)\,x_i\big), \qquad r_{ij}(x) \ge 0,

where :math:`r_{ij}` is the rate of flow from compartment :math:`i` to :math:`j`, per unit of :math:`x_i`. Its
exact flow keeps :math:`\mathbf 1^\top x` (every flow leaves one compartment and enters another) and the
cone :math:`x \ge 0` (where :math:`x_i = 0`, :math:`F_i \ge 0`). Explicit Runge--Kutta steps keep the first
but not the second: an Euler step empties compartment :math:`i` past zero as soon as
:math:`h\sum_j r_{ij} > 1`. The exponential exit step keeps both for every step size.

The public names are re-exported by :mod:`companion.structured` (and :class:`PositiveMassPreservingLayer`
by ``companion``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_positive_int, check_tensor
from ..fields import _ActivationSetting
from ..integrators import EXPONENTIAL_EXIT, GeometricMethod, get_method
from ..layers import StepSize
from .mass import _mass_network

__all__ = [
    "EXPONENTIAL_EXIT",
    "exponential_exit_step",
    "CompartmentalField",
    "PositiveMassPreservingLayer",
    "positive_mass_network",
]


def exponential_exit_step(rates: torch.Tensor, x: torch.Tensor, h: float | torch.Tensor) -> torch.Tensor:
    r"""One exponential exit step of the compartmental field with the rates frozen at the current state.

    Compartment :math:`j` keeps the fraction :math:`e^{-h\lambda_j}` of its content, where
    :math:`\lambda_j = \sum_i r_{ji}` is its total outflow rate, and sends the rest to the others in
    proportion to the rates:

    .. math::
        \begin{aligned}
        x_i^{+} &= e^{-h\lambda_i}\,x_i + \sum_{j\ne i} r_{ji}\,w_j, \qquad
        w_j = \frac{1 - e^{-h\lambda_j}}{\lambda_j}\,x_j .
        \end{aligned}

    For small :math:`h`, :math:`x^+ = x + hF(x) + O(h^2)`: a first-order method.

    **Guarantee.** For every step :math:`h \ge 0`, every rates :math:`r \ge 0` and every :math:`x \ge 0`:
    :math:`\mathbf 1^\top x^+ = \mathbf 1^\top x` and :math:`x^+ \ge 0`. *Proof.* Summing over :math:`i`,
    :math:`\sum_i x_i^+ = \sum_j\big(e^{-h\lambda_j} + (1 - e^{-h\lambda_j})\big)x_j`, because
    :math:`\sum_i r_{ji} = \lambda_j`. Every term of :math:`x_i^+` is a product or quotient of non-negative
    numbers, so :math:`x^+ \ge 0`. This holds in floating point too, for every rate in :math:`[0, +\infty]`:
    rounding is monotone and never turns a sum of products of non-negative numbers negative (the code computes
    :math:`1 - e^{-h\lambda}` by ``expm1``, which lies in :math:`[0, 1]`), and it splits the outflow by the
    fractions :math:`r_{ji}/\lambda_j` computed from the rates scaled by their largest, so no sum of rates
    overflows and no :math:`x_j/\lambda_j` underflows (an infinite rate counts as the largest float). Every
    term being :math:`\ge 0`, the sum changes by rounding only, by at most :math:`\gamma_{2\text{dim}+6}\approx
    (2\,\text{dim}+6)\,u` relative to :math:`\mathbf 1^\top x` itself (:math:`u` the unit roundoff), whatever
    the size of the rates. A NaN in ``rates`` or ``x`` gives NaN.

    Parameters
    ----------
    rates : torch.Tensor
        Shape ``(..., dim, dim)``, ``rates[..., j, i]`` = :math:`r_{ji}`, the flow from :math:`j` to :math:`i`.
        The guarantee needs every entry >= 0, ``+inf`` included (a diagonal entry is a flow from a compartment
        to itself, harmless); this is not checked, so that the function can be traced by ``torch.func`` and
        ``torch.compile``: build the rates with a non-negative map such as ``softplus`` (:class:`CompartmentalField`
        does).
    x : torch.Tensor
        Shape ``(..., dim)``.
    h : float or torch.Tensor
        Step, >= 0.

    Returns
    -------
    torch.Tensor
        Shape ``(..., dim)``.

    Raises
    ------
    ValueError
        If the shapes of ``rates`` and ``x`` do not match.
    """
    check_tensor(x, "x", min_ndim=1)
    check_tensor(rates, "rates", min_ndim=2)
    if rates.shape[-2:] != (x.shape[-1], x.shape[-1]):
        raise ValueError(
            f"rates must have shape (..., {x.shape[-1]}, {x.shape[-1]}) for x of shape {tuple(x.shape)}, "
            f"got {tuple(rates.shape)}."
        )
    return _exit_step_unchecked(rates, x, h)


def _exit_step_unchecked(rates: torch.Tensor, x: torch.Tensor, h) -> torch.Tensor:
    r"""The step as :math:`x_i^+ = (1-q_i)x_i + \sum_j p_{ji}q_jx_j`, :math:`q_j = 1-e^{-h\lambda_j}` and
    :math:`p_{ji} = r_{ji}/\lambda_j`, with the rates of each compartment scaled by their largest one first: no
    sum of rates can overflow and no :math:`x_j/\lambda_j` underflow, for every rate in :math:`[0, \infty]`."""
    rates = rates.clamp(max=torch.finfo(rates.dtype).max)  # an infinite rate: the largest finite one
    largest = rates.amax(-1, keepdim=True)
    largest = torch.where(largest > 0, largest, torch.ones_like(largest))
    scaled = rates / largest  # in [0, 1], the largest entry exactly 1
    total = scaled.sum(-1, keepdim=True)  # in [1, dim], or 0 where nothing flows out
    share = scaled / torch.where(total > 0, total, torch.ones_like(total))  # p_ji, summing to 1 over i
    exponent = ((h * largest) * total).squeeze(-1)  # h lambda_j; +inf past the largest float, and q_j = 1
    leave = -torch.expm1(-exponent)  # q_j = 1 - exp(-h lambda_j) in [0, 1], accurate for small h lambda
    received = torch.einsum("...j,...ji->...i", leave * x, share)
    return (1 - leave) * x + received


class CompartmentalField(_ActivationSetting, nn.Module):
    r"""A compartmental field :math:`F_i(x) = \sum_{j\ne i}(r_{ji}(x)x_j - r_{ij}(x)x_i)` with learned rates :math:`r \ge 0`.

    The :math:`d(d-1)` off-diagonal rates are :math:`r(x) = \operatorname{softplus}(C\sigma(Bx + b) + c)`,
    non-negative for every parameter value and every :math:`x` (also in floating point: a rate that overflows
    is :math:`+\infty`, one that the arithmetic cannot evaluate, :math:`\infty-\infty` inside the network for
    weights near the float range, counts as 0). The flow keeps :math:`\mathbf 1^\top x` and the cone
    :math:`x \ge 0`.

    Parameters
    ----------
    dim : int
        Number of compartments, >= 2.
    hidden : int
        Hidden width of the rate network.
    activation : {"tanh", "sigmoid", "relu"}
        :math:`\sigma`.

    Raises
    ------
    TypeError, ValueError
        On ``dim < 2``, a bad ``hidden`` or an unknown activation; in ``forward``, on a bad ``x``.
    """

    def __init__(self, dim: int, hidden: int = 16, *, activation: str = "tanh") -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"a compartmental field needs dim >= 2 compartments, got dim={dim}.")
        check_positive_int(hidden, "hidden")
        self._one_hidden_layer(hidden, dim * (dim - 1), activation=activation)
        # Position k of the flattened (dim, dim) matrix takes value 1 + (its off-diagonal index), 0 on the diagonal.
        index = torch.zeros(dim * dim, dtype=torch.long)
        off_diagonal = ~torch.eye(dim, dtype=torch.bool).flatten()
        index[off_diagonal] = torch.arange(1, dim * (dim - 1) + 1)
        self.register_buffer("_index", index, persistent=False)

    def rates(self, x: torch.Tensor) -> torch.Tensor:
        """The rates, shape ``(..., dim, dim)``: entry ``[j, i]`` is the flow from ``j`` to ``i``; zero diagonal."""
        check_tensor(x, "x", last_dim=self.dim)
        values = F.softplus(self.outer(self.sigma(self.inner(x))))
        # Weights near the float range can make the network compute inf - inf: such a rate counts as 0, so the
        # rates are >= 0 for every parameter value (a NaN in x still gives NaN).
        undefined = torch.isnan(values) & ~torch.isnan(x).any(-1, keepdim=True)
        values = torch.where(undefined, torch.zeros_like(values), values)
        padded = torch.cat([torch.zeros_like(values[..., :1]), values], dim=-1)
        return padded[..., self._index].unflatten(-1, (self.dim, self.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rates = self.rates(x)
        received = torch.einsum("...j,...ji->...i", x, rates)
        return received - rates.sum(-1) * x


def _require_exit(method: GeometricMethod | str) -> GeometricMethod:
    resolved = get_method(method)  # TypeError / ValueError for non-methods, and for a false EXPONENTIAL_EXIT
    if resolved.key == EXPONENTIAL_EXIT.key:  # by key: get_method checked the content, and a copy is the same method
        return resolved
    raise ValueError(
        f"the integrator {resolved.key!r} does not keep non-negativity for every step size (an explicit Euler step "
        f"makes x_i negative once h * (outflow rate of i) > 1); use {EXPONENTIAL_EXIT.key!r} "
        "(companion.structured.EXPONENTIAL_EXIT)."
    )


class PositiveMassPreservingLayer(StepSize, nn.Module):
    r"""Exponential exit steps of a learned compartmental field: keeps :math:`\mathbf 1^\top x` **and** :math:`x \ge 0`.

    The field is :class:`CompartmentalField`; each of the ``n_steps`` sub-steps of size
    :math:`\tau = h/\text{n\_steps}` is :func:`exponential_exit_step` with the rates evaluated at the
    current state.

    **Guarantee.** For every parameter value, every step :math:`h > 0` and every input :math:`x \ge 0`,
    the output is :math:`\ge 0` (exactly, also in floating point) and has the same sum as :math:`x` (up to
    rounding, :math:`(2\,\text{dim}+6)\,u` relative to the sum per sub-step, however large the rates, overflowing
    ones included): the rates are :math:`\ge 0` by construction, and each sub-step keeps both properties (see
    :func:`exponential_exit_step` for the proof). Inputs with negative entries keep their sum, not their sign.

    Parameters
    ----------
    dim : int
        Number of compartments, >= 2.
    hidden : int, optional
        Hidden width of the rate network (default ``4 * dim``).
    h : float
        Total step of the layer, > 0.
    n_steps : int
        Number of sub-steps.
    method : EXPONENTIAL_EXIT or "exponential_exit"
        The only method offered; every explicit Runge--Kutta method is refused, since none keeps the sign
        for every step size.
    activation : {"tanh", "sigmoid", "relu"}
        Activation of the rate network.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.

    Raises
    ------
    TypeError, ValueError
        On ``dim < 2``, a non-positive ``h``, a bad ``hidden`` or ``n_steps``, an unknown activation or a
        ``method`` other than the exponential exit step; in ``forward``, on a bad ``x``.

    References
    ----------
    J. R. Norris, *Markov Chains*, Cambridge University Press (1997), Ch. 2: with frozen rates, the step
    moves the mass as a continuous-time Markov chain whose first jump out of :math:`j` happens within
    time :math:`h` with probability :math:`1 - e^{-h\lambda_j}` and goes to :math:`i` with probability
    :math:`r_{ji}/\lambda_j`.
    """

    def __init__(
        self,
        dim: int,
        *,
        hidden: int | None = None,
        h: float = 0.1,
        n_steps: int = 1,
        method: GeometricMethod | str = "exponential_exit",
        activation: str = "tanh",
        learn_step: bool = False,
    ) -> None:
        super().__init__()
        self.method = _require_exit(method)
        self.dim = check_positive_int(dim, "dim")
        self.hidden = 4 * dim if hidden is None else check_positive_int(hidden, "hidden")
        self.n_steps = check_positive_int(n_steps, "n_steps")
        self.field = CompartmentalField(dim, self.hidden, activation=activation)
        self._init_step(h, learn_step)

    def _check_method(self, method: object) -> GeometricMethod:
        return _require_exit(method)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        tau = self._sub_step(x, self.n_steps)
        for _ in range(self.n_steps):
            x = _exit_step_unchecked(self.field.rates(x), x, tau)
        return x

    def extra_repr(self) -> str:
        return ", ".join(filter(None, [f"dim={self.dim}, hidden={self.hidden}", super().extra_repr()]))


def positive_mass_network(
    widths: Sequence[int] = (3, 10, 10, 15, 3),
    *,
    layers_per_block: int = 3,
    hidden: int = 16,
    h: float = 0.1,
    n_steps: int = 1,
    activation: str = "tanh",
    learn_step: bool = True,
) -> nn.Sequential:
    r"""Like :func:`~companion.structured.mass.mass_preserving_network`, with :class:`PositiveMassPreservingLayer` blocks.

    The lift (zero padding) and projection (adding the average of the dropped entries) keep both the sum
    and the sign, so the whole network maps non-negative inputs to non-negative outputs of the same sum,
    for every parameter value.

    Parameters
    ----------
    widths : sequence of int
        Input width, the widths of the blocks, output width; at least three entries.
    layers_per_block, hidden : int
        Layers per block and hidden width of each rate network.
    h, n_steps, activation, learn_step
        Passed to every :class:`PositiveMassPreservingLayer`.

    Returns
    -------
    nn.Sequential
        Maps ``(batch, widths[0])`` to ``(batch, widths[-1])``.

    Raises
    ------
    TypeError, ValueError
        On fewer than three widths, a width < 2 inside, or bad layer options.
    """

    def make_layer(width: int) -> nn.Module:
        return PositiveMassPreservingLayer(
            width, hidden=hidden, h=h, n_steps=n_steps, activation=activation, learn_step=learn_step
        )

    return _mass_network(widths, layers_per_block, make_layer)
