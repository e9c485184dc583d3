r""":math:`\ell_2` attacks: projected gradient ascent (PGD) and its step-size-free variant APGD.

Both search the ball :math:`\{\lVert\delta\rVert_2\le\varepsilon\}` around each input for a misclassified point;
a point counts as fooled as soon as any iterate of any run is misclassified, so they report an upper bound on
the robust accuracy. Neither changes the data unless asked: inputs are clipped to a box only when ``bounds`` is
given, and then inputs outside the box are an error. The public names are re-exported by
:mod:`companion.lipschitz.robustness`.

References
----------
A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu, *Towards deep learning models resistant to adversarial
attacks*, ICLR (2018). F. Croce, M. Hein, *Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks*, ICML (2020).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import (
    check_choice,
    check_labels,
    check_not_empty,
    check_positive,
    check_positive_int,
    check_scalar,
    check_tensor,
    dtype_mismatch,
)
from .inference import inputs_only

__all__ = ["pgd_l2", "apgd_l2", "apgd_checkpoints", "adversarial_loss", "AdversarialLoss", "ATTACK_LOSSES"]

#: The objectives of :func:`pgd_l2`.
ATTACK_LOSSES = ("margin", "cross_entropy")


def _check_data(model, inputs, labels) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module), got {type(model).__name__}.")
    check_tensor(inputs, "inputs", min_ndim=2)
    check_tensor(labels, "labels", ndim=1, floating=False)
    if torch.is_floating_point(labels) or torch.is_complex(labels) or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor of classes, got dtype {labels.dtype}; use labels.long().")
    if len(inputs) != len(labels):
        raise ValueError(f"inputs and labels must have the same length, got {len(inputs)} and {len(labels)}.")


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}.")
    return value


def _radii(epsilon, inputs: torch.Tensor) -> torch.Tensor:
    """One radius per input (a copy), checked to be finite and >= 0."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, torch.Tensor)):
        raise TypeError(f"epsilon must be a number or a tensor of radii, got {type(epsilon).__name__}.")
    eps = torch.as_tensor(epsilon, dtype=inputs.dtype, device=inputs.device)
    if eps.ndim > 1 or (eps.ndim == 1 and len(eps) != len(inputs)):
        raise ValueError(f"epsilon must be a number or have shape ({len(inputs)},), got shape {tuple(eps.shape)}.")
    if not bool(torch.isfinite(eps).all()) or bool((eps < 0).any()):
        raise ValueError(f"epsilon must be >= 0 and finite, got {epsilon}.")
    return eps.expand(len(inputs)).clone()


def _check_bounds(bounds, inputs: torch.Tensor) -> tuple[float, float] | None:
    """``None``, or a valid box ``(low, high)`` that contains every input."""
    if bounds is None:
        return None
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise TypeError(f"bounds must be None or a pair (low, high), got {bounds!r}.")
    low, high = float(bounds[0]), float(bounds[1])
    if not low < high:
        raise ValueError(f"bounds must satisfy low < high, got {bounds!r}.")
    below, above = float(inputs.min()), float(inputs.max())
    if below < low or above > high:
        raise ValueError(
            f"the inputs lie in [{below:.4g}, {above:.4g}], outside bounds=({low:g}, {high:g}); clipping would "
            "change the data. Pass the true range of your inputs, or bounds=None (no clipping)."
        )
    return low, high


def _margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """f_y - max_{k != y} f_k per row (positive iff correctly classified)."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return true - others.max(1).values


def _per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *[1] * (like.ndim - 1))


def _normalized(grad: torch.Tensor) -> torch.Tensor:
    return grad / _per_row(grad.flatten(1).norm(dim=1).clamp_min(1e-12), grad)


def _project(delta: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
    """Radial projection of each row of ``delta`` onto the ball of its radius."""
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * _per_row(torch.clamp(epsilon / norms, max=1.0), delta)


def _feasible(candidate: torch.Tensor, inputs: torch.Tensor, eps: torch.Tensor, bounds) -> torch.Tensor:
    """A point of the ball around ``inputs`` (and of the box, which contains ``inputs``) near ``candidate``."""
    candidate = inputs + _project(candidate - inputs, eps)
    return candidate if bounds is None else candidate.clamp(*bounds)


def _random_start(inputs: torch.Tensor, eps: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A uniform random point of each ball (direction uniform on the sphere, radius eps * U^(1/d))."""
    direction = torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype).to(inputs.device)
    radius = torch.rand(len(inputs), generator=generator, dtype=inputs.dtype).to(inputs.device)
    radius = radius ** (1 / inputs[0].numel()) * eps
    return inputs + _per_row(radius, inputs) * _normalized(direction)


def _prepare_attack(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float | torch.Tensor,
    bounds: tuple[float, float] | None,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[float, float] | None, torch.Generator, torch.Tensor]:
    """The checked radii and box, the generator of the random starts, and the clean logits: returns
    ``(inputs, labels, radii, bounds, generator, logits)`` with the inputs detached and the labels ``long``."""
    eps = _radii(epsilon, inputs)
    bounds = _check_bounds(bounds, inputs)
    generator = torch.Generator().manual_seed(seed)
    inputs, labels = inputs.detach(), labels.long()
    with torch.no_grad():
        logits = model(inputs)
    return inputs, labels, eps, bounds, generator, logits


@dataclass
class _Fooled:
    """Per row: whether an iterate was misclassified yet (``found``), and the first one that was (``adversarial``;
    until then the row's initial value)."""

    labels: torch.Tensor
    found: torch.Tensor
    adversarial: torch.Tensor

    def record(self, points: torch.Tensor, logits: torch.Tensor) -> None:
        """Note the rows of ``points`` that the ``logits`` misclassify, keeping the first such point of each row."""
        wrong = logits.argmax(1) != self.labels
        self.adversarial[wrong & ~self.found] = points[wrong & ~self.found]
        self.found |= wrong


def _check_losses(loss: str | Sequence[str]) -> tuple[str, ...]:
    """The objectives of :func:`pgd_l2` as a non-empty tuple of names from :data:`ATTACK_LOSSES`."""
    losses = (loss,) if isinstance(loss, str) else tuple(loss)
    if not losses:
        raise ValueError("loss must name at least one objective.")
    for name in losses:
        check_choice(name, "loss", ATTACK_LOSSES)
    return losses


def _objective_gradient(
    model: nn.Module, points: torch.Tensor, labels: torch.Tensor, objective: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits at ``points`` and the gradient there of the summed objective (negative margin or cross-entropy)."""
    with torch.enable_grad():
        points = points.detach().requires_grad_(True)
        logits = model(points)
        if objective == "margin":
            value = -_margins(logits, labels).sum()
        else:
            value = F.cross_entropy(logits, labels, reduction="sum")
        (grad,) = torch.autograd.grad(value, points)
    return logits, grad


def _pgd_run(
    model: nn.Module,
    start: torch.Tensor,
    inputs: torch.Tensor,
    eps: torch.Tensor,
    fooled: _Fooled,
    *,
    objective: str,
    steps: int,
    relative_step: float,
    bounds: tuple[float, float] | None,
) -> torch.Tensor:
    """One PGD run from ``start``: ``steps + 1`` points checked by ``fooled``, each followed by a projected step of
    ``relative_step * eps`` along the normalised gradient; returns the point after the last step."""
    candidate = start
    for _ in range(steps + 1):
        logits, grad = _objective_gradient(model, candidate, fooled.labels, objective)
        with torch.no_grad():
            fooled.record(candidate, logits)
            step = _per_row(relative_step * eps, inputs) * _normalized(grad)
            candidate = _feasible(candidate + step, inputs, eps, bounds)
    return candidate


def _inputs_only(attack):
    """Run ``attack`` in :func:`~companion.lipschitz.inference.inputs_only`: it differentiates with respect to the
    inputs only, so a layer in eval mode reuses what it derives from its weights."""

    @functools.wraps(attack)
    def run(*args, **kwargs):
        with inputs_only():
            return attack(*args, **kwargs)

    return run


@_inputs_only
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
    bounds: tuple[float, float] | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Projected gradient ascent in the :math:`\ell_2` ball with a fixed step (Madry et al. 2018).

    Each iteration moves by ``relative_step * epsilon`` along the normalised gradient of the loss and
    projects onto :math:`\{\lVert\delta\rVert_2\le\varepsilon\}` (and onto the box ``bounds`` when given,
    which keeps the ball). The first run starts at :math:`\delta=0`, each restart at a uniform random point
    of the ball. For a stronger attack with no step size to tune, use :func:`apgd_l2`.

    Parameters
    ----------
    model : nn.Module
        The classifier (put it in eval mode); it is not modified.
    inputs : torch.Tensor
        Shape ``(batch, ...)``.
    labels : torch.Tensor
        Shape ``(batch,)``, integer classes.
    epsilon : float or torch.Tensor
        Radius, >= 0, or one radius per point (shape ``(batch,)``). At radius 0 nothing is changed.
    steps : int
        Iterations per run.
    relative_step : float, optional
        Step size over epsilon (default ``2.5 / steps``).
    restarts : int
        Additional runs from random starts, >= 0.
    loss : {"margin", "cross_entropy"} or a sequence of them
        Maximised objective: :math:`\max_{k\ne y}f_k - f_y` or the cross-entropy. With several, every
        run is repeated for each.
    bounds : tuple of float or None
        Valid input range, e.g. ``(0.0, 1.0)`` for pixels; ``None`` (the default) never clips.
    seed : int
        Seed of the random starts.

    Returns
    -------
    tuple of torch.Tensor
        Adversarial inputs (the first fooling iterate, else the last one) and a boolean ``fooled`` mask
        (true also for points misclassified without any perturbation).

    Raises
    ------
    TypeError, ValueError
        On malformed data, a negative radius, bad counts, an unknown loss, or inputs outside ``bounds``.
    """
    _check_data(model, inputs, labels)
    check_positive_int(steps, "steps")
    losses = _check_losses(loss)
    _check_count(restarts, "restarts")
    relative_step = 2.5 / steps if relative_step is None else check_positive(relative_step, "relative_step")
    inputs, labels, eps, bounds, generator, logits = _prepare_attack(
        model, inputs, labels, epsilon=epsilon, bounds=bounds, seed=seed
    )
    fooled = logits.argmax(1) != labels
    best = inputs.detach().clone()
    attacked = eps > 0
    x, y, radius = inputs[attacked].detach(), labels[attacked], eps[attacked]
    if len(x) == 0:
        return best, fooled
    fooling = _Fooled(y, fooled[attacked].clone(), x.clone())
    for run, objective in ((r, name) for r in range(restarts + 1) for name in losses):
        start = x if run == 0 else _feasible(_random_start(x, radius, generator), x, radius, bounds)
        candidate = _pgd_run(
            model,
            start,
            x,
            radius,
            fooling,
            objective=objective,
            steps=steps,
            relative_step=relative_step,
            bounds=bounds,
        )
    fooling.adversarial[~fooling.found] = candidate.detach()[~fooling.found]
    best[attacked], fooled[attacked] = fooling.adversarial, fooling.found
    return best, fooled


def apgd_checkpoints(steps: int) -> list[int]:
    r"""The iterations at which APGD may halve its step: :math:`\lceil p_j N\rceil` for
    :math:`p_0=0,\ p_1=0.22,\ p_{j+1}=p_j+\max(p_j-p_{j-1}-0.03,\ 0.06)` (Croce and Hein 2020)."""
    fractions = [0.0, 0.22]
    while fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06) <= 1:
        fractions.append(fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06))
    return sorted({math.ceil(round(p * steps, 9)) for p in fractions[1:]} - {0})


def _apgd_run(model, inputs, labels, targets, eps, *, steps: int, bounds, start):
    """One APGD run per row (untargeted cross-entropy where ``targets < 0``, else the targeted margin
    :math:`f_t - f_y`). Returns the rows' ``found`` mask and their first misclassified iterates."""
    targeted = targets >= 0

    def evaluate(point):
        with torch.enable_grad():
            point = point.detach().requires_grad_(True)
            logits = model(point)
            cross_entropy = F.cross_entropy(logits, labels, reduction="none")
            true = logits.gather(1, labels[:, None]).squeeze(1)
            margin = logits.gather(1, targets.clamp_min(0)[:, None]).squeeze(1) - true
            value = torch.where(targeted, margin, cross_entropy)
            (grad,) = torch.autograd.grad(value.sum(), point)
        return value.detach(), logits.detach(), grad

    fooled = _Fooled(labels, torch.zeros(len(inputs), dtype=torch.bool, device=inputs.device), inputs.clone())
    rows = lambda mask: _per_row(mask, inputs)  # noqa: E731
    x = _feasible(start, inputs, eps, bounds)
    value, logits, grad = evaluate(x)
    fooled.record(x, logits)
    x_previous, best_value, x_best, grad_best = x, value, x.clone(), grad.clone()
    step = 2.0 * eps
    increases = torch.zeros_like(eps)
    value_at_checkpoint, step_at_checkpoint, last_checkpoint = best_value.clone(), step.clone(), 0
    checkpoints = set(apgd_checkpoints(steps))
    for iteration in range(1, steps + 1):
        with torch.no_grad():
            z = _feasible(x + _per_row(step, x) * _normalized(grad), inputs, eps, bounds)
            if iteration > 1:  # heavy-ball momentum 0.75 (the first step has none)
                z = _feasible(x + 0.75 * (z - x) + 0.25 * (x - x_previous), inputs, eps, bounds)
        x_previous = x
        new_value, logits, grad = evaluate(z)
        with torch.no_grad():
            fooled.record(z, logits)
            increases += (new_value > value).to(eps.dtype)
            x, value = z, new_value
            improved = value > best_value
            best_value = torch.where(improved, value, best_value)
            x_best = torch.where(rows(improved), x, x_best)
            grad_best = torch.where(rows(improved), grad, grad_best)
            if iteration in checkpoints:
                period = iteration - last_checkpoint
                stalled = (step == step_at_checkpoint) & (best_value <= value_at_checkpoint)
                halve = (increases < 0.75 * period) | stalled
                step = torch.where(halve, step / 2, step)
                # restart the halved rows from their best point, without momentum
                x = torch.where(rows(halve), x_best, x)
                x_previous = torch.where(rows(halve), x_best, x_previous)
                grad = torch.where(rows(halve), grad_best, grad)
                value = torch.where(halve, best_value, value)
                increases.zero_()
                value_at_checkpoint, step_at_checkpoint, last_checkpoint = best_value.clone(), step.clone(), iteration
    return fooled.found, fooled.adversarial


def _apgd_rows(rows: torch.Tensor, ranked: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of one round's runs and their targets: each row once, untargeted (target -1), when ``ranked`` is
    ``None``; else each row once per target class of ``ranked`` ``(batch, targets)``, all targeted runs together."""
    if ranked is None:
        return rows, torch.full_like(rows, -1)
    return rows.repeat(ranked.shape[1]), ranked[rows].T.reshape(-1)


@_inputs_only
def apgd_l2(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float | torch.Tensor,
    steps: int = 100,
    restarts: int = 0,
    targets: int = 9,
    bounds: tuple[float, float] | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""APGD in the :math:`\ell_2` ball: a step-size-free attack with momentum (Croce and Hein 2020).

    Each run starts with the step :math:`\eta = 2\varepsilon`, moves along the normalised gradient with
    heavy-ball momentum 0.75 and projects onto the ball (and the box ``bounds`` when given). At the
    checkpoints :func:`apgd_checkpoints` it halves :math:`\eta` and restarts from the best point found when
    fewer than 75 % of the steps since the last checkpoint increased the objective, or when neither the
    step nor the best objective changed. Per restart, one run maximises the cross-entropy, then one run per
    target class :math:`t` (the ``targets`` highest-scoring wrong classes at the clean input) maximises the
    targeted margin :math:`f_t(x+\delta) - f_y(x+\delta)`, on the points not fooled yet.

    Parameters
    ----------
    model : nn.Module
        The classifier (put it in eval mode); it is not modified.
    inputs : torch.Tensor
        Shape ``(batch, ...)``.
    labels : torch.Tensor
        Shape ``(batch,)``, integer classes.
    epsilon : float or torch.Tensor
        Radius, >= 0, or one radius per point (shape ``(batch,)``). At radius 0 nothing is changed.
    steps : int
        Iterations per run.
    restarts : int
        Additional rounds of runs, each from uniform random points of the balls, >= 0 (the first round
        starts at the inputs).
    targets : int
        Number of targeted runs per round, >= 0 (at most the number of classes - 1 are used).
    bounds : tuple of float or None
        Valid input range, e.g. ``(0.0, 1.0)`` for pixels; ``None`` (the default) never clips.
    seed : int
        Seed of the random starts.

    Returns
    -------
    tuple of torch.Tensor
        Adversarial inputs (the first fooling iterate, else the input) and a boolean ``fooled`` mask
        (true also for points misclassified without any perturbation).

    Raises
    ------
    TypeError, ValueError
        On malformed data, a negative radius, bad counts, or inputs outside ``bounds``.
    """
    _check_data(model, inputs, labels)
    check_positive_int(steps, "steps")
    _check_count(restarts, "restarts")
    _check_count(targets, "targets")
    inputs, labels, eps, bounds, generator, logits = _prepare_attack(
        model, inputs, labels, epsilon=epsilon, bounds=bounds, seed=seed
    )
    fooled = logits.argmax(1) != labels
    best = inputs.clone()
    n_targets = min(targets, logits.shape[1] - 1)
    ranked = logits.scatter(1, labels[:, None], float("-inf")).argsort(1, descending=True)[:, :n_targets]
    for round_ in range(restarts + 1):
        for targeted in (False, True)[: 1 + (n_targets > 0)]:
            rows = torch.nonzero(~fooled & (eps > 0)).squeeze(1)
            if len(rows) == 0:
                return best, fooled
            index, target = _apgd_rows(rows, ranked if targeted else None)
            x, radius = inputs[index], eps[index]
            start = x if round_ == 0 else _random_start(x, radius, generator)
            found, adversarial = _apgd_run(
                model, x, labels[index], target, radius, steps=steps, bounds=bounds, start=start
            )
            best[index[found]] = adversarial[found]
            fooled[index[found]] = True
    return best, fooled


class AdversarialLoss:
    r"""The PGD adversarial-training loss of Madry et al. (2018), for :func:`companion.training.fit`.

    For each batch it runs PGD on the cross-entropy with the model in eval mode (no batch statistics are updated
    and no dropout masks drawn by the attack; the model's modes are restored): from a uniform random point of the
    ball :math:`\{\lVert\delta\rVert_2\le\varepsilon\}`, ``steps`` projected steps of ``relative_step * epsilon``
    along the normalised gradient (and onto the box ``bounds`` when given). It returns the cross-entropy at the last
    iterate, :math:`\frac1B\sum_i \ell(\mathcal N(x_i+\delta_i), y_i)`, in the model's own mode; the attack
    differentiates with respect to the inputs only, the returned loss with respect to the parameters. The random
    starts are drawn from PyTorch's global generator, which :func:`~companion.training.seed_everything` seeds and a
    :func:`~companion.training.fit` checkpoint saves, so a resumed run repeats an uninterrupted one. It is the
    baseline that robustness papers train an unconstrained network with; it gives no certificate.

    Parameters
    ----------
    epsilon : float
        Radius of the training attack, > 0.
    steps : int
        PGD iterations per batch (the training cost is about ``steps + 1`` times that of clean training).
    relative_step : float, optional
        Step size over epsilon (default ``2.5 / steps``).
    bounds : tuple of float or None
        Valid input range, e.g. ``(0.0, 1.0)`` for pixels; ``None`` never clips.

    Raises
    ------
    TypeError, ValueError
        If ``epsilon`` is not a number > 0, ``steps`` not an int >= 1 or ``bounds`` not a pair ``low < high`` of
        finite numbers; when called, on malformed, empty or non-finite data, labels outside the model's classes,
        inputs outside ``bounds`` or of another dtype than the model's, or under ``torch.inference_mode``.
    """

    def __init__(
        self,
        epsilon: float,
        *,
        steps: int = 10,
        relative_step: float | None = None,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        self.epsilon = float(check_positive(epsilon, "epsilon"))
        self.steps = check_positive_int(steps, "steps")
        self.relative_step = 2.5 / steps if relative_step is None else check_positive(relative_step, "relative_step")
        if bounds is not None:
            if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
                raise TypeError(f"bounds must be None or a pair (low, high), got {bounds!r}.")
            low, high = (check_scalar(value, "bounds", sign="finite", what="bound") for value in bounds)
            if not float(low) < float(high):
                raise ValueError(f"bounds must satisfy low < high, got {bounds!r}.")
            bounds = (float(low), float(high))
        self.bounds = bounds

    def __repr__(self) -> str:
        return (
            f"AdversarialLoss(epsilon={self.epsilon}, steps={self.steps}, relative_step={self.relative_step}, "
            f"bounds={self.bounds})"
        )

    def _check(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        _check_data(model, inputs, labels)
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "adversarial_loss needs autograd for its attack; call it outside torch.inference_mode()."
            )
        check_not_empty(inputs, "inputs")
        if not bool(torch.isfinite(inputs).all()):
            raise ValueError("inputs must be finite; got NaN or infinite entries.")
        mismatch = dtype_mismatch(model, inputs)
        if mismatch is not None:
            raise mismatch

    def __call__(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(model, inputs, labels)
        box = _check_bounds(self.bounds, inputs)
        x, y = inputs.detach(), labels.long()
        eps = torch.full((len(x),), self.epsilon, dtype=x.dtype, device=x.device)
        candidate = _feasible(_random_start(x, eps, None), x, eps, box)
        modes = [(module, module.training) for module in model.modules()]
        try:
            model.eval()
            with torch.no_grad():
                check_labels(labels, model(x[:1]).shape[-1])
            with inputs_only():
                for _ in range(self.steps):
                    _, grad = _objective_gradient(model, candidate, y, "cross_entropy")
                    with torch.no_grad():
                        candidate = _feasible(
                            candidate + _per_row(self.relative_step * eps, x) * _normalized(grad), x, eps, box
                        )
        finally:
            for module, mode in modes:
                module.training = mode
        return F.cross_entropy(model(candidate.detach()), y)


def adversarial_loss(
    epsilon: float, *, steps: int = 10, relative_step: float | None = None, bounds: tuple[float, float] | None = None
) -> AdversarialLoss:
    """The PGD adversarial-training loss :class:`AdversarialLoss` (Madry et al. 2018), for
    :func:`companion.training.fit`: ``loss(model, inputs, labels)``, a scalar. See :class:`AdversarialLoss`."""
    return AdversarialLoss(epsilon, steps=steps, relative_step=relative_step, bounds=bounds)
