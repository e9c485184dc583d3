r"""Contractive and expansive switching layers (Celledoni et al. 2023) and their admissible step region.

An expansive step :math:`x + h_E A_E^\top\Sigma(A_E x + b_E)` is :math:`(1+h_E)`-Lipschitz; :math:`S` contractive
sub-steps :math:`y - \frac{h_C}{S}A_C^\top\Sigma(A_C y + b_C)` have the Lipschitz bound
:func:`contractive_factor`. With :math:`A_C, A_E` orthogonal and :math:`\Sigma` the LeakyReLU of slope
:math:`a`, the pair is 1-Lipschitz on the admissible region :func:`switching_lipschitz_bound` :math:`\le 1`.
The public names are re-exported by :mod:`companion.lipschitz`.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_positive_int, check_tensor
from .._settings import FixedSettings
from .inference import DerivedCache

__all__ = [
    "contractive_factor",
    "switching_lipschitz_bound",
    "admissible_expansive_step",
    "SKEW_LIMIT",
    "SwitchingLayer",
]


def contractive_factor(h, *, slope: float = 0.5, n_steps: int = 2):
    r"""Lipschitz bound :math:`\big(1 - 2a u + u^2\big)^{S/2}`, :math:`u = h_C/S`, of :math:`S` contractive sub-steps.

    Each sub-step :math:`y\mapsto y - uA^\top\Sigma(Ay+b)`, with :math:`A` orthogonal and :math:`\Sigma` of slopes
    in :math:`[a, 1]`, satisfies
    :math:`\lVert\Delta y - uA^\top\Delta\Sigma\rVert^2 \le (1 - 2au + u^2)\lVert\Delta y\rVert^2`, because
    :math:`\langle\Delta\Sigma, A\Delta y\rangle\ge a\lVert\Delta y\rVert^2` and
    :math:`\lVert A^\top\Delta\Sigma\rVert\le\lVert\Delta y\rVert`. The bound is at most 1 exactly for
    :math:`0\le h_C\le 2aS`. Works on floats and tensors (``h`` >= 0).
    """
    u = h / n_steps
    return (1.0 - 2.0 * slope * u + u * u) ** (n_steps / 2)


def switching_lipschitz_bound(h_contractive, h_expansive, *, slope: float = 0.5, n_steps: int = 2):
    r"""Bound :math:`(1+h_E)\,(1-2a h_C/S+h_C^2/S^2)^{S/2}` of an expansive step, then :math:`S` contractive sub-steps.

    The pair :math:`(h_C, h_E)` is admissible (the composition is 1-Lipschitz) when this is :math:`\le 1`.
    """
    return (1.0 + h_expansive) * contractive_factor(h_contractive, slope=slope, n_steps=n_steps)


def admissible_expansive_step(h_contractive, *, slope: float = 0.5, n_steps: int = 2):
    r"""The largest admissible :math:`h_E = 1/\text{contractive\_factor}(h_C) - 1` for a given :math:`h_C`.

    The upper edge of the admissible region; it is largest, :math:`1/(1-a^2)^{S/2} - 1`, at :math:`h_C = aS`.
    """
    return 1.0 / contractive_factor(h_contractive, slope=slope, n_steps=n_steps) - 1.0


#: Entries of the skew matrix :math:`R - R^\top` are clamped to this size before the exponential (a clamp keeps a
#: matrix skew): beyond it the float32 exponential overflows, and no trained layer comes near it.
SKEW_LIMIT = 1e4


def _orthogonal(raw: torch.Tensor) -> torch.Tensor:
    r"""The orthogonal factor of :math:`\exp(K)`, :math:`K = \mathrm{clamp}(R - R^\top)`, exact in floating point.

    :math:`\exp(K)` is orthogonal in exact arithmetic, but the floating-point exponential of a large skew matrix is
    not (float32, entries of size :math:`10^5`: :math:`\lVert\exp(K)\rVert_2 \approx 1.3`), and the layer's bound
    rests on orthogonality. A Householder QR returns a factor :math:`Q` orthogonal to rounding for every finite
    input; the signs of :math:`R`'s diagonal make :math:`Q = \exp(K)` whenever :math:`\exp(K)` is orthogonal.
    """
    skew = (raw - raw.T).clamp(-SKEW_LIMIT, SKEW_LIMIT)
    q, r = torch.linalg.qr(torch.linalg.matrix_exp(skew))
    signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(q.dtype)
    return q * signs


class SwitchingLayer(DerivedCache, FixedSettings, nn.Module):
    r"""An expansive step, then :math:`S` contractive sub-steps, with the steps kept admissible.

    .. math:: x\mapsto \big(\Psi_C^{h_C/S}\big)^S\big(x + h_E A_E^\top\Sigma(A_E x + b_E)\big),\qquad
       \Psi_C^{u}(y) = y - uA_C^\top\Sigma(A_C y + b_C),

    with :math:`\Sigma` the LeakyReLU of slope :math:`a` and :math:`A_C, A_E` orthogonal (:math:`\exp` of skew
    matrices, made orthogonal to rounding by a QR step, so that float32 rounding of a large exponential cannot
    make them expansive; the skew entries are clamped to ``SKEW_LIMIT``). ``forward`` clamps :math:`h_C` to
    ``contractive_range`` and :math:`h_E` to
    :math:`[0, \text{admissible\_expansive\_step}(h_C)]`, so the layer is 1-Lipschitz in :math:`\ell_2` for
    every parameter value.

    Parameters
    ----------
    dim : int
        State dimension; inputs have shape ``(batch, dim)``.
    contractive_range : tuple of float
        Interval of :math:`h_C` (the paper's ``(0.11, 1.89)``), inside :math:`(0, 2aS]`.
    slope : float
        :math:`a\in(0, 1]`.
    n_steps : int
        :math:`S`.

    Raises
    ------
    TypeError, ValueError
        On a bad size, slope or range.
    """

    _sizes = ("dim",)
    _settings = ("contractive_range", "slope", "n_steps")

    def __init__(
        self, dim: int, *, contractive_range: tuple[float, float] = (0.11, 1.89), slope: float = 0.5, n_steps: int = 2
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self._configure(contractive_range=contractive_range, slope=slope, n_steps=n_steps)
        self.raw_contractive = nn.Parameter(torch.zeros(dim, dim))
        self.raw_expansive = nn.Parameter(torch.zeros(dim, dim))
        nn.init.normal_(self.raw_contractive, std=0.1 / math.sqrt(dim))
        nn.init.normal_(self.raw_expansive, std=0.1 / math.sqrt(dim))
        self.bias_contractive = nn.Parameter(torch.zeros(dim))
        self.bias_expansive = nn.Parameter(torch.zeros(dim))
        self.raw_h_contractive = nn.Parameter(torch.tensor(1.0))
        self.raw_h_expansive = nn.Parameter(torch.tensor(0.05))

    def _configure(self, *, contractive_range, slope, n_steps) -> None:
        n_steps = check_positive_int(n_steps, "n_steps")
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 < slope <= 1:
            raise ValueError(f"slope must be a number in (0, 1], got {slope!r}.")
        if not (isinstance(contractive_range, (tuple, list)) and len(contractive_range) == 2):
            raise TypeError(f"contractive_range must be a pair (low, high), got {contractive_range!r}.")
        low, high = contractive_range
        if not 0 < low < high <= 2 * slope * n_steps:
            raise ValueError(
                f"contractive_range must satisfy 0 < low < high <= 2 * slope * n_steps = "
                f"{2 * slope * n_steps} (contractive factor <= 1), got {contractive_range}."
            )
        self.contractive_range, self.slope, self.n_steps = (float(low), float(high)), float(slope), n_steps

    def steps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The admissible :math:`(h_C, h_E)` used in ``forward``."""
        h_c = self.raw_h_contractive.clamp(*self.contractive_range)
        h_e_max = admissible_expansive_step(h_c, slope=self.slope, n_steps=self.n_steps)
        return h_c, torch.minimum(self.raw_h_expansive.abs(), h_e_max)

    def lipschitz_bound(self) -> float:
        """The product bound at the current steps (<= 1)."""
        h_c, h_e = self.steps()
        return float(switching_lipschitz_bound(h_c, h_e, slope=self.slope, n_steps=self.n_steps).detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        h_c, h_e = self.steps()
        raw_e, raw_c = self.raw_expansive, self.raw_contractive
        a_e, a_c = self.derived("orthogonal", lambda: (_orthogonal(raw_e), _orthogonal(raw_c)), raw_e, raw_c)
        x = x + h_e * (F.leaky_relu(x @ a_e.T + self.bias_expansive, self.slope) @ a_e)
        u = h_c / self.n_steps
        for _ in range(self.n_steps):
            x = x - u * (F.leaky_relu(x @ a_c.T + self.bias_contractive, self.slope) @ a_c)
        return x
