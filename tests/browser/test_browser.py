"""Open every page of the built book in a real headless Chromium and check what a reader would see.

Fails on console errors, failed or external requests (the book must read offline), unrendered math,
images that did not load, and internal links whose target page or anchor does not exist. Saves a
screenshot of each chapter under ``_build/screenshots/``. Run after ``jupyter-book build`` (``make test``
does this); needs Debian's ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = sorted(p.relative_to(HTML).as_posix() for p in HTML.glob("**/*.html")
               if not p.relative_to(HTML).as_posix().startswith(("_", "genindex", "search", "py-modindex")))


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("the browser test needs Chromium: `apt-get install chromium` (.ci/run does this)")


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        raise RuntimeError(f"{HTML} has no index.html: build the book first (make book-stored)")
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield browser
        browser.close()


def test_pages_were_found() -> None:
    assert "index.html" in PAGES or any(p.endswith("intro.html") for p in PAGES), PAGES
    assert any("01_dynamical_systems" in p for p in PAGES), "chapter 1 is missing from the built book"


@pytest.mark.parametrize("page_path", PAGES)
def test_page_renders_offline(page_path: str, server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})"))
    page.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None)

    def only_local(route):
        if route.request.url.startswith(server) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"external request (the book must read offline): {route.request.url}")
            route.abort()

    page.route("**/*", only_local)
    page.goto(server + page_path, wait_until="networkidle")
    page.wait_for_load_state("networkidle")
    html = page.evaluate("() => document.documentElement.outerHTML")
    has_math = bool(page.query_selector("span.math, div.math, .math"))
    if has_math:
        assert page.query_selector('script[src*="mathjax/es5"]'), f"{page_path}: math on the page but no local MathJax"
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")
        assert page.query_selector("mjx-container"), f"{page_path}: math present but MathJax produced no output"
    text = page.inner_text("article") if page.query_selector("article") else page.inner_text("body")
    raw = [marker for marker in ("$$", "\\begin{", "\\(", "\\[") if marker in text]
    assert not raw, f"{page_path}: unrendered math ({raw}) in the page text"
    broken = page.evaluate("() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    assert not broken, f"{page_path}: images that did not load: {broken}"
    if "book/" in page_path and page_path.split("/")[-1][:2].isdigit():
        assert "colab.research.google.com" in html, f"{page_path}: a chapter needs a Colab launch button"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / (Path(page_path).stem + ".png")))
    page.close()
    assert not problems, f"{page_path}:\n" + "\n".join(problems)


def test_internal_links_resolve() -> None:
    missing = []
    anchors: dict[Path, set[str]] = {}

    def ids(path: Path) -> set[str]:
        if path not in anchors:
            soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
            anchors[path] = {tag["id"] for tag in soup.find_all(id=True)} | {tag["name"] for tag in soup.find_all("a", attrs={"name": True})}
        return anchors[path]

    for page_path in PAGES:
        source = HTML / page_path
        soup = BeautifulSoup(source.read_text(encoding="utf-8"), "html.parser")
        for link in soup.find_all("a", href=True):
            href = link["href"]
            parsed = urlparse(href)
            if parsed.scheme or href.startswith(("mailto:", "javascript:", "//")):
                continue
            target = source if not parsed.path else (source.parent / unquote(parsed.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                missing.append(f"{page_path}: {href} (no file {target.relative_to(HTML.resolve()) if target.is_relative_to(HTML.resolve()) else target})")
                continue
            if parsed.fragment and target.suffix == ".html" and unquote(parsed.fragment) not in ids(target):
                missing.append(f"{page_path}: {href} (no anchor #{parsed.fragment})")
    assert not missing, "broken internal links:\n" + "\n".join(missing)
