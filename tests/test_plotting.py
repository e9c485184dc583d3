"""companion.plotting: the schematics draw legible figures that fit the text column; sliders; tick helpers."""

from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from companion import plotting  # noqa: E402

SCHEMATICS = ["euler_step_schematic", "design_recipe_schematic", "presnov_schematic", "splitting_schematic"]


@pytest.fixture(autouse=True)
def book_style():
    with matplotlib.rc_context():
        plotting.use_book_style()
        yield
    plt.close("all")


@pytest.mark.parametrize("name", SCHEMATICS)
def test_schematic_fits_the_column_and_is_legible(name: str) -> None:
    figure = getattr(plotting, name)()
    figure.canvas.draw()
    assert figure.get_figwidth() <= 7.0, "wider than the 700 px text column: fonts would be scaled down"
    texts = [t for t in figure.findobj(matplotlib.text.Text) if t.get_text().strip() and t.get_visible()]
    assert len(texts) >= 4, "a schematic explains itself with labels"
    assert min(t.get_fontsize() for t in texts) >= 9


def test_splitting_schematic_validates() -> None:
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        plotting.splitting_schematic(steps=0)
    with pytest.raises(ValueError, match="final_time must be > 0"):
        plotting.splitting_schematic(final_time=-1.0)


def test_loglog_convergence_labels_the_step_sizes_only() -> None:
    figure, ax = plt.subplots()
    steps = [0.2, 0.1, 0.05, 0.025]
    plotting.loglog_convergence(ax, steps, {"Euler": [2e-1, 1e-1, 5e-2, 2.5e-2]}, {"Euler": 1.0})
    figure.canvas.draw()
    assert sorted(ax.get_xticks()) == sorted(steps)
    assert [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()] == []
    assert "slope 1.00" in ax.get_legend().get_texts()[0].get_text()


def test_integer_ticks() -> None:
    figure, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 2, 3])
    plotting.integer_ticks(ax, "both")
    figure.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())
    with pytest.raises(ValueError, match="axis must be 'x', 'y' or 'both'"):
        plotting.integer_ticks(ax, "z")


def test_slider_figures_holds_every_image_and_shows_them_sharp() -> None:
    def draw(h: float):
        figure, ax = plt.subplots(figsize=(4, 3))
        ax.plot([0, 1], [0, h])
        return figure

    html = plotting.slider_figures(draw, "h", [0.1, 0.2, 0.4], dpi=200).data
    assert html.count("data:image/png;base64,") == 4  # three stored, one shown
    assert 'type="range"' in html and 'max="2"' in html and "h = 0.2" in html
    natural = plotting._png_width(base64.b64decode(html.split("base64,")[1].split('"')[0]))
    shown = int(re.search(r"width:(\d+)px", html).group(1))
    assert abs(natural / shown - 2) < 0.01  # dpi 200 shown at 100 px per inch: 2 pixels per displayed pixel
    with pytest.raises(ValueError, match="at least one value"):
        plotting.slider_figures(draw, "h", [])
    with pytest.raises(ValueError, match="start must index values"):
        plotting.slider_figures(draw, "h", [0.1], start=3)
    with pytest.raises(ValueError, match="dpi must be an int >= 150"):
        plotting.slider_figures(draw, "h", [0.1], dpi=100)
