"""The headless Chromium shared by the browser tests (Debian's ``chromium``; ``apt-get install chromium``)."""

from __future__ import annotations

import shutil

import pytest


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("the browser test needs Chromium: `apt-get install chromium` (.ci/run does this)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield browser
        browser.close()


_SUMMARY = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def scan_summary(pytestconfig) -> list[str]:
    """Lines that the browser scans report at the end of the run (pages and chapters checked, offenders)."""
    return pytestconfig.stash.setdefault(_SUMMARY, [])


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = config.stash.get(_SUMMARY, [])
    if lines:
        terminalreporter.section("what a reader sees (browser scans)")
        for line in lines:
            terminalreporter.write_line(line)
