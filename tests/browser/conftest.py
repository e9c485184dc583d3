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
