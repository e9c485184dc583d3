"""What a reader sees, measured in the browser: the four scans of the rendered book.

Each scan runs in the page (``page.evaluate``) and returns a list of offenders, one string each, naming the
element, the start of its text and its sizes, so that a failure message can list every one of them:

* :func:`raw_tex`: TeX left as text (a backslash command such as ``\\lVert`` or a ``$``) in a text node
  outside code, i.e. math that MathJax did not typeset, and math that MathJax shows as an error.
* :func:`overflowing_blocks`: math displays, code and output blocks (and tables) wider than their box or
  running past the right edge of the text column: the reader has to scroll sideways or misses content.
* :func:`empty_widgets`: widget views and output areas with nothing visible (a widget needs a kernel; on the
  static page it is empty space).
* :func:`blurry_images`: raster images whose natural width is below 1.5 times their displayed width.

Before scanning, :func:`expand_everything` opens every collapsed block (hidden solutions, toggled cells), so
that their content is scanned too. The scans are tested on synthetic pages in ``test_scans.py``.
"""

from __future__ import annotations

#: Pixels of tolerance for sub-pixel rounding in the overflow scan.
OVERFLOW_TOLERANCE_PX = 2
#: An image must carry at least this many pixels per displayed (CSS) pixel.
IMAGE_DENSITY = 1.5

_ROOT = "(document.querySelector('article.bd-article') || document.querySelector('main') || document.body)"

_DESCRIBE = """
const describe = (el) => {
  let name = el.tagName.toLowerCase();
  if (el.id) name += '#' + el.id;
  const classes = (typeof el.className === 'string' ? el.className : '').trim().split(/\\s+/).filter(Boolean);
  if (classes.length) name += '.' + classes.slice(0, 2).join('.');
  const section = el.closest('section[id]');
  const where = section ? ' in #' + section.id : '';
  const text = (el.textContent || el.getAttribute('alt') || '').replace(/\\s+/g, ' ').trim().slice(0, 70);
  return name + where + ' "' + text + '"';
};
"""

_EXPAND = """() => {
  document.querySelectorAll('details').forEach((d) => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach((e) => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('.toggle-details__container').forEach((e) => e.classList.remove('toggle-hidden'));
}"""

_RAW_TEX = "() => {" + _DESCRIBE + """
  const root = """ + _ROOT + """;
  const skip = 'pre, code, kbd, samp, script, style, textarea, svg, math, mjx-container, .highlight, ' +
               '.MathJax, .tex2jax_ignore, .linenos';
  const pattern = /\\\\[A-Za-z]+|\\\\[|{}\\[\\]()]|\\$/;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const match = node.data.match(pattern);
    if (!match) continue;
    const start = Math.max(0, match.index - 30);
    const context = node.data.slice(start, match.index + 40).replace(/\\s+/g, ' ');
    found.push(describe(parent).split(' "')[0] + ': raw TeX ' + JSON.stringify(match[0]) +
               ' in "' + context + '"');
  }
  // MathJax shows a TeX error (mjx-merror) or an undefined macro (in red) as source text.
  for (const el of root.querySelectorAll('mjx-merror, mjx-container [style*="color: red"]')) {
    const holder = el.closest('mjx-container') || el;
    found.push(describe(holder).split(' "')[0] + ': MathJax could not typeset "' +
               (el.getAttribute('data-mjx-error') || el.textContent || '').trim().slice(0, 60) + '"');
  }
  return found;
}"""

_OVERFLOW = "(tolerance) => {" + _DESCRIBE + """
  const root = """ + _ROOT + """;
  const column = root.getBoundingClientRect();
  const selector = 'mjx-container[display="true"], div.math, pre, div.highlight, .cell_output, ' +
                   '.cell_output > .output, table';
  const found = [];
  for (const el of root.querySelectorAll(selector)) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) continue;
    const scrolls = el.scrollWidth > el.clientWidth + tolerance;
    const pastColumn = rect.right > column.right + tolerance;
    if (scrolls || pastColumn) {
      found.push(describe(el) + ': content ' + el.scrollWidth + ' px in a box of ' + el.clientWidth +
                 ' px, right edge ' + Math.round(rect.right) + ' px vs column ' + Math.round(column.right) + ' px');
    }
  }
  return found;
}"""

_EMPTY_WIDGETS = "() => {" + _DESCRIBE + """
  const root = """ + _ROOT + """;
  const media = 'img, svg, canvas, video, iframe, input, select, button, mjx-container';
  const visible = (el) => {
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return rect.width > 2 && rect.height > 2 && style.visibility !== 'hidden' && style.display !== 'none';
  };
  const hasContent = (el) => {
    if (!visible(el)) return false;
    if ((el.innerText || '').trim().length > 0) return true;
    return Array.from(el.querySelectorAll(media)).some(visible);
  };
  const found = [];
  for (const script of root.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    const holder = script.parentElement;
    if (!hasContent(holder)) {
      let model = '';
      try { model = JSON.parse(script.textContent).model_id || ''; } catch (err) { model = '?'; }
      found.push(describe(holder) + ': widget view ' + model + ' renders nothing without a kernel');
    }
  }
  for (const el of root.querySelectorAll('.jupyter-widgets, .widget-area, .cell_output, .output_area')) {
    if (!hasContent(el) && !el.querySelector('script[type="application/vnd.jupyter.widget-view+json"]')) {
      const rect = el.getBoundingClientRect();
      found.push(describe(el) + ': empty output area (' + Math.round(rect.width) + ' x ' +
                 Math.round(rect.height) + ' px, nothing visible)');
    }
  }
  return found;
}"""

_BLURRY = "(density) => {" + _DESCRIBE + """
  const root = """ + _ROOT + """;
  const found = [];
  for (const img of root.querySelectorAll('img')) {
    const shown = img.getBoundingClientRect().width;
    const source = img.currentSrc || img.src || '';
    if (shown === 0 || /\\.svg(\\?|#|$)|^data:image\\/svg/i.test(source)) continue;
    if (img.naturalWidth < density * shown - 0.5) {
      const name = source.startsWith('data:') ? source.slice(0, 30) + '...' : source.split('/').pop();
      found.push(describe(img).split(' "')[0] + ' ' + name + ': natural width ' + img.naturalWidth +
                 ' px shown at ' + Math.round(shown) + ' px (' + (img.naturalWidth / shown).toFixed(2) +
                 'x, needs ' + density + 'x)');
    }
  }
  return found;
}"""


def expand_everything(page) -> None:
    """Open every collapsed block (``<details>``, toggled solutions and cells) so that the scans see it."""
    page.evaluate(_EXPAND)


def raw_tex(page) -> list[str]:
    """Visible text nodes outside code that still hold TeX (a backslash command or a dollar sign)."""
    return page.evaluate(_RAW_TEX)


def overflowing_blocks(page) -> list[str]:
    """Math displays, code/output blocks and tables that scroll sideways or run past the text column."""
    return page.evaluate(_OVERFLOW, OVERFLOW_TOLERANCE_PX)


def empty_widgets(page) -> list[str]:
    """Widget views and output areas that show nothing on the static page."""
    return page.evaluate(_EMPTY_WIDGETS)


def blurry_images(page) -> list[str]:
    """Raster images with fewer than ``IMAGE_DENSITY`` natural pixels per displayed pixel."""
    return page.evaluate(_BLURRY, IMAGE_DENSITY)


SCANS = {
    "raw TeX": raw_tex,
    "overflowing blocks": overflowing_blocks,
    "empty widgets": empty_widgets,
    "blurry images": blurry_images,
}


def scan(page) -> dict[str, list[str]]:
    """Expand the page, then run every scan; returns ``{scan name: offenders}``."""
    expand_everything(page)
    page.wait_for_timeout(50)
    return {name: run(page) for name, run in SCANS.items()}
