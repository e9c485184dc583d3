r"""The method of lines as networks: convolutional right-hand sides, the exact CNN of a stencil, rollouts.

A finite-difference stencil is a convolution kernel (:mod:`companion.pde.stencils`), so the
semi-discrete right-hand side :math:`F(U)` of a PDE is a small CNN and one explicit Euler step
:math:`U + \delta t\,F_\theta(U)` is a ResNet layer (Celledoni, Jackaman, Murari and Owren, 2025).

Kernels follow PyTorch's cross-correlation convention and grids are ``(d, d)`` or ``(batch, d, d)``, as in
:mod:`companion.pde.stencils`. Data generation and the error-splitting measurements are in
:mod:`companion.pde.data`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_callable, check_choice, check_positive, check_positive_int, check_tensor
from .._settings import FixedSettings
from .stencils import (
    _ACTIVATIONS,
    BOUNDARIES,
    EQUATIONS,
    _pad,
    check_grid,
    check_order,
    check_time_step,
    check_velocity,
    rhs,
    stencil,
)

__all__ = [
    "ConvRHS",
    "exact_cnn",
    "MethodOfLinesNetwork",
    "method_of_lines",
    "rollout",
    "unrolled_loss",
    "rollout_metrics",
    "impulse_response",
]


def _kernel_symbol(weight: torch.Tensor, size: int) -> torch.Tensor:
    """Fourier symbol of a cross-correlation kernel ``(out, in, k, k)`` on the ``size x size`` torus."""
    k, mid = weight.shape[-1], weight.shape[-1] // 2
    full = F.pad(weight, (0, size - k, 0, size - k))
    full = torch.roll(full, shifts=(-mid, -mid), dims=(-2, -1))
    return torch.conj(torch.fft.rfft2(full))


def _circular_correlation_fft(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv2d`` of the circularly padded ``x`` (``(n, in, d, d)``) with ``weight``, computed by FFT."""
    size = x.shape[-1]
    product = torch.fft.rfft2(x)[:, None] * _kernel_symbol(weight, size)[None]  # (n, out, in, d, d//2+1)
    out = torch.fft.irfft2(product.sum(2), s=(size, size))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class ConvRHS(FixedSettings, nn.Module):
    r"""Two-layer CNN :math:`F_\theta(U) = s\,\big(\mathcal B\star\sigma(\mathcal A\star U + a) + b\big)`.

    With ``kernel_size=5``: ``ConvRHS(2, activation="relu", output_bias=False)`` has 102 parameters (the heat
    and advection network of the paper), ``ConvRHS(10, activation="relu2")`` has 511 (Fisher). The fixed
    ``scale`` :math:`s` (e.g. :math:`\alpha/h^2`) keeps the trainable weights of order one; since it depends on
    the grid spacing, pass ``grid_size`` and the field refuses grids of any other size.

    Parameters
    ----------
    hidden : int
        Number of hidden channels.
    activation : "relu", "relu2" or a sequence of them (one per channel)
        :math:`\sigma_1(x)=\max(0,x)`, :math:`\sigma_2(x)=\max(0,x)^2`.
    kernel_size : int
        Odd kernel size of both convolutions.
    output_bias : bool
        Whether the second convolution has a bias :math:`b`.
    boundary : {"periodic", "dirichlet"}
        Padding of both convolutions (circular or zero).
    scale : float
        Fixed output factor :math:`s > 0`.
    grid_size : int, optional
        The grid size :math:`d` the field is built for (``scale`` is usually :math:`\alpha d^2` or :math:`d`);
        ``None`` accepts any size.
    fft : bool
        Evaluate the circular convolutions by FFT (periodic boundary only): the same function to rounding,
        several times faster on a CPU in float64.

    Shapes: ``(d, d)`` or ``(batch, d, d)`` in, the same shape out.

    Raises
    ------
    ValueError
        On an even kernel size, an unknown activation or boundary, a mismatched activation list, ``fft`` with a
        Dirichlet boundary, or (at the call) a grid that is not square or not of size ``grid_size``.

    References
    ----------
    E. Celledoni, J. Jackaman, D. Murari, B. Owren, *Predictions based on pixel data: insights from PDEs and
    finite differences*, J. Comput. Phys. (2025), arXiv:2305.00723.
    """

    _settings = ("activations", "boundary", "scale", "grid_size", "fft")
    _sizes = ("hidden", "kernel_size")

    def __init__(
        self,
        hidden: int,
        *,
        activation: str | Sequence[str] = "relu",
        kernel_size: int = 5,
        output_bias: bool = True,
        boundary: str = "periodic",
        scale: float = 1.0,
        grid_size: int | None = None,
        fft: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int(hidden, "hidden")
        check_positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred stencils), got {kernel_size}.")
        self.hidden, self.kernel_size = hidden, kernel_size
        acts = (activation,) * hidden if isinstance(activation, str) else tuple(activation)
        self.first = nn.Conv2d(1, hidden, kernel_size, bias=True)
        self.second = nn.Conv2d(hidden, 1, kernel_size, bias=output_bias)
        self.register_buffer("power", torch.ones(1, hidden, 1, 1), persistent=False)
        self._configure(activations=acts, boundary=boundary, scale=scale, grid_size=grid_size, fft=fft)

    def _configure(self, *, activations, boundary: str, scale: float, grid_size: int | None, fft: bool) -> None:
        acts = tuple(activations)
        if len(acts) != self.hidden:
            raise ValueError(f"activation must name one activation per channel ({self.hidden}), got {len(acts)}.")
        for a in acts:
            check_choice(a, "activation", _ACTIVATIONS)
        check_choice(boundary, "boundary", BOUNDARIES)
        if grid_size is not None and (check_positive_int(grid_size, "grid_size") < self.kernel_size):
            raise ValueError(f"grid_size must be at least kernel_size={self.kernel_size}, got {grid_size}.")
        if not isinstance(fft, bool):
            raise TypeError(f"fft must be True or False, got {fft!r}.")
        if fft and boundary != "periodic":
            raise ValueError("fft=True evaluates circular convolutions: it needs boundary='periodic'.")
        self.activations, self.boundary, self.grid_size, self.fft = acts, boundary, grid_size, fft
        self.scale = check_positive(scale, "scale")
        power = torch.tensor([_ACTIVATIONS[a] for a in acts], dtype=self.power.dtype, device=self.power.device)
        self.power = power.view(1, -1, 1, 1)

    def _check_input(self, U: torch.Tensor) -> None:
        if U.ndim not in (2, 3) or U.shape[-1] != U.shape[-2]:
            raise ValueError(f"ConvRHS takes a grid (d, d) or a batch (batch, d, d), got shape {tuple(U.shape)}.")
        if U.dtype != self.first.weight.dtype:
            raise TypeError(
                f"the grid is {U.dtype} and the field's weights are {self.first.weight.dtype}; convert one "
                "of them, e.g. U.to(torch.float32) or model.double()."
            )
        if self.grid_size is not None and U.shape[-1] != self.grid_size:
            raise ValueError(
                f"this field was built for a {self.grid_size}x{self.grid_size} grid (its scale depends on the grid "
                f"spacing), got a {U.shape[-1]}x{U.shape[-1]} grid; build a network for that size, e.g. "
                f"make_network(..., size={U.shape[-1]})."
            )

    def forward(self, U: torch.Tensor) -> torch.Tensor:
        self._check_input(U)
        x = U.reshape(-1, 1, *U.shape[-2:])
        if self.fft:
            z = torch.relu(_circular_correlation_fft(x, self.first.weight, self.first.bias))
            z = torch.where(self.power == 2, z * z, z)
            out = _circular_correlation_fft(z, self.second.weight, self.second.bias)
        else:
            width = self.kernel_size // 2
            z = torch.relu(self.first(_pad(x, width, self.boundary)))
            z = torch.where(self.power == 2, z * z, z)
            out = self.second(_pad(z, width, self.boundary))
        return (self.scale * out).reshape(U.shape)


def _embed(kernel: torch.Tensor, size: int) -> torch.Tensor:
    if kernel.shape[0] > size:
        raise ValueError(f"kernel_size={size} is too small for a {kernel.shape[0]}x{kernel.shape[0]} stencil.")
    out = kernel.new_zeros(size, size)
    o = (size - kernel.shape[0]) // 2
    out[o : o + kernel.shape[0], o : o + kernel.shape[0]] = kernel
    return out


def exact_cnn(
    equation: str,
    *,
    h: float,
    alpha: float = 0.01,
    velocity: Sequence[float] = (1.0, 1.0),
    kernel_size: int = 5,
    hidden: int | None = None,
    boundary: str = "periodic",
    order: int = 2,
    scale: float = 1.0,
    grid_size: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> ConvRHS:
    r"""A :class:`ConvRHS` whose hand-set weights reproduce :func:`rhs` exactly (up to rounding).

    Built from :math:`x^p = \sigma_1(x)^p + (-1)^p\sigma_1(-x)^p`: :math:`Lu = \sigma_1(Lu) - \sigma_1(-Lu)`,
    :math:`u^2 = \sigma_2(u) + \sigma_2(-u)`, :math:`2ab = (a+b)^2 - a^2 - b^2` and, with biases,
    :math:`x = \tfrac12[\sigma_2(x+1)+\sigma_2(-x-1)-\sigma_2(x)-\sigma_2(-x)-1]`.
    Heat and advection use 2 ReLU channels (102 parameters), Fisher 6 ReLU² channels (of 10 by default: 511
    parameters), Burgers 2 ReLU + 6 ReLU² channels. Each channel is then rescaled
    (:math:`\sigma_p(x/\gamma)=\sigma_p(x)/\gamma^p`) so both layers have weights of similar size; this changes
    nothing but rounding. ``grid_size`` is passed on to :class:`ConvRHS` (the stencils depend on ``h``).

    Returns
    -------
    ConvRHS
        In ``dtype``; ``exact_cnn(...)(U)`` equals ``rhs(equation, U, ...)`` to about machine precision.

    Raises
    ------
    TypeError, ValueError
        On an unknown equation or boundary, a non-positive ``h``, ``alpha`` or ``scale``, an order other than
        2 or 4, a velocity that is not two finite numbers, or too few channels or too small a kernel.

    References
    ----------
    E. Celledoni, J. Jackaman, D. Murari, B. Owren, *Predictions based on pixel data: insights from PDEs and
    finite differences*, J. Comput. Phys. (2025), arXiv:2305.00723.
    """
    check_choice(equation, "equation", EQUATIONS)
    check_positive(h, "h")
    check_positive(scale, "scale")
    check_order(order)
    velocity = check_velocity(velocity)
    kw = dict(h=h, order=order, dtype=dtype)
    size = order + 1
    delta = torch.zeros(size, size, dtype=dtype)
    delta[size // 2, size // 2] = 1.0
    if equation in ("heat", "advection"):
        if equation == "heat":
            lin = check_positive(alpha, "alpha") * stencil("laplacian", **kw)
        else:
            lin = velocity[0] * stencil("dx", **kw) + velocity[1] * stencil("dy", **kw)
        rows = [(lin, 0.0, 1.0), (-lin, 0.0, -1.0)]
        acts, out_bias = ["relu", "relu"], None
    elif equation == "fisher":
        lin = check_positive(alpha, "alpha") * stencil("laplacian", **kw) + delta
        rows = [
            (lin, 1.0, 0.5),
            (-lin, -1.0, 0.5),
            (lin, 0.0, -0.5),
            (-lin, 0.0, -0.5),
            (delta, 0.0, -1.0),
            (-delta, 0.0, -1.0),
        ]
        acts, out_bias = ["relu2"] * 6, -0.5
    else:
        d1, d2 = stencil("dx", **kw), stencil("dy", **kw)
        rows = [
            (d1, 0.0, 1.0),
            (-d1, 0.0, -1.0),
            (delta, 0.0, -0.5),
            (-delta, 0.0, -0.5),
            (d2, 0.0, -0.5),
            (-d2, 0.0, -0.5),
            (delta + d2, 0.0, 0.5),
            (-delta - d2, 0.0, 0.5),
        ]
        acts, out_bias = ["relu"] * 2 + ["relu2"] * 6, None
    hidden = (10 if equation == "fisher" else len(rows)) if hidden is None else hidden
    if hidden < len(rows):
        raise ValueError(f"the exact CNN for {equation} needs hidden >= {len(rows)}, got {hidden}.")
    acts += ["relu2" if equation == "fisher" else "relu"] * (hidden - len(rows))
    net = ConvRHS(
        hidden,
        activation=acts,
        kernel_size=kernel_size,
        output_bias=out_bias is not None,
        boundary=boundary,
        scale=scale,
        grid_size=grid_size,
    ).to(dtype)
    mid = kernel_size // 2
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for c, (kernel, bias, weight) in enumerate(rows):
            a = _embed(kernel, kernel_size)
            b = weight / scale
            gamma = (max(a.abs().max().item(), abs(bias)) / abs(b)) ** (1.0 / (_ACTIVATIONS[acts[c]] + 1))
            net.first.weight[c, 0] = a / gamma
            net.first.bias[c] = bias / gamma
            net.second.weight[0, c, mid, mid] = b * gamma ** _ACTIVATIONS[acts[c]]
        if out_bias is not None:
            net.second.bias.fill_(out_bias / scale)
    return net


class MethodOfLinesNetwork(FixedSettings, nn.Module):
    r"""The ResNet :math:`\Psi(U) = (\mathrm{id} + \tfrac{\delta t}{n}F)^{\circ n}(U)`: ``substeps`` Euler steps.

    With ``projected=True`` each sub-step is the norm-preserving projected Euler step
    :math:`V = U + \tfrac{\delta t}{n}\big(F(U) - U\tfrac{\langle U,F(U)\rangle}{\langle U,U\rangle}\big)`,
    :math:`U \leftarrow V\,\|U^0\|/\|V\|` with the Frobenius norm, so :math:`\|\Psi(U)\| = \|U^0\|` to rounding.

    Parameters
    ----------
    field : callable or nn.Module
        :math:`F`, mapping a grid batch ``(batch, d, d)`` to the same shape (a :class:`ConvRHS`, or
        ``functools.partial(rhs, "heat", h=...)`` for the FD method of lines).
    dt : float
        Time step :math:`\delta t` of one network call.
    substeps : int
        Number :math:`n` of Euler sub-steps.
    projected : bool
        Use projected Euler (for norm-preserving PDEs such as periodic linear advection).

    Shapes: ``(d, d)`` or ``(batch, d, d)`` in, the same shape out.

    Raises
    ------
    TypeError, ValueError
        On a non-callable field, a non-positive ``dt`` or ``substeps``, or a ``projected`` that is not a bool.
    """

    _settings = ("dt", "substeps", "projected")

    def __init__(self, field: Callable, *, dt: float, substeps: int = 1, projected: bool = False) -> None:
        super().__init__()
        self.field = check_callable(field, "field")
        self._configure(dt=dt, substeps=substeps, projected=projected)

    def _configure(self, *, dt: float, substeps: int, projected: bool) -> None:
        if not isinstance(projected, bool):
            raise TypeError(f"projected must be True or False, got {projected!r}.")
        self.dt = check_positive(dt, "dt")
        self.substeps = check_positive_int(substeps, "substeps")
        self.projected = projected

    def forward(self, U: torch.Tensor, reference_norm: torch.Tensor | None = None) -> torch.Tensor:
        """One step; ``reference_norm`` (shape ``(batch,)``, default ``||U||``) is the norm kept by projection."""
        h = self.dt / self.substeps
        if self.projected and reference_norm is None:
            reference_norm = U.flatten(-2).norm(dim=-1)
        for _ in range(self.substeps):
            f = self.field(U)
            if self.projected:
                inner = (U * f).sum((-2, -1), keepdim=True) / (U * U).sum((-2, -1), keepdim=True)
                V = U + h * (f - inner * U)
                U = V * (reference_norm / V.flatten(-2).norm(dim=-1))[..., None, None]
            else:
                U = U + h * f
        return U


def method_of_lines(
    equation: str,
    *,
    h: float,
    dt: float,
    substeps: int = 1,
    alpha: float = 0.01,
    velocity: Sequence[float] = (1.0, 1.0),
    boundary: str = "periodic",
    order: int = 2,
    projected: bool = False,
    allow_unstable: bool = False,
) -> MethodOfLinesNetwork:
    """The FD method of lines :math:`\\Psi_F^{\\delta t}` (Euler sub-steps of :func:`rhs`), checked for stability.

    Plain explicit Euler on transport (advection, Burgers) with these central differences is unstable at every
    step size and refused unless ``allow_unstable=True``; ``projected=True`` is stable (:func:`check_time_step`).

    Raises
    ------
    TypeError, ValueError
        On an unstable time step or scheme (:func:`check_time_step`), an unknown equation or boundary, an order
        other than 2 or 4, or a velocity that is not two finite numbers: all at construction, not at the first
        call.
    """
    check_choice(equation, "equation", EQUATIONS)
    check_choice(boundary, "boundary", BOUNDARIES)
    check_order(order)
    velocity = check_velocity(velocity)
    check_time_step(
        equation,
        dt,
        h=h,
        alpha=alpha,
        velocity=velocity,
        substeps=substeps,
        order=order,
        projected=projected,
        allow_unstable=allow_unstable,
    )

    def field(U: torch.Tensor) -> torch.Tensor:
        return rhs(equation, U, h=h, alpha=alpha, velocity=velocity, boundary=boundary, order=order)

    return MethodOfLinesNetwork(field, dt=dt, substeps=substeps, projected=projected)


def rollout(model: Callable, U0: torch.Tensor, steps: int) -> torch.Tensor:
    r"""Iterate ``model`` ``steps`` times without gradients: returns ``(batch, steps + 1, d, d)``, entry ``j`` is
    :math:`\Psi^j(U^0)`. A projected :class:`MethodOfLinesNetwork` keeps :math:`\|U^0\|` throughout.

    Raises
    ------
    TypeError, ValueError
        On a non-callable model, a grid that is not ``(batch, d, d)``, or ``steps < 1``.
    """
    check_callable(model, "model")
    check_grid(U0, "U0")
    check_positive_int(steps, "steps")
    U = U0 if U0.ndim == 3 else U0[None]
    extra = (U.flatten(-2).norm(dim=-1),) if getattr(model, "projected", False) else ()
    states = [U]
    with torch.no_grad():
        for _ in range(steps):
            U = model(U, *extra)
            states.append(U)
    return torch.stack(states, 1)


def unrolled_loss(model: Callable, U0: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""Unrolled loss :math:`\frac1T\sum_{j=1}^T \mathrm{MSE}(\Psi^j(U^0), U^j)` for ``targets`` of shape
    ``(batch, T, d, d)``. Pass it to :func:`companion.training.fit` as ``loss=unrolled_loss`` with data
    ``(U0, targets)``."""
    extra = (U0.flatten(-2).norm(dim=-1),) if getattr(model, "projected", False) else ()
    U, total = U0, 0.0
    for j in range(targets.shape[1]):
        U = model(U, *extra)
        total = total + F.mse_loss(U, targets[:, j])
    return total / targets.shape[1]


def rollout_metrics(prediction: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Per-step errors of a rollout, each of shape ``(steps + 1,)`` (the metrics of Celledoni, Jackaman,
    Murari and Owren, 2025).

    ``mse``: mean over samples and pixels of :math:`(N^j(U^0)-U^j)^2`; ``max_error``: mean over samples of the
    max abs error; ``relative_error``: mean over samples of :math:`\|N^j(U^0)-U^j\|_F/\|U^j\|_F`.

    Raises
    ------
    ValueError
        If the shapes differ or are not ``(batch, steps + 1, d, d)``.
    """
    check_tensor(prediction, "prediction", ndim=4)
    check_tensor(truth, "truth", ndim=4)
    if prediction.shape != truth.shape:
        raise ValueError(
            f"prediction and truth must have the same shape, got {tuple(prediction.shape)} and {tuple(truth.shape)}."
        )
    error = (prediction - truth).flatten(-2)
    return {
        "mse": (error**2).mean((0, 2)),
        "max_error": error.abs().amax(-1).mean(0),
        "relative_error": (error.norm(dim=-1) / truth.flatten(-2).norm(dim=-1)).mean(0),
    }


def impulse_response(
    field: Callable, *, size: int = 9, amplitude: float = 1.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""Odd part of the response to a unit impulse, :math:`(F(\varepsilon e) - F(-\varepsilon e))/(2\varepsilon)`
    on a ``size x size`` periodic grid, centred: for a linear FD field this is its stencil (as a convolution)."""
    e = torch.zeros(1, size, size, dtype=dtype)
    e[0, size // 2, size // 2] = amplitude
    with torch.no_grad():
        return ((field(e) - field(-e)) / (2 * amplitude))[0]
