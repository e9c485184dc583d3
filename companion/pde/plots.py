r"""Figures of chapter 4: the method of lines as a network, the error splitting, predictions against the truth.

Schematics are drawn in code from the mathematics they show (so they are tested to run): the image, a
finite-difference stencil sliding over it as a convolution, and Euler sub-steps as residual blocks
(:func:`method_of_lines_schematic`); the truth, the exact semi-discrete flow, the Euler step and the network's
step with the three error terms between them (:func:`error_splitting_schematic`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_tensor, import_optional

# matplotlib is an extra (companion[plots]): a missing one is named with the command that installs it.
import_optional("matplotlib", "plots", "companion.pde.plots draws with matplotlib")
import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from ..plotting import _box as _schematic_box

__all__ = ["method_of_lines_schematic", "error_splitting_schematic", "prediction_figure"]

_BLUE, _ORANGE, _GREEN, _PINK, _GREY = "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#333333"


def _box(
    ax: plt.Axes, x: float, y: float, text: str, *, color: str, width: float, height: float, size: float = 10
) -> None:
    _schematic_box(ax, (x, y), text, color=color, width=width, height=height, size=size, lw=1.4)


def _arrow(
    ax: plt.Axes,
    start,
    end,
    *,
    color: str = _GREY,
    text: str = "",
    offset=(0.0, 0.12),
    size: float = 9,
    style: str = "-|>",
    curve: float = 0.0,
) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops=dict(
            arrowstyle=style, color=color, lw=1.4, shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={curve}"
        ),
    )
    if text:
        ax.text(
            (start[0] + end[0]) / 2 + offset[0],
            (start[1] + end[1]) / 2 + offset[1],
            text,
            ha="center",
            va="center",
            fontsize=size,
            color=color,
        )


def method_of_lines_schematic() -> mpl.figure.Figure:
    r"""The method of lines as a convolutional ResNet, in three panels.

    Left: a grid function :math:`U_{rs} = u(x_r, y_s)` with a 3x3 window. Middle: the 5-point Laplacian as a
    kernel; sliding it over the image is a convolution, :math:`\delta x^2\,\Delta_{\delta x} U = K\star U`.
    Right: one step of the network, ``n`` explicit Euler sub-steps
    :math:`U \mapsto U + \tfrac{\delta t}{n}F_\theta(U)`, each a residual block whose field is the two-layer CNN
    :math:`F_\theta = \mathcal B\star\sigma(\mathcal A\star U)`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.6), gridspec_kw={"width_ratios": [1.0, 0.9, 2.2]})
    size = 12
    x = np.arange(size) / size
    image = np.sin(2 * math.pi * x)[:, None] * np.cos(4 * math.pi * x)[None, :]
    ax = axes[0]
    ax.imshow(image, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.add_patch(Rectangle((3.5, 4.5), 3, 3, fill=False, edgecolor=_ORANGE, lw=2))
    ax.set_title("pixels $U_{rs} = u(x_r, y_s)$", fontsize=10)

    ax = axes[1]
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=float)
    ax.imshow(kernel, cmap="RdBu_r", vmin=-6, vmax=6)
    for (i, j), value in np.ndenumerate(kernel):
        ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=11)
    ax.set_title("stencil = kernel $K$\n" r"$\delta x^2\,\Delta_{\delta x} U = K\star U$", fontsize=10)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for edge in ax.spines.values():
            edge.set_visible(True)
            edge.set_edgecolor(_ORANGE if ax is axes[1] else _GREY)
    axes[0].annotate(
        "",
        xy=(-0.08, 0.5),
        xytext=(1.0, 0.5),
        xycoords=axes[1].transAxes,
        textcoords=axes[0].transAxes,
        arrowprops=dict(arrowstyle="-|>", color=_ORANGE, lw=1.4),
    )

    ax = axes[2]
    ax.set_xlim(0, 6.2)
    ax.set_ylim(0, 2.5)
    ax.set_axis_off()
    ax.text(0.3, 0.8, "$U^j$", ha="center", va="center", fontsize=12)
    for left in (0.6, 2.5):
        plus = (left + 1.45, 0.8)
        ax.plot([left, plus[0] - 0.13], [0.8, 0.8], color=_GREEN, lw=1.4)
        ax.plot([left + 0.2, left + 0.2], [0.8, 1.75], color=_GREY, lw=1.2)
        _arrow(ax, (left + 0.2, 1.75), (left + 0.45, 1.75))
        _box(ax, left + 0.8, 1.75, r"$F_\theta$", color=_BLUE, width=0.6, height=0.5, size=11)
        ax.plot([left + 1.1, plus[0]], [1.75, 1.75], color=_GREY, lw=1.2)
        _arrow(ax, (plus[0], 1.75), (plus[0], 0.93))
        ax.text(plus[0] + 0.08, 1.3, r"$\times\frac{\delta t}{n}$", fontsize=10, va="center")
        ax.text(*plus, r"$\oplus$", ha="center", va="center", fontsize=15, color=_GREY)
        _arrow(ax, (plus[0] + 0.13, 0.8), (plus[0] + 0.45, 0.8))
    ax.text(0.95, 0.55, "skip", color=_GREEN, fontsize=8, ha="center")
    ax.text(4.75, 0.8, r"$\cdots$", ha="center", va="center", fontsize=12)
    _arrow(ax, (4.95, 0.8), (5.3, 0.8))
    ax.text(5.7, 0.8, "$U^{j+1}$", ha="center", va="center", fontsize=12)
    ax.text(
        3.1,
        0.12,
        r"$n$ Euler sub-steps: a ResNet, $F_\theta = \mathcal{B}\star\sigma(\mathcal{A}\star U)$",
        ha="center",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def error_splitting_schematic() -> mpl.figure.Figure:
    r"""The one-step error splitting: from :math:`U^j`, four maps end at four nearby points.

    The truth :math:`U^{j+1}`, the exact flow :math:`\Phi^{\delta t}_F(U^j)` of the semi-discrete system, the
    Euler sub-steps :math:`\Psi^{\delta t}_F(U^j)` with the finite-difference field and the network's step
    :math:`\Psi^{\delta t}_{F_\theta}(U^j)`; consecutive endpoints are joined by the spatial error
    :math:`O(\delta x^2)`, the temporal error :math:`O(\delta t^{r+1})` and the network term.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(6.6, 3.0))
    ax.set_xlim(-0.2, 6.6)
    ax.set_ylim(-0.3, 2.9)
    ax.set_axis_off()
    start = (0.3, 0.4)
    ax.plot(*start, "o", color=_GREY)
    ax.text(start[0] - 0.1, start[1] - 0.25, "$U^j$", fontsize=12, ha="center")
    ends = [(4.0, 2.5), (4.25, 1.8), (4.45, 1.15), (4.6, 0.55)]
    labels = [
        r"$U^{j+1}$ (truth)",
        r"$\Phi^{\delta t}_F(U^j)$ (exact flow of $\dot U = F(U)$)",
        r"$\Psi^{\delta t}_F(U^j)$ (Euler, FD field)",
        r"$\Psi^{\delta t}_{F_\theta}(U^j)$ (network)",
    ]
    colors = [_GREY, _BLUE, _GREEN, _ORANGE]
    for (x, y), label, color, curve in zip(ends, labels, colors, (-0.25, -0.18, -0.1, -0.04)):
        ax.annotate(
            "",
            xy=(x, y),
            xytext=start,
            arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3, connectionstyle=f"arc3,rad={curve}"),
        )
        ax.plot(x, y, "o", color=color, ms=5)
        ax.text(x + 0.15, y, label, fontsize=9, va="center", color=color)
    terms = [r"spatial $O(\delta x^2)$", r"temporal $O(\delta t^{r+1})$", "network"]
    for (a, b), term in zip(zip(ends, ends[1:]), terms):
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="<->", color=_PINK, lw=1.2, shrinkA=4, shrinkB=4))
        ax.text(mid[0] - 0.2, mid[1], term, fontsize=9, color=_PINK, ha="right", va="center")
    fig.tight_layout()
    return fig


def prediction_figure(
    truth: torch.Tensor, prediction: torch.Tensor, *, title: str = "", step: int | None = None
) -> mpl.figure.Figure:
    """Truth, prediction and their difference (own colour scale, its maximum in the title) for one grid.

    Parameters
    ----------
    truth, prediction : torch.Tensor
        Grids ``(d, d)``.
    title : str
        Figure title.
    step : int, optional
        The step :math:`j`, shown in the panel titles.

    Raises
    ------
    TypeError, ValueError
        If the grids are not 2-D tensors of the same shape.
    """
    check_tensor(truth, "truth", ndim=2)
    check_tensor(prediction, "prediction", ndim=2)
    if truth.shape != prediction.shape:
        raise ValueError(
            f"truth and prediction must have the same shape, got {tuple(truth.shape)} and {tuple(prediction.shape)}."
        )
    truth, prediction = truth.detach().cpu().double(), prediction.detach().cpu().double()
    difference = prediction - truth
    at = "" if step is None else f" at {step} dt"
    scale = float(truth.abs().max()) or 1.0
    gap = float(difference.abs().max()) or 1e-300
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.5))
    for ax, image, name, limit in zip(
        axes,
        (truth, prediction, difference),
        (f"truth{at}", f"prediction{at}", f"difference (max {gap:.1e})"),
        (scale, scale, gap),
    ):
        shown = ax.imshow(image.numpy(), vmin=-limit, vmax=limit, cmap="RdBu_r")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        bar.set_ticks([-limit, 0.0, limit])  # labelled in full: no offset text to collide with the title
        bar.set_ticklabels([f"{-limit:.2g}", "0", f"{limit:.2g}"])
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
