"""The book's figure style, recurring figures and schematics. Nothing is styled on import: call :func:`use_book_style`.

:func:`slider_figures` turns a drawing function into a slider that works in a static HTML page (no kernel, no
network): every chapter uses it beside its live ``ipywidgets`` control, which needs a running kernel.
The schematics of the first chapters (:func:`euler_step_schematic`, :func:`design_recipe_schematic`,
:func:`presnov_schematic`, :func:`splitting_schematic`) are drawn here, in code, from the mathematics they show.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ._checks import import_optional

# matplotlib is an extra (companion[plots]): a missing one is named with the command that installs it.
import_optional("matplotlib", "plots", "companion.plotting draws with matplotlib")
import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

__all__ = [
    "use_book_style",
    "COLORS",
    "loglog_convergence",
    "integer_ticks",
    "decision_boundary",
    "slider_figures",
    "euler_step_schematic",
    "design_recipe_schematic",
    "presnov_schematic",
    "splitting_schematic",
]

#: A colour-blind-safe palette (Okabe--Ito), used in this order by every chapter.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Apply the book's matplotlib style (sizes, grid, palette) to the current session.

    In a Jupyter kernel, inline figures are also drawn at twice their displayed resolution ("retina"), so that
    text stays sharp in the rendered book. Figures of the book are at most 7 inches wide (700 px, the text
    column): at that width the 10--11 pt fonts are shown at their size.
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
            "axes.titlesize": 11,
            "axes.labelsize": 11,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "legend.fontsize": 10,
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
    ax: plt.Axes,
    step_sizes: Sequence[float],
    errors: Mapping[str, Sequence[float]],
    orders: Mapping[str, float] | None = None,
) -> plt.Axes:
    """Plot error against step size on log-log axes, one line per method, with the fitted slope in the legend.

    The step sizes themselves are the ticks of the horizontal axis (no crowded minor labels when they span
    less than a decade).
    """
    for name, errs in errors.items():
        label = name if orders is None or name not in orders else f"{name} (slope {orders[name]:.2f})"
        ax.loglog(step_sizes, errs, "o-", label=label)
    ax.set_xticks(list(step_sizes))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step size $h$")
    ax.set_ylabel("error")
    ax.legend()
    return ax


def integer_ticks(ax: plt.Axes, axis: str = "x") -> plt.Axes:
    """Only integer ticks on ``axis`` ("x", "y" or "both"): for counts such as layers, epochs or nodes.

    Raises
    ------
    ValueError
        If ``axis`` is not "x", "y" or "both".
    """
    if axis not in ("x", "y", "both"):
        raise ValueError(f"axis must be 'x', 'y' or 'both', got {axis!r}.")
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(integer=True))
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
    draw: Callable[..., Any],
    name: str,
    values: Sequence[Any],
    *,
    start: int | None = None,
    label: Callable[[Any], str] = str,
    dpi: int = 200,
):
    """A slider over pre-drawn figures that works in a static web page: no kernel, no network, no widget library.

    ``draw(**{name: value})`` is called for each value; it draws one matplotlib figure (returned, or the current
    one), which is rendered to PNG at ``dpi`` and closed. The result is an HTML block with an ``<input
    type="range">`` that switches between the images. They are shown at the size of an inline figure
    (100 CSS pixels per inch), so with ``dpi=200`` every displayed pixel has two image pixels.

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
        Resolution of the stored images, >= 150 (1.5 image pixels per displayed pixel).

    Returns
    -------
    IPython.display.HTML
        Display it (it is the last expression of a cell, or pass it to ``display``).

    Raises
    ------
    ValueError
        If ``values`` is empty, ``start`` is out of range or ``dpi`` < 150.
    """
    from IPython.display import HTML

    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value to draw.")
    start = len(values) // 2 if start is None else start
    if not 0 <= start < len(values):
        raise ValueError(f"start must index values (0..{len(values) - 1}), got {start}.")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 150:
        raise ValueError(f"dpi must be an int >= 150 (sharp at 100 CSS pixels per inch), got {dpi!r}.")
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
    handler = (
        f"document.getElementById('{key}_img').src = {key}.images[this.value]; "
        f"document.getElementById('{key}_label').textContent = {key}.labels[this.value];"
    )
    return HTML(
        f'<div class="companion-slider" style="max-width:100%">'
        f"<script>{script}</script>"
        f'<div><input type="range" min="0" max="{len(values) - 1}" step="1" value="{start}" '
        f'aria-label="{html.escape(name)}" oninput="{html.escape(handler)}" style="width:60%;vertical-align:middle"> '
        f'<span id="{key}_label">{html.escape(labels[start])}</span></div>'
        f'<img id="{key}_img" src="{images[start]}" alt="figure for {html.escape(labels[start])}" '
        f'style="width:{round(width * 100 / dpi)}px;max-width:100%;height:auto"></div>'
    )


def _png_width(data: bytes) -> int:
    """Pixel width of a PNG from its header."""
    return int.from_bytes(data[16:20], "big")


# -- schematics of the first chapters, drawn from the mathematics they show --


def _box(
    ax: plt.Axes,
    center: tuple[float, float],
    text: str,
    *,
    color: str,
    width: float,
    height: float,
    size: float = 10,
    lw: float = 1.5,
) -> None:
    """A rounded, lightly filled box with centred text: the blocks of the book's schematics."""
    from matplotlib.patches import FancyBboxPatch

    x, y = center
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02",
            facecolor=mpl.colors.to_rgba(color, 0.12),
            edgecolor=color,
            lw=lw,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax: plt.Axes, start, end, *, color: str = "#333333", lw: float = 1.5, style: str = "-|>") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle=style, color=color, lw=lw, shrinkA=0, shrinkB=0))


def _blank(ax: plt.Axes) -> plt.Axes:
    ax.set_axis_off()
    ax.set_aspect("equal")
    return ax


def euler_step_schematic() -> mpl.figure.Figure:
    r"""A ResNet layer is one explicit Euler step: the step in the phase plane, and the same step as a block.

    Left: the exact trajectory of :math:`\dot x = F(x)`, :math:`F(x) = (-x_2 - 0.15x_1,\ x_1 - 0.15x_2)`,
    through :math:`x_n = (1, 0)`; the Euler step :math:`x_n + hF(x_n)` along the tangent (:math:`h = 0.7`) and
    its distance to the exact point :math:`\Phi^h_F(x_n)`, the local error :math:`O(h^2)`. Right: the residual
    block :math:`x_{n+1} = x_n + hF_\theta(x_n)`, whose skip connection is the :math:`x_n` of Euler's method.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, 7 inches wide.
    """
    fig, (phase, block) = plt.subplots(1, 2, figsize=(7.0, 3.0), gridspec_kw={"width_ratios": [1.0, 1.35]})
    decay, h = 0.15, 0.7
    t = np.linspace(-0.5, 1.7, 200)
    exact = np.exp(-decay * t)[:, None] * np.stack([np.cos(t), np.sin(t)], 1)
    x_n, field = np.array([1.0, 0.0]), np.array([-decay, 1.0])
    x_next, flow = x_n + h * field, np.exp(-decay * h) * np.array([np.cos(h), np.sin(h)])
    phase.plot(exact[:, 0], exact[:, 1], color=COLORS[7], lw=1.5)
    _arrow(phase, x_n, x_next, color=COLORS[0], lw=2.0)
    phase.plot([flow[0], x_next[0]], [flow[1], x_next[1]], ls=":", color=COLORS[1], lw=2.0)
    phase.plot(*x_n, "o", color=COLORS[7])
    phase.plot(*flow, "o", color=COLORS[7], mfc="white")
    phase.plot(*x_next, "o", color=COLORS[0])
    phase.text(x_n[0] + 0.05, x_n[1] - 0.12, "$x_n$", fontsize=11)
    phase.text(x_next[0] + 0.06, x_next[1] + 0.02, "$x_n + hF(x_n)$", fontsize=11, color=COLORS[0])
    phase.text(flow[0] - 0.07, flow[1] - 0.04, r"$\Phi^h_F(x_n)$", fontsize=11, ha="right", va="top")
    phase.annotate(
        "local error $O(h^2)$",
        xy=(flow + x_next) / 2,
        xytext=(0.3, 0.98),
        fontsize=10,
        color=COLORS[1],
        arrowprops=dict(arrowstyle="->", color=COLORS[1], lw=1.0),
    )
    phase.text(0.25, -0.3, "exact trajectory", fontsize=10, color=COLORS[7])
    phase.set_xlim(0.0, 1.75)
    phase.set_ylim(-0.4, 1.1)
    _blank(phase).set_title("one Euler step", fontsize=11)

    block.set_xlim(0, 10)
    block.set_ylim(0, 6)
    _blank(block).set_title("one residual block", fontsize=11)
    block.text(0.0, 2.5, "$x_n$", fontsize=12, va="center")
    _arrow(block, (0.7, 2.5), (8.0, 2.5))
    block.plot([1.5, 1.5], [2.5, 4.4], color="#333333", lw=1.5)
    _arrow(block, (1.5, 4.4), (2.3, 4.4))
    _box(block, (4.6, 4.4), r"$h\,F_\theta(x) = h\,B\sigma(Ax+b)$", color=COLORS[0], width=4.4, height=1.2)
    block.plot([6.8, 8.3], [4.4, 4.4], color="#333333", lw=1.5)
    _arrow(block, (8.3, 4.4), (8.3, 2.85))
    from matplotlib.patches import Circle

    block.add_patch(Circle((8.3, 2.5), 0.35, facecolor="white", edgecolor="#333333", lw=1.5))
    block.text(8.3, 2.5, "+", ha="center", va="center", fontsize=13)
    _arrow(block, (8.65, 2.5), (9.3, 2.5))
    block.text(9.4, 2.5, "$x_{n+1}$", fontsize=12, va="center")
    block.text(4.6, 2.05, "identity (skip connection)", ha="center", fontsize=10, color="#333333")
    block.text(5.0, 0.6, r"$x_{n+1} = x_n + h\,F_\theta(x_n) = \Psi^h_{F_\theta}(x_n)$", ha="center", fontsize=11)
    fig.tight_layout()
    return fig


def design_recipe_schematic() -> mpl.figure.Figure:
    r"""The design recipe: property :math:`\to` family of vector fields :math:`\to` integrator, with five examples.

    Returns
    -------
    matplotlib.figure.Figure
        One panel, 7 inches wide.
    """
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    ax.set_xlim(-0.04, 1.04)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    columns = (0.16, 0.5, 0.84)
    headers = (
        "1. a property $\\mathcal{P}$\nkept by composition",
        "2. vector fields $F_\\theta$\nwhose flows have $\\mathcal{P}$",
        "3. an integrator that\nkeeps $\\mathcal{P}$ for every $h$",
    )
    for column, header, color in zip(columns, headers, (COLORS[3], COLORS[0], COLORS[2])):
        _box(ax, (column, 0.86), header, color=color, width=0.3, height=0.18)
    for start, end in ((0.31, 0.35), (0.65, 0.69)):
        _arrow(ax, (start, 0.86), (end, 0.86), lw=2.0)
    rows = (
        ("symplecticity", r"$J\,\nabla H_\theta(q, p)$", "symplectic Euler"),
        ("volume", r"$\dot x = f_\theta(v),\ \dot v = g_\theta(x)$", "two shears"),
        (r"mass $\mathbf{1}^\top x$", r"$(A_\theta(x) - A_\theta(x)^\top)\,\mathbf{1}$", "any Runge-Kutta"),
        (r"norm $\|x\|$", r"$S_\theta(x)\,x,\ S_\theta^\top = -S_\theta$", "Cayley step"),
        ("1-Lipschitz", r"$-A^\top\sigma(Ax + b)$", r"Euler, $h \leq 2/\|A\|^2$"),
    )
    for index, row in enumerate(rows):
        y = 0.66 - 0.11 * index
        for column, text in zip(columns, row):
            ax.text(column, y, text, ha="center", va="center", fontsize=10)
    ax.plot([0.01, 0.99], [0.72, 0.72], color="#999999", lw=0.8)
    ax.plot([0.01, 0.99], [0.15, 0.15], color="#999999", lw=0.8)
    ax.text(
        0.5,
        0.06,
        r"$\Rightarrow$ every layer $\Psi^{h}_{F_\theta}$, and so the network, has $\mathcal{P}$"
        r" for every $\theta$",
        ha="center",
        va="center",
        fontsize=11,
    )
    return fig


def presnov_schematic() -> mpl.figure.Figure:
    r"""The Presnov split at one point: :math:`F(x) = \nabla V(x) + X_S(x)` with :math:`X_S(x)` tangent to the sphere.

    Returns
    -------
    matplotlib.figure.Figure
        One panel, 5 inches wide.
    """
    fig, ax = plt.subplots(figsize=(5.0, 3.9))
    radius, angle = 1.5, np.deg2rad(35)
    circle = np.linspace(0, 2 * np.pi, 300)
    ax.plot(radius * np.cos(circle), radius * np.sin(circle), ls="--", lw=1.0, color="#888888")
    x = radius * np.array([np.cos(angle), np.sin(angle)])
    radial, tangent = x / radius, np.array([-np.sin(angle), np.cos(angle)])
    gradient, sphere = 0.75 * radial - 0.3 * tangent, 0.95 * tangent
    total = gradient + sphere
    ax.plot(0, 0, "o", color="#333333")
    ax.text(-0.12, -0.2, "$0$", fontsize=11)
    _arrow(ax, (0, 0), x, color="#777777", lw=1.2)
    ax.text(*(0.5 * x + np.array([0.05, -0.2])), "$x$", fontsize=12, color="#555555")
    for vector, color, label, offset in (
        (gradient, COLORS[0], r"$\nabla V(x)$", np.array([0.08, -0.12])),
        (sphere, COLORS[1], r"$X_S(x) = S(x)\,x$", np.array([-1.2, 0.1])),
        (total, COLORS[7], "$F(x)$", np.array([0.08, 0.05])),
    ):
        _arrow(ax, x, x + vector, color=color, lw=2.2)
        ax.text(*(x + vector + offset), label, fontsize=12, color=color)
    for start, vector in ((x + gradient, sphere), (x + sphere, gradient)):
        ax.plot(*np.stack([start, start + vector]).T, ls=":", color="#999999", lw=1.0)
    corner = x + 0.12 * tangent
    mark = np.stack([corner, corner - 0.12 * radial, x - 0.12 * radial])
    ax.plot(mark[:, 0], mark[:, 1], color="#555555", lw=1.0)
    ax.text(-1.45, -1.75, r"$\|x\| = r$", fontsize=11, color="#666666")
    ax.text(1.9, -1.2, "$x \\cdot X_S(x) = 0$\n$V(0) = 0$", fontsize=11, va="center")
    ax.set_xlim(-1.8, 3.2)
    ax.set_ylim(-1.9, 2.2)
    _blank(ax)
    fig.tight_layout()
    return fig


def splitting_schematic(*, steps: int = 4, final_time: float = 1.6) -> mpl.figure.Figure:
    r"""Lie--Trotter splitting as alternating flows, for :math:`f(x) = c + \omega Jx` (:math:`V(x) = c\cdot x`).

    The flow of :math:`\nabla V = c` moves along straight lines, the flow of the sphere part
    :math:`X_S = \omega Jx` along circles about the origin; alternating them for ``steps`` steps of size
    :math:`h` follows the exact flow of :math:`f` (a rotation about the point where :math:`c + \omega Jx = 0`)
    with an error :math:`O(h)`.

    Parameters
    ----------
    steps : int
        Number of splitting steps.
    final_time : float
        Time :math:`T` covered; :math:`h = T/\text{steps}`.

    Returns
    -------
    matplotlib.figure.Figure
        One panel and its legend, 7 inches wide.

    Raises
    ------
    ValueError
        If ``steps`` < 1 or ``final_time`` <= 0.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}.")
    if not final_time > 0:
        raise ValueError(f"final_time must be > 0, got {final_time!r}.")
    c, omega, start = np.array([0.35, 0.55]), 1.0, np.array([1.3, 0.0])
    h = final_time / steps

    def rotate(x: np.ndarray, angle) -> np.ndarray:
        angle = np.asarray(angle)[..., None]
        return np.concatenate(
            [np.cos(angle) * x[0] - np.sin(angle) * x[1], np.sin(angle) * x[0] + np.cos(angle) * x[1]], -1
        )

    centre = np.array([-c[1], c[0]]) / omega  # where c + omega J x = 0
    times = np.linspace(0, final_time, 200)
    exact = centre + rotate(start - centre, omega * times)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    ax.plot(exact[:, 0], exact[:, 1], color=COLORS[7], lw=2.0, label=r"exact flow of $f = \nabla V + X_S$")
    x = start
    for step in range(steps):
        moved = x + h * c
        ax.plot(
            *np.stack([x, moved]).T, color=COLORS[0], lw=2.2, label=r"flow of $\nabla V = c$" if step == 0 else None
        )
        arc = rotate(moved, np.linspace(0, omega * h, 30))
        ax.plot(
            arc[:, 0],
            arc[:, 1],
            color=COLORS[1],
            lw=2.2,
            label=r"flow of $X_S = \omega Jx$ (circles about 0)" if step == 0 else None,
        )
        x = arc[-1]
        ax.plot(*x, "o", color=COLORS[1], ms=4)
    ax.plot(0, 0, "+", color="#333333", ms=10)
    ax.text(0.05, -0.15, "$0$", fontsize=11)
    ax.plot(*start, "o", color=COLORS[7])
    ax.text(start[0] + 0.07, start[1] - 0.08, "$x_0$", fontsize=12)
    ax.annotate(
        f"error after {steps} steps: $O(h)$",
        xy=x,
        xytext=(x[0] - 1.2, x[1] - 0.5),
        fontsize=10,
        arrowprops=dict(arrowstyle="->", color="#555555"),
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=10)
    _blank(ax)
    ax.set_title(f"Lie-Trotter splitting, {steps} steps of $h = {h:g}$", fontsize=11)
    ax.margins(0.15)
    fig.tight_layout()
    return fig
