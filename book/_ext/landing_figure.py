"""Draw the picture on the book's landing page: ``python book/_ext/landing_figure.py`` writes
``book/images/landing.svg`` (deterministic: the same file on every run).

Two interleaved spirals, one per class, are carried by the flow of :math:`\\dot x = -k\\lVert x\\rVert Jx`, a rotation
whose speed grows with the radius. At time :math:`T = 1` with :math:`k = 3\\pi` the flow has undone the 1.5 turns
of both spirals: the classes lie on two opposite rays, and a line separates them. Read as a network, every
panel is the state after some of its layers: a classifier that is a flow map.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from companion.plotting import COLORS, use_book_style  # noqa: E402

OUTPUT = Path(__file__).resolve().parents[1] / "images" / "landing.svg"
TURNS = 1.5  # turns of each spiral
SPEED = 2 * np.pi * TURNS  # k: angular speed per unit radius, so that the flow undoes the turns by T = 1


def spirals(count: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on two interleaved spirals (with a little noise) and their classes 0 and 1."""
    rng = np.random.default_rng(seed)
    radius = rng.uniform(0.15, 1.0, 2 * count)
    label = np.repeat([0, 1], count)
    angle = SPEED * radius + np.pi * label + rng.normal(0.0, 0.08, 2 * count)
    return radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1), label


def flow(points: np.ndarray, time: float) -> np.ndarray:
    """The exact flow of -k |x| J x: each point turns clockwise by k |x| t about the origin."""
    radius = np.linalg.norm(points, axis=1)
    turn = -SPEED * radius * time
    cos, sin = np.cos(turn), np.sin(turn)
    return np.stack([cos * points[:, 0] - sin * points[:, 1], sin * points[:, 0] + cos * points[:, 1]], 1)


def draw() -> plt.Figure:
    use_book_style()
    points, label = spirals()
    stages = [(0.0, "input, layer 0"), (0.5, "after 6 layers"), (1.0, "output, after 12 layers")]
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.6))
    tracked = points[::40]
    path = np.stack([flow(tracked, t) for t in np.linspace(0.0, 1.0, 61)])
    for ax, (time, title) in zip(axes, stages):
        moved = flow(points, time)
        upto = int(round(60 * time)) + 1
        for k in range(len(tracked)):
            ax.plot(path[:upto, k, 0], path[:upto, k, 1], color="0.78", lw=0.8)
        for cls in (0, 1):
            ax.scatter(*moved[label == cls].T, s=7, color=COLORS[cls], zorder=3)
        ax.set_title(title, fontsize=10)
        ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xticks=[], yticks=[])
        ax.set_aspect("equal")
        for spine in ax.spines.values():
            spine.set_visible(False)
    axes[2].axvline(0.0, color="k", ls="--", lw=1)
    for left, right in zip(axes[:-1], axes[1:]):
        fig.add_artist(
            matplotlib.patches.ConnectionPatch(
                (1.0, 0.5),
                (0.0, 0.5),
                "axes fraction",
                "axes fraction",
                axesA=left,
                axesB=right,
                arrowstyle="-|>",
                color="#333333",
                lw=1.3,
            )
        )
    fig.text(
        0.5,
        0.03,
        r"each layer: $x \mapsto x + h\,F(x, \theta_k)$, a step along the flow of "
        r"$\dot x = F(x, \theta(t))$",
        ha="center",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "landing"
    figure = draw()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUTPUT, format="svg", metadata={"Date": None}, bbox_inches="tight")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
