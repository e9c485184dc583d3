"""The book's figure style and recurring figures. Nothing is styled on import: call :func:`use_book_style`."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["use_book_style", "COLORS", "loglog_convergence", "decision_boundary"]

#: A colour-blind-safe palette (Okabe--Ito), used in this order by every chapter.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Apply the book's matplotlib style (sizes, grid, palette) to the current session."""
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": mpl.cycler(color=COLORS),
            "font.size": 11,
            "legend.frameon": False,
            "image.cmap": "RdBu_r",
        }
    )


def loglog_convergence(
    ax: plt.Axes, step_sizes: Sequence[float], errors: Mapping[str, Sequence[float]], orders: Mapping[str, float] | None = None
) -> plt.Axes:
    """Plot error against step size on log-log axes, one line per method, with the fitted slope in the legend."""
    for name, errs in errors.items():
        label = name if orders is None or name not in orders else f"{name} (slope {orders[name]:.2f})"
        ax.loglog(step_sizes, errs, "o-", label=label)
    ax.set_xlabel("step size $h$")
    ax.set_ylabel("error")
    ax.legend()
    return ax


def decision_boundary(
    ax: plt.Axes, predict, points: torch.Tensor, labels: torch.Tensor, *, embed=None, resolution: int = 200
) -> plt.Axes:
    """Draw the decision regions of ``predict`` (2-D inputs, or embedded by ``embed``) and the labelled points."""
    x1, x2 = points[:, 0].numpy(), points[:, 1].numpy()
    pad = 0.1
    g1, g2 = np.meshgrid(
        np.linspace(x1.min() - pad, x1.max() + pad, resolution), np.linspace(x2.min() - pad, x2.max() + pad, resolution)
    )
    grid = torch.tensor(np.stack([g1.ravel(), g2.ravel()], 1), dtype=points.dtype)
    with torch.no_grad():
        pred = predict(grid if embed is None else embed(grid)).argmax(-1).reshape(g1.shape).numpy()
    ax.contourf(g1, g2, pred, levels=[-0.5, 0.5, 1.5], colors=[COLORS[0], COLORS[1]], alpha=0.25)
    ax.scatter(x1, x2, c=[COLORS[int(k)] for k in labels], s=4)
    ax.set_aspect("equal")
    return ax
