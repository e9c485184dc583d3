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
   window, and printed output that wraps as in Jupyter (see the browser test's scans).
5. Author-year labels in the bibliography (``author_year_labels``), matching the citations in the text.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _mathjax_static_root() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MathJax is not installed: run `make install` (requirements.txt pins django-static-mathjax).")
    root = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (root / "mathjax" / "es5" / "tex-mml-chtml.js").is_file():
        raise RuntimeError(f"no MathJax 3 build found under {root}; reinstall django-static-mathjax.")
    return root


def _configure(app, config) -> None:
    static = [str(_mathjax_static_root()), str(Path(__file__).resolve().parent / "static")]
    config.html_static_path = list(config.html_static_path) + static
    config.mathjax_path = "mathjax/es5/tex-mml-chtml.js"
    config.html_context = {**(config.html_context or {}), "default_mode": "light"}


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
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _drop_duplicate_inline_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
