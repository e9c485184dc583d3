"""Lost wake-ups between the notebook executor and its kernel: the fix, and a detector that reports them.

The fault (``make book`` sat idle for a whole cell timeout, 300 s, after chapter 1's ``widgets.interact`` cell)
-------------------------------------------------------------------------------------------------------------
The executor (nbclient, under myst-nb and jupyter-cache) talks to the kernel through ``zmq.asyncio`` sockets
and waits for the ``execute_reply`` with ``await shell_socket.poll(timeout)``. A zmq socket's file descriptor is
*edge-triggered*: it signals once when messages arrive, and any operation on the socket (a send included)
consumes that signal. pyzmq's asyncio sockets honour this by re-checking ``zmq.EVENTS`` after each of their own
operations (pyzmq PR 1208). But ``jupyter_client.session.Session.send`` sends on an asyncio socket through a
*blocking shadow* of it (``zmq.Socket.shadow(socket.underlying)``), which bypasses that re-check.

nbclient's Output-widget mimic (``nbclient/output_widget.py``) sends a ``comm_msg`` on the shell socket from
inside its IOPub handling, while the shell poll is pending. When the kernel's ``execute_reply`` has reached the
shell socket before that send (the client was a little slow on IOPub: a garbage collection in the large Sphinx
process is enough), the send eats the only wake-up: the reply sits in the socket, the event loop sleeps in epoll
with nothing to read, and the poll ends only at its timeout, when pyzmq polls once more, finds the reply and
returns it, so the notebook completes with every output and no warning. Upstream: jupyter/nbclient#312 (and
PR #311), jupyter/jupyter_client#1010 and #1059, voila-dashboards/voila#1428; no released version fixes it.

The fix (``install``)
---------------------
After ``Session.send`` on an asyncio socket, read ``zmq.EVENTS`` through the asyncio socket itself: pyzmq then
schedules its own handler if a message is already waiting, as it does after its own sends.

The detector (``Watch``)
------------------------
Every message the executor sends and reads is recorded; a watchdog thread flags a request whose kernel is idle
while the client still waits: the kernel said ``idle`` but its reply is unread, or replied but its ``idle`` is
unread, or an ``execute_request`` has not started although the kernel is idle. Normal message latency is
milliseconds, so ``IDLE_LIMIT`` seconds of that state is a lost wake-up, not a slow cell or a busy machine.
A flagged stall is reported (a Sphinx warning under ``make book``, so ``-W`` fails the build) and the client's
sockets are re-armed so that the build goes on instead of waiting out the cell timeout.

Used by ``_config.yml`` (a Sphinx extension, so ``make book`` has both), ``scripts/booktools.py execute-cache``
and ``tests/test_book_executor.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone

import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

#: Seconds a request may wait with the kernel idle and the client waiting before it counts as a stall.
IDLE_LIMIT = 3.0
#: Requests whose replies an executor waits for (nbclient: kernel_info at start, then one execute per cell).
WAITED_REQUESTS = ("execute_request", "kernel_info_request")
#: A JSON-lines file that gets one record per executed notebook (tests read it); unset: no file.
REPORT_ENV = "KERNEL_WAKEUPS_REPORT"

_ORIGINAL_SEND = Session.send
_ORIGINAL_CHANNEL_SEND = AsyncZMQSocketChannel.send
_ORIGINAL_RECV = AsyncZMQSocketChannel._recv


# ---------------------------------------------------------------------------------------------------- the fix
def rearm(socket: zmq.asyncio.Socket) -> None:
    """Let an asyncio socket see messages that arrived before a send made on its blocking shadow.

    ``socket.get(zmq.EVENTS)`` on a ``zmq.asyncio.Socket`` schedules pyzmq's event handler when a message is
    already readable and a receive or poll waits for one: the re-check pyzmq makes after its own sends.
    """
    if socket.closed:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # no event loop in this thread, so nothing here can be waiting on the socket
    if getattr(socket, "_current_loop", loop) is not loop:
        return  # the socket serves another thread's loop; zmq sockets must not be touched across threads
    socket.get(zmq.EVENTS)


def _send_and_rearm(self: Session, stream, *args, **kwargs):
    result = _ORIGINAL_SEND(self, stream, *args, **kwargs)
    if isinstance(stream, zmq.asyncio.Socket):
        rearm(stream)
    return result


def install() -> None:
    """Apply the fix and the detector in this process (idempotent; worker processes forked later inherit it)."""
    Session.send = _send_and_rearm
    AsyncZMQSocketChannel.send = _watched_send
    AsyncZMQSocketChannel._recv = _watched_recv


def uninstall_fix() -> None:
    """Restore jupyter_client's own ``Session.send`` (tests use it to show the stall without the fix)."""
    Session.send = _ORIGINAL_SEND


# ----------------------------------------------------------------------------------------------- the detector
@dataclass
class _Request:
    msg_type: str
    sent: float  # time.monotonic() of each event, as the client saw it
    busy: float | None = None
    idle: float | None = None
    reply: float | None = None
    flagged: bool = False


@dataclass
class Watch:
    """The requests of one kernel client, the longest idle wait seen, and the stalls found."""

    requests: dict[str, _Request] = field(default_factory=dict)
    messages: int = 0
    longest_wait: float = 0.0
    stalls: list[str] = field(default_factory=list)
    kernel_idle_since: float | None = None  # when the client read the kernel's last `idle` (None: busy/unknown)
    last_idle_date: datetime | None = None  # the kernel's own time stamp of that `idle`
    sockets: list = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self) -> dict:
        return {"messages": self.messages, "longest_wait": round(self.longest_wait, 3), "stalls": list(self.stalls)}

    # Called in the client's event loop -----------------------------------------------------------------------
    def on_send(self, channel: AsyncZMQSocketChannel, msg: dict) -> None:
        self._note_channel(channel)
        header = msg.get("header", {})
        if header.get("msg_type") in WAITED_REQUESTS:
            with self.lock:
                self.requests[header["msg_id"]] = _Request(header["msg_type"], time.monotonic())

    def on_receive(self, channel: AsyncZMQSocketChannel, msg: dict) -> None:
        self._note_channel(channel)
        now = time.monotonic()
        msg_type = msg["header"].get("msg_type", "")
        with self.lock:
            self.messages += 1
            request = self.requests.get(msg.get("parent_header", {}).get("msg_id"))
            if msg_type == "status":
                state = msg["content"].get("execution_state")
                if state == "busy":
                    self.kernel_idle_since = None
                    # Kernel side: how long the request waited in the kernel's socket after the kernel went idle.
                    if request is not None and self.last_idle_date is not None:
                        start = max(_date(msg.get("parent_header")), self.last_idle_date)
                        self._waited(
                            _seconds(_date(msg["header"]) - start), f"{request.msg_type} reached the idle kernel"
                        )
                elif state == "idle":
                    self.kernel_idle_since = now
                    self.last_idle_date = _date(msg["header"])
                if request is not None and state == "busy":
                    request.busy = now
                elif request is not None and state == "idle":
                    request.idle = now
            elif msg_type.endswith("_reply"):
                # Client side: how long the reply sat in the client's socket before it was read.
                late = _seconds(datetime.now(timezone.utc) - _date(msg["header"]))
                if request is not None and request.flagged:
                    self.longest_wait = max(self.longest_wait, late)  # already reported by the watchdog
                else:
                    self._waited(late, f"{msg_type} was read")
                if request is not None:
                    request.reply = now
            if request is not None and request.idle is not None and request.reply is not None:
                del self.requests[msg["parent_header"]["msg_id"]]

    def _note_channel(self, channel: AsyncZMQSocketChannel) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if channel.socket is not None and not any(s is channel.socket for s in self.sockets):
            self.sockets.append(channel.socket)

    def _waited(self, seconds: float, what: str) -> None:
        self.longest_wait = max(self.longest_wait, seconds)
        if seconds > IDLE_LIMIT:
            self.stalls.append(f"{what} {seconds:.1f} s late")

    # Called by the watchdog thread ---------------------------------------------------------------------------
    def check(self, now: float) -> None:
        """Flag requests stuck with the kernel idle and the client waiting; re-arm the client's sockets."""
        found = []
        with self.lock:
            for request in self.requests.values():
                if request.flagged:
                    continue
                if request.idle is not None and request.reply is None:
                    since, what = request.idle, "the kernel is idle but its reply is unread"
                elif request.msg_type == "execute_request" and request.reply is not None and request.idle is None:
                    since, what = request.reply, "the kernel replied but its idle status is unread"
                elif (
                    request.msg_type == "execute_request"
                    and request.busy is None
                    and request.reply is None
                    and self.kernel_idle_since is not None
                ):
                    since, what = max(request.sent, self.kernel_idle_since), "the kernel is idle and has not started it"
                else:
                    continue
                if now - since > IDLE_LIMIT:
                    request.flagged = True
                    self.longest_wait = max(self.longest_wait, now - since)
                    found.append(f"{request.msg_type}: {what} after {now - since:.1f} s")
            self.stalls.extend(found)
        for stall in found:
            print(f"kernel_wakeups: stall: {stall}; re-arming the client's sockets", file=sys.stderr, flush=True)
        if found and self.loop is not None and not self.loop.is_closed():
            sockets = list(self.sockets)
            self.loop.call_soon_threadsafe(lambda: [rearm(s) for s in sockets])


def _date(header: dict | None) -> datetime:
    date = (header or {}).get("date")
    if isinstance(date, str):
        date = datetime.fromisoformat(date)
    if not isinstance(date, datetime):
        return datetime.now(timezone.utc)
    return date if date.tzinfo else date.replace(tzinfo=timezone.utc)


def _seconds(delta) -> float:
    return max(0.0, delta.total_seconds())


_watches: weakref.WeakKeyDictionary[Session, Watch] = weakref.WeakKeyDictionary()
_unreported: list[Watch] = []
_registry_lock = threading.Lock()
_watchdog: threading.Thread | None = None


def _watch_for(channel: AsyncZMQSocketChannel) -> Watch:
    global _watchdog
    with _registry_lock:
        watch = _watches.get(channel.session)
        if watch is None:
            watch = _watches[channel.session] = Watch()
            _unreported.append(watch)
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(target=_watchdog_loop, name="kernel_wakeups watchdog", daemon=True)
            _watchdog.start()
    return watch


def _watchdog_loop() -> None:
    while True:
        time.sleep(0.25)
        with _registry_lock:
            watches = list(_watches.values())
        for watch in watches:
            watch.check(time.monotonic())


def take_watches() -> list[Watch]:
    """The watches of the kernel clients started since the last call (one per executed notebook)."""
    with _registry_lock:
        taken = list(_unreported)
        _unreported.clear()
    return taken


def _watched_send(self: AsyncZMQSocketChannel, msg: dict) -> None:
    _watch_for(self).on_send(self, msg)
    return _ORIGINAL_CHANNEL_SEND(self, msg)


async def _watched_recv(self: AsyncZMQSocketChannel, **kwargs) -> dict:
    msg = await _ORIGINAL_RECV(self, **kwargs)
    _watch_for(self).on_receive(self, msg)
    return msg


def write_report(notebook: str, watches: list[Watch]) -> dict:
    """One record for one executed notebook, appended to ``$KERNEL_WAKEUPS_REPORT`` when that is set."""
    record = {"notebook": notebook, "messages": 0, "longest_wait": 0.0, "stalls": []}
    for watch in watches:
        part = watch.record()
        record["messages"] += part["messages"]
        record["longest_wait"] = max(record["longest_wait"], part["longest_wait"])
        record["stalls"] += part["stalls"]
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
    return record


# ------------------------------------------------------------------------------------------- Sphinx extension
def _report_document(app, doctree) -> None:
    watches = take_watches()
    if not watches:
        return  # nothing executed for this page (a markdown page, or outputs from the cache)
    from sphinx.util import logging

    record = write_report(app.env.docname, watches)
    for stall in record["stalls"]:
        logging.getLogger(__name__).warning(
            f"lost wake-up while executing the notebook: {stall} (see book/_ext/kernel_wakeups.py)",
            location=app.env.docname,
        )


def setup(app):
    install()
    app.connect("doctree-read", _report_document)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
