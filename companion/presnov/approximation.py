r"""Experiments on what networks of flows can approximate: depth studies over several seeds.

The universal-approximation chapter asks whether the sphere-preserving half of a gradient/sphere network
matters. :func:`presnov_sizes` measures how large the two Presnov parts of a target field are,
:func:`gradient_network` builds the network without sphere layers, and :func:`depth_study` trains each
family of networks at several depths and seeds and returns the test errors, with the parameter counts, so
that a comparison is like for like. :func:`gradient_norms_by_layer` measures, for the first chapter, how
the gradient of a loss is spread over the layers of a deep network.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .._checks import check_callable, check_positive, check_positive_int, check_tensor
from ..layers import FlowNetwork, GradientLayer
from ..training import fit
from .decomposition import decompose

__all__ = ["presnov_sizes", "gradient_network", "DepthStudy", "depth_study", "gradient_norms_by_layer"]


def presnov_sizes(
    field: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, nodes: int = 24
) -> tuple[float, float]:
    r"""Root-mean-square sizes of the gradient and the sphere part of a field over sample points.

    .. math:: \Big(\tfrac1N\sum_i \lVert\nabla V(x_i)\rVert^2\Big)^{1/2}, \qquad
              \Big(\tfrac1N\sum_i \lVert X_S(x_i)\rVert^2\Big)^{1/2},

    with :math:`F = \nabla V + X_S` the Presnov decomposition computed by
    :func:`~companion.presnov.decomposition.decompose` (``nodes`` Gauss--Legendre nodes).

    Parameters
    ----------
    field : callable
        The vector field, ``(batch, dim) -> (batch, dim)``, differentiable by autograd.
    x : torch.Tensor
        Sample points, shape ``(batch, dim)``, floating point (float64 recommended).
    nodes : int
        Quadrature nodes of the radial integral.

    Returns
    -------
    tuple of float
        ``(gradient size, sphere size)``.

    Raises
    ------
    TypeError, ValueError
        If ``field`` is not callable or ``x`` is not a ``(batch, dim)`` floating tensor.

    References
    ----------
    E. Presnov, *Non-local decomposition of vector fields*, Chaos Solitons Fractals 14 (2002).
    """
    check_callable(field, "field")
    check_tensor(x, "x", ndim=2)
    _, gradient_part, sphere_part = decompose(field, x, nodes=nodes)
    rms = lambda v: float(v.detach().pow(2).sum(-1).mean().sqrt())  # noqa: E731
    return rms(gradient_part), rms(sphere_part)


def gradient_network(
    dim: int, *, depth: int, hidden: int = 16, h: float = 0.1, activation: str = "tanh", learn_step: bool = False
) -> FlowNetwork:
    r"""``depth`` gradient layers and nothing else.

    .. math:: \mathcal N_\theta = \Psi^h_{\nabla V_{\theta_M}}\circ\cdots\circ\Psi^h_{\nabla V_{\theta_1}},

    the network of :func:`~companion.layers.gradient_sphere_network` with its sphere-preserving layers
    removed, on :math:`\mathbb R^{\text{dim}}` with no lift or projection. Every layer has a symmetric
    Jacobian; the composition need not (its antisymmetric part comes only from commutators of the layers).

    Parameters
    ----------
    dim : int
        State dimension.
    depth : int
        Number of :class:`~companion.layers.GradientLayer` s.
    hidden, h, activation, learn_step
        As for :class:`~companion.layers.GradientLayer`.

    Returns
    -------
    FlowNetwork
        Maps ``(batch, dim)`` to ``(batch, dim)``.

    Raises
    ------
    TypeError, ValueError
        On a bad size, depth or step (see :class:`~companion.layers.GradientLayer`).
    """
    check_positive_int(depth, "depth")
    layers = [
        GradientLayer(dim, hidden=hidden, h=h, activation=activation, learn_step=learn_step) for _ in range(depth)
    ]
    return FlowNetwork(layers, in_dim=dim, width=dim, out_dim=dim)


@dataclass
class DepthStudy:
    """Test errors of several network families at several depths, one row per depth and one column per seed."""

    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    errors: dict[str, torch.Tensor] = field(default_factory=dict)  # family -> (len(depths), len(seeds))
    parameters: dict[str, list[int]] = field(default_factory=dict)  # family -> count per depth
    seconds: float = 0.0

    def summary(self) -> list[tuple[str, int, int, float, float, float]]:
        """Rows ``(family, depth, parameters, mean, smallest, largest)`` of the test error over the seeds."""
        rows = []
        for family, errors in self.errors.items():
            for row, depth in enumerate(self.depths):
                values = errors[row]
                rows.append(
                    (
                        family,
                        depth,
                        self.parameters[family][row],
                        float(values.mean()),
                        float(values.min()),
                        float(values.max()),
                    )
                )
        return rows


def depth_study(
    builders: Mapping[str, Callable[[int], nn.Module]],
    train: Sequence[torch.Tensor],
    test: Sequence[torch.Tensor],
    *,
    depths: Sequence[int],
    seeds: Sequence[int],
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 100,
) -> DepthStudy:
    r"""Train every family at every depth from every seed with :func:`~companion.training.fit`; test MSE.

    Each run seeds the initialisation (``torch.manual_seed(seed)`` before ``builders[family](depth)``)
    and the batches (``fit(..., seed=seed)``), uses Adam with a cosine schedule and the mean squared error,
    and is evaluated on ``test``. Same data, same loss, same schedule for every family: the comparison is
    like for like, and the parameter counts are returned beside the errors. The networks are moved to the
    device and dtype of the test inputs.

    Parameters
    ----------
    builders : mapping of str to callable
        ``family -> (depth -> network)``.
    train, test : tuple of torch.Tensor
        ``(inputs, targets)`` pairs.
    depths, seeds : sequence of int
        The depths passed to the builders and the seeds of the runs.
    epochs : int
        Training epochs of each run.
    lr : float
        Peak learning rate.
    batch_size : int
        Mini-batch size.

    Returns
    -------
    DepthStudy
        ``errors[family]`` of shape ``(len(depths), len(seeds))``, parameter counts, total seconds.

    Raises
    ------
    TypeError, ValueError
        If a builder is not callable, ``depths``/``seeds`` are empty, or a count or rate is not positive.
    """
    if not builders:
        raise ValueError("builders must name at least one family of networks, e.g. {'gradient': build}.")
    for name, build in builders.items():
        check_callable(build, f"builders[{name!r}]")
    depths, seeds = tuple(depths), tuple(seeds)
    if not depths or not seeds:
        raise ValueError(f"depths and seeds must not be empty, got depths={depths}, seeds={seeds}.")
    for depth in depths:
        check_positive_int(depth, "depth")
    check_positive_int(epochs, "epochs")
    check_positive(lr, "lr")
    test_inputs, test_targets = test
    study = DepthStudy(depths, seeds)
    start = time.perf_counter()
    for family, build in builders.items():
        errors = torch.zeros(len(depths), len(seeds), dtype=torch.float64)
        study.parameters[family] = []
        for row, depth in enumerate(depths):
            for column, seed in enumerate(seeds):
                torch.manual_seed(seed)
                model = build(depth).to(test_inputs.device, test_inputs.dtype)
                fit(
                    model,
                    train,
                    epochs=epochs,
                    lr=lr,
                    batch_size=batch_size,
                    schedule="cosine",
                    seed=seed,
                    progress=False,
                )
                with torch.no_grad():
                    errors[row, column] = float(nn.functional.mse_loss(model(test_inputs), test_targets))
            study.parameters[family].append(sum(p.numel() for p in model.parameters()))
        study.errors[family] = errors
    study.seconds = time.perf_counter() - start
    return study


def gradient_norms_by_layer(
    layers: Sequence[nn.Module],
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: str = "cross_entropy",
) -> list[float]:
    r"""Euclidean norm of the loss gradient with respect to each listed layer's parameters, in order.

    One backward pass of ``loss(model(inputs), targets)``; the model's stored gradients are left as they
    were. A deep network whose first norms are orders of magnitude below its last ones has vanishing gradients.

    Parameters
    ----------
    layers : sequence of nn.Module
        The layers to measure, each a sub-module of ``model`` with parameters.
    model : nn.Module
        The network.
    inputs, targets : torch.Tensor
        One batch.
    loss : {"cross_entropy", "mse"}
        The loss.

    Returns
    -------
    list of float
        One norm per layer.

    Raises
    ------
    ValueError
        If ``loss`` is unknown or a layer has no parameters.
    """
    losses = {"cross_entropy": nn.functional.cross_entropy, "mse": nn.functional.mse_loss}
    if loss not in losses:
        raise ValueError(f"unknown loss {loss!r}; choose one of 'cross_entropy', 'mse'.")
    parameters = [list(layer.parameters()) for layer in layers]
    if any(not group for group in parameters):
        raise ValueError("every layer must have parameters to measure a gradient norm.")
    value = losses[loss](model(inputs), targets)
    flat = [p for group in parameters for p in group]
    grads = torch.autograd.grad(value, flat, allow_unused=True)
    norms, index = [], 0
    for group in parameters:
        squares = sum(float(g.pow(2).sum()) for g in grads[index : index + len(group)] if g is not None)
        norms.append(squares**0.5)
        index += len(group)
    return norms
