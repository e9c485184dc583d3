"""Small fixes to the HTML output so that the built book reads offline and without console errors.

1. MathJax 3 is served from the built book instead of a CDN. The files come from an installed PyPI
   package (``django-static-mathjax``, pinned in requirements.txt), whose ``mathjax/static/mathjax/es5``
   folder holds the standard MathJax 3 build; it is added to ``html_static_path`` and ``mathjax_path``
   points at it.
2. The theme's light/dark bootstrap script reads an empty default mode on a first visit and logs a console
   error; a fixed default mode (``light``) avoids it.
3. sphinx-thebe's inline configuration script is registered twice under Jupyter Book 1, which declares the
   same ``const`` twice (a console error); duplicate inline scripts are dropped.
4. ``static/book.css``: a wider text column and 13 px code, so that nothing scrolls sideways at a 1280 px
   window, and printed output that wraps as in Jupyter; figures that keep their proportions on a phone, and wide
   formulas and tables that scroll there (see the browser test's scans).
5. Author-year labels in the bibliography (``author_year_labels``), matching the citations in the text.
6. ``static/book.js``: the chapter-list (☰) and contents buttons work (the theme binds its handlers to hidden
   duplicates of them; the script passes a click on a visible button on).
7. One search field: pydata-sphinx-theme 0.17 adds a search field to a header bar of its own unless
   ``navbar_persistent`` is set, which under sphinx-book-theme shows a second search box above the one in the
   sidebar. It is set to ``[]`` unless the configuration sets it.
8. Inline maths keeps the punctuation that follows it (and a bracket that precedes it) on its line: the math node
   and the characters are wrapped in ``<span class="nowrap">`` (:class:`KeepPunctuationWithMath`).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform


def _mathjax_static_root() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "MathJax is not installed: run `make install` (requirements.txt pins django-static-mathjax)."
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (root / "mathjax" / "es5" / "tex-mml-chtml.js").is_file():
        raise RuntimeError(f"no MathJax 3 build found under {root}; reinstall django-static-mathjax.")
    return root


def _configure(app, config) -> None:
    static = [str(_mathjax_static_root()), str(Path(__file__).resolve().parent / "static")]
    config.html_static_path = list(config.html_static_path) + static
    config.mathjax_path = "mathjax/es5/tex-mml-chtml.js"
    config.html_context = {**(config.html_context or {}), "default_mode": "light"}
    options = dict(config.html_theme_options or {})
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options


#: Characters that must not start a line after inline maths, and that must not end a line before it.
_TRAILING = re.compile(r"^[.,;:!?)\]}\u2019\u201d%]+")
_LEADING = re.compile(r"[(\[{\u2018\u201c]+$")


class KeepPunctuationWithMath(SphinxTransform):
    """Wrap inline maths with the punctuation touching it in ``<span class="nowrap">``.

    MathJax renders inline maths as an inline block, and browsers may break a line between such a block and a
    following full stop or question mark ("h" / "?"). With the punctuation inside a ``white-space: nowrap``
    span (``static/book.css``), the maths and its punctuation move to the next line together.
    """

    default_priority = 700

    def apply(self, **kwargs) -> None:
        for math in list(self.document.findall(nodes.math)):
            parent = math.parent
            if parent is None or (isinstance(parent, nodes.inline) and "nowrap" in parent["classes"]):
                continue
            # Children are found by identity: Text nodes compare equal by value.
            index = next(i for i, child in enumerate(parent.children) if child is math)
            before = parent.children[index - 1] if index > 0 else None
            after = parent.children[index + 1] if index + 1 < len(parent.children) else None
            trailing = _TRAILING.match(str(after)) if isinstance(after, nodes.Text) else None
            leading = _LEADING.search(str(before)) if isinstance(before, nodes.Text) else None
            if not trailing and not leading:
                continue
            wrapper = nodes.inline(classes=["nowrap"])
            replaced = [wrapper]
            first, last = index, index + 1
            if leading:
                wrapper += nodes.Text(leading.group(0))
                first = index - 1
                if leading.start():
                    replaced.insert(0, nodes.Text(str(before)[: leading.start()]))
            wrapper += math
            if trailing:
                wrapper += nodes.Text(trailing.group(0))
                last = index + 2
                if trailing.end() < len(str(after)):
                    replaced.append(nodes.Text(str(after)[trailing.end() :]))
            for node in replaced:
                node.parent = parent
            parent.children[first:last] = replaced


def _drop_duplicate_inline_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # Same file and attributes means the same script, whatever priority it was registered with.
        # (an inline script is registered with filename None or "", depending on the extension).
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    # In place: the builder keeps adding to this same list afterwards (e.g. MathJax on pages with math).
    context["script_files"][:] = unique


def setup(app):
    app.setup_extension("author_year_labels")
    app.add_css_file("book.css")
    app.add_js_file("book.js")
    app.add_transform(KeepPunctuationWithMath)
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _drop_duplicate_inline_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
