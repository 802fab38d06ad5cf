"""Prometheus metrics and health endpoints from a server's events (extra ``ecdhe-async[metrics]``).

:func:`serve_metrics` subscribes a :class:`ServerMetrics` to a
:class:`~ecdhe_async.server.TLSServer` and serves, on a small HTTP server of its own
(``prometheus_client``'s threaded WSGI server: a thread, never the event loop):

- ``GET /metrics``: the exposition format, written by ``prometheus_client`` (never by hand);
- ``GET /healthz``: 200 while the process runs;
- ``GET /readyz``: 200 while the server is listening, 503 once it stops accepting (graceful stop).

Label values are bounded: reasons, limits and results are closed sets (:mod:`ecdhe_async.events`);
versions, ciphers and groups are what our own context can negotiate, and more than
:data:`MAX_SERIES` combinations fold into ``other``. Nothing a peer sends becomes a label.

Several worker processes: one port serves the **sum** over workers through
``prometheus_client``'s multiprocess mode. The supervisor (``ecdhe_async.workers``) does, in order:

1. ``metrics.prepare_multiprocess(directory)`` *before* starting any worker: it empties
   *directory* and sets ``PROMETHEUS_MULTIPROC_DIR``, which the workers inherit. In that mode a
   worker's :class:`~ecdhe_async.server.TLSServer` records into the directory (one mmap file per
   process and metric) and does not bind ``metrics_port`` itself;
2. ``endpoint = metrics.serve_multiprocess(directory, host, port, ready=...)`` in the supervisor:
   every scrape merges all workers' files (counters and histograms summed, the live gauges summed
   over live workers, the certificate expiry the minimum);
3. ``metrics.worker_exited(pid, directory)`` when a worker dies, so its live gauges drop out;
4. ``endpoint.close()`` at the end.

In multiprocess mode ``process_*`` metrics are the supervisor's own (prometheus-client's
multiprocess collector does not merge them); counters survive worker restarts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .errors import ConfigError
from .events import (
    FAILURE_REASONS,
    REFUSAL_LIMITS,
    CertificateFacts,
    CertificateReloaded,
    ConnectionClosed,
    ConnectionRefused,
    Event,
    HandshakeCompleted,
    HandshakeFailed,
)

try:
    import prometheus_client
    from prometheus_client import (
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        multiprocess,
        values,
    )
    from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
except ImportError:  # pragma: no cover - exercised in a subprocess by tests/test_metrics.py
    raise ConfigError(
        "metrics need the optional extra: pip install 'ecdhe-async[metrics]' (prometheus-client)"
    ) from None

if TYPE_CHECKING:
    from .server import ServerStats, TLSServer

__all__ = [
    "MAX_SERIES",
    "MetricsEndpoint",
    "ServerMetrics",
    "SupervisorMetrics",
    "multiprocess_dir",
    "prepare_multiprocess",
    "serve_metrics",
    "serve_multiprocess",
    "worker_exited",
]

log = logging.getLogger("ecdhe_async.metrics")

#: Distinct (version, cipher, group) label sets before new ones are counted as ``other``.
MAX_SERIES: Final = 64
#: Handshake duration buckets (s): loopback ~1 ms, same region ~10 ms, across the world ~300 ms.
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_OTHER: Final = ("other", "other", "other")


def multiprocess_dir() -> str | None:
    """The multiprocess directory in force (``PROMETHEUS_MULTIPROC_DIR``), else ``None``."""
    return os.environ.get(_ENV) or None


class ServerMetrics:
    """The metrics of one server (or one worker), fed by its events: a subscriber.

    *registry* is where the metrics are registered (each instance its own by default, so that
    several servers in one process, e.g. in tests, do not collide).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        p = "ecdhe_async_"
        self.handshakes = Counter(
            p + "handshakes",
            "Completed TLS handshakes by protocol version, cipher suite and key-exchange group.",
            ["version", "cipher", "group"],
            registry=reg,
        )
        self.failures = Counter(
            p + "handshake_failures",
            "Failed TLS handshakes by normalised reason.",
            ["reason"],
            registry=reg,
        )
        self.duration = Histogram(
            p + "handshake_duration_seconds",
            "TLS handshake duration, first ClientHello byte to the end of the handshake.",
            buckets=BUCKETS,
            registry=reg,
        )
        self.active = Gauge(
            p + "connections_active",
            "Established connections.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.pending = Gauge(
            p + "handshakes_pending",
            "Accepted connections whose handshake has not finished.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter(
            p + "connections_rejected",
            "Connections turned away (or dropped before their handshake) by a limit.",
            ["limit"],
            registry=reg,
        )
        self.received = Counter(
            p + "received_bytes", "Application bytes received (at close).", registry=reg
        )
        self.sent = Counter(p + "sent_bytes", "Application bytes sent (at close).", registry=reg)
        self.expiry = Gauge(
            p + "certificate_expiry_timestamp_seconds",
            "Expiry (Unix time) of the certificate served for server_name.",
            ["server_name"],
            registry=reg,
            multiprocess_mode="livemin",
        )
        self.reloads = Counter(
            p + "certificate_reloads",
            "Certificate reloads by result (error: the last good certificates stay).",
            ["result"],
            registry=reg,
        )
        # Every label value exists from the start (a scrape shows 0, not a missing series).
        self._failures = {r: self.failures.labels(r) for r in FAILURE_REASONS}
        self._rejected = {r: self.rejected.labels(r) for r in REFUSAL_LIMITS}
        for result in ("ok", "error"):
            self.reloads.labels(result)
        self._handshakes: dict[tuple[str, str, str], Any] = {}

    def __call__(self, event: Event) -> None:
        """Count *event* (the subscriber interface)."""
        if isinstance(event, HandshakeCompleted):
            key = (event.version or "?", event.cipher or "?", event.group or "?")
            child = self._handshakes.get(key)
            if child is None:
                if len(self._handshakes) >= MAX_SERIES:
                    key = _OTHER
                child = self._handshakes.get(key) or self.handshakes.labels(*key)
                self._handshakes[key] = child
            child.inc()
            self.duration.observe(event.duration)
        elif isinstance(event, ConnectionClosed):
            self.received.inc(event.bytes_in)
            self.sent.inc(event.bytes_out)
        elif isinstance(event, HandshakeFailed):
            self._failures[event.reason].inc()
        elif isinstance(event, ConnectionRefused):
            self._rejected[event.limit].inc()
        elif isinstance(event, CertificateReloaded):
            self.reloads.labels(event.result).inc()
            self.certificates(event.certificates)

    def certificates(self, facts: Iterable[CertificateFacts]) -> None:
        """Record the expiry of the certificates now served."""
        for cert in facts:
            self.expiry.labels(cert.server_name).set(cert.not_after.timestamp())

    def sample(self, stats: ServerStats) -> None:
        """Copy the gauges (active connections, pending handshakes) from a server's stats."""
        self.active.set(stats.active)
        self.pending.set(stats.pending)


class _QuietHandler(WSGIRequestHandler):
    """No access line on stderr for every scrape; a silent client is dropped after 5 s."""

    timeout = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsEndpoint:
    """``/metrics``, ``/healthz`` and ``/readyz`` on a threaded HTTP server (not the event loop).

    *ready* answers ``/readyz``; *before_scrape* runs (in the HTTP thread) before each
    ``/metrics`` answer, e.g. to copy gauges from live counters. With *thread* false no thread
    is started: the owner waits for :meth:`fileno` to be readable and calls
    :meth:`handle_request` (the worker supervisor, which must not have threads when it forks).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ready: Callable[[], bool] = lambda: True,
        before_scrape: Callable[[], None] | None = None,
        thread: bool = True,
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._ready = ready
        self._before_scrape = before_scrape
        server_class: Any = ThreadingWSGIServer if thread else WSGIServer
        if ":" in host:
            server_class = type("V6Server", (server_class,), {"address_family": socket.AF_INET6})
        self._httpd = make_server(host, port, self._app, server_class, handler_class=_QuietHandler)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        if thread:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                # close() runs on the event loop and shutdown() waits for the next poll: 50 ms
                # keeps a server's stop from blocking the loop for half a second (a select every
                # 50 ms in an otherwise idle thread costs nothing measurable).
                kwargs={"poll_interval": 0.05},
                name=f"ecdhe_async-metrics-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def fileno(self) -> int:
        """The listening socket (readable: a request waits for :meth:`handle_request`)."""
        fd: int = self._httpd.fileno()
        return fd

    def handle_request(self) -> None:
        """Answer one waiting request inline (*thread* false)."""
        self._httpd.handle_request()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            if self._ready():
                return _plain(start_response, "200 OK", b"ready\n")
            return _plain(start_response, "503 Service Unavailable", b"draining\n")
        if path == "/metrics":
            if self._before_scrape is not None:
                self._before_scrape()
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        return _plain(start_response, "404 Not Found", b"try /metrics, /healthz or /readyz\n")

    def close(self) -> None:
        """Stop serving and close the socket (waits at most ~1 s for the thread)."""
        if self._thread is not None:
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9464``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body]


def _standard_collectors(registry: CollectorRegistry) -> None:
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)


class _Attached:
    """What :func:`serve_metrics` set up for one server; :meth:`close` undoes it."""

    def __init__(self, metrics: ServerMetrics, endpoint: MetricsEndpoint | None) -> None:
        self.metrics = metrics
        self.endpoint = endpoint
        self.closers: list[Callable[[], None]] = []

    def close(self) -> None:
        """Unsubscribe, stop sampling, close the endpoint."""
        for closer in self.closers:
            closer()
        self.closers.clear()
        if self.endpoint is not None:
            self.endpoint.close()


def serve_metrics(
    server: TLSServer, host: str = "127.0.0.1", port: int = 0, *, sample_every: float = 1.0
) -> _Attached:
    """Count *server*'s events and serve them on *host*:*port* (0 = an OS-chosen port).

    In multiprocess mode (:func:`prepare_multiprocess` ran in the supervisor) the metrics go to
    the shared directory instead and no port is bound here; the gauges are then copied from the
    server's stats every *sample_every* seconds (on the event loop, a few microseconds).
    """
    metrics = ServerMetrics()
    _record_certificate(metrics, server)
    if multiprocess_dir() is not None:
        attached = _Attached(metrics, None)
        loop = asyncio.get_running_loop()
        timer: list[asyncio.TimerHandle] = []

        def tick() -> None:
            metrics.sample(server.stats)
            timer[:] = [loop.call_later(sample_every, tick)]

        tick()
        attached.closers.append(lambda: timer[0].cancel())
    else:
        _standard_collectors(metrics.registry)
        endpoint = MetricsEndpoint(
            metrics.registry,
            host,
            port,
            ready=lambda: server.accepting,
            before_scrape=lambda: metrics.sample(server.stats),
        )
        attached = _Attached(metrics, endpoint)
    attached.closers.append(server.subscribe(metrics))
    return attached


def _record_certificate(metrics: ServerMetrics, server: TLSServer) -> None:
    if server.certs is not None:  # every certificate in the store (none with a caller's context)
        served = server.certs.served()
        metrics.certificates(CertificateFacts.from_info(names, info) for names, info in served)


def prepare_multiprocess(directory: str | os.PathLike[str]) -> Path:
    """Make *directory* the (empty) multiprocess directory; call it before starting workers."""
    path = Path(directory)
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    for stale in path.glob("*.db"):  # a previous run's files (only prometheus_client's own)
        stale.unlink()
    os.environ[_ENV] = str(path)
    # prometheus_client picks its value class when imported; re-pick it for metrics made from
    # now on in this process (workers started later import it with the variable already set).
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def serve_multiprocess(
    directory: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready: Callable[[], bool] = lambda: True,
    thread: bool = True,
) -> MetricsEndpoint:
    """The supervisor's endpoint: every scrape sums the workers' files in *directory*."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    _standard_collectors(registry)
    return MetricsEndpoint(registry, host, port, ready=ready, thread=thread)


def worker_exited(pid: int, directory: str | os.PathLike[str] | None = None) -> None:
    """Forget a dead worker's live gauges (its counters stay in the sums)."""
    multiprocess.mark_process_dead(pid, str(directory) if directory else None)  # type: ignore[no-untyped-call]


class SupervisorMetrics:
    """All of the above for :class:`~ecdhe_async.workers.Supervisor`, in one object.

    Makes a private multiprocess directory and serves it on *host*:*port* without a thread (the
    supervisor forks): it waits on :meth:`fileno` with its other file descriptors and calls
    :meth:`handle_request`. *ready* answers ``/readyz`` (false while draining).
    """

    def __init__(self, host: str, port: int, *, ready: Callable[[], bool]) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="ecdhe_async-metrics-"))
        try:
            prepare_multiprocess(self.directory)
            self.endpoint = serve_multiprocess(
                self.directory, host, port, ready=ready, thread=False
            )
        except BaseException:
            self._forget()
            raise
        log.info(
            "metrics on %s/metrics (the sum over workers; /healthz, /readyz)", self.endpoint.url
        )

    def fileno(self) -> int:
        """The endpoint's listening socket (for the supervisor's wait; closed in workers)."""
        return self.endpoint.fileno()

    def handle_request(self) -> None:
        """Answer the request waiting on :meth:`fileno`."""
        self.endpoint.handle_request()

    def worker_exited(self, pid: int) -> None:
        """A worker died: its live gauges drop out of the sums."""
        worker_exited(pid, self.directory)

    def close(self) -> None:
        """Close the endpoint and remove the directory."""
        self.endpoint.close()
        self._forget()

    def _forget(self) -> None:
        if os.environ.get(_ENV) == str(self.directory):
            del os.environ[_ENV]
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        shutil.rmtree(self.directory, ignore_errors=True)
