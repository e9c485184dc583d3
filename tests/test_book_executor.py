"""The book's notebook executor loses no wake-ups (``book/_ext/kernel_wakeups.py``).

``make book`` once sat idle for a whole cell timeout (300 s) after chapter 1's ``widgets.interact`` cell: the
kernel had sent its ``execute_reply``, the client's event loop slept, and nothing moved until the timeout. These
tests show the fault where it lives (a send through a blocking shadow of an asyncio socket eats the socket's
edge-triggered wake-up), show that the detector catches it on the real path (nbclient's Output-widget mimic,
a real kernel), and run a widget-bearing chapter through the same executor as ``make book`` (jupyter-cache's
worker, then myst-nb inside ``jupyter-book build``), failing when any request waits more than
``IDLE_LIMIT`` seconds with the kernel idle and the client waiting. That criterion counts only time after the
kernel is done, so a slow cell or a busy machine cannot trip it; a lost wake-up always does.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import kernel_wakeups  # book/_ext is not a package: imported from the path above

LIVE_WIDGET = ROOT / "tests" / "notebooks" / "live_widget.ipynb"
CHAPTER = ROOT / "book" / "01_dynamical_systems.ipynb"  # a chapter with a live `widgets.interact` cell


@pytest.fixture
def patched(monkeypatch):
    """kernel_wakeups installed for one test; jupyter_client's own methods come back afterwards."""
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.session import Session

    for owner, name in [(Session, "send"), (AsyncZMQSocketChannel, "send"), (AsyncZMQSocketChannel, "_recv")]:
        monkeypatch.setattr(owner, name, getattr(owner, name))
    kernel_wakeups.install()
    kernel_wakeups.take_watches()
    return kernel_wakeups


def _poll_after_shadow_send(fix: bool) -> float:
    """Seconds a pending poll takes to see a reply that arrived before a ``Session.send`` on the same socket."""
    import zmq
    import zmq.asyncio
    from jupyter_client.session import Session

    async def scenario() -> float:
        # inproc: a send is delivered (and the receiver's descriptor signalled) before it returns, so no races.
        context = zmq.Context()
        kernel = context.socket(zmq.ROUTER)
        kernel.bind("inproc://shell")
        client = zmq.asyncio.Context.shadow(context).socket(zmq.DEALER)
        client.connect("inproc://shell")
        session = Session(key=b"")
        try:
            session.send(client, "execute_request")
            identity, *_ = kernel.recv_multipart()
            waiting = asyncio.ensure_future(client.poll(1500))  # the executor waits for the execute_reply
            await asyncio.sleep(0.01)
            kernel.send_multipart([identity, b"execute_reply"])  # the kernel replies while the client
            time.sleep(0.01)  # handles IOPub (no turn of the event loop; past libzmq's 1 ms command throttle)
            session.send(client, "comm_msg")  # the Output-widget mimic's state update, on the same socket
            start = time.perf_counter()
            assert await waiting, "the reply never became readable"
            return time.perf_counter() - start
        finally:
            client.close(linger=0)
            kernel.close(linger=0)

    original = Session.send
    Session.send = kernel_wakeups._send_and_rearm if fix else kernel_wakeups._ORIGINAL_SEND
    try:
        return asyncio.run(scenario())
    finally:
        Session.send = original


def test_a_send_on_the_shadow_socket_loses_the_wakeup_and_the_fix_restores_it():
    # If the first assertion fails, jupyter_client or pyzmq fixed the fault upstream: the patch can go.
    assert _poll_after_shadow_send(fix=False) > 1.0, "the poll saw the reply at once without the fix"
    assert _poll_after_shadow_send(fix=True) < 0.5


def _execute_with_slow_output_widget(path: Path, monkeypatch) -> dict:
    """Execute a notebook with nbclient while its Output-widget mimic is slow (as in a large Sphinx process)."""
    import nbformat
    from nbclient import NotebookClient, output_widget

    original = output_widget.OutputWidget.output

    def slow_output(self, *args, **kwargs):
        time.sleep(1.0)  # the kernel finishes the cell (a 0.2 s pause after the widget) and replies meanwhile
        return original(self, *args, **kwargs)

    monkeypatch.setattr(output_widget.OutputWidget, "output", slow_output)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return kernel_wakeups.write_report(path.stem, kernel_wakeups.take_watches())


def test_the_detector_catches_the_stall_on_the_widget_path_and_the_fix_removes_it(patched, monkeypatch):
    from jupyter_client.session import Session

    monkeypatch.setattr(Session, "send", kernel_wakeups._ORIGINAL_SEND)  # the executor as released
    without = _execute_with_slow_output_widget(LIVE_WIDGET, monkeypatch)
    assert without["stalls"], f"no stall detected without the fix: {without}"

    monkeypatch.setattr(Session, "send", kernel_wakeups._send_and_rearm)
    with_fix = _execute_with_slow_output_widget(LIVE_WIDGET, monkeypatch)
    assert with_fix["messages"] > 10 and not with_fix["stalls"], with_fix
    assert with_fix["longest_wait"] < kernel_wakeups.IDLE_LIMIT


def test_make_book_executor_runs_a_widget_chapter_without_idle_waits(tmp_path):
    """``make book``'s two steps on a widget chapter and the purpose-built notebook, from a cold cache.

    The purpose-built notebook goes through ``booktools.py execute-cache`` (jupyter-cache's worker in a pool, as
    ``make book`` runs every chapter); chapter 1 is left to ``jupyter-book build``, so myst-nb executes it through
    jupyter-cache inside the Sphinx process, where the stall was found. Both report to the detector.
    """
    cache, report = tmp_path / ".jupyter_cache", tmp_path / "wakeups.jsonl"
    env = {**os.environ, kernel_wakeups.REPORT_ENV: str(report)}
    python = sys.executable
    run = subprocess.run(
        [python, "scripts/booktools.py", "execute-cache", str(cache), str(LIVE_WIDGET)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["cache"] = str(cache)
    config["exclude_patterns"] = [p for p in config["exclude_patterns"] if p != "tests"]
    extensions = config["sphinx"]["local_extensions"]
    assert "kernel_wakeups" in extensions, "_config.yml must load the fix into jupyter-book"
    config["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in extensions.items()}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    toc = {
        "format": "jb-article",
        "root": "tests/notebooks/live_widget",
        "sections": [{"file": str(CHAPTER.relative_to(ROOT).with_suffix(""))}],
    }
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    jupyter_book = Path(python).with_name("jupyter-book")
    build = subprocess.run(
        [
            str(jupyter_book),
            "build",
            str(ROOT),
            "--path-output",
            str(tmp_path),
            "--config",
            str(tmp_path / "_config.yml"),
            "--toc",
            str(tmp_path / "_toc.yml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-5000:]
    assert "live_widget.ipynb: Using cached notebook" in log, "the build did not read the pre-executed notebook"
    assert "01_dynamical_systems.ipynb: Executed notebook" in log, "myst-nb did not execute the chapter"
    assert "lost wake-up" not in log, log[-5000:]

    records = {Path(r["notebook"]).stem: r for r in map(json.loads, report.read_text().splitlines())}
    assert set(records) == {LIVE_WIDGET.stem, CHAPTER.stem}, records
    for name, record in records.items():
        assert record["messages"] > 10, f"{name}: the detector saw no traffic: {record}"
        assert not record["stalls"], f"{name}: kernel idle while the client waited: {record}"
        assert record["longest_wait"] < kernel_wakeups.IDLE_LIMIT, record
