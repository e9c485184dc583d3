"""Figures of the prescribed-properties chapter: shears composing to a volume-preserving map.

Imported on demand (``from companion.structured.figures import shear_schematic``); it needs matplotlib.
"""

from __future__ import annotations

import numpy as np

from .._checks import import_optional

# matplotlib is an extra (companion[plots]): a missing one is named with the command that installs it.
import_optional("matplotlib", "plots", "companion.structured.figures draws with matplotlib")
import matplotlib as mpl
import matplotlib.pyplot as plt

from ..plotting import COLORS

__all__ = ["shear_schematic"]


def _shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def shear_schematic(*, lines: int = 7, samples: int = 200) -> mpl.figure.Figure:
    r"""Three panels: a grid, its image under a shear in :math:`x`, then under a shear in :math:`v`.

    The shears are :math:`x \leftarrow x + 0.25\sin(2\pi v)` and :math:`v \leftarrow v + 0.2\cos(\pi x)`.
    One grid cell is filled; its area, computed by the shoelace formula on its mapped boundary, is printed in
    each panel and does not change: each shear moves points parallel to one axis by an amount that does not
    depend on the coordinate being moved, so its Jacobian is unit-triangular.

    Parameters
    ----------
    lines : int
        Grid lines in each direction.
    samples : int
        Points per grid line (the lines are curved after a shear).

    Returns
    -------
    matplotlib.figure.Figure
    """

    def shear_x(points: np.ndarray) -> np.ndarray:
        return np.stack([points[:, 0] + 0.25 * np.sin(2 * np.pi * points[:, 1]), points[:, 1]], 1)

    def shear_v(points: np.ndarray) -> np.ndarray:
        return np.stack([points[:, 0], points[:, 1] + 0.2 * np.cos(np.pi * points[:, 0])], 1)

    t = np.linspace(0.0, 1.0, samples)
    levels = np.linspace(0.0, 1.0, lines)
    grid = [np.stack([np.full_like(t, c), t], 1) for c in levels] + [
        np.stack([t, np.full_like(t, c)], 1) for c in levels
    ]
    low, high = levels[2], levels[3]
    edge = np.linspace(0.0, 1.0, samples)[:-1]
    cell = np.concatenate(
        [
            np.stack([low + (high - low) * edge, np.full_like(edge, low)], 1),
            np.stack([np.full_like(edge, high), low + (high - low) * edge], 1),
            np.stack([high - (high - low) * edge, np.full_like(edge, high)], 1),
            np.stack([np.full_like(edge, low), high - (high - low) * edge], 1),
        ]
    )
    stages = [
        ("grid in $(x, v)$", lambda p: p),
        (r"shear 1: $x \leftarrow x + g(v)$", shear_x),
        (r"shear 2: $v \leftarrow v + k(x)$", lambda p: shear_v(shear_x(p))),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 3.0), sharex=True, sharey=True)
    for ax, (title, transform) in zip(axes, stages):
        for line in grid:
            mapped = transform(line)
            ax.plot(mapped[:, 0], mapped[:, 1], color="0.55", lw=0.8)
        mapped_cell = transform(cell)
        ax.fill(mapped_cell[:, 0], mapped_cell[:, 1], color=COLORS[1], alpha=0.6)
        ax.set_title(f"{title}\nshaded area {_shoelace(mapped_cell):.4f}", fontsize=9)
        ax.set_aspect("equal")
        ax.set_axis_off()
    for left, right in zip(axes[:-1], axes[1:]):
        arrow = mpl.patches.ConnectionPatch(
            (1.02, 0.5),
            (-0.02, 0.5),
            "axes fraction",
            "axes fraction",
            axesA=left,
            axesB=right,
            arrowstyle="-|>",
            color="#333333",
            lw=1.5,
        )
        fig.add_artist(arrow)
    fig.text(
        0.5,
        0.01,
        r"each shear has a unit-triangular Jacobian: $\det J = 1$ for the composition",
        ha="center",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
