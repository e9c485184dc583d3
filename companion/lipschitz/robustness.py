r"""Certified radii, robust accuracy under attack, robustness curves and a combined report.

For a classifier :math:`\mathcal N` that is :math:`L`-Lipschitz in :math:`\ell_2` (every preprocessing
map counted in :math:`L`), with margin :math:`m(x)=\mathcal N(x)_{\hat k}-\max_{k\ne\hat k}\mathcal N(x)_k`,
every :math:`y` with :math:`\lVert y-x\rVert_2 < m(x)/(\sqrt2 L)` gets the class :math:`\hat k`
(Tsuzuku, Sato, Sugiyama 2018). An attack (:func:`apgd_l2`, :func:`pgd_l2`) only ever shows a lower bound on
the damage, so the attacked accuracy is an upper bound on the robust accuracy; the certificate is a lower bound.
The attacks are re-exported here from ``companion.lipschitz.attacks``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_choice, check_positive, check_tensor
from .attacks import _check_data, apgd_checkpoints, apgd_l2, pgd_l2

__all__ = [
    "certified_radius", "certified_accuracy", "rounding_allowance", "hinge_loss", "pgd_l2", "apgd_l2",
    "apgd_checkpoints", "ATTACKS", "robust_accuracy", "robustness_curve", "RobustnessReport",
    "robustness_report", "certificate_check",
]

#: The attacks that :func:`robust_accuracy` and the functions built on it accept by name.
ATTACKS = {"apgd": apgd_l2, "pgd": pgd_l2}


def rounding_allowance(dtype: torch.dtype) -> float:
    r"""The relative allowance :math:`\rho = 1024\,u` for rounding, :math:`u` the unit roundoff of ``dtype``.

    About :math:`1.2\times10^{-4}` in float32 and :math:`2.3\times10^{-13}` in float64: far above the rounding
    of a forward pass through a small network (a few units of roundoff per layer), far below any radius of
    interest.
    """
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}.")
    return 1024 * torch.finfo(dtype).eps


def certified_radius(logits: torch.Tensor, *, lipschitz: float, rounding: float | None = None) -> torch.Tensor:
    r"""Certified :math:`\ell_2` radius of the predicted class, per row, safe against rounding.

    In exact arithmetic the radius is :math:`m(x)/(\sqrt2 L)`. The logits and :math:`L` are computed in
    floating point, so both are given an allowance :math:`\rho`: the margin is reduced by
    :math:`\rho\,(1+\max_k\lvert f_k\rvert)` (the forward pass's rounding) and :math:`L` is increased to
    :math:`(1+\rho)L` (the rounding of the norms in it), all in float64:

    .. math:: r(x) = \frac{\max\big(0,\ m(x) - \rho\,(1 + \max_k\lvert f_k(x)\rvert)\big)}{\sqrt2\,(1+\rho)\,L}.

    The result is rounded towards zero in the dtype of ``logits``.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(batch, classes)``, ``classes >= 2``.
    lipschitz : float
        An upper bound :math:`L` on the network's Lipschitz constant, preprocessing included.
    rounding : float, optional
        :math:`\rho` (default :func:`rounding_allowance` of the logits' dtype); 0 gives the exact-arithmetic
        formula.

    Returns
    -------
    torch.Tensor
        Shape ``(batch,)``, >= 0.

    Raises
    ------
    TypeError, ValueError
        On malformed logits, a non-positive ``lipschitz`` or a negative ``rounding``.
    """
    check_tensor(logits, "logits", ndim=2)
    if logits.shape[1] < 2:
        raise ValueError(f"logits need at least 2 classes, got shape {tuple(logits.shape)}.")
    check_positive(lipschitz, "lipschitz")
    if rounding is None:
        rounding = rounding_allowance(logits.dtype)
    elif isinstance(rounding, bool) or not isinstance(rounding, (int, float)) or not 0 <= rounding < 1:
        raise ValueError(f"rounding must be a number in [0, 1), got {rounding!r}.")
    values = logits.detach().to(torch.float64)
    top = values.topk(2, dim=1).values
    margin = top[:, 0] - top[:, 1] - rounding * (1.0 + values.abs().max(1).values)
    exact = margin.clamp_min(0.0) / (math.sqrt(2.0) * (1.0 + rounding) * float(lipschitz))
    radius = exact.to(logits.dtype)
    return torch.where(radius.to(torch.float64) > exact, torch.nextafter(radius, torch.zeros_like(radius)), radius)


def certified_accuracy(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, lipschitz: float, epsilon: float,
    rounding: float | None = None,
) -> float:
    """Fraction of points classified correctly with :func:`certified_radius` > ``epsilon`` (>= 0)."""
    _check_data(model, inputs, labels)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}.")
    with torch.no_grad():
        logits = model(inputs)
    radius = certified_radius(logits, lipschitz=lipschitz, rounding=rounding)
    return int(((logits.argmax(1) == labels) & (radius > epsilon)).sum()) / len(labels)  # exact fraction


def hinge_loss(margin: float) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""The multi-class hinge loss :math:`\frac1C\sum_{k\ne y}\max(0, m-(f_y-f_k))`, for :func:`companion.training.fit`.

    Raises
    ------
    TypeError, ValueError
        If ``margin`` is not a number > 0.
    """
    check_positive(margin, "margin")
    return lambda model, inputs, labels: F.multi_margin_loss(model(inputs), labels, margin=margin)


def _attack(name: str):
    check_choice(name, "attack", tuple(ATTACKS))
    return ATTACKS[name]


def robust_accuracy(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, epsilon: float | torch.Tensor,
    attack: str = "apgd", **options,
) -> float:
    """Fraction of points that the attack does not fool at radius ``epsilon`` (the clean accuracy at 0).

    ``attack`` names an entry of :data:`ATTACKS` (``"apgd"``: :func:`apgd_l2`, ``"pgd"``: :func:`pgd_l2`);
    ``options`` are passed to it (``steps``, ``restarts``, ``bounds``, ``seed``, ...).

    Raises
    ------
    TypeError, ValueError
        On an unknown attack or option, or anything the attack refuses.
    """
    _, fooled = _attack(attack)(model, inputs, labels, epsilon=epsilon, **options)
    return int((~fooled).sum()) / len(fooled)


def robustness_curve(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, epsilons: Sequence[float], *,
    attack: str = "apgd", **options,
) -> list[float]:
    """Robust accuracy at each radius in ``epsilons`` (same attack and options as :func:`robust_accuracy`)."""
    if len(epsilons) == 0:
        raise ValueError("epsilons must hold at least one radius.")
    return [robust_accuracy(model, inputs, labels, epsilon=float(e), attack=attack, **options) for e in epsilons]


@dataclass
class RobustnessReport:
    """Clean, certified and attacked accuracy at one radius (fractions in [0, 1])."""

    epsilon: float
    clean: float
    certified: float | None
    attacked: float
    lipschitz: float | None
    attack: str = "apgd"

    def __str__(self) -> str:
        cert = "   n/a" if self.certified is None else f"{100 * self.certified:6.1f}"
        return (f"eps={self.epsilon:.2f}: clean {100 * self.clean:5.1f}%  certified {cert}%  "
                f"attacked ({self.attack}) {100 * self.attacked:5.1f}%")


def robustness_report(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, epsilon: float, lipschitz: float | None = None,
    attack: str = "apgd", **options,
) -> RobustnessReport:
    """Clean accuracy, certified accuracy (when a Lipschitz bound is given) and attacked accuracy at ``epsilon``.

    The certificate is a lower bound and the attack an upper bound on the true robust accuracy, so
    ``certified <= attacked <= clean``.
    """
    _check_data(model, inputs, labels)
    with torch.no_grad():
        clean = int((model(inputs).argmax(1) == labels).sum()) / len(labels)
    certified = None if lipschitz is None else certified_accuracy(
        model, inputs, labels, lipschitz=lipschitz, epsilon=epsilon
    )
    attacked = robust_accuracy(model, inputs, labels, epsilon=epsilon, attack=attack, **options)
    return RobustnessReport(float(epsilon), clean, certified, attacked, lipschitz, attack)


def certificate_check(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, lipschitz: float, fraction: float = 0.999,
    rounding: float | None = None, attack: str = "apgd", **options,
) -> tuple[int, int]:
    """Attack every correctly classified point inside ``fraction`` of its certified radius.

    Returns
    -------
    tuple of int
        ``(attempts, found)``: points attacked and adversarial examples found (0 if the bound is right).

    Raises
    ------
    TypeError, ValueError
        On malformed data, ``fraction`` outside (0, 1), an unknown attack or option.
    """
    _check_data(model, inputs, labels)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}.")
    with torch.no_grad():
        logits = model(inputs)
    radius = certified_radius(logits, lipschitz=lipschitz, rounding=rounding)
    keep = (logits.argmax(1) == labels) & (radius > 0)
    _, fooled = _attack(attack)(model, inputs[keep], labels[keep], epsilon=fraction * radius[keep], **options)
    return int(keep.sum()), int(fooled.sum())
