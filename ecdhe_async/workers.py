"""Worker processes: one supervisor, N workers that each run their own loop and ``TLSServer``.

``ecdhe-async serve --workers N`` (or ``workers = N``) runs :func:`run_workers`. The supervisor
never serves TLS: it checks the certificates once (a bad one fails here, in one line, before any
worker starts), shares the listening address, forks the workers, restarts those that die, and
relays signals:

- SIGTERM / SIGINT: graceful stop of every worker (each stops accepting, lets handlers finish
  within ``grace``, closes with close_notify within ``shutdown_timeout``); exit status 0. Workers
  still alive after ``grace + shutdown_timeout`` (plus a margin) are killed, and a second signal
  kills them at once; either way the exit status is 1 (connections may have been cut).
- SIGHUP: every worker reloads its certificates (keep-last-good, :mod:`ecdhe_async.certstore`).
- A worker that exits is logged with its exit status and restarted after a back-off (0.1 s,
  doubling up to 10 s, reset once a worker has served for 10 s). A worker that reports a
  configuration error stops everything at once (exit 2); workers that die before they are ready
  three times in a row stop everything too (exit 1), with one line naming the last reason.
- Each worker watches a pipe from the supervisor and stops gracefully if the supervisor dies.
- ``metrics_port`` (issue 13): the supervisor serves ``/metrics``, ``/healthz`` and ``/readyz``
  itself, answered inline in its wait loop (no thread); a scrape is the sum over the workers
  (:class:`~ecdhe_async.metrics.SupervisorMetrics`, prometheus-client's multiprocess mode), and
  ``/readyz`` is 503 from the first SIGTERM while the workers drain.

How the workers share the address (``share``):

``"reuseport"`` (default on Linux)
    Every worker binds its own socket with ``SO_REUSEPORT``; the kernel spreads new connections
    over the workers' accept queues by a hash of the 4-tuple. No thundering herd and an even
    spread; but connections already queued on a worker that dies are reset, and a worker busy
    with slow handshakes still gets its share. The supervisor holds one bound, non-listening
    socket on the port so that ``port = 0`` resolves once and the port stays ours across restarts.
``"inherit"`` (elsewhere, e.g. macOS, whose ``SO_REUSEPORT`` does not balance)
    The supervisor binds and listens once; the workers inherit that socket and all accept from
    one queue. Works everywhere and loses nothing when a worker dies; every worker is woken for
    each connection (only one wins) and a busy worker simply accepts less, so the spread follows
    the load rather than the hash.

``workers = 1`` never comes here: one process serves, as before; the ``TLSServer`` API is
unchanged (workers are a runner/CLI feature). Workers are created with ``fork`` (POSIX only),
so the handler object and settings need no pickling; the supervisor runs no event loop and no
threads, which is what makes forking it safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

from .certstore import CertStore
from .errors import ConfigError
from .loops import run as run_loop
from .runner import serve, with_dev_certificate
from .settings import ServerSettings

__all__ = ["Share", "Supervisor", "run_workers"]

log = logging.getLogger("ecdhe_async.workers")

Share = Literal["auto", "reuseport", "inherit"]

MAX_START_FAILURES: Final = 3
"""Workers dying before they are ready this many times in a row stop the supervisor."""
BACKOFF_MIN: Final = 0.1
BACKOFF_MAX: Final = 10.0
STABLE_AFTER: Final = 10.0
"""A worker up this long resets the back-off."""
KILL_MARGIN: Final = 2.0
"""Seconds beyond ``grace + shutdown_timeout`` before stragglers are killed."""

EXIT_CONFIG: Final = 2
EXIT_CRASH: Final = 1


@dataclass(slots=True)
class _Worker:
    slot: int
    process: Any  # multiprocessing.Process (fork context)
    status: multiprocessing.connection.Connection  # worker -> supervisor: ready / error
    lifeline: multiprocessing.connection.Connection  # supervisor end; EOF tells the worker
    started: float
    ready: bool = False
    error: str | None = None


class Supervisor:
    """Run *settings.workers* worker processes serving *handler* on one address.

    :meth:`run` blocks until the workers are stopped and returns the exit code.
    """

    def __init__(self, settings: ServerSettings, handler: Any = None, *, share: Share = "auto"):
        if share == "auto":
            share = "reuseport" if sys.platform.startswith("linux") else "inherit"
        self.settings = with_dev_certificate(settings)
        self.handler = handler
        self.share = share
        self._ctx = multiprocessing.get_context("fork")
        self._workers: dict[int, _Worker] = {}  # slot -> worker
        self._restart_at: dict[int, float] = {}  # slot -> when
        self._failures = 0  # consecutive deaths before ready
        self._backoff: dict[int, float] = {}
        self._signals: list[int] = []
        self._sock: socket.socket | None = None
        self._metrics: Any = None  # metrics.SupervisorMetrics when metrics_port is set
        self._draining = False

    # -- public --------------------------------------------------------------------------------
    def run(self) -> int:
        """Start the workers, supervise them until stopped; return the process exit code."""
        CertStore(self.settings.tls)  # every certificate checked once, here: one clear error
        self._sock = self._bind()
        host, port = self._sock.getsockname()[:2]
        self.settings = self.settings.model_copy(
            update={"port": port, "reuse_port": self.share == "reuseport"}
        )
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        old = {s: signal.signal(s, self._on_signal) for s in handled}
        try:
            if self.settings.metrics_port:  # one endpoint, the sum over workers (issue 13)
                from .metrics import SupervisorMetrics

                s = self.settings
                self._metrics = SupervisorMetrics(s.metrics_host, s.metrics_port, ready=self._ready)
            log.info(
                "supervisor %d: %d workers on %s:%d (%s)",
                os.getpid(),
                self.settings.workers,
                host,
                port,
                "SO_REUSEPORT" if self.share == "reuseport" else "one inherited socket",
            )
            for slot in range(self.settings.workers):
                self._start(slot)
            return self._supervise(wake_r)
        finally:
            for signum, handler in old.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            self._kill_all()
            self._sock.close()
            if self._metrics is not None:
                self._metrics.close()

    # -- supervision ---------------------------------------------------------------------------
    def _supervise(self, wake_r: int) -> int:
        stopping_since: float | None = None
        forced = False  # workers were killed: connections may have been cut
        while self._workers or (stopping_since is None and self._restart_at):
            now = time.monotonic()
            timeout = None
            if self._restart_at:
                timeout = max(0.0, min(self._restart_at.values()) - now)
            if stopping_since is not None:
                limit = self.settings.grace + self.settings.shutdown_timeout + KILL_MARGIN
                left = stopping_since + limit - now
                if left <= 0:
                    log.warning("workers still running %.1fs after SIGTERM: killing them", limit)
                    self._kill_all()
                    forced = True
                    continue
                timeout = left if timeout is None else min(timeout, left)
            waitables: list[Any] = [wake_r]
            for w in self._workers.values():
                waitables += [w.process.sentinel, w.status]
            if self._metrics is not None:
                waitables.append(self._metrics.fileno())
            ready = multiprocessing.connection.wait(waitables, timeout)
            if wake_r in ready:
                os.read(wake_r, 512)
            if self._metrics is not None and self._metrics.fileno() in ready:
                self._metrics.handle_request()  # a scrape or a probe, answered inline
            for signum in self._take_signals():
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading certificates in %d workers", len(self._workers))
                    self._signal_all(signal.SIGHUP)
                elif stopping_since is None:
                    log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self))
                    stopping_since = time.monotonic()
                    self._draining = True  # /readyz: 503
                    self._restart_at.clear()
                    self._signal_all(signal.SIGTERM)
                else:
                    log.warning("second %s: killing the workers", signal.Signals(signum).name)
                    self._kill_all()
                    forced = True
            for worker in list(self._workers.values()):
                self._poll_status(worker)
                if worker.error is not None and worker.error.startswith("config:"):
                    log.error("worker failed: %s", worker.error.removeprefix("config: "))
                    self._stop_now()
                    return EXIT_CONFIG
                if not worker.process.is_alive():
                    fatal = self._reap(worker, restart=stopping_since is None)
                    if fatal is not None:
                        log.error("%s", fatal)
                        self._stop_now()
                        return EXIT_CRASH
            now = time.monotonic()
            for slot, when in list(self._restart_at.items()):
                if when <= now and stopping_since is None:
                    del self._restart_at[slot]
                    self._start(slot)
        log.info("supervisor %d: all workers stopped%s", os.getpid(), " (forced)" if forced else "")
        return EXIT_CRASH if forced else 0

    def __len__(self) -> int:
        return len(self._workers)

    def _ready(self) -> bool:
        """``/readyz``: a worker is ready and the supervisor is not draining."""
        return not self._draining and any(w.ready for w in self._workers.values())

    def _poll_status(self, worker: _Worker) -> None:
        with contextlib.suppress(EOFError, OSError):
            while worker.status.poll():
                kind, text = worker.status.recv()
                if kind == "ready":
                    worker.ready = True
                    self._failures = 0
                    log.info("worker %d ready (slot %d)", worker.process.pid, worker.slot)
                else:
                    worker.error = text

    def _reap(self, worker: _Worker, *, restart: bool) -> str | None:
        """Forget a dead worker; schedule its restart. Returns a fatal message, if any."""
        worker.process.join(0)
        del self._workers[worker.slot]
        worker.status.close()
        worker.lifeline.close()
        if self._metrics is not None:
            self._metrics.worker_exited(worker.process.pid)
        status = _describe_exit(worker.process.exitcode)
        if not restart:
            log.info("worker %d stopped (%s)", worker.process.pid, status)
            return None
        reason = f"{status}: {worker.error}" if worker.error else status
        log.warning("worker %d died (%s)", worker.process.pid, reason)
        uptime = time.monotonic() - worker.started
        if not worker.ready:
            self._failures += 1
            if self._failures >= MAX_START_FAILURES:
                return (
                    f"workers keep dying at start ({self._failures} in a row; last: {reason}): "
                    "stopping"
                )
        backoff = BACKOFF_MIN if uptime >= STABLE_AFTER else self._backoff.get(worker.slot, 0)
        backoff = min(BACKOFF_MAX, max(BACKOFF_MIN, backoff * 2))
        self._backoff[worker.slot] = backoff
        self._restart_at[worker.slot] = time.monotonic() + backoff
        log.info("restarting worker slot %d in %.1fs", worker.slot, backoff)
        return None

    # -- processes -----------------------------------------------------------------------------
    def _bind(self) -> socket.socket:
        s = self.settings
        infos = socket.getaddrinfo(s.host, s.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.share == "reuseport":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(addr)
            if self.share == "inherit":
                sock.listen(s.backlog)
                sock.set_inheritable(True)
        except BaseException:
            sock.close()
            raise
        return sock

    def _start(self, slot: int) -> None:
        status_r, status_w = self._ctx.Pipe(duplex=False)
        life_r, life_w = self._ctx.Pipe(duplex=False)
        sock = self._sock if self.share == "inherit" else None
        # fork copies every descriptor: the child must drop the ends that are not its own, or a
        # sibling's lifeline would never see EOF when the supervisor dies.
        foreign: list[Any] = [c for w in self._workers.values() for c in (w.status, w.lifeline)]
        foreign += [status_r, life_w]
        if sock is None and self._sock is not None:
            foreign.append(self._sock)  # the placeholder; this worker binds its own socket
        if self._metrics is not None:
            foreign.append(self._metrics.endpoint)  # the supervisor's metrics socket
        process = self._ctx.Process(
            target=_worker_main,
            args=(self.settings, self.handler, sock, status_w, life_r, foreign),
            name=f"ecdhe-async worker {slot}",
            daemon=False,
        )
        process.start()
        status_w.close()
        life_r.close()
        self._workers[slot] = _Worker(slot, process, status_r, life_w, time.monotonic())

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _take_signals(self) -> list[int]:
        taken, self._signals = self._signals, []
        return taken

    def _signal_all(self, signum: int) -> None:
        for worker in self._workers.values():
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(worker.process.pid, signum)

    def _kill_all(self) -> None:
        for worker in list(self._workers.values()):
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(5)
            log.info("worker %d killed", worker.process.pid)
            worker.status.close()
            worker.lifeline.close()
        self._workers.clear()

    def _stop_now(self) -> None:
        self._restart_at.clear()
        self._kill_all()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _worker_main(
    settings: ServerSettings,
    handler: Any,
    sock: socket.socket | None,
    status: multiprocessing.connection.Connection,
    lifeline: multiprocessing.connection.Connection,
    foreign: list[Any],
) -> None:
    """A worker: its own loop and TLSServer; reports ready or its error to the supervisor."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    for obj in foreign:
        obj.close()

    ready = False

    def started(server: Any) -> None:
        nonlocal ready
        ready = True
        loop = asyncio.get_running_loop()

        def orphaned() -> None:  # the supervisor is gone: stop like on SIGTERM
            loop.remove_reader(lifeline.fileno())
            os.kill(os.getpid(), signal.SIGTERM)

        loop.add_reader(lifeline.fileno(), orphaned)
        status.send(("ready", os.getpid()))

    try:
        run_loop(serve(settings, handler, sock=sock, on_started=started), loop=settings.loop)
    except (ConfigError, ValueError) as exc:
        if ready:  # not a setting: something broke while serving; restart like any crash
            _report(status, f"{exc.__class__.__name__}: {exc}")
            os._exit(EXIT_CRASH)
        _report(status, f"config: {exc}")
        os._exit(EXIT_CONFIG)
    except OSError as exc:
        _report(status, f"{exc.__class__.__name__}: {exc}")
        os._exit(EXIT_CRASH)
    except KeyboardInterrupt:
        os._exit(130)
    status.close()


def _report(status: multiprocessing.connection.Connection, text: str) -> None:
    with contextlib.suppress(OSError):
        status.send(("error", text))


def run_workers(settings: ServerSettings, handler: Any = None, *, share: Share = "auto") -> int:
    """Blocking: supervise ``settings.workers`` workers until SIGTERM/SIGINT; the exit code."""
    return Supervisor(settings, handler, share=share).run()
