"""Serve MathJax 3 from the built book instead of a CDN, so the book reads offline.

The MathJax files come from an installed PyPI package (``django-static-mathjax``, pinned in
requirements.txt), whose ``mathjax/static/mathjax/es5`` folder holds the standard MathJax 3 build.
The folder is added to ``html_static_path`` and ``mathjax_path`` points at it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


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
    config.html_static_path = list(config.html_static_path) + [str(_mathjax_static_root())]
    config.mathjax_path = "mathjax/es5/tex-mml-chtml.js"


def setup(app):
    app.connect("config-inited", _configure)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
