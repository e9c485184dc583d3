r"""Layers that are 1-Lipschitz for every parameter value, and Lipschitz bounds of whole networks.

* :class:`NonExpansiveLayer` and :class:`NonExpansiveConvLayer`: one explicit Euler step of the
  gradient flow :math:`\dot x = -A^\top\sigma(Ax+b)`, with :math:`h\le 2/\lVert A\rVert_2^2` enforced in ``forward``.
* :class:`NormalizedLinear`, :class:`Standardize` and :func:`network_lipschitz_bound`, which multiplies the
  bounds of a ``nn.Sequential``, preprocessing included; :func:`lipschitz_classifier` builds a network.

Every layer shows its fixed settings in ``repr`` and restores them from its ``state_dict``; none branches on
tensor values in ``forward``, so ``torch.compile`` and ``torch.func`` transforms apply.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023). F. Sherry et al., *Designing stable neural networks
using convex analysis and ODEs*, Physica D 463 (2024).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_choice, check_positive, check_positive_int, check_tensor
from .._settings import FixedSettings
from .inference import DerivedCache
from .operator_norms import PADDING_MODES, conv2d_same, conv2d_same_adjoint, conv_operator_norm, dense_operator_norm
from .switching import SwitchingLayer

__all__ = [
    "NonExpansiveLayer",
    "NonExpansiveConvLayer",
    "NormalizedLinear",
    "Standardize",
    "network_lipschitz_bound",
    "lipschitz_classifier",
]

ACTIVATIONS = ("relu", "leaky_relu", "tanh")


def monotone_activation(s: torch.Tensor, activation: str, negative_slope: float) -> torch.Tensor:
    """ReLU, tanh or LeakyReLU of slope ``negative_slope``: the monotone :math:`\\sigma` of a gradient step."""
    if activation == "relu":
        return F.relu(s)
    if activation == "tanh":
        return torch.tanh(s)
    return F.leaky_relu(s, negative_slope)


class _GradientStep(DerivedCache, FixedSettings):
    """Shared parts of the two non-expansive layers: the monotone activation and the step parameter."""

    _settings = ("activation", "negative_slope")

    def _configure(self, *, activation: str, negative_slope: float) -> None:
        check_choice(activation, "activation", ACTIVATIONS)
        number = isinstance(negative_slope, (int, float)) and not isinstance(negative_slope, bool)
        if not (number and 0 <= negative_slope <= 1):
            raise ValueError(
                f"negative_slope must be a number in [0, 1] (a monotone, 1-Lipschitz sigma), got {negative_slope!r}."
            )
        self.activation, self.negative_slope = activation, float(negative_slope)

    def _init_step(self, step: float, learn_step: bool) -> None:
        step_tensor = torch.tensor(check_positive(step, "h"))
        self.learn_step = bool(learn_step)
        if learn_step:
            self.raw_step = nn.Parameter(step_tensor)
        else:
            self.register_buffer("raw_step", step_tensor)

    def sigma(self, s: torch.Tensor) -> torch.Tensor:
        """The activation :math:`\\sigma` (monotone, slopes in [0, 1])."""
        return monotone_activation(s, self.activation, self.negative_slope)

    def lipschitz_bound(self) -> float:
        """1: the layer is non-expansive for every parameter value."""
        return 1.0


class NonExpansiveLayer(_GradientStep, nn.Module):
    r"""One explicit Euler step of a convex gradient flow: :math:`x\mapsto x - hA^\top\sigma(Ax+b)`.

    With :math:`\sigma` monotone and 1-Lipschitz (ReLU, LeakyReLU, tanh) the field is
    :math:`-\nabla V` with :math:`V = \mathbf 1^\top\gamma(Ax+b)` convex and :math:`\lVert A\rVert_2^2`-smooth, and
    the step is 1-Lipschitz in :math:`\ell_2` whenever :math:`h\le 2/\lVert A\rVert_2^2`. The forward pass uses
    :math:`h = \min(\lvert h_\text{raw}\rvert,\, 2/\lVert A\rVert_2^2)` with the exact norm, so the layer is
    non-expansive for **every** parameter value.

    Parameters
    ----------
    dim : int
        State dimension; inputs have shape ``(batch, dim)``.
    hidden : int, optional
        Rows of :math:`A` (default ``dim``).
    h : float
        Initial :math:`h_\text{raw}`, > 0 (learned unless ``learn_step=False``); the step used is
        :meth:`step`, the smaller of :math:`\lvert h_\text{raw}\rvert` and :math:`2/\lVert A\rVert_2^2`.
    activation : {"relu", "leaky_relu", "tanh"}
        The monotone :math:`\sigma`.
    negative_slope : float
        Slope of ``leaky_relu`` for negative inputs, in [0, 1].
    learn_step : bool
        Learn :math:`h_\text{raw}`; otherwise it is a buffer, saved and restored with the weights.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, a non-positive step, an unknown activation or a slope outside [0, 1].
    """

    _sizes = ("dim", "hidden", "learn_step")

    def __init__(
        self,
        dim: int,
        *,
        hidden: int | None = None,
        h: float = 1.0,
        activation: str = "relu",
        negative_slope: float = 0.01,
        learn_step: bool = True,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.hidden = dim if hidden is None else check_positive_int(hidden, "hidden")
        self._configure(activation=activation, negative_slope=negative_slope)
        self.weight = nn.Parameter(torch.empty(self.hidden, dim))
        nn.init.orthogonal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(self.hidden))
        self._init_step(h, learn_step)

    def step(self) -> torch.Tensor:
        r"""The step used in ``forward``: :math:`\min(\lvert h_\text{raw}\rvert, 2/\lVert A\rVert_2^2)`."""
        weight, raw = self.weight, self.raw_step
        return self.derived(
            "step", lambda: torch.minimum(raw.abs(), 2.0 / dense_operator_norm(weight) ** 2), raw, weight
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        return x - self.step() * (self.sigma(x @ self.weight.T + self.bias) @ self.weight)


class NonExpansiveConvLayer(_GradientStep, nn.Module):
    r"""Convolutional :class:`NonExpansiveLayer`: :math:`x\mapsto x - hA^\top\sigma(Ax+b)`, :math:`A` a convolution.

    :math:`A^\top` is the exact adjoint for the padding used (:func:`conv2d_same_adjoint`) and
    :math:`h=\min(\lvert h_\text{raw}\rvert, 2/\bar a^2)` with :math:`\bar a\ge\lVert A\rVert_2` from
    :func:`conv_operator_norm` at the size of each input, so the layer is 1-Lipschitz for every parameter
    value and image size.

    Parameters
    ----------
    channels : int
        Input channels; inputs have shape ``(batch, channels, height, width)``.
    hidden_channels : int, optional
        Output channels of :math:`A` (default ``channels``).
    kernel_size : int
        Odd kernel size.
    padding_mode : {"zeros", "circular"}
        Boundary handling of :math:`A` (and so of :math:`A^\top`).
    h, activation, negative_slope, learn_step
        As in :class:`NonExpansiveLayer`.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, an even kernel, an unknown padding or activation; in ``forward``, on an input with
        another number of channels, or, with circular padding, images smaller than ``kernel_size // 2``
        pixels per side (the padding would wrap around more than once).
    """

    _sizes = ("channels", "hidden_channels", "kernel_size", "learn_step")
    _settings = ("padding_mode", "activation", "negative_slope")

    def __init__(
        self,
        channels: int,
        *,
        hidden_channels: int | None = None,
        kernel_size: int = 3,
        padding_mode: str = "zeros",
        h: float = 1.0,
        activation: str = "relu",
        negative_slope: float = 0.01,
        learn_step: bool = True,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        hidden = channels if hidden_channels is None else check_positive_int(hidden_channels, "hidden_channels")
        if check_positive_int(kernel_size, "kernel_size") % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}.")
        self.hidden_channels, self.kernel_size = hidden, kernel_size
        self._configure(padding_mode=padding_mode, activation=activation, negative_slope=negative_slope)
        scale = kernel_size * math.sqrt(channels)
        self.weight = nn.Parameter(torch.randn(hidden, channels, kernel_size, kernel_size) / scale)
        self.bias = nn.Parameter(torch.zeros(hidden))
        self._init_step(h, learn_step)

    def _configure(self, *, padding_mode: str, activation: str, negative_slope: float) -> None:
        self.padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
        super()._configure(activation=activation, negative_slope=negative_slope)

    def step(self, input_size: tuple[int, int]) -> torch.Tensor:
        """The step used in ``forward`` for images of ``input_size``."""
        size, weight, raw = tuple(input_size), self.weight, self.raw_step

        def compute() -> torch.Tensor:
            bound = conv_operator_norm(weight, size, padding_mode=self.padding_mode)
            return torch.minimum(raw.abs(), 2.0 / bound**2)

        return self.derived(f"step{size}", compute, raw, weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", min_ndim=3)
        if x.shape[-3] != self.channels:
            raise ValueError(f"x must have {self.channels} channels, got shape {tuple(x.shape)}.")
        pre = conv2d_same(x, self.weight, self.bias, padding_mode=self.padding_mode)
        update = conv2d_same_adjoint(self.sigma(pre), self.weight, padding_mode=self.padding_mode)
        return x - self.step(tuple(x.shape[-2:])) * update


class NormalizedLinear(DerivedCache, nn.Linear):
    r"""A linear map :math:`x\mapsto Wx/\max(1,\lVert W\rVert_2) + b`: 1-Lipschitz for every weight (exact norm).

    Constructed as ``nn.Linear(in_features, out_features, bias=True)``.
    """

    def normalized_weight(self) -> torch.Tensor:
        """The weight used in ``forward``, of norm at most 1."""
        weight = self.weight
        return self.derived("weight", lambda: weight / torch.clamp(dense_operator_norm(weight), min=1.0), weight)

    def lipschitz_bound(self) -> float:
        """1 for every weight."""
        return 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


class Standardize(nn.Module):
    r"""Preprocessing :math:`x\mapsto(x-\mu)/s` inside the model; its Lipschitz constant :math:`1/\min s` counts in L.

    Parameters
    ----------
    mean, std : float or torch.Tensor
        :math:`\mu` and :math:`s` (broadcast against the input); ``std`` > 0 everywhere. Kept as buffers,
        so they are saved and restored with the model.

    Raises
    ------
    ValueError
        If ``std`` is not > 0 everywhere (checked again when a state dict is loaded).
    """

    def __init__(self, mean: float | torch.Tensor, std: float | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", self._as_float(mean))
        self.register_buffer("std", self._check_std(self._as_float(std)))
        self.register_load_state_dict_post_hook(Standardize._after_load)

    @staticmethod
    def _after_load(module: Standardize, incompatible_keys) -> None:
        module._check_std(module.std)

    @staticmethod
    def _as_float(value) -> torch.Tensor:
        value = torch.as_tensor(value)
        return value if torch.is_floating_point(value) else value.to(torch.get_default_dtype())

    @staticmethod
    def _check_std(std: torch.Tensor) -> torch.Tensor:
        if not bool((std > 0).all()):
            raise ValueError(f"std must be > 0 everywhere, got {std}.")
        return std

    def extra_repr(self) -> str:
        show = lambda t: f"{t.item():.4g}" if t.numel() == 1 else f"tensor of shape {tuple(t.shape)}"  # noqa: E731
        return f"mean={show(self.mean)}, std={show(self.std)}"

    def lipschitz_bound(self) -> float:
        """:math:`1/\\min s`."""
        return float(1.0 / self.std.min())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


_ONE_LIPSCHITZ = (nn.ReLU, nn.Tanh, nn.Identity, nn.Flatten)


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _max_pool_bound(pool: nn.MaxPool2d) -> float:
    r"""1 for a max-pool whose windows do not overlap: each output moves by at most the largest change in its window,
    :math:`\lvert\max a-\max b\rvert\le\lVert a-b\rVert_\infty\le\lVert a-b\rVert_2`, and disjoint windows add up
    to at most :math:`\lVert x-y\rVert_2^2`."""
    kernel, stride = _pair(pool.kernel_size), _pair(pool.stride)
    if kernel == stride and _pair(pool.padding) == (0, 0) and _pair(pool.dilation) == (1, 1):
        return 1.0
    raise TypeError(
        f"no Lipschitz bound known for {pool}: a max-pool is 1-Lipschitz in l2 when its windows do not overlap "
        "(kernel_size == stride, padding 0, dilation 1); overlapping windows count a pixel several times."
    )


def network_lipschitz_bound(model: nn.Module) -> float:
    r"""Upper bound on :math:`\operatorname{Lip}(\text{model})` in :math:`\ell_2`: the product over its parts.

    A module with a ``lipschitz_bound()`` method gives that; ``nn.Sequential`` multiplies its children;
    ``nn.Linear`` gives its exact norm; ReLU, tanh, Identity, Flatten, LeakyReLU (slope <= 1) and ``nn.MaxPool2d``
    with non-overlapping windows (``kernel_size == stride``, padding 0, dilation 1) give 1.
    The value is the bound in exact arithmetic; :func:`companion.lipschitz.robustness.network_certified_radius`
    adds an allowance for the rounding of the forward pass (bounded from the values it computes) and of the
    norms themselves.

    Raises
    ------
    TypeError
        On a module whose bound is unknown (give it a ``lipschitz_bound()`` method), e.g. a max-pool with
        overlapping windows.
    """
    if hasattr(model, "lipschitz_bound"):
        return float(model.lipschitz_bound())
    if isinstance(model, nn.Sequential):
        return math.prod(network_lipschitz_bound(child) for child in model)
    if isinstance(model, nn.Linear):
        return float(dense_operator_norm(model.weight).detach())
    if isinstance(model, _ONE_LIPSCHITZ) or (isinstance(model, nn.LeakyReLU) and abs(model.negative_slope) <= 1):
        return 1.0
    if isinstance(model, nn.MaxPool2d):
        return _max_pool_bound(model)
    raise TypeError(
        f"no Lipschitz bound known for {type(model).__name__}; give it a lipschitz_bound() method "
        "or build the model from the modules of companion.lipschitz."
    )


def lipschitz_classifier(
    in_dim: int,
    n_classes: int,
    *,
    width: int,
    depth: int,
    kind: str = "nonexpansive",
    preprocessing: nn.Module | None = None,
    hidden: int | None = None,
    h: float = 1.0,
    lift: bool = True,
) -> nn.Sequential:
    r"""A classifier ``[preprocessing] -> [NormalizedLinear] -> depth layers -> NormalizedLinear``.

    1-Lipschitz after the preprocessing, for every parameter value. Parameters are drawn from PyTorch's
    global generator (seed it, e.g. with :func:`companion.training.seed_everything`, for a reproducible model).

    Parameters
    ----------
    in_dim, n_classes, width : int
        Input size, number of classes, state width of the layers.
    depth : int
        Number of :class:`NonExpansiveLayer` (``kind="nonexpansive"``) or :class:`SwitchingLayer`
        (``kind="switching"``, each an expansive step and two contractive sub-steps).
    kind : {"nonexpansive", "switching"}
        The layer type.
    preprocessing : nn.Module, optional
        E.g. :class:`Standardize`; its bound enters :func:`network_lipschitz_bound`.
    hidden : int, optional
        Rows of each non-expansive layer's :math:`A` (default ``width``); ``kind="nonexpansive"`` only.
    h : float
        Initial step :math:`h_\text{raw}` of each non-expansive layer (> 0); ``kind="nonexpansive"`` only.
    lift : bool
        Start with a ``NormalizedLinear(in_dim, width)``; ``False`` needs ``in_dim == width`` (the layers then
        act on the inputs themselves).

    Returns
    -------
    nn.Sequential
        Maps ``(batch, in_dim)`` to ``(batch, n_classes)`` logits.

    Raises
    ------
    TypeError, ValueError
        On bad sizes or an unknown ``kind``; on ``hidden`` or ``h`` with ``kind="switching"``; on
        ``lift=False`` with ``in_dim != width``.
    """
    for name, value in (("in_dim", in_dim), ("n_classes", n_classes), ("width", width), ("depth", depth)):
        check_positive_int(value, name)
    check_choice(kind, "kind", ("nonexpansive", "switching"))
    if not isinstance(lift, bool):
        raise TypeError(f"lift must be True or False, got {lift!r}.")
    if not lift and in_dim != width:
        raise ValueError(f"lift=False needs in_dim == width (the layers act on the inputs), got {in_dim} and {width}.")
    if kind == "switching" and (hidden is not None or h != 1.0):
        raise ValueError("hidden and h set the non-expansive layers; kind='switching' has neither.")
    modules = [] if preprocessing is None else [preprocessing]
    modules += [NormalizedLinear(in_dim, width)] if lift else []  # drawn first: the order of the draws is kept
    if kind == "switching":
        modules += [SwitchingLayer(width) for _ in range(depth)]
    else:
        modules += [NonExpansiveLayer(width, hidden=hidden, h=h) for _ in range(depth)]
    return nn.Sequential(*modules, NormalizedLinear(width, n_classes))
