r"""Certified radii, robust accuracy under attack, robustness curves and a combined report.

For a classifier :math:`\mathcal N` that is :math:`L`-Lipschitz in :math:`\ell_2` (every preprocessing
map counted in :math:`L`), with margin :math:`m(x)=\mathcal N(x)_{\hat k}-\max_{k\ne\hat k}\mathcal N(x)_k`,
every :math:`y` with :math:`\lVert y-x\rVert_2 < m(x)/(\sqrt2 L)` gets the class :math:`\hat k`
(Tsuzuku, Sato, Sugiyama 2018). The model-level functions (:func:`network_certified_radius`,
:func:`certified_accuracy`, :func:`certificate_check`, :func:`robustness_report`) also bound the rounding of the
floating-point evaluations at :math:`x` and :math:`y` from the values the forward pass computes
(``companion.lipschitz.rounding``), so their certificates hold for every parameter value. An attack
(:func:`apgd_l2`, :func:`pgd_l2`) only ever shows a lower bound on the damage, so the attacked accuracy is an
upper bound on the robust accuracy; the certificate is a lower bound. The attacks are re-exported here from
``companion.lipschitz.attacks``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import (
    call_model,
    check_choice,
    check_labels,
    check_not_empty,
    check_positive,
    check_tensor,
    dtype_mismatch,
)
from .attacks import _check_data, apgd_l2, pgd_l2
from .rounding import forward_rounding

__all__ = [
    "certified_radius",
    "network_certified_radius",
    "certified_accuracy",
    "rounding_allowance",
    "hinge_loss",
    "offset_cross_entropy",
    "ATTACKS",
    "robust_accuracy",
    "robustness_curve",
    "RobustnessReport",
    "robustness_report",
    "certificate_check",
]

#: The attacks that :func:`robust_accuracy` and the functions built on it accept by name.
ATTACKS = {"apgd": apgd_l2, "pgd": pgd_l2}


def rounding_allowance(dtype: torch.dtype) -> float:
    r"""The relative allowance :math:`\rho = 1024\,u` for rounding, :math:`u` the unit roundoff of ``dtype``.

    About :math:`1.2\times10^{-4}` in float32 and :math:`2.3\times10^{-13}` in float64. It enlarges the Lipschitz
    bound, :math:`(1+\rho)L`, for the rounding of the norms inside it (a backward-stable SVD is accurate to a few
    :math:`nu` in the largest singular value), and it is the logits-level allowance of :func:`certified_radius`.
    """
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}.")
    return 1024 * torch.finfo(dtype).eps


def _check_rounding(rounding) -> None:
    if rounding is not None and (
        isinstance(rounding, bool) or not isinstance(rounding, (int, float)) or not 0 <= rounding < 1
    ):
        raise ValueError(f"rounding must be a number in [0, 1), got {rounding!r}.")


def _radius(logits: torch.Tensor, reduction: torch.Tensor | float, scale: float) -> torch.Tensor:
    """``max(0, margin - reduction) / (sqrt(2) scale)`` in float64, rounded towards zero in the logits' dtype; 0
    where anything is not a number."""
    values = logits.detach().to(torch.float64)
    top = values.topk(2, dim=1).values
    margin = top[:, 0] - top[:, 1] - reduction
    margin = torch.where(torch.isnan(margin), 0.0, margin)
    exact = margin.clamp_min(0.0) / (math.sqrt(2.0) * scale)
    radius = exact.to(logits.dtype)
    return torch.where(radius.to(torch.float64) > exact, torch.nextafter(radius, torch.zeros_like(radius)), radius)


def certified_radius(logits: torch.Tensor, *, lipschitz: float, rounding: float | None = None) -> torch.Tensor:
    r"""Certified :math:`\ell_2` radius of the predicted class, per row, from logits alone.

    In exact arithmetic the radius is :math:`m(x)/(\sqrt2 L)`. Given only the logits, the rounding of the
    forward pass can be allowed for only in proportion to the logits' own size: the margin is reduced by
    :math:`\rho\,(1+\max_k\lvert f_k\rvert)` and :math:`L` increased to :math:`(1+\rho)L`, all in float64:

    .. math:: r(x) = \frac{\max\big(0,\ m(x) - \rho\,(1 + \max_k\lvert f_k(x)\rvert)\big)}{\sqrt2\,(1+\rho)\,L}.

    This covers a network whose inner values are not much larger than its logits; weights that make large
    inner values cancel (a bias of :math:`10^8` removed by a later one) make the float32 logits wrong by far
    more, and this radius is then not safe. :func:`network_certified_radius` (and :func:`certified_accuracy`,
    :func:`certificate_check`, :func:`robustness_report`) bound the rounding from the values the forward pass
    really computes and hold for every parameter value: use them when you have the model. The result is
    rounded towards zero in the dtype of ``logits``; rows that are not numbers get 0.

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
    _check_rounding(rounding)
    if rounding is None:
        rounding = rounding_allowance(logits.dtype)
    reduction = rounding * (1.0 + logits.detach().to(torch.float64).abs().max(1).values)
    return _radius(logits, reduction, (1.0 + rounding) * float(lipschitz))


def _certify(model, inputs: torch.Tensor, *, lipschitz: float, rounding: float | None):
    """The logits at ``inputs`` and their certified radii, the rounding bounded from the forward pass."""
    check_positive(lipschitz, "lipschitz")
    _check_rounding(rounding)
    logits, alpha, beta = forward_rounding(model, inputs, lipschitz=float(lipschitz), rounding=rounding)
    check_tensor(logits, "model(inputs)", ndim=2)
    if logits.shape[1] < 2:
        raise ValueError(f"the model must give at least 2 logits per input, got shape {tuple(logits.shape)}.")
    lipschitz_rounding = rounding_allowance(logits.dtype) if rounding is None else rounding
    scale = 1.0 + lipschitz_rounding
    return logits, _radius(logits, math.sqrt(2.0) * scale * alpha, scale * beta)


def network_certified_radius(
    model: nn.Module, inputs: torch.Tensor, *, lipschitz: float, rounding: float | None = None
) -> torch.Tensor:
    r"""Certified :math:`\ell_2` radius of the class that ``model`` predicts at each input, safe against rounding.

    Every float :math:`y` with :math:`\lVert y-x\rVert_2 < r(x)` is classified like :math:`x` by the model
    **evaluated in floating point** (the class of the logits ``model(inputs)``), for every parameter value:

    .. math:: r(x) = \frac{\max\big(0,\ m(x) - \sqrt2\,(1+\rho)\,\alpha(x)\big)}{\sqrt2\,(1+\rho)\,\beta},

    where :math:`m(x)` is the margin of the computed logits,
    :math:`\lVert\hat f(y)-\hat f(x)\rVert_2\le\alpha(x)+\beta\lVert y-x\rVert_2` bounds the difference of two
    evaluations (``companion.lipschitz.rounding.forward_rounding``: :math:`\alpha` twice the rounding of a
    forward pass at :math:`x`, bounded stage by stage from the sizes of the values each stage computes, and
    :math:`\beta = L` plus the growth of the rounding with :math:`y`), and :math:`\rho` =
    :func:`rounding_allowance` covers the rounding of the norms inside :math:`L`. For the modules of
    ``companion.lipschitz`` and ``Linear``, ReLU, LeakyReLU, tanh, Identity and Flatten in an ``nn.Sequential``
    the bound is proven (up to terms of order :math:`u^2`); a module it does not know is assumed to round by at
    most :math:`1024u` times the size of its input and output. For ordinary weights :math:`\alpha` is a few
    :math:`10^{-3}` in float32 and the radius close to :math:`m/(\sqrt2L)`; for weights whose inner values are
    huge it shrinks, down to 0 when the rounding could exceed the margin.

    Parameters
    ----------
    model : nn.Module
        The classifier; ``model(inputs)`` gives logits of shape ``(batch, classes)``, ``classes >= 2``.
    inputs : torch.Tensor
        Shape ``(batch, ...)``, floating point, in the model's dtype.
    lipschitz : float
        An upper bound :math:`L` on the Lipschitz constant of the model's exact function, preprocessing included.
    rounding : float, optional
        :math:`\rho_s` for every stage and :math:`\rho` (default: from the arithmetic, see above); 0 gives the
        exact-arithmetic formula :math:`m/(\sqrt2L)`.

    Returns
    -------
    torch.Tensor
        Shape ``(batch,)``, >= 0, in the logits' dtype (rounded towards zero); 0 where the logits are not numbers.

    Raises
    ------
    TypeError, ValueError
        On malformed inputs, inputs of another dtype than the model's, fewer than 2 logits, a non-positive
        ``lipschitz`` or a ``rounding`` outside [0, 1).
    """
    _check_model_inputs(model, inputs)
    return _certify(model, inputs, lipschitz=lipschitz, rounding=rounding)[1]


def _check_integer_inputs(model, inputs) -> None:
    """Integer inputs into a floating model: the error names both dtypes."""
    if isinstance(inputs, torch.Tensor) and not torch.is_floating_point(inputs):
        mismatch = dtype_mismatch(model, inputs)
        if mismatch is not None:
            raise mismatch


def _check_model_inputs(model, inputs: torch.Tensor) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module), got {type(model).__name__}.")
    _check_integer_inputs(model, inputs)
    check_tensor(inputs, "inputs", min_ndim=2)
    check_not_empty(inputs, "inputs")


def _check_batch(model, inputs: torch.Tensor, labels: torch.Tensor) -> None:
    """The checks of every function that takes a model, inputs and labels: kinds, lengths, at least one sample."""
    _check_integer_inputs(model, inputs)
    _check_data(model, inputs, labels)
    check_not_empty(inputs, "inputs")


def _check_classes(model, inputs: torch.Tensor, labels: torch.Tensor) -> None:
    """Evaluate the model (the inputs' dtype checked) and check the labels against its number of outputs."""
    with torch.no_grad():
        logits = call_model(model, inputs)
    check_labels(labels, logits.shape[-1])


def certified_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    lipschitz: float,
    epsilon: float,
    rounding: float | None = None,
) -> float:
    """Fraction of points classified correctly with :func:`network_certified_radius` > ``epsilon`` (>= 0).

    The radii bound the rounding of the forward pass from the values it computes, so the fraction is a lower
    bound on the robust accuracy of the model as evaluated in floating point, for every parameter value.

    Raises
    ------
    TypeError, ValueError
        On malformed or empty data, inputs of another dtype than the model's, labels outside the model's classes,
        a negative ``epsilon``, a non-positive ``lipschitz`` or a ``rounding`` outside [0, 1).
    """
    _check_batch(model, inputs, labels)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}.")
    logits, radius = _certify(model, inputs, lipschitz=lipschitz, rounding=rounding)
    check_labels(labels, logits.shape[1])
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


def offset_cross_entropy(
    offset: float, *, temperature: float = 0.25
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""The offset cross-entropy of Prach et al. (2024), for :func:`companion.training.fit`.

    The cross-entropy of the logits with the true one lowered by the offset :math:`\mu`, at temperature :math:`t`,
    scaled back by :math:`t`; for logits :math:`f\in\mathbb R^C` and label :math:`y`,

    .. math:: \ell(f, y) = t\,\mathrm{CE}\Big(\frac{f-\mu e_y}{t},\, y\Big)
              = t\log\Big(1+\sum_{k\ne y}\exp\frac{f_k-f_y+\mu}{t}\Big),

    averaged over the batch. With :math:`h = \max\big(0, \max_{k\ne y}(f_k-f_y+\mu)\big)`, the hinge on the
    largest rival logit, :math:`h\le\ell\le h+t\log C`: as :math:`t\to0` the loss is that hinge with margin
    :math:`\mu` (a margin above :math:`\sqrt2\,\varepsilon L` certifies radius :math:`\varepsilon`, so
    :math:`\mu=\sqrt2\,\varepsilon L` aims at :math:`\varepsilon`); a larger :math:`t` spreads the gradient over
    every rival and keeps widening margins beyond :math:`\mu`, where the hinge stops. :math:`\mu=0`,
    :math:`t=1` is the plain cross-entropy.

    Parameters
    ----------
    offset : float
        :math:`\mu\ge0`, in units of the logits.
    temperature : float
        :math:`t>0` (0.25 in Prach et al.).

    Returns
    -------
    callable
        ``loss(model, inputs, labels)``, a scalar tensor, as :func:`~companion.training.fit` calls it.

    Raises
    ------
    TypeError, ValueError
        If ``offset`` is not a finite number >= 0 or ``temperature`` not a finite number > 0; when called, on
        labels that are not integer classes of the model's outputs or inputs of another dtype than the model's.

    References
    ----------
    B. Prach, F. Brau, G. Buttazzo, C. H. Lampert, *1-Lipschitz layers compared: memory, speed, and certifiable
    robustness*, CVPR 2024.
    """
    if isinstance(offset, bool) or not isinstance(offset, (int, float)):
        raise TypeError(f"offset must be a number >= 0, got {type(offset).__name__} {offset!r}.")
    if not (math.isfinite(offset) and offset >= 0):
        raise ValueError(f"offset must be a finite number >= 0 (in units of the logits), got {offset!r}.")
    offset, temperature = float(offset), check_positive(temperature, "temperature")

    def loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_tensor(labels, "labels", ndim=1, floating=False)
        if torch.is_floating_point(labels) or torch.is_complex(labels) or labels.dtype == torch.bool:
            raise TypeError(
                f"labels must be an integer tensor of classes, got dtype {labels.dtype}; use labels.long()."
            )
        logits = call_model(model, inputs)
        labels = check_labels(labels.long(), logits.shape[-1])
        shifted = logits - offset * F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
        return temperature * F.cross_entropy(shifted / temperature, labels)

    return loss


def _attack(name: str):
    check_choice(name, "attack", tuple(ATTACKS))
    return ATTACKS[name]


def _attacked_fraction(model, inputs, labels, *, epsilon, attack: str, options) -> float:
    _, fooled = _attack(attack)(model, inputs, labels, epsilon=epsilon, **options)
    return int((~fooled).sum()) / len(fooled)


def robust_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float | torch.Tensor,
    attack: str = "apgd",
    **options,
) -> float:
    """Fraction of points that the attack does not fool at radius ``epsilon`` (the clean accuracy at 0).

    ``attack`` names an entry of :data:`ATTACKS` (``"apgd"``: :func:`apgd_l2`, ``"pgd"``: :func:`pgd_l2`);
    ``options`` are passed to it (``steps``, ``restarts``, ``bounds``, ``seed``, ...).

    Raises
    ------
    TypeError, ValueError
        On malformed or empty data, inputs of another dtype than the model's, labels outside the model's
        classes, an unknown attack or option, or anything the attack refuses.
    """
    _check_batch(model, inputs, labels)
    _attack(attack)
    _check_classes(model, inputs, labels)
    return _attacked_fraction(model, inputs, labels, epsilon=epsilon, attack=attack, options=options)


def robustness_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epsilons: Sequence[float],
    *,
    attack: str = "apgd",
    **options,
) -> list[float]:
    """Robust accuracy at each radius in ``epsilons`` (same attack and options as :func:`robust_accuracy`).

    Raises
    ------
    TypeError, ValueError
        On no radius, or anything :func:`robust_accuracy` refuses.
    """
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
        return (
            f"eps={self.epsilon:.2f}: clean {100 * self.clean:5.1f}%  certified {cert}%  "
            f"attacked ({self.attack}) {100 * self.attacked:5.1f}%"
        )


def robustness_report(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float,
    lipschitz: float | None = None,
    attack: str = "apgd",
    **options,
) -> RobustnessReport:
    """Clean accuracy, certified accuracy (when a Lipschitz bound is given) and attacked accuracy at ``epsilon``.

    The certificate (:func:`certified_accuracy`) is a lower bound and the attack an upper bound on the true robust
    accuracy, so ``certified <= attacked <= clean``.

    Raises
    ------
    TypeError, ValueError
        On anything :func:`certified_accuracy` or :func:`robust_accuracy` refuses.
    """
    _check_batch(model, inputs, labels)
    _attack(attack)
    with torch.no_grad():
        logits = call_model(model, inputs)
    check_labels(labels, logits.shape[-1])
    clean = int((logits.argmax(1) == labels).sum()) / len(labels)
    certified = (
        None if lipschitz is None else certified_accuracy(model, inputs, labels, lipschitz=lipschitz, epsilon=epsilon)
    )
    attacked = _attacked_fraction(model, inputs, labels, epsilon=epsilon, attack=attack, options=options)
    return RobustnessReport(float(epsilon), clean, certified, attacked, lipschitz, attack)


def certificate_check(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    lipschitz: float,
    fraction: float = 0.999,
    rounding: float | None = None,
    attack: str = "apgd",
    **options,
) -> tuple[int, int]:
    """Attack every correctly classified point inside ``fraction`` of its :func:`network_certified_radius`.

    Returns
    -------
    tuple of int
        ``(attempts, found)``: points attacked and adversarial examples found (0 if the bound is right).

    Raises
    ------
    TypeError, ValueError
        On malformed or empty data, inputs of another dtype than the model's, labels outside the model's classes,
        ``fraction`` outside (0, 1), a non-positive ``lipschitz``, an unknown attack or option.
    """
    _check_batch(model, inputs, labels)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}.")
    _attack(attack)
    logits, radius = _certify(model, inputs, lipschitz=lipschitz, rounding=rounding)
    check_labels(labels, logits.shape[1])
    keep = (logits.argmax(1) == labels) & (radius > 0)
    if not bool(keep.any()):
        return 0, 0
    _, fooled = _attack(attack)(model, inputs[keep], labels[keep], epsilon=fraction * radius[keep], **options)
    return int(keep.sum()), int(fooled.sum())
