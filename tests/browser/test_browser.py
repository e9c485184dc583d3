"""Open every page of the built book in a real headless Chromium and check what a reader would see.

Fails on console errors, failed or external requests (the book must read offline), unrendered math,
images that did not load, and internal links whose target page or anchor does not exist. Saves a
screenshot of each chapter under ``_build/screenshots/``. Run after ``jupyter-book build`` (``make test``
does this); needs Debian's ``chromium`` (``apt-get install chromium``).

Then scans what a reader sees, at a 1280 x 900 window and at a 390 x 844 phone (``scans.py``): raw TeX in the
text, blocks wider than the text column (at 1280 px nothing may scroll sideways; at 390 px wide formulas and
tables must scroll rather than be cut), widget views with nothing visible, blurry and squashed images, a full
stop wrapped away from its formula, figures without a numbered caption or with a file name for alt text, and the
chapter-list and contents buttons. Each
scan's failure lists every offender on every page. The book is read from ``_build/html`` (or from the folder
named by the environment variable ``BOOK_HTML``).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import scans
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("BOOK_HTML") or ROOT / "_build" / "html")
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = sorted(
    p.relative_to(HTML).as_posix()
    for p in HTML.glob("**/*.html")
    if not p.relative_to(HTML).as_posix().startswith(("_", "genindex", "search", "py-modindex"))
)


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
    broken = page.evaluate(
        "() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
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
            anchors[path] = {tag["id"] for tag in soup.find_all(id=True)} | {
                tag["name"] for tag in soup.find_all("a", attrs={"name": True})
            }
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
                missing.append(
                    f"{page_path}: {href} (no file {target.relative_to(HTML.resolve()) if target.is_relative_to(HTML.resolve()) else target})"
                )
                continue
            if parsed.fragment and target.suffix == ".html" and unquote(parsed.fragment) not in ids(target):
                missing.append(f"{page_path}: {href} (no anchor #{parsed.fragment})")
    assert not missing, "broken internal links:\n" + "\n".join(missing)


def is_chapter(page_path: str) -> bool:
    return page_path.split("/")[-1][:2].isdigit()


WIDTHS = {"desktop": scans.DESKTOP, "phone": scans.PHONE}


def open_typeset(page, url: str) -> None:
    """Load a page and wait until MathJax has typeset it and the fonts are ready."""
    page.goto(url, wait_until="networkidle")
    if page.query_selector("span.math, div.math, .math"):
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")
    page.evaluate("() => document.fonts.ready")


@pytest.fixture(scope="module")
def scan_results(server: str, browser, scan_summary) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Every page opened once at each width (1280 x 900 and 390 x 844), typeset and scanned:
    ``{width name: {page: {scan: offenders}}}``. A screenshot of the top of every chapter at the phone width
    goes to ``_build/screenshots/`` beside the desktop ones."""
    results = {}
    for width_name, width in WIDTHS.items():
        phone = width_name == "phone"
        page = browser.new_page(viewport={"width": width, "height": 844 if phone else 900})
        page.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith((server, "data:")) else route.abort(),
        )
        found = results[width_name] = {}
        for page_path in PAGES:
            open_typeset(page, server + page_path)
            if phone and is_chapter(page_path):
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"{Path(page_path).stem}-phone.png"))
            found[page_path] = scans.scan(page, phone=phone, chapter=is_chapter(page_path))
        page.close()
        chapters = sum(is_chapter(p) for p in found)
        scan_summary.append(f"scanned {len(found)} pages ({chapters} chapters) at {width} px ({width_name})")
        for name in scans.SCANS:
            count = sum(len(offenders[name]) for offenders in found.values())
            pages = sum(bool(offenders[name]) for offenders in found.values())
            scan_summary.append(f"  {name}: {count} offenders on {pages} pages")
    return results


def report(results: dict[str, dict[str, list[str]]], name: str, width_name: str) -> str:
    lines = []
    for page_path, found in results.items():
        for offender in found[name]:
            lines.append(f"{page_path}: {offender}")
    chapters = sum(is_chapter(p) for p in results)
    return (
        f"{name} at {WIDTHS[width_name]} px: {len(lines)} offenders on {len(results)} pages checked "
        f"({chapters} chapters):\n" + "\n".join(lines)
    )


@pytest.mark.parametrize("width_name", list(WIDTHS))
@pytest.mark.parametrize("name", list(scans.SCANS))
def test_what_a_reader_sees(name: str, width_name: str, scan_results) -> None:
    results = scan_results[width_name]
    offenders = [o for found in results.values() for o in found[name]]
    assert len(results) == len(PAGES) and any(is_chapter(p) for p in results)
    assert not offenders, report(results, name, width_name)


def test_every_chapter_has_numbered_figures(server: str, browser) -> None:
    """Each chapter shows captioned figures numbered "Fig. N.k", and a {numref} to one of them resolves."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    missing = []
    for page_path in [p for p in PAGES if is_chapter(p)]:
        page.goto(server + page_path, wait_until="domcontentloaded")
        numbers = page.eval_on_selector_all(
            "figure figcaption .caption-number", "els => els.map(e => e.textContent.trim())"
        )
        if not numbers or not all(n.startswith("Fig.") for n in numbers):
            missing.append(f"{page_path}: figure numbers {numbers}")
        references = page.eval_on_selector_all(
            'article a.reference.internal[href*="#fig-"]', "els => els.map(e => e.textContent.trim())"
        )
        if not any(r.startswith("Fig.") for r in references):
            missing.append(f"{page_path}: the text refers to none of its figures by number ({{numref}})")
    page.close()
    assert not missing, "\n".join(missing)


def test_static_sliders_work_without_a_kernel(server: str, browser) -> None:
    """Every slider written by ``companion.plotting.slider_figures`` switches its figure and label on input."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith((server, "data:")) else route.abort()
    )
    checked, broken = 0, []
    for page_path in PAGES:
        page.goto(server + page_path, wait_until="networkidle")
        for index, slider in enumerate(page.query_selector_all("div.companion-slider")):
            image, label, control = (slider.query_selector(s) for s in ("img", "span", "input[type=range]"))
            before = (image.get_attribute("src"), label.inner_text())
            last = control.get_attribute("max")
            target = "0" if control.input_value() == last else last
            control.evaluate("(el, value) => { el.value = value; el.dispatchEvent(new Event('input')); }", target)
            after = (image.get_attribute("src"), label.inner_text())
            checked += 1
            if after[0] == before[0] or after[1] == before[1]:
                broken.append(f"{page_path}: slider {index} ({before[1]!r}) did not change its figure and label")
    page.close()
    print(f"\nchecked {checked} static sliders")
    assert checked > 0, "no static slider found: the chapters should show one beside each live widget"
    assert not broken, "\n".join(broken)
