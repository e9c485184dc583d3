"""The book's figure style and recurring figures. Nothing is styled on import: call :func:`use_book_style`.

:func:`slider_figures` turns a drawing function into a slider that works in a static HTML page (no kernel, no
network): every chapter uses it beside its live ``ipywidgets`` control, which needs a running kernel.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from typing import Any, Callable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["use_book_style", "COLORS", "loglog_convergence", "decision_boundary", "slider_figures"]

#: A colour-blind-safe palette (Okabe--Ito), used in this order by every chapter.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Apply the book's matplotlib style (sizes, grid, palette) to the current session.

    In a Jupyter kernel, inline figures are also drawn at twice their displayed resolution ("retina"), so that
    text stays sharp in the rendered book.
    """
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 200,
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
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # not in IPython: nothing more to set
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


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


def slider_figures(
    draw: Callable[..., Any], name: str, values: Sequence[Any], *, start: int | None = None,
    label: Callable[[Any], str] = str, dpi: int = 160,
):
    """A slider over pre-drawn figures that works in a static web page: no kernel, no network, no widget library.

    ``draw(**{name: value})`` is called for each value; it draws one matplotlib figure (returned, or the current
    one), which is rendered to PNG at ``dpi`` and closed. The result is an HTML block with an ``<input
    type="range">`` that switches between the images, shown at half their pixel size so they stay sharp.

    Parameters
    ----------
    draw : callable
        Draws one figure for one value of the parameter ``name``.
    name : str
        The keyword argument of ``draw`` that the slider moves.
    values : sequence
        The values to pre-draw (keep it short: every figure is stored in the page).
    start : int, optional
        Index of the value shown first (default: the middle one).
    label : callable
        Formats a value for the slider's label.
    dpi : int
        Resolution of the stored images.

    Returns
    -------
    IPython.display.HTML
        Display it (it is the last expression of a cell, or pass it to ``display``).

    Raises
    ------
    ValueError
        If ``values`` is empty or ``start`` is out of range.
    """
    from IPython.display import HTML

    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value to draw.")
    start = len(values) // 2 if start is None else start
    if not 0 <= start < len(values):
        raise ValueError(f"start must index values (0..{len(values) - 1}), got {start}.")
    images, width = [], 0
    for value in values:
        figure = draw(**{name: value})
        figure = figure if isinstance(figure, mpl.figure.Figure) else plt.gcf()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(figure)
        images.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
        width = max(width, _png_width(buffer.getvalue()))
    key = "slider_" + uuid.uuid4().hex[:12]
    labels = [f"{name} = {label(v)}" for v in values]
    script = f"var {key} = {json.dumps({'images': images, 'labels': labels})};".replace("</", "<\\/")
    handler = (f"document.getElementById('{key}_img').src = {key}.images[this.value]; "
               f"document.getElementById('{key}_label').textContent = {key}.labels[this.value];")
    return HTML(
        f'<div class="companion-slider" style="max-width:100%">'
        f'<script>{script}</script>'
        f'<div><input type="range" min="0" max="{len(values) - 1}" step="1" value="{start}" '
        f'aria-label="{html.escape(name)}" oninput="{html.escape(handler)}" style="width:60%;vertical-align:middle"> '
        f'<span id="{key}_label">{html.escape(labels[start])}</span></div>'
        f'<img id="{key}_img" src="{images[start]}" alt="figure for {html.escape(labels[start])}" '
        f'style="width:{width // 2}px;max-width:100%;height:auto"></div>'
    )


def _png_width(data: bytes) -> int:
    """Pixel width of a PNG from its header."""
    return int.from_bytes(data[16:20], "big")
