"""What a reader sees, measured in the browser: the scans of the rendered book, at a desktop and a phone width.

Each scan runs in the page (``page.evaluate``) and returns a list of offenders, one string each, naming the
element, the start of its text and its sizes, so that a failure message can list every one of them:

* :func:`raw_tex`: TeX left as text in a text node outside code and outside MathJax's output: a control
  sequence such as ``\\mathbf`` or ``\\)``, a ``$`` (an unmatched or unrendered dollar), or a MyST role that was
  not parsed (``{prf:ref}`...```); and math that MathJax shows as an error. Notebook pages wrap their whole body
  in ``tex2jax_ignore`` (so that MathJax leaves ``$`` in outputs alone): that class is *not* a reason to skip a
  text node, or TeX that leaked out of a broken formula would go unseen.
* :func:`overflowing_blocks`: at the desktop width, math displays, code and output blocks (and tables) wider than
  their box or running past the right edge of the text column (nothing may scroll sideways); at the phone width,
  any content that runs past the column or the window *without* a scrolling box around it (a wide formula or
  table must scroll there, not be cut), and a page that scrolls sideways as a whole.
* :func:`empty_widgets`: widget views and output areas with nothing visible (a widget needs a kernel; on the
  static page it is empty space).
* :func:`blurry_images`: raster images whose natural width is below 1.5 times their displayed width.
* :func:`squashed_images`: images whose displayed aspect ratio differs from their own by more than 2 %.
* :func:`punctuation_wraps`: a full stop, comma or question mark right after an inline formula that the browser
  moved to the next line ("T = 3" / ".").
* :func:`uncaptioned_figures`: images that are not in a figure with a caption (numbered, on chapter pages), or
  whose alt text is a file name.
* :func:`navigation_buttons`: the chapter-list button (☰) and, where shown, the contents button must open
  what they name: the list of chapters (and the page's contents) becomes visible after a click.

Before scanning, :func:`expand_everything` opens every collapsed block (hidden solutions, toggled cells), so
that their content is scanned too. The scans are tested on synthetic pages in ``test_scans.py``.
"""

from __future__ import annotations

#: Pixels of tolerance for sub-pixel rounding in the overflow scan.
OVERFLOW_TOLERANCE_PX = 2
#: An image must carry at least this many pixels per displayed (CSS) pixel.
IMAGE_DENSITY = 1.5
#: Largest relative difference between an image's displayed and natural aspect ratios.
ASPECT_TOLERANCE = 0.02
#: The two window widths of the scans: a desktop and a phone (CSS pixels).
DESKTOP, PHONE = 1280, 390

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

_RAW_TEX = (
    "() => {"
    + _DESCRIBE
    + """
  const root = """
    + _ROOT
    + """;
  // Code and MathJax's own output hold TeX legitimately; .tex2jax_ignore does not (see the module docstring).
  const skip = 'pre, code, kbd, samp, script, style, textarea, svg, math, mjx-container, .highlight, ' +
               '.MathJax, .linenos';
  const patterns = [
    [/\\\\[A-Za-z]+|\\\\[|{}\\[\\]()]|\\$/, 'raw TeX'],
    [/\\{[a-z]+(:[a-z-]+)*\\}`/, 'unparsed MyST role'],
  ];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    for (const [pattern, what] of patterns) {  // each kind once per text node, at its first occurrence
      const match = node.data.match(pattern);
      if (!match) continue;
      const start = Math.max(0, match.index - 30);
      const context = node.data.slice(start, match.index + 40).replace(/\\s+/g, ' ');
      found.push(describe(parent).split(' "')[0] + ': ' + what + ' ' + JSON.stringify(match[0]) +
                 ' in "' + context + '"');
    }
  }
  // MathJax shows a TeX error (mjx-merror) or an undefined macro (in red) as source text.
  for (const el of root.querySelectorAll('mjx-merror, mjx-container [style*="color: red"]')) {
    const holder = el.closest('mjx-container') || el;
    found.push(describe(holder).split(' "')[0] + ': MathJax could not typeset "' +
               (el.getAttribute('data-mjx-error') || el.textContent || '').trim().slice(0, 60) + '"');
  }
  // A formula whose delimiters were paired wrongly swallows prose: MathJax then sets sentences (or a MyST role)
  // as math. Its TeX source, without \\text{...} and control sequences, still reads as words.
  const items = (window.MathJax && MathJax.startup && MathJax.startup.document) ? MathJax.startup.document.math : [];
  for (const item of items) {
    const source = String(item.math || '');
    if (!item.typesetRoot || !root.contains(item.typesetRoot)) continue;
    const bare = source.replace(/\\\\(text|textrm|mathrm|operatorname|mbox|textbf|textit)\\s*\\{[^}]*\\}/g, ' ')
                       .replace(/\\\\begin\\{[a-z*]+\\}|\\\\end\\{[a-z*]+\\}/g, ' ').replace(/\\\\[A-Za-z]+/g, ' ');
    const words = bare.match(/\\b[a-z]{3,}\\b/g) || [];
    if (words.length >= 6 || /`|\\{[a-z]+:[a-z-]+\\}/.test(source)) {
      found.push(describe(item.typesetRoot).split(' "')[0] + ': prose typeset as math "' +
                 source.replace(/\\s+/g, ' ').trim().slice(0, 60) + '"');
    }
  }
  return found;
}"""
)

_OVERFLOW = (
    "(tolerance) => {"
    + _DESCRIBE
    + """
  const root = """
    + _ROOT
    + """;
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
)


_CUT = (
    "(tolerance) => {"
    + _DESCRIBE
    + """
  const root = """
    + _ROOT
    + """;
  const limit = Math.min(root.getBoundingClientRect().right, window.innerWidth);
  const found = [];
  const page = document.scrollingElement || document.documentElement;
  if (page.scrollWidth > window.innerWidth + tolerance) {
    found.push('the whole page scrolls sideways: ' + page.scrollWidth + ' px in a window of ' +
               window.innerWidth + ' px');
  }
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const clips = (el) => ['hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  // What a clipping box cuts: its visible descendants that end past its right edge. (Its scrollWidth would also
  // count MathJax's invisible assistive MathML, which is positioned but never shown.)
  const contentRight = (el) => {
    let right = el.getBoundingClientRect().right;
    for (const child of el.querySelectorAll('*')) {
      if (child.closest('mjx-assistive-mml')) continue;
      const box = child.getBoundingClientRect();
      if (box.width > 0 && box.height > 0) right = Math.max(right, box.right);
    }
    return right;
  };
  // A child that reaches past the column explains its parent's overflow: the child is reported, not the parent.
  const spillsPast = (child) => {
    const box = child.getBoundingClientRect();
    return box.width > 0 && (box.right > limit + tolerance || box.left + child.scrollWidth > limit + tolerance);
  };
  const reported = new Set();
  for (const el of root.querySelectorAll('*')) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
    let inside = false;  // inside a box that scrolls or clips (reported there), or inside a reported element
    for (let up = el.parentElement; up && up !== root; up = up.parentElement) {
      if (reported.has(up) || scrolls(up) || clips(up)) { inside = true; break; }
    }
    if (inside) continue;
    if (rect.right > limit + tolerance) {
      reported.add(el);
      found.push(describe(el) + ': right edge ' + Math.round(rect.right) + ' px past the column (' +
                 Math.round(limit) + ' px), no scrolling box around it');
    } else if (!scrolls(el) && !clips(el) && !el.closest('mjx-container') &&
               el.scrollWidth > el.clientWidth + tolerance && rect.left + el.scrollWidth > limit + tolerance &&
               !Array.from(el.children).some(spillsPast)) {
      reported.add(el);  // its text (or content) spills out of its box and past the column
      found.push(describe(el) + ': content ' + el.scrollWidth + ' px spills out of a box of ' + el.clientWidth +
                 ' px, past the column (' + Math.round(limit) + ' px), no scrolling box around it');
    } else if (clips(el) && el.clientWidth > 2 && el.scrollWidth > el.clientWidth + tolerance) {
      const cut = contentRight(el) - rect.right;
      if (cut > tolerance) {
        reported.add(el);
        found.push(describe(el) + ': ' + Math.round(cut) + ' px of its content cut off at its right edge (' +
                   Math.round(rect.right) + ' px)');
      }
    }
  }
  return found;
}"""
)

_EMPTY_WIDGETS = (
    "() => {"
    + _DESCRIBE
    + """
  const root = """
    + _ROOT
    + """;
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
)

_IMAGE_NAME = """
const imageName = (img) => {
  const source = img.currentSrc || img.src || '';
  return source.startsWith('data:') ? source.slice(0, 30) + '...' : source.split('/').pop();
};
"""

_BLURRY = (
    "(density) => {"
    + _DESCRIBE
    + _IMAGE_NAME
    + """
  const root = """
    + _ROOT
    + """;
  const found = [];
  for (const img of root.querySelectorAll('img')) {
    const shown = img.getBoundingClientRect().width;
    const source = img.currentSrc || img.src || '';
    if (shown === 0 || /\\.svg(\\?|#|$)|^data:image\\/svg/i.test(source)) continue;
    if (img.naturalWidth < density * shown - 0.5) {
      found.push(describe(img).split(' "')[0] + ' ' + imageName(img) + ': natural width ' + img.naturalWidth +
                 ' px shown at ' + Math.round(shown) + ' px (' + (img.naturalWidth / shown).toFixed(2) +
                 'x, needs ' + density + 'x)');
    }
  }
  return found;
}"""
)

_SQUASHED = (
    "(tolerance) => {"
    + _DESCRIBE
    + _IMAGE_NAME
    + """
  const root = """
    + _ROOT
    + """;
  const found = [];
  for (const img of root.querySelectorAll('img')) {
    const rect = img.getBoundingClientRect();
    if (rect.width < 2 || rect.height < 2 || !img.naturalWidth || !img.naturalHeight) continue;
    const natural = img.naturalWidth / img.naturalHeight;
    const shown = rect.width / rect.height;
    if (Math.abs(shown / natural - 1) > tolerance) {
      found.push(describe(img).split(' "')[0] + ' ' + imageName(img) + ': shown ' + Math.round(rect.width) +
                 ' x ' + Math.round(rect.height) + ' px, aspect ' + shown.toFixed(2) + ' against its own ' +
                 natural.toFixed(2));
    }
  }
  return found;
}"""
)

_UNCAPTIONED = (
    "(numbered) => {"
    + _DESCRIBE
    + _IMAGE_NAME
    + """
  const root = """
    + _ROOT
    + """;
  const found = [];
  for (const img of root.querySelectorAll('img')) {
    const where = describe(img).split(' "')[0] + ' ' + imageName(img);
    const alt = (img.getAttribute('alt') || '').trim();
    if (!alt || /^[^\\s]+\\.(png|jpe?g|gif|svg|webp)$/i.test(alt)) {
      found.push(where + ': alt text ' + JSON.stringify(alt) + ' (a file name, or none)');
    }
    const figure = img.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    const text = caption ? caption.textContent.replace(/\\s+/g, ' ').trim() : '';
    if (!figure) {
      found.push(where + ': not in a figure');
    } else if (!text) {
      found.push(where + ': figure without a caption');
    } else if (numbered && !caption.querySelector('.caption-number')) {
      found.push(where + ': caption without a figure number ("' + text.slice(0, 40) + '")');
    }
  }
  return found;
}"""
)


_PUNCTUATION = (
    "(tolerance) => {"
    + _DESCRIBE
    + """
  const root = """
    + _ROOT
    + """;
  const found = [];
  for (const math of root.querySelectorAll('span.math')) {
    const box = math.getBoundingClientRect();
    if (box.width === 0) continue;
    // the first text after the formula, in document order
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    walker.currentNode = math;
    let next = walker.nextNode();
    while (next && math.contains(next)) next = walker.nextNode();
    if (!next || !/^[.,;:!?)]/.test(next.data)) continue;
    const range = document.createRange();
    range.setStart(next, 0);
    range.setEnd(next, 1);
    const mark = range.getBoundingClientRect();
    if (mark.height > 0 && mark.top > box.bottom - tolerance) {
      found.push(describe(math) + ': the ' + JSON.stringify(next.data[0]) + ' after it starts a new line');
    }
  }
  return found;
}"""
)


def expand_everything(page) -> None:
    """Open every collapsed block (``<details>``, toggled solutions and cells) so that the scans see it."""
    page.evaluate(_EXPAND)


def raw_tex(page) -> list[str]:
    """Visible text nodes outside code and MathJax that still hold TeX (a control sequence, a ``$``, a role)."""
    return page.evaluate(_RAW_TEX)


def overflowing_blocks(page, *, phone: bool = False) -> list[str]:
    """Desktop: blocks that scroll sideways or pass the column. Phone: content cut without a scrolling box."""
    return page.evaluate(_CUT if phone else _OVERFLOW, OVERFLOW_TOLERANCE_PX)


def empty_widgets(page) -> list[str]:
    """Widget views and output areas that show nothing on the static page."""
    return page.evaluate(_EMPTY_WIDGETS)


def blurry_images(page) -> list[str]:
    """Raster images with fewer than ``IMAGE_DENSITY`` natural pixels per displayed pixel."""
    return page.evaluate(_BLURRY, IMAGE_DENSITY)


def squashed_images(page) -> list[str]:
    """Images shown with another aspect ratio than their own (a fixed height under a shrinking width)."""
    return page.evaluate(_SQUASHED, ASPECT_TOLERANCE)


def punctuation_wraps(page) -> list[str]:
    """Inline formulas whose following full stop, comma or question mark was wrapped to the next line."""
    return page.evaluate(_PUNCTUATION, OVERFLOW_TOLERANCE_PX)


def uncaptioned_figures(page, *, numbered: bool = False) -> list[str]:
    """Images outside a captioned figure (numbered if ``numbered``), or whose alt text is a file name."""
    return page.evaluate(_UNCAPTIONED, numbered)


_SHOWN = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return false;
  const rect = el.getBoundingClientRect();
  if (rect.width < 2 || rect.height < 2 || rect.right <= 0 || rect.left >= window.innerWidth ||
      rect.bottom <= 0 || rect.top >= window.innerHeight) return false;
  for (let up = el; up; up = up.parentElement) {
    const style = getComputedStyle(up);
    if (style.visibility === 'hidden' || style.display === 'none' || Number(style.opacity) === 0) return false;
  }
  const hit = document.elementFromPoint(rect.left + Math.min(rect.width / 2, 20), rect.top + rect.height / 2);
  return !!hit && (hit === el || el.contains(hit) || hit.contains(el));
}"""

#: The first link of the chapter list, and of the page's contents.
CHAPTER_LIST = "nav.bd-docs-nav a.reference"
PAGE_CONTENTS = "#pst-page-toc-nav a"
_SETTLE_MS = 400


def _visible_button(page, name: str):
    for button in page.query_selector_all(f"button.{name}"):
        if button.is_visible():
            return button
    return None


def navigation_buttons(page) -> list[str]:
    """Click the visible chapter-list button (and the contents button, where one is shown) and check the result.

    Where the chapter list is hidden (a phone), one click must show it and Escape must close it again; where it is
    shown beside the text (a desktop), one click hides it and a second shows it again. The contents button works
    the same way for the page's own contents. Run it last: it changes the page.
    """
    found = []
    checks = [("primary-toggle", CHAPTER_LIST, "the chapter-list button (☰)", "the chapter list")]
    if page.query_selector(PAGE_CONTENTS):
        checks.append(("secondary-toggle", PAGE_CONTENTS, "the contents button", "the page's contents"))
    for name, target, button_name, target_name in checks:
        button = _visible_button(page, name)
        if button is None:
            if name == "primary-toggle":
                found.append(f"{button_name} is not shown")
            continue
        shown_before = page.evaluate(_SHOWN, target)
        button.click()
        page.wait_for_timeout(_SETTLE_MS)
        shown_after = page.evaluate(_SHOWN, target)
        if shown_before == shown_after:
            state = "shown" if shown_before else "hidden"
            found.append(f"{button_name} does nothing: {target_name} stays {state} after a click")
            continue
        if shown_after:  # it opened (a dialog on a phone): Escape closes it
            page.keyboard.press("Escape")
        else:  # it hid the list beside the text: a second click brings it back
            _visible_button(page, name).click()
        page.wait_for_timeout(_SETTLE_MS)
        if page.evaluate(_SHOWN, target) != shown_before:
            found.append(f"{button_name}: {target_name} does not return to how it was after closing")
    return found


#: name -> scan(page, phone=..., chapter=...); "navigation buttons" is last because it changes the page.
SCANS = {
    "raw TeX": lambda page, phone, chapter: raw_tex(page),
    "overflowing blocks": lambda page, phone, chapter: overflowing_blocks(page, phone=phone),
    "empty widgets": lambda page, phone, chapter: empty_widgets(page),
    "blurry images": lambda page, phone, chapter: blurry_images(page),
    "squashed images": lambda page, phone, chapter: squashed_images(page),
    "punctuation after maths": lambda page, phone, chapter: punctuation_wraps(page),
    "uncaptioned figures": lambda page, phone, chapter: uncaptioned_figures(page, numbered=chapter),
    "navigation buttons": lambda page, phone, chapter: navigation_buttons(page),
}


def scan(
    page, *, phone: bool = False, chapter: bool = False, only: tuple[str, ...] | None = None
) -> dict[str, list[str]]:
    """Expand the page, then run every scan (or those named in ``only``); returns ``{scan name: offenders}``."""
    expand_everything(page)
    page.wait_for_timeout(50)
    return {name: run(page, phone, chapter) for name, run in SCANS.items() if only is None or name in only}
