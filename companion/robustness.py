r"""Certified radii, an :math:`\ell_2` PGD attack, robustness curves and a combined report.

For a classifier :math:`\mathcal N` that is :math:`L`-Lipschitz in :math:`\ell_2` (every preprocessing
map counted in :math:`L`), with margin :math:`m(x)=\mathcal N(x)_{\hat k}-\max_{k\ne\hat k}\mathcal N(x)_k`,
every :math:`y` with :math:`\|y-x\|_2 < m(x)/(\sqrt2 L)` gets the class :math:`\hat k`
(Tsuzuku, Sato, Sugiyama 2018). The attack (Madry et al. 2018) only ever shows a lower bound on
the damage; the certificate an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_choice, check_positive, check_positive_int, check_tensor

__all__ = [
    "certified_radius", "certified_accuracy", "hinge_loss", "pgd_l2", "robust_accuracy",
    "robustness_curve", "RobustnessReport", "robustness_report", "certificate_check",
]

_ATTACK_LOSSES = ("margin", "cross_entropy")


def _check_data(model, inputs, labels) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module), got {type(model).__name__}.")
    check_tensor(inputs, "inputs", min_ndim=2)
    check_tensor(labels, "labels", ndim=1, floating=False)
    if len(inputs) != len(labels):
        raise ValueError(f"inputs and labels must have the same length, got {len(inputs)} and {len(labels)}.")


def _margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """f_y - max_{k != y} f_k per row (positive iff correctly classified)."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return true - others.max(1).values


def certified_radius(logits: torch.Tensor, *, lipschitz: float) -> torch.Tensor:
    r"""Certified :math:`\ell_2` radius :math:`m(x)/(\sqrt2 L)` of the predicted class, per row.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(batch, classes)``, ``classes >= 2``.
    lipschitz : float
        An upper bound :math:`L` on the network's Lipschitz constant, preprocessing included.

    Returns
    -------
    torch.Tensor
        Shape ``(batch,)``, >= 0.

    Raises
    ------
    TypeError, ValueError
        On malformed logits or a non-positive ``lipschitz``.
    """
    check_tensor(logits, "logits", ndim=2)
    if logits.shape[1] < 2:
        raise ValueError(f"logits need at least 2 classes, got shape {tuple(logits.shape)}.")
    check_positive(lipschitz, "lipschitz")
    top = logits.topk(2, dim=1).values
    return (top[:, 0] - top[:, 1]) / (math.sqrt(2.0) * lipschitz)


def certified_accuracy(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, lipschitz: float, epsilon: float
) -> float:
    """Fraction of points classified correctly with certified radius > ``epsilon`` (>= 0)."""
    _check_data(model, inputs, labels)
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}.")
    with torch.no_grad():
        logits = model(inputs)
    ok = (logits.argmax(1) == labels) & (certified_radius(logits, lipschitz=lipschitz) > epsilon)
    return float(ok.float().mean())


def hinge_loss(margin: float) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""A loss for :func:`companion.training.fit`: :math:`\frac1C\sum_{k\ne y}\max(0, m-(f_y-f_k))` (multi-class hinge)."""
    check_positive(margin, "margin")
    return lambda model, inputs, labels: F.multi_margin_loss(model(inputs), labels, margin=margin)


def _project(delta: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = torch.clamp(epsilon / norms, max=1.0)
    return delta * factor.view(-1, *[1] * (delta.ndim - 1))


def pgd_l2(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float | torch.Tensor,
    steps: int = 50,
    relative_step: float | None = None,
    restarts: int = 0,
    loss: str | Sequence[str] = ("margin", "cross_entropy"),
    bounds: tuple[float, float] | None = (0.0, 1.0),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Projected gradient ascent in the :math:`\ell_2` ball (Madry et al. 2018).

    Each iteration moves by ``relative_step * epsilon`` along the normalised gradient of the loss,
    projects onto :math:`\{\|\delta\|_2\le\varepsilon\}` and clips to ``bounds`` (which keeps the ball:
    clipping is a projection onto a box containing the input). The first run starts at
    :math:`\delta=0`, each restart at a uniform random point of the ball. A point counts as fooled as
    soon as any iterate of any run is misclassified.

    Parameters
    ----------
    model : nn.Module
        The classifier (in eval mode); it is not modified.
    inputs : torch.Tensor
        Shape ``(batch, ...)``.
    labels : torch.Tensor
        Shape ``(batch,)``, integer classes.
    epsilon : float or torch.Tensor
        Radius, >= 0, or one radius per point (shape ``(batch,)``).
    steps : int
        Iterations per run.
    relative_step : float, optional
        Step size over epsilon (default ``2.5 / steps``).
    restarts : int
        Additional runs from random starts, >= 0.
    loss : {"margin", "cross_entropy"} or a sequence of them
        Maximised objective: :math:`\max_{k\ne y}f_k - f_y` or the cross-entropy. With several, every
        run is repeated for each (the default uses both: each is stronger on some models).
    bounds : tuple of float or None
        Valid input range.
    seed : int
        Seed of the random starts.

    Returns
    -------
    tuple of torch.Tensor
        Adversarial inputs (the first fooling iterate, else the last one) and a boolean ``fooled`` mask.

    Raises
    ------
    TypeError, ValueError
        On malformed data, a negative radius, bad counts or an unknown loss.
    """
    _check_data(model, inputs, labels)
    check_positive_int(steps, "steps")
    losses = (loss,) if isinstance(loss, str) else tuple(loss)
    if not losses:
        raise ValueError("loss must name at least one objective.")
    for name in losses:
        check_choice(name, "loss", _ATTACK_LOSSES)
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
        raise ValueError(f"restarts must be an int >= 0, got {restarts!r}.")
    relative_step = 2.5 / steps if relative_step is None else check_positive(relative_step, "relative_step")
    eps = torch.as_tensor(epsilon, dtype=inputs.dtype, device=inputs.device).expand(len(inputs)).clone()
    if bool((eps < 0).any()):
        raise ValueError(f"epsilon must be >= 0, got {epsilon}.")
    shape = [-1] + [1] * (inputs.ndim - 1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fooled = model(inputs).argmax(1) != labels
    best = inputs.detach().clone()
    for run, objective_name in ((r, name) for r in range(restarts + 1) for name in losses):
        if run == 0:
            delta = torch.zeros_like(inputs)
        else:
            direction = torch.randn(inputs.shape, generator=gen, dtype=inputs.dtype).to(inputs.device)
            direction = direction / direction.flatten(1).norm(dim=1).view(shape)
            radius = torch.rand(len(inputs), generator=gen, dtype=inputs.dtype).to(inputs.device) ** (1 / inputs[0].numel())
            delta = direction * (radius * eps).view(shape)
        for _ in range(steps):
            delta.requires_grad_(True)
            candidate = inputs + delta
            if bounds is not None:
                candidate = candidate.clamp(*bounds)
            logits = model(candidate)
            wrong = (logits.argmax(1) != labels).detach()
            new = wrong & ~fooled
            best[new] = candidate.detach()[new]
            fooled = fooled | wrong
            objective = -_margins(logits, labels).sum() if objective_name == "margin" else F.cross_entropy(logits, labels, reduction="sum")
            (grad,) = torch.autograd.grad(objective, delta)
            with torch.no_grad():
                grad = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
                delta = _project(delta.detach() + (relative_step * eps).view(shape) * grad, eps)
                if bounds is not None:
                    delta = (inputs + delta).clamp(*bounds) - inputs
        with torch.no_grad():
            candidate = inputs + delta
            wrong = model(candidate).argmax(1) != labels
            best[wrong & ~fooled] = candidate[wrong & ~fooled]
            fooled = fooled | wrong
            best[~fooled] = candidate[~fooled]
    return best, fooled


def robust_accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, epsilon: float, **attack) -> float:
    """Fraction of points that :func:`pgd_l2` does not fool at radius ``epsilon`` (clean accuracy at 0)."""
    _, fooled = pgd_l2(model, inputs, labels, epsilon=epsilon, **attack)
    return float((~fooled).float().mean())


def robustness_curve(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, epsilons: Sequence[float], **attack
) -> list[float]:
    """Robust accuracy at each radius in ``epsilons`` (same attack options as :func:`pgd_l2`)."""
    if len(epsilons) == 0:
        raise ValueError("epsilons must hold at least one radius.")
    return [robust_accuracy(model, inputs, labels, epsilon=float(e), **attack) for e in epsilons]


@dataclass
class RobustnessReport:
    """Clean, certified and attacked accuracy at one radius (fractions in [0, 1])."""

    epsilon: float
    clean: float
    certified: float | None
    attacked: float
    lipschitz: float | None

    def __str__(self) -> str:
        cert = "   n/a" if self.certified is None else f"{100 * self.certified:6.1f}"
        return (f"eps={self.epsilon:.2f}: clean {100 * self.clean:5.1f}%  certified {cert}%  "
                f"attacked {100 * self.attacked:5.1f}%")


def robustness_report(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, epsilon: float, lipschitz: float | None = None,
    **attack,
) -> RobustnessReport:
    """Clean accuracy, certified accuracy (when a Lipschitz bound is given) and PGD accuracy at ``epsilon``.

    The certificate is a lower bound and the attack an upper bound on the true robust accuracy, so
    ``certified <= attacked <= clean`` up to the attack's weakness.
    """
    _check_data(model, inputs, labels)
    with torch.no_grad():
        clean = float((model(inputs).argmax(1) == labels).float().mean())
    certified = None if lipschitz is None else certified_accuracy(model, inputs, labels, lipschitz=lipschitz, epsilon=epsilon)
    attacked = robust_accuracy(model, inputs, labels, epsilon=epsilon, **attack)
    return RobustnessReport(float(epsilon), clean, certified, attacked, lipschitz)


def certificate_check(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, lipschitz: float, fraction: float = 0.999, **attack
) -> tuple[int, int]:
    """Attack every correctly classified point inside ``fraction`` of its certified radius.

    Returns
    -------
    tuple of int
        ``(attempts, found)``: points attacked and adversarial examples found (0 if the bound is right).
    """
    _check_data(model, inputs, labels)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    with torch.no_grad():
        logits = model(inputs)
    keep = (logits.argmax(1) == labels) & (certified_radius(logits, lipschitz=lipschitz) > 0)
    radii = fraction * certified_radius(logits, lipschitz=lipschitz)[keep]
    _, fooled = pgd_l2(model, inputs[keep], labels[keep], epsilon=radii, **attack)
    return int(keep.sum()), int(fooled.sum())
