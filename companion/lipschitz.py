r"""Operator norms that are upper bounds, and layers that are 1-Lipschitz for every parameter value.

* :func:`dense_operator_norm` is exact; :func:`periodic_conv_operator_norm` is the exact norm of a
  circular convolution at a given input size (from the FFT of the kernel); :func:`conv_operator_norm`
  is that, or, for zero padding, a *certified* upper bound (the zero-padded operator is a restriction
  of a periodic one on a larger grid). :func:`power_iteration` is the usual *estimate* (a lower bound).
* :class:`NonExpansiveLayer` and :class:`NonExpansiveConvLayer`: one explicit Euler step of the
  gradient flow :math:`\dot x = -A^\top\sigma(Ax+b)`, with :math:`h\le 2/\|A\|_2^2` enforced in ``forward``.
* :class:`SwitchingLayer`: the contractive / expansive pair of Celledoni et al. (2023), with the
  steps kept inside the admissible region :func:`switching_lipschitz_bound` :math:`\le 1`.
* :func:`network_lipschitz_bound` multiplies the bounds of a ``nn.Sequential``, preprocessing included.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023). F. Sherry et al., *Designing stable neural networks
using convex analysis and ODEs*, Physica D 463 (2024).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_choice, check_positive, check_positive_int, check_tensor

__all__ = [
    "dense_operator_norm", "periodic_conv_operator_norm", "conv_operator_norm", "reshaped_kernel_norm",
    "power_iteration", "conv2d_same", "conv2d_same_adjoint", "conv_power_iteration",
    "NonExpansiveLayer", "NonExpansiveConvLayer", "SwitchingLayer", "NormalizedLinear", "Standardize",
    "contractive_factor", "switching_lipschitz_bound", "network_lipschitz_bound", "lipschitz_classifier",
]

PADDING_MODES = ("zeros", "circular")
_ACTIVATIONS = ("relu", "leaky_relu", "tanh")


def dense_operator_norm(weight: torch.Tensor) -> torch.Tensor:
    r"""Exact :math:`\|W\|_2` (largest singular value) of a ``(out, in)`` matrix; differentiable."""
    check_tensor(weight, "weight", ndim=2)
    return torch.linalg.matrix_norm(weight, ord=2)


def _check_kernel(weight: torch.Tensor, input_size) -> tuple[int, int]:
    check_tensor(weight, "weight", ndim=4)
    if not (isinstance(input_size, (tuple, list)) and len(input_size) == 2):
        raise TypeError(f"input_size must be a pair (height, width), got {input_size!r}.")
    return check_positive_int(input_size[0], "input_size[0]"), check_positive_int(input_size[1], "input_size[1]")


def periodic_conv_operator_norm(weight: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    r"""Exact norm of the circular (periodic) convolution with ``weight`` on ``input_size`` images.

    The operator is block circulant, so the FFT block-diagonalises it: with
    :math:`\hat W(\omega)\in\mathbb C^{C_\text{out}\times C_\text{in}}` the 2-D DFT of the kernel
    embedded (wrapped) in an :math:`n_1\times n_2` grid,
    :math:`\|A\|_2 = \max_\omega \|\hat W(\omega)\|_2` (Sedghi, Gupta, Long 2019). Shifts and the
    cross-correlation convention only change phases, which leave singular values unchanged.

    Parameters
    ----------
    weight : torch.Tensor
        Kernel of shape ``(C_out, C_in, k1, k2)`` (stride 1).
    input_size : tuple of int
        Spatial size ``(n1, n2)`` of the input.

    Returns
    -------
    torch.Tensor
        The norm, a differentiable scalar.

    Raises
    ------
    TypeError, ValueError
        If ``weight`` is not a 4-D floating tensor or ``input_size`` not a pair of positive ints.
    """
    n1, n2 = _check_kernel(weight, input_size)
    c_out, c_in, k1, k2 = weight.shape
    wrapped = weight.new_zeros(c_out, c_in, k1, n2).index_add(3, torch.arange(k2, device=weight.device) % n2, weight)
    wrapped = weight.new_zeros(c_out, c_in, n1, n2).index_add(2, torch.arange(k1, device=weight.device) % n1, wrapped)
    blocks = torch.fft.fft2(wrapped).permute(2, 3, 0, 1)  # (n1, n2, C_out, C_in)
    return torch.linalg.matrix_norm(blocks, ord=2).max()


def conv_operator_norm(
    weight: torch.Tensor, input_size: tuple[int, int], *, padding_mode: str = "zeros"
) -> torch.Tensor:
    r"""An upper bound on the norm of a stride-1 convolution with ``weight`` on ``input_size`` images.

    ``"circular"``: exact (:func:`periodic_conv_operator_norm`). ``"zeros"`` (any zero padding): the
    zero-padded operator equals :math:`R\,C_N\,E`, with :math:`E` the zero-extension of the image to an
    :math:`N = n + k - 1` grid, :math:`C_N` the periodic convolution there and :math:`R` a restriction;
    :math:`\|E\| = \|R\| = 1`, so :math:`\|C_N\|` is a certified bound (it is never below the true norm).

    Raises
    ------
    TypeError, ValueError
        On a malformed kernel or size, or an unknown ``padding_mode``.
    """
    n1, n2 = _check_kernel(weight, input_size)
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
    if padding_mode == "circular":
        return periodic_conv_operator_norm(weight, (n1, n2))
    return periodic_conv_operator_norm(weight, (n1 + weight.shape[2] - 1, n2 + weight.shape[3] - 1))


def reshaped_kernel_norm(weight: torch.Tensor) -> torch.Tensor:
    r"""Norm of the kernel reshaped to a ``(C_out, C_in k1 k2)`` matrix: **not** the operator norm (shown for contrast)."""
    check_tensor(weight, "weight", ndim=4)
    return torch.linalg.matrix_norm(weight.flatten(1), ord=2)


def power_iteration(
    operator: Callable[[torch.Tensor], torch.Tensor],
    adjoint: Callable[[torch.Tensor], torch.Tensor],
    example: torch.Tensor,
    *,
    iterations: int = 100,
    seed: int = 0,
) -> float:
    r"""Estimate :math:`\|A\|_2` by power iteration :math:`u\leftarrow A^\top Au/\|A^\top Au\|`.

    An estimate from below (it converges to the norm from below); never use it alone as a certificate.

    Parameters
    ----------
    operator, adjoint : callable
        The linear map :math:`A` and its adjoint :math:`A^\top`.
    example : torch.Tensor
        A tensor of the input shape and dtype (its values are not used).
    iterations : int
        Number of iterations.
    seed : int
        Seed of the random start.

    Raises
    ------
    TypeError, ValueError
        On non-callable maps or a bad count.
    """
    if not (callable(operator) and callable(adjoint)):
        raise TypeError("operator and adjoint must be callables mapping tensors to tensors.")
    check_tensor(example, "example")
    check_positive_int(iterations, "iterations")
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(example.shape, generator=gen, dtype=example.dtype).to(example.device)
    u = u / u.norm()
    with torch.no_grad():
        for _ in range(iterations):
            v = adjoint(operator(u))
            u = v / v.norm()
        return float(operator(u).norm())


def _same_padding(weight: torch.Tensor) -> int:
    k1, k2 = weight.shape[-2:]
    if k1 != k2 or k1 % 2 == 0:
        raise ValueError(f"the kernel must be square with an odd size for 'same' padding, got {k1}x{k2}.")
    return k1 // 2


def conv2d_same(x: torch.Tensor, weight: torch.Tensor, bias=None, *, padding_mode: str = "zeros") -> torch.Tensor:
    """Stride-1 'same' cross-correlation (PyTorch's ``conv2d``) with zero or circular padding."""
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
    p = _same_padding(weight)
    if padding_mode == "circular":
        return F.conv2d(F.pad(x, (p, p, p, p), mode="circular"), weight, bias)
    return F.conv2d(x, weight, bias, padding=p)


def conv2d_same_adjoint(z: torch.Tensor, weight: torch.Tensor, *, padding_mode: str = "zeros") -> torch.Tensor:
    r"""The exact adjoint of :func:`conv2d_same` (without bias) for the same padding.

    Zero padding: ``conv_transpose2d`` with the same padding. Circular padding: the circular
    cross-correlation with the flipped, channel-transposed kernel (``conv_transpose2d`` would
    forget the wrap-around).
    """
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
    p = _same_padding(weight)
    if padding_mode == "circular":
        flipped = weight.flip(-1, -2).transpose(0, 1)
        return F.conv2d(F.pad(z, (p, p, p, p), mode="circular"), flipped)
    return F.conv_transpose2d(z, weight, padding=p)


def conv_power_iteration(
    weight: torch.Tensor, input_size: tuple[int, int], *, padding_mode: str = "zeros", iterations: int = 100, seed: int = 0
) -> float:
    """Power-iteration estimate of a 'same' convolution's norm at ``input_size`` (see :func:`power_iteration`)."""
    n1, n2 = _check_kernel(weight, input_size)
    example = weight.new_zeros(1, weight.shape[1], n1, n2)
    return power_iteration(
        lambda u: conv2d_same(u, weight, padding_mode=padding_mode),
        lambda v: conv2d_same_adjoint(v, weight, padding_mode=padding_mode),
        example, iterations=iterations, seed=seed,
    )


def _activation(name: str, negative_slope: float) -> Callable[[torch.Tensor], torch.Tensor]:
    check_choice(name, "activation", _ACTIVATIONS)
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or not 0 <= negative_slope <= 1:
        raise ValueError(f"negative_slope must be a number in [0, 1] (a monotone, 1-Lipschitz sigma), got {negative_slope!r}.")
    if name == "relu":
        return F.relu
    if name == "tanh":
        return torch.tanh
    return lambda s: F.leaky_relu(s, negative_slope)


class NonExpansiveLayer(nn.Module):
    r"""One explicit Euler step of a convex gradient flow: :math:`x\mapsto x - hA^\top\sigma(Ax+b)`.

    With :math:`\sigma` monotone and 1-Lipschitz (ReLU, LeakyReLU, tanh) the field is
    :math:`-\nabla V` with :math:`V = \mathbf 1^\top\gamma(Ax+b)` convex and :math:`\|A\|_2^2`-smooth, and
    the step is 1-Lipschitz in :math:`\ell_2` whenever :math:`h\le 2/\|A\|_2^2`. The forward pass uses
    :math:`h = \min(|h_\text{raw}|,\, 2/\|A\|_2^2)` with the exact norm, so the layer is non-expansive for
    **every** parameter value.

    Parameters
    ----------
    dim : int
        State dimension; inputs have shape ``(batch, dim)``.
    hidden : int, optional
        Rows of :math:`A` (default ``dim``).
    step : float
        Initial :math:`h_\text{raw}`, > 0 (learned unless ``learn_step=False``).
    activation : {"relu", "leaky_relu", "tanh"}
        The monotone :math:`\sigma`.
    negative_slope : float
        Slope of ``leaky_relu`` for negative inputs, in [0, 1].
    learn_step : bool
        Learn :math:`h_\text{raw}`.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, a non-positive step, an unknown activation or a slope outside [0, 1].
    """

    def __init__(
        self, dim: int, *, hidden: int | None = None, step: float = 1.0, activation: str = "relu",
        negative_slope: float = 0.01, learn_step: bool = True,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        hidden = dim if hidden is None else check_positive_int(hidden, "hidden")
        self.sigma = _activation(activation, negative_slope)
        self.weight = nn.Parameter(torch.empty(hidden, dim))
        nn.init.orthogonal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(hidden))
        step_tensor = torch.tensor(check_positive(step, "step"))
        self.raw_step = nn.Parameter(step_tensor) if learn_step else nn.Buffer(step_tensor)

    def step(self) -> torch.Tensor:
        r"""The step used in ``forward``: :math:`\min(|h_\text{raw}|, 2/\|A\|_2^2)`."""
        return torch.minimum(self.raw_step.abs(), 2.0 / dense_operator_norm(self.weight) ** 2)

    def lipschitz_bound(self) -> float:
        """1: the layer is non-expansive for every parameter value."""
        return 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        return x - self.step() * (self.sigma(x @ self.weight.T + self.bias) @ self.weight)


class NonExpansiveConvLayer(nn.Module):
    r"""Convolutional :class:`NonExpansiveLayer`: :math:`x\mapsto x - hA^\top\sigma(Ax+b)`, :math:`A` a 'same' convolution.

    :math:`A^\top` is the exact adjoint for the padding used (:func:`conv2d_same_adjoint`) and
    :math:`h=\min(|h_\text{raw}|, 2/\bar a^2)` with :math:`\bar a\ge\|A\|_2` from :func:`conv_operator_norm`
    at the size of each input, so the layer is 1-Lipschitz for every parameter value and image size.

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
    step, activation, negative_slope, learn_step
        As in :class:`NonExpansiveLayer`.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, an even kernel, an unknown padding or activation.
    """

    def __init__(
        self, channels: int, *, hidden_channels: int | None = None, kernel_size: int = 3, padding_mode: str = "zeros",
        step: float = 1.0, activation: str = "relu", negative_slope: float = 0.01, learn_step: bool = True,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        hidden = channels if hidden_channels is None else check_positive_int(hidden_channels, "hidden_channels")
        if check_positive_int(kernel_size, "kernel_size") % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}.")
        self.padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
        self.sigma = _activation(activation, negative_slope)
        self.weight = nn.Parameter(torch.randn(hidden, channels, kernel_size, kernel_size) / (kernel_size * math.sqrt(channels)))
        self.bias = nn.Parameter(torch.zeros(hidden))
        step_tensor = torch.tensor(check_positive(step, "step"))
        self.raw_step = nn.Parameter(step_tensor) if learn_step else nn.Buffer(step_tensor)

    def step(self, input_size: tuple[int, int]) -> torch.Tensor:
        """The step used in ``forward`` for images of ``input_size``."""
        bound = conv_operator_norm(self.weight, tuple(input_size), padding_mode=self.padding_mode)
        return torch.minimum(self.raw_step.abs(), 2.0 / bound**2)

    def lipschitz_bound(self) -> float:
        """1: the layer is non-expansive for every parameter value."""
        return 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", ndim=4)
        if x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels, got shape {tuple(x.shape)}.")
        pre = conv2d_same(x, self.weight, self.bias, padding_mode=self.padding_mode)
        return x - self.step(x.shape[-2:]) * conv2d_same_adjoint(self.sigma(pre), self.weight, padding_mode=self.padding_mode)


def contractive_factor(step, *, slope: float = 0.5, sub_steps: int = 2):
    r"""Lipschitz bound :math:`\big(1 - 2a u + u^2\big)^{S/2}`, :math:`u = h/S`, of :math:`S` contractive sub-steps.

    Each sub-step :math:`x - uA^\top\Sigma(Ax+b)` with :math:`A` orthogonal and :math:`\Sigma` of slopes in
    :math:`[a, 1]` satisfies :math:`\|\Delta x - u A^\top\Delta\Sigma\|^2\le(1-2au+u^2)\|\Delta x\|^2`.
    Works on floats and tensors.
    """
    u = step / sub_steps
    return (1.0 - 2.0 * slope * u + u * u) ** (sub_steps / 2)


def switching_lipschitz_bound(h_contractive, h_expansive, *, slope: float = 0.5, sub_steps: int = 2):
    r"""Bound :math:`(1+h_E)\,(1-2a h_C/S+h_C^2/S^2)^{S/2}` of an expansive step followed by :math:`S` contractive sub-steps.

    The pair :math:`(h_C, h_E)` is admissible (the composition is 1-Lipschitz) when this is :math:`\le 1`.
    """
    return (1.0 + h_expansive) * contractive_factor(h_contractive, slope=slope, sub_steps=sub_steps)


def _orthogonal(raw: torch.Tensor) -> torch.Tensor:
    return torch.linalg.matrix_exp(raw - raw.T)


class SwitchingLayer(nn.Module):
    r"""An expansive step, then :math:`S` contractive sub-steps, with the steps kept admissible.

    .. math:: x\mapsto \big(\Psi_C^{h_C/S}\big)^S\big(x + h_E A_E^\top\Sigma(A_E x + b_E)\big),\qquad
       \Psi_C^{u}(y) = y - uA_C^\top\Sigma(A_C y + b_C),

    with :math:`\Sigma` the LeakyReLU of slope :math:`a` and :math:`A_C, A_E` orthogonal
    (:math:`\exp` of skew matrices). The expansive step is :math:`(1+h_E)`-Lipschitz; ``forward``
    clamps :math:`h_C` to ``contractive_range`` and :math:`h_E` to
    :math:`[0, 1/\text{contractive\_factor}(h_C) - 1]`, so the layer is 1-Lipschitz for every parameter value.

    Parameters
    ----------
    dim : int
        State dimension.
    contractive_range : tuple of float
        Interval of :math:`h_C` (the paper's ``(0.11, 1.89)``), inside :math:`(0, 2S)`.
    slope : float
        :math:`a\in(0, 1]`.
    sub_steps : int
        :math:`S`.

    Raises
    ------
    TypeError, ValueError
        On a bad size, slope or range.
    """

    def __init__(
        self, dim: int, *, contractive_range: tuple[float, float] = (0.11, 1.89), slope: float = 0.5, sub_steps: int = 2
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.sub_steps = check_positive_int(sub_steps, "sub_steps")
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 < slope <= 1:
            raise ValueError(f"slope must be in (0, 1], got {slope!r}.")
        if not (isinstance(contractive_range, (tuple, list)) and len(contractive_range) == 2):
            raise TypeError(f"contractive_range must be a pair (low, high), got {contractive_range!r}.")
        low, high = contractive_range
        if not 0 < low < high <= 2 * slope * sub_steps:
            raise ValueError(
                f"contractive_range must satisfy 0 < low < high <= 2 * slope * sub_steps = {2 * slope * sub_steps} "
                f"(contractive factor <= 1), got {contractive_range}."
            )
        self.slope, self.contractive_range = float(slope), (float(low), float(high))
        self.raw_contractive = nn.Parameter(torch.zeros(dim, dim))
        self.raw_expansive = nn.Parameter(torch.zeros(dim, dim))
        nn.init.normal_(self.raw_contractive, std=0.1 / math.sqrt(dim))
        nn.init.normal_(self.raw_expansive, std=0.1 / math.sqrt(dim))
        self.bias_contractive = nn.Parameter(torch.zeros(dim))
        self.bias_expansive = nn.Parameter(torch.zeros(dim))
        self.raw_h_contractive = nn.Parameter(torch.tensor(1.0))
        self.raw_h_expansive = nn.Parameter(torch.tensor(0.05))

    def steps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The admissible :math:`(h_C, h_E)` used in ``forward``."""
        h_c = self.raw_h_contractive.clamp(*self.contractive_range)
        h_e_max = 1.0 / contractive_factor(h_c, slope=self.slope, sub_steps=self.sub_steps) - 1.0
        return h_c, torch.minimum(self.raw_h_expansive.abs(), h_e_max)

    def lipschitz_bound(self) -> float:
        """The product bound at the current steps (<= 1)."""
        h_c, h_e = self.steps()
        return float(switching_lipschitz_bound(h_c, h_e, slope=self.slope, sub_steps=self.sub_steps).detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.dim)
        h_c, h_e = self.steps()
        a_e, a_c = _orthogonal(self.raw_expansive), _orthogonal(self.raw_contractive)
        x = x + h_e * (F.leaky_relu(x @ a_e.T + self.bias_expansive, self.slope) @ a_e)
        u = h_c / self.sub_steps
        for _ in range(self.sub_steps):
            x = x - u * (F.leaky_relu(x @ a_c.T + self.bias_contractive, self.slope) @ a_c)
        return x


class NormalizedLinear(nn.Linear):
    r"""A linear map :math:`x\mapsto Wx/\max(1,\|W\|_2) + b`: 1-Lipschitz for every weight (exact norm)."""

    def normalized_weight(self) -> torch.Tensor:
        return self.weight / torch.clamp(dense_operator_norm(self.weight), min=1.0)

    def lipschitz_bound(self) -> float:
        return 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


class Standardize(nn.Module):
    r"""Preprocessing :math:`x\mapsto(x-\mu)/s` inside the model; its Lipschitz constant :math:`1/\min s` counts in :math:`L`."""

    def __init__(self, mean: float | torch.Tensor, std: float | torch.Tensor) -> None:
        super().__init__()
        std = torch.as_tensor(std, dtype=torch.float32)
        if not bool((std > 0).all()):
            raise ValueError(f"std must be > 0 everywhere, got {std}.")
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", std)

    def lipschitz_bound(self) -> float:
        return float(1.0 / self.std.min())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


_ONE_LIPSCHITZ = (nn.ReLU, nn.Tanh, nn.Identity, nn.Flatten)


def network_lipschitz_bound(model: nn.Module) -> float:
    r"""Upper bound on :math:`\operatorname{Lip}(\text{model})` in :math:`\ell_2`: the product over its parts.

    A module with a ``lipschitz_bound()`` method gives that; ``nn.Sequential`` multiplies its children;
    ``nn.Linear`` gives its exact norm; ReLU, tanh, Identity, Flatten and LeakyReLU (slope <= 1) give 1.

    Raises
    ------
    TypeError
        On a module whose bound is unknown (give it a ``lipschitz_bound()`` method).
    """
    if hasattr(model, "lipschitz_bound"):
        return float(model.lipschitz_bound())
    if isinstance(model, nn.Sequential):
        return math.prod(network_lipschitz_bound(child) for child in model)
    if isinstance(model, nn.Linear):
        return float(dense_operator_norm(model.weight).detach())
    if isinstance(model, _ONE_LIPSCHITZ) or (isinstance(model, nn.LeakyReLU) and abs(model.negative_slope) <= 1):
        return 1.0
    raise TypeError(
        f"no Lipschitz bound known for {type(model).__name__}; give it a lipschitz_bound() method "
        "or build the model from the modules of companion.lipschitz."
    )


def lipschitz_classifier(
    in_dim: int, n_classes: int, *, width: int, depth: int, kind: str = "nonexpansive", preprocessing: nn.Module | None = None
) -> nn.Sequential:
    r"""A classifier ``[preprocessing] -> NormalizedLinear -> depth layers -> NormalizedLinear``, 1-Lipschitz after preprocessing.

    Parameters
    ----------
    in_dim, n_classes, width : int
        Input size, number of classes, state width of the layers.
    depth : int
        Number of :class:`NonExpansiveLayer` (``kind="nonexpansive"``) or :class:`SwitchingLayer`
        (``kind="switching"``, each an expansive step and two contractive sub-steps).
    preprocessing : nn.Module, optional
        E.g. :class:`Standardize`; its bound enters :func:`network_lipschitz_bound`.

    Raises
    ------
    TypeError, ValueError
        On bad sizes or an unknown ``kind``.
    """
    for name, value in (("in_dim", in_dim), ("n_classes", n_classes), ("width", width), ("depth", depth)):
        check_positive_int(value, name)
    check_choice(kind, "kind", ("nonexpansive", "switching"))
    layer = NonExpansiveLayer if kind == "nonexpansive" else SwitchingLayer
    modules = [] if preprocessing is None else [preprocessing]
    modules += [NormalizedLinear(in_dim, width), *[layer(width) for _ in range(depth)], NormalizedLinear(width, n_classes)]
    return nn.Sequential(*modules)
