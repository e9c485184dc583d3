r"""Second-order training of method-of-lines networks from pixel data, from PyTorch's random initialisation.

A :class:`~companion.pde.networks.MethodOfLinesNetwork` makes ``n`` Euler sub-steps of size :math:`\delta t/n` with a
field :math:`F_\theta` (a :class:`~companion.pde.networks.ConvRHS`). :func:`train_network` fits :math:`F_\theta` to
trajectories of frames :math:`U^0, U^1, \dots` (``(N, T + 1, d, d)``) in four moves:

1. **Sub-step targets.** Interpolating each pixel's time series (Lagrange, 6 or more frames) gives
   :math:`U(t_j + \delta t/n)`, and :math:`G^j = \tfrac{n}{\delta t}\,(U(t_j+\delta t/n) - U^j)` is what one
   Euler sub-step from :math:`U^j` must add. For a linear PDE a field with :math:`F_\theta(U^j) = G^j` makes the
   ``n`` sub-steps reproduce the data's step exactly: the target absorbs the Euler error.
2. **Patches.** :math:`F_\theta(U)` at a pixel depends on :math:`U` only in a window of radius
   :math:`2\lfloor k/2\rfloor` (two :math:`k\times k` convolutions), so the fit splits into independent
   residuals :math:`F_\theta(P_i) - G_i` on random patches: cheap, and with exact per-patch Jacobians
   (targets and patches: :mod:`companion.pde.patches`).
3. **Levenberg-Marquardt** on the stacked residuals in float64 (:func:`levenberg_marquardt`): the networks have
   102 and 511 parameters, few enough for Gauss-Newton steps.
4. **Noise injection with continuation.** Smooth data never excite high frequencies, so a fit leaves the field's
   response there free, and a 40-step rollout can blow up though the training loss is :math:`10^{-12}`. Inputs
   :math:`P_i + \sigma\eta_i`, with targets asking the perturbation to shrink by a factor per step, pin that
   response (damped, hence stable); :math:`\sigma` then decreases (:math:`10^{-3}, 10^{-4}, 10^{-5}`) to
   remove its bias (of order :math:`\sigma^2`).

Several draws of PyTorch's initialisation (``restarts``) each get a short first stage; the best three go
through every stage. After every stage the network is scored by its rollout error on validation trajectories
held out from the training data, and the best network met is kept. Everything is seeded.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.func import jacrev, jvp, vmap

from .._checks import check_positive, check_positive_int, check_tensor
from .networks import ConvRHS, MethodOfLinesNetwork, rollout, rollout_metrics
from .patches import (
    INTERPOLATION_POINTS,
    _check_trajectories,
    _patch_values,
    sample_patches,
    spectral_coverage,
    substep_targets,
)

__all__ = ["SCALING_FLOOR", "TrainingReport", "levenberg_marquardt", "amplification", "train_network"]

#: Marquardt's scaling uses diag(J^T J), floored at this fraction of its largest entry: a parameter that
#: barely moves the residuals (an inactive channel) would otherwise get an enormous step.
SCALING_FLOOR = 1e-8


def levenberg_marquardt(
    residual: Callable[[torch.Tensor], torch.Tensor],
    jacobian: Callable[[torch.Tensor], torch.Tensor],
    vector: torch.Tensor,
    *,
    iterations: int,
    damping: float = 1e-3,
    max_rejections: int = 12,
) -> tuple[torch.Tensor, list[float]]:
    r"""Minimise :math:`\lVert r(\theta)\rVert^2` by Levenberg-Marquardt steps with Marquardt's scaling.

    Each iteration solves :math:`(J^\top J + \lambda D)\,\delta = -J^\top r`, :math:`D = \mathrm{diag}(J^\top J)`
    floored at :data:`SCALING_FLOOR` times its largest entry, and accepts
    :math:`\theta + \delta` if the loss decreases (then :math:`\lambda \leftarrow \lambda/3`), else retries with
    :math:`4\lambda`. The loss never increases.

    Parameters
    ----------
    residual : callable
        :math:`\theta` ``(p,)`` to the residual vector ``(m,)``.
    jacobian : callable
        :math:`\theta` to :math:`J = \partial r/\partial\theta`, ``(m, p)``.
    vector : torch.Tensor
        Starting point ``(p,)``; use float64.
    iterations : int
        Number of accepted-or-abandoned iterations.
    damping : float
        Initial :math:`\lambda`.
    max_rejections : int
        Stop when this many consecutive trial steps in one iteration fail to decrease the loss.

    Returns
    -------
    tuple
        ``(theta, losses)``: the final point and :math:`\lVert r\rVert^2` at the start and after each iteration.

    Raises
    ------
    TypeError, ValueError
        On a vector that is not a 1-D floating tensor, or non-positive ``iterations`` or ``damping``.

    References
    ----------
    J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer (2006), section 10.3.
    """
    check_tensor(vector, "vector", ndim=1)
    check_positive_int(iterations, "iterations")
    damping = check_positive(damping, "damping")
    check_positive_int(max_rejections, "max_rejections")
    r = residual(vector)
    loss = float(r @ r)
    losses = [loss]
    for _ in range(iterations):
        J = jacobian(vector)
        normal, gradient = J.T @ J, J.T @ r
        scaling = torch.diagonal(normal).clamp_min(SCALING_FLOOR * float(torch.diagonal(normal).max()) + 1e-300)
        for _ in range(max_rejections):
            step = torch.linalg.solve(normal + damping * torch.diag(scaling), -gradient)
            trial = vector + step
            r_trial = residual(trial)
            loss_trial = float(r_trial @ r_trial)
            if loss_trial < loss:
                vector, r, loss = trial, r_trial, loss_trial
                damping = max(damping / 3, 1e-15)
                break
            damping *= 4
        else:
            losses.append(loss)
            break
        losses.append(loss)
    return vector, losses


def amplification(model: Callable, states: torch.Tensor, *, iterations: int = 30, seed: int = 0) -> float:
    r"""Largest growth :math:`\lVert D\Psi(U)\,e\rVert/\lVert e\rVert` of small perturbations in one step, by power
    iteration with forward-mode derivatives at each state (the maximum over the batch ``(batch, d, d)``).

    For a field that is linear on the data the derivative is a convolution and this is
    :math:`\max_\xi\lvert\psi(\xi)\rvert` over all frequencies: above 1, perturbations the data never show
    (rounding, kinks of the activation) grow along a rollout.

    Raises
    ------
    TypeError, ValueError
        On a non-callable model, states that are not ``(batch, d, d)``, or non-positive ``iterations``.
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}.")
    check_tensor(states, "states", ndim=3)
    check_positive_int(iterations, "iterations")
    generator = torch.Generator(device=states.device).manual_seed(seed)
    direction = torch.randn(states.shape, generator=generator, dtype=states.dtype, device=states.device)
    growth = torch.ones(len(states), dtype=states.dtype, device=states.device)
    with torch.no_grad():
        for _ in range(iterations):
            direction = direction / direction.flatten(1).norm(dim=1)[:, None, None]
            _, direction = jvp(model, (states,), (direction,))
            growth = direction.flatten(1).norm(dim=1)
    return float(growth.max())


@dataclass
class TrainingReport:
    """What :func:`train_network` did (all errors are mean relative errors of rollouts, as in
    :func:`~companion.pde.networks.rollout_metrics`).

    Attributes
    ----------
    noise_levels : list of float
        The injected noise :math:`\\sigma` of each stage.
    stage_losses : list of float
        Mean squared patch residual (noise included) at the end of each stage, in units of the field's
        ``scale`` (squared).
    validation_errors : list of float
        Rollout error on the validation trajectories at their last frame, after each stage.
    restart_errors : list of float
        The same after the first stage, for each starting point.
    chosen_restart, chosen_stage : int
        The starting point and the stage whose weights were kept.
    losses : list of float
        Every Levenberg-Marquardt loss of the kept starting point's run (``stage_losses`` and
        ``validation_errors`` are of that run too).
    seconds, cpu_seconds : float
        Wall-clock and process CPU time.
    spectral_coverage : float
        The fraction of the grid's Fourier modes that the training frames excite
        (:func:`~companion.pde.patches.spectral_coverage`).
    """

    noise_levels: list[float] = field(default_factory=list)
    stage_losses: list[float] = field(default_factory=list)
    validation_errors: list[float] = field(default_factory=list)
    restart_errors: list[float] = field(default_factory=list)
    chosen_restart: int = 0
    chosen_stage: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    spectral_coverage: float = 0.0


def _default_draw(field: ConvRHS, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """PyTorch's default initialisation of the two convolutions, :math:`U(\\pm 1/\\sqrt{\\text{fan-in}})`,
    drawn from an explicit generator."""
    out = {}
    for name, p in field.named_parameters():
        layer = field.first if name.startswith("first") else field.second
        bound = (layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]) ** -0.5
        out[name] = ((2 * torch.rand(p.shape, generator=generator, dtype=torch.float64) - 1) * bound).to(p.device)
    return out


def _rollout_error(model: MethodOfLinesNetwork, trajectories: torch.Tensor) -> float:
    """The rollouts' mean relative error at the trajectories' last frame (``inf`` when it is not a number)."""
    prediction = rollout(model, trajectories[:, 0], trajectories.shape[1] - 1)
    error = float(rollout_metrics(prediction, trajectories)["relative_error"][-1])
    return error if error == error else float("inf")


def _copy_parameters(source: ConvRHS, target: ConvRHS) -> None:
    """Copy every parameter of ``source`` into the parameter of the same name of ``target``, in its dtype."""
    with torch.no_grad():
        for name, p in target.named_parameters():
            p.copy_(source.get_parameter(name).to(p.dtype))


def _float64_copy(field: ConvRHS, device: torch.device) -> ConvRHS:
    """The same field in float64 on ``device``, evaluated by FFT when periodic (faster, same numbers)."""
    copy = ConvRHS(
        field.hidden,
        activation=field.activations,
        kernel_size=field.kernel_size,
        output_bias=field.second.bias is not None,
        boundary=field.boundary,
        scale=field.scale,
        fft=field.boundary == "periodic",
    ).to(device=device, dtype=torch.float64)
    _copy_parameters(field, copy)
    return copy


@dataclass
class _PatchFit:
    """What every stage of :func:`train_network` fits, whatever the starting point: the float64 working network, the
    clean patches and their targets, the unit noise added to them, and the validation trajectories."""

    work: MethodOfLinesNetwork
    validation: torch.Tensor
    clean: torch.Tensor
    goal: torch.Tensor
    eta: torch.Tensor
    decay: float
    radius: int
    norm: float
    names: list[str] = field(init=False)
    shapes: list[torch.Size] = field(init=False)
    sizes: list[int] = field(init=False)
    power: torch.Tensor = field(init=False)
    scale: float = field(init=False)

    def __post_init__(self) -> None:
        """Read the field's parameter layout (names, shapes, sizes), its activation powers and its scale."""
        parameters = list(self.work.field.named_parameters())
        self.names = [name for name, _ in parameters]
        self.shapes = [p.shape for _, p in parameters]
        self.sizes = [p.numel() for _, p in parameters]
        self.power, self.scale = self.work.field.power, self.work.field.scale

    def unflatten(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
        """The field's parameters by name, as views of the flat vector ``(p,)``."""
        return {n: v.view(s) for n, v, s in zip(self.names, torch.split(vector, self.sizes), self.shapes)}

    def flatten(self, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """The flat vector ``(p,)`` of parameters given by name."""
        return torch.cat([weights[n].reshape(-1) for n in self.names])

    def load(self, vector: torch.Tensor) -> None:
        """Set the working network's parameters to ``vector``."""
        with torch.no_grad():
            for n, v in self.unflatten(vector).items():
                self.work.field.get_parameter(n).copy_(v)

    def stage(self, vector: torch.Tensor, sigma: float, steps: int) -> tuple[torch.Tensor, list[float]]:
        """``steps`` Levenberg-Marquardt iterations from ``vector`` on the patches with injected noise ``sigma``."""
        noisy = self.clean + sigma * self.eta
        wanted = self.goal + self.decay * sigma * self.eta[:, self.radius, self.radius]
        power, scale, norm = self.power, self.scale, self.norm

        def residual(v: torch.Tensor) -> torch.Tensor:
            return (_patch_values(self.unflatten(v), noisy, power, scale) - wanted) / norm

        def single(v: torch.Tensor, patch: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return (_patch_values(self.unflatten(v), patch[None], power, scale)[0] - target) / norm

        def jacobian(v: torch.Tensor) -> torch.Tensor:
            return vmap(jacrev(single), in_dims=(None, 0, 0))(v, noisy, wanted)

        return levenberg_marquardt(residual, jacobian, vector, iterations=steps)

    def score(self, vector: torch.Tensor) -> float:
        """The rollout error of the network with parameters ``vector`` on the validation trajectories."""
        self.load(vector)
        return _rollout_error(self.work, self.validation)


def _prepare_fit(
    model: MethodOfLinesNetwork,
    trajectories: torch.Tensor,
    validation: torch.Tensor,
    *,
    patches: int,
    noise_damping: float,
    points: int,
    generator: torch.Generator,
) -> _PatchFit:
    """Sub-step targets of the training trajectories, ``patches`` random patches of them and their unit noise."""
    device = trajectories.device
    work = MethodOfLinesNetwork(
        _float64_copy(model.field, device), dt=model.dt, substeps=model.substeps, projected=model.projected
    )
    validation = validation.to(device=device, dtype=torch.float64)
    inputs, targets = substep_targets(
        trajectories.to(torch.float64), dt=model.dt, substeps=model.substeps, points=points
    )
    radius = 2 * (work.field.kernel_size // 2)
    clean, goal = sample_patches(
        inputs, targets, count=patches, radius=radius, boundary=work.field.boundary, generator=generator
    )
    eta = torch.randn(clean.shape, generator=generator, dtype=torch.float64).to(device)
    decay = model.substeps * ((1 - noise_damping) ** (1 / model.substeps) - 1) / model.dt
    norm = (patches**0.5) * work.field.scale
    return _PatchFit(work, validation, clean, goal, eta, decay, radius, norm)


@dataclass
class _Run:
    """One starting point's way through the stages: its current parameters, every loss, each stage's last loss
    and validation error."""

    restart: int
    vector: torch.Tensor
    losses: list[float]
    stage_losses: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)


@dataclass
class _Kept:
    """The best network met so far (the first one met, until one has a smaller validation error)."""

    vector: torch.Tensor | None = None
    error: float = float("inf")

    def consider(self, run: _Run, stage: int, report: TrainingReport) -> None:
        """Keep ``run``'s network after ``stage`` if it is the best so far, and record the choice in ``report``."""
        if run.errors[-1] < self.error or self.vector is None:
            self.vector, self.error = run.vector, run.errors[-1]
            report.chosen_restart, report.chosen_stage = run.restart, stage
            report.losses, report.stage_losses, report.validation_errors = run.losses, run.stage_losses, run.errors


def _starting_points(fit: _PatchFit, count: int, generator: torch.Generator) -> list[torch.Tensor]:
    """The working network's own parameters, then ``count - 1`` draws of PyTorch's default initialisation."""
    starts = [fit.flatten(dict(fit.work.field.named_parameters())).detach().clone()]
    return starts + [fit.flatten(_default_draw(fit.work.field, generator)) for _ in range(count - 1)]


def _first_stages(
    fit: _PatchFit,
    starts: list[torch.Tensor],
    *,
    sigma: float,
    iterations: int,
    report: TrainingReport,
    say: Callable[[str], None],
) -> list[_Run]:
    """The short first stage from every starting point, each scored in ``report.restart_errors``."""
    runs = []
    for k, start in enumerate(starts):
        vector, losses = fit.stage(start, sigma, iterations)
        runs.append(_Run(k, vector, losses))
        report.restart_errors.append(fit.score(vector))
        say(f"start {k}: loss {losses[-1]:.3e}, validation rE {report.restart_errors[-1]:.3e}")
    return runs


def _every_stage(
    fit: _PatchFit,
    run: _Run,
    kept: _Kept,
    report: TrainingReport,
    *,
    noise_levels: list[float],
    iterations: int,
    restart_iterations: int,
    say: Callable[[str], None],
) -> None:
    """Take ``run`` through every noise level (the first stage continued), offering each stage's network to ``kept``."""
    for index, sigma in enumerate(noise_levels):
        steps = iterations - (restart_iterations if index == 0 else 0)
        if steps > 0:
            run.vector, more = fit.stage(run.vector, sigma, steps)
            run.losses += more[1:]
        run.stage_losses.append(run.losses[-1])
        run.errors.append(fit.score(run.vector))
        say(
            f"start {run.restart}, noise {sigma:.0e}: loss {run.stage_losses[-1]:.3e}, "
            f"validation rE {run.errors[-1]:.3e}"
        )
        kept.consider(run, index, report)


def _check_noise(noise_levels: Sequence[float], noise_damping: float) -> list[float]:
    """The noise levels as a non-empty list of finite numbers >= 0, after checking them and the damping."""
    if isinstance(noise_levels, (int, float, torch.Tensor)):
        raise TypeError(
            f"noise_levels must be a sequence of levels, e.g. (1e-3, 1e-4, 1e-5) or ({noise_levels!r},), "
            f"got the single number {noise_levels!r}."
        )
    noise_levels = list(noise_levels)
    for level in noise_levels:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 <= level < float("inf"):
            raise ValueError(f"each noise level must be a finite number >= 0, got {level!r}.")
    if not noise_levels:
        raise ValueError("noise_levels must name at least one level, e.g. (1e-3, 1e-4, 1e-5).")
    if isinstance(noise_damping, bool) or not isinstance(noise_damping, (int, float)) or not 0 <= noise_damping <= 1:
        raise ValueError(f"noise_damping must be a number in [0, 1], got {noise_damping!r}.")
    return noise_levels


def _split_validation(
    model: MethodOfLinesNetwork, trajectories: torch.Tensor, validation: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and validation trajectories, checked against the model's grid; without ``validation``, the last
    quarter (at least one) of ``trajectories`` is held out."""
    grid = model.field.grid_size
    if grid is not None and trajectories.shape[-1] != grid:
        raise ValueError(
            f"the model is built for a {grid}x{grid} grid, the trajectories are "
            f"{trajectories.shape[-1]}x{trajectories.shape[-1]}."
        )
    if validation is None:
        if len(trajectories) < 2:
            raise ValueError("pass validation trajectories, or at least 2 training trajectories to hold one out.")
        held = max(1, len(trajectories) // 4)
        return trajectories[:-held], trajectories[-held:]
    _check_trajectories(validation, "validation")
    if validation.shape[-1] != trajectories.shape[-1]:
        raise ValueError(
            f"validation trajectories must be on the training grid ({trajectories.shape[-1]}x"
            f"{trajectories.shape[-1]}), got {tuple(validation.shape)}."
        )
    return trajectories, validation


def _check_training(
    model: MethodOfLinesNetwork,
    trajectories: torch.Tensor,
    *,
    counts: dict[str, int],
    points: int,
    seed: int,
    log: Callable[[str], None] | None,
) -> None:
    """Refuse a model that is not a method-of-lines network with a ConvRHS field, bad trajectories, non-positive
    ``counts`` (by name), a seed that is not an int or a log that is not callable."""
    if not isinstance(model, MethodOfLinesNetwork) or not isinstance(model.field, ConvRHS):
        raise TypeError(
            "model must be a companion.pde.MethodOfLinesNetwork whose field is a companion.pde.ConvRHS "
            f"(e.g. from companion.pde.training.make_network), got {type(model).__name__}."
        )
    check_positive_int(points, "points")
    _check_trajectories(trajectories, min_frames=max(points, 2))
    for name, count in counts.items():
        check_positive_int(count, name)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    if log is not None and not callable(log):
        raise TypeError(f"log must be a callable taking one line of text, got {type(log).__name__}.")


def train_network(
    model: MethodOfLinesNetwork,
    trajectories: torch.Tensor,
    *,
    validation: torch.Tensor | None = None,
    patches: int = 20_000,
    noise_levels: Sequence[float] = (1e-3, 1e-4, 1e-5),
    noise_damping: float = 0.5,
    iterations: int = 20,
    restarts: int = 8,
    restart_iterations: int = 8,
    continued: int = 3,
    points: int = INTERPOLATION_POINTS,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> TrainingReport:
    r"""Fit the field of ``model`` to pixel trajectories (see the module docstring for the method).

    Parameters
    ----------
    model : MethodOfLinesNetwork
        With a :class:`~companion.pde.networks.ConvRHS` field; trained in place (its dtype and device are kept).
    trajectories : torch.Tensor
        Training frames ``(N, T + 1, d, d)`` at spacing ``model.dt``, ``T + 1 >= points``.
    validation : torch.Tensor, optional
        Trajectories ``(M, T' + 1, d, d)`` never fitted, used to choose the restart and the stage by the rollout
        error at their last frame. Default: the last quarter (at least one) of ``trajectories`` is held out.
    patches : int
        Number of random patches (residuals).
    noise_levels : sequence of float
        Injected noise :math:`\sigma \ge 0` of each stage, in the units of the data (0: no injection, and the
        unseen frequencies are left to chance).
    noise_damping : float
        :math:`\gamma\in[0, 1]`: an injected perturbation is asked to shrink by :math:`1-\gamma` per step
        (its target is :math:`G + \tfrac{n}{\delta t}((1-\gamma)^{1/n} - 1)\,\sigma\eta` at the patch centre), so
        the unseen frequencies decay instead of staying marginally stable. :math:`\gamma = 1` asks each
        perturbation to vanish in one step: the noise injection of the paper (noisy input, clean target).
    iterations : int
        Levenberg-Marquardt iterations per stage.
    restarts : int
        Starting points: the model's own weights, then ``restarts - 1`` fresh draws of PyTorch's default
        initialisation from a generator seeded with ``seed``.
    restart_iterations : int
        Iterations of the first stage for every starting point before the best are chosen.
    continued : int
        How many starting points (the best after the first stage) go through every stage.
    points : int
        Frames per time interpolant of :func:`~companion.pde.patches.substep_targets` (more for data that move
        fast between frames, such as advection at one cell per step).
    seed : int
        Seeds the patches, the injected noise and the fresh draws.
    log : callable, optional
        Called with one line of text per stage.

    Returns
    -------
    TrainingReport

    Warns
    -----
    UserWarning
        When the training frames excite fewer than a quarter of the grid's Fourier modes
        (:func:`~companion.pde.patches.spectral_coverage`): the field's response at the others is then set by the
        noise injection, not by the data, and validation trajectories drawn like the training ones cannot see it.

    Raises
    ------
    TypeError, ValueError
        On a model that is not a :class:`~companion.pde.networks.MethodOfLinesNetwork` with a
        :class:`~companion.pde.networks.ConvRHS` field, trajectories of the wrong shape or grid size, or non-positive
        counts, negative noise levels or a damping outside :math:`[0, 1]`.
    """
    _check_training(
        model,
        trajectories,
        counts=dict(
            patches=patches,
            iterations=iterations,
            restarts=restarts,
            restart_iterations=restart_iterations,
            continued=continued,
        ),
        points=points,
        seed=seed,
        log=log,
    )
    noise_levels = _check_noise(noise_levels, noise_damping)
    trajectories, validation = _split_validation(model, trajectories, validation)
    coverage = spectral_coverage(trajectories)
    if coverage < 0.25:
        warnings.warn(
            f"the training frames excite only {coverage:.1%} of the grid's Fourier modes (energy above "
            "1e-8 of the largest): the fit does not determine the field's response at the others, and validation "
            "trajectories drawn like the training ones cannot show it. A test image with other wavenumbers may be "
            "predicted far worse than the validation error says; train on initial conditions that cover the "
            "spectrum (random smooth fields, localised bumps, several wavenumber bands).",
            UserWarning,
            stacklevel=2,
        )

    wall, cpu = time.perf_counter(), time.process_time()
    say = log or (lambda line: None)
    generator = torch.Generator().manual_seed(seed)
    fit = _prepare_fit(
        model,
        trajectories,
        validation,
        patches=patches,
        noise_damping=noise_damping,
        points=points,
        generator=generator,
    )
    report = TrainingReport(noise_levels=list(noise_levels), spectral_coverage=coverage)
    runs = _first_stages(
        fit,
        _starting_points(fit, restarts, generator),
        sigma=noise_levels[0],
        iterations=restart_iterations,
        report=report,
        say=say,
    )
    kept = _Kept()
    for run in sorted(runs, key=lambda run: report.restart_errors[run.restart])[:continued]:
        _every_stage(
            fit,
            run,
            kept,
            report,
            noise_levels=noise_levels,
            iterations=iterations,
            restart_iterations=restart_iterations,
            say=say,
        )
    fit.load(kept.vector)
    _copy_parameters(fit.work.field, model.field)
    report.seconds, report.cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    return report
