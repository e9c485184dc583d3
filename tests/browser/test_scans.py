"""The four scans of ``scans.py`` on synthetic pages: each defect is found, a clean page passes.

The pages imitate the book's layout (an ``article.bd-article`` column 700 px wide in a 1280 x 900 window).
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
import scans

LONG_FORMULA = " + ".join(f"a{k} b{k}" for k in range(80))  # one unbreakable line, far wider than 700 px


def png(width: int, height: int) -> str:
    """A grey PNG of the given size, as a data URL."""
    row = b"\x00" + b"\x80" * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def page_html(body: str) -> str:
    return f"""<!doctype html><html><head><style>
      body {{ margin: 0; font: 16px sans-serif; }}
      article.bd-article {{ width: 700px; margin-left: 100px; }}
      pre, div.math {{ overflow-x: auto; }}
    </style></head><body><article class="bd-article"><section id="demo">{body}</section></article></body></html>"""


CLEAN = page_html(f"""
  <p>The norm <span class="math">rendered</span> is kept; prices such as 5 EUR are fine.</p>
  <pre>code may hold \\lVert x \\rVert and $HOME</pre>
  <div class="math">a short display</div>
  <div class="cell_output"><pre>max |x . X_S| = 1e-15</pre></div>
  <div class="cell_output"><img src="{png(800, 400)}" style="width: 400px"></div>
  <div class="cell_output"><div class="output text_html"><input type="range"><img src="{png(600, 300)}"
       style="width: 300px"></div></div>
  <img src="{png(10, 10)}" style="width: 0">
""")

DEFECTS = {
    "raw TeX": page_html(r"<p>The norm $\lVert x\rVert$ is kept.</p>"),
    "overflowing blocks": page_html(f'<div class="math" style="white-space: nowrap">{LONG_FORMULA}</div>'),
    "empty widgets": page_html(
        '<div class="cell_output"><script type="application/vnd.jupyter.widget-view+json">'
        '{"model_id": "abc123", "version_major": 2, "version_minor": 0}</script></div>'
    ),
    "blurry images": page_html(f'<div class="cell_output"><img src="{png(500, 300)}" style="width: 500px"></div>'),
}


@pytest.fixture(scope="module")
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.close()


def test_clean_page_passes(page) -> None:
    page.set_content(CLEAN)
    assert scans.scan(page) == {name: [] for name in scans.SCANS}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_is_found_by_its_scan_only(page, defect: str) -> None:
    page.set_content(DEFECTS[defect])
    found = scans.scan(page)
    assert found[defect], f"the {defect} scan missed its defect"
    others = {name: offenders for name, offenders in found.items() if name != defect and offenders}
    assert not others, f"a page with only a {defect} defect also failed: {others}"


def test_offenders_name_the_element_its_text_and_sizes(page) -> None:
    page.set_content(DEFECTS["raw TeX"])
    (tex,) = scans.raw_tex(page)
    assert "p in #demo" in tex and '"$"' in tex and "The norm" in tex
    page.set_content(DEFECTS["overflowing blocks"])
    (wide,) = [o for o in scans.overflowing_blocks(page) if o.startswith("div.math")]
    assert "in a box of 700 px" in wide and "a0 b0 + a1 b1" in wide
    page.set_content(DEFECTS["blurry images"])
    (blurry,) = scans.blurry_images(page)
    assert "natural width 500 px shown at 500 px (1.00x, needs 1.5x)" in blurry
    page.set_content(DEFECTS["empty widgets"])
    (empty,) = scans.empty_widgets(page)
    assert "abc123" in empty


def test_mathjax_errors_count_as_raw_tex(page) -> None:
    page.set_content(page_html('<p>see <mjx-container class="MathJax"><mjx-merror data-mjx-error="Missing }">'
                               '<mjx-mtext>\\frac{a</mjx-mtext></mjx-merror></mjx-container></p>'))
    (error,) = scans.raw_tex(page)
    assert "MathJax could not typeset" in error and "Missing }" in error
    page.set_content(page_html('<p><mjx-container><mjx-mtext style="color: red;">\\lVertx</mjx-mtext>'
                               '</mjx-container></p>'))
    assert len(scans.raw_tex(page)) == 1


def test_collapsed_content_is_scanned(page) -> None:
    page.set_content(page_html(r"<details><summary>Solution</summary><p>so $\|x\|$ grows</p></details>"))
    assert scans.scan(page)["raw TeX"], "raw TeX in a collapsed solution was not found"


def test_an_image_just_sharp_enough_passes(page) -> None:
    page.set_content(page_html(f'<img src="{png(600, 100)}" style="width: 400px">'))
    assert scans.blurry_images(page) == []
    page.set_content(page_html(f'<img src="{png(590, 100)}" style="width: 400px">'))
    assert len(scans.blurry_images(page)) == 1
