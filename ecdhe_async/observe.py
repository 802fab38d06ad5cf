"""What a server wires to its event bus: the refusal log always, the access log and metrics when on.

:class:`~ecdhe_async.server.TLSServer` holds one :class:`Observers`; the server only emits events
(after ``bus.wants(kind)``, so that an event nobody listens for costs nothing) and calls
:meth:`Observers.starting` / :meth:`Observers.started` / :meth:`Observers.stopped` around its
lifecycle. Subscribed here:

- :class:`~ecdhe_async._refusals.RefusalLog` (``HandshakeFailed``): the one rate-limited line per
  refused handshake, with what the client offered; always;
- :class:`~ecdhe_async.logs.AccessLog` (``ConnectionClosed``): only when ``access_log`` is on;
- :mod:`ecdhe_async.metrics` (every event): only when ``metrics_port`` is set.

Certificate reloads (:class:`~ecdhe_async.certstore.CertStore`, possibly run in a thread) become
:class:`~ecdhe_async.events.CertificateReloaded` events delivered on the server's loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ._refusals import RefusalLog
from .events import (
    CertificateFacts,
    CertificateReloaded,
    ConnectionClosed,
    ConnectionRefused,
    EventBus,
    HandshakeFailed,
    Phase,
    RefusalLimit,
    classify_failure,
)
from .logs import AccessLog

if TYPE_CHECKING:
    from ._pump import TLSPump
    from .server import TLSServer

__all__ = ["Observers"]

log = logging.getLogger("ecdhe_async.server")


class Observers:
    """The event bus of one server and its standard subscribers."""

    def __init__(self, server: TLSServer) -> None:
        self.server = server
        self.bus = EventBus()
        tls = server.settings.tls
        floor = "TLSv1.3" if tls.profile == "modern" else "TLSv1.2+"
        self.refusals = RefusalLog(log, f"{floor}, groups {','.join(tls.groups)}, ECDHE suites")
        self.bus.subscribe(self.refusals, (HandshakeFailed,))  # type: ignore[arg-type]
        if server.settings.access_log:
            self.bus.subscribe(AccessLog(), (ConnectionClosed,))  # type: ignore[arg-type]
        self.metrics: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if server.certs is not None:
            server.certs.on_reload = self._reloaded
        server.budget.on_exceeded = self._budget_refused
        if server._proxy is not None:
            server._proxy.on_refused = lambda pump: self.refused(pump.transport, "proxy_header")

    # -- events the server's own paths emit (each skipped when nobody listens) ----------------
    def refused(self, transport: asyncio.BaseTransport | None, limit: RefusalLimit) -> None:
        """A limit turned the connection on *transport* away."""
        if self.bus.wants(ConnectionRefused):
            self.bus.emit(ConnectionRefused(_peername(transport), limit))

    def _budget_refused(self, peer: tuple[Any, ...] | None) -> None:
        if self.bus.wants(ConnectionRefused):
            self.bus.emit(ConnectionRefused(peer, "buffer_budget"))

    def failed(self, pump: TLSPump, exc: BaseException) -> None:
        """The handshake on *pump* failed (or timed out) with *exc*."""
        if self.bus.wants(HandshakeFailed):
            reason, alert_sent, detail = classify_failure(exc)
            started = pump.started > 0.0  # set by the first TLS byte
            duration = time.perf_counter() - pump.started if started else 0.0
            phase: Phase = "handshake" if started else "waiting"
            event = HandshakeFailed(
                _peername(pump.transport),
                phase,
                reason,
                alert_sent,
                detail,
                duration,
                pump.client_hello,
            )
            self.bus.emit(event)

    def certificates(self) -> tuple[CertificateFacts, ...]:
        """What the server's certificate store serves now (empty with a caller's context)."""
        certs = self.server.certs
        if certs is None:
            return ()
        return tuple(CertificateFacts.from_info(names, info) for names, info in certs.served())

    def _reloaded(self, error: str | None) -> None:
        # Called by CertStore, maybe from a worker thread (to_thread): deliver on the loop.
        if error is None:
            event = CertificateReloaded("ok", self.certificates())
        else:
            event = CertificateReloaded("error", error=error)
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self.bus.emit(event)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self.bus.emit, event)

    def starting(self) -> None:
        """Before binding: fail early (one clear line) if metrics lack their extra."""
        self._loop = asyncio.get_running_loop()
        if self.server.settings.metrics_port:
            from . import metrics  # noqa: F401 - raises ConfigError naming the extra

    def started(self) -> None:
        """After binding: start the metrics endpoint (``metrics_port``), if any."""
        s = self.server.settings
        if (s.metrics_port) and self.metrics is None:
            from .metrics import serve_metrics

            self.metrics = serve_metrics(self.server, s.metrics_host, s.metrics_port)
            if self.metrics.endpoint is not None:
                log.info("metrics on %s/metrics (and /healthz, /readyz)", self.metrics.endpoint.url)

    def stopping(self) -> None:
        """The server stopped: write the refusal log's pending summary."""
        self.refusals.close()

    def stopped(self) -> None:
        """After the server stopped: close the metrics endpoint."""
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None


def _peername(transport: asyncio.BaseTransport | None) -> tuple[Any, ...] | None:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return tuple(peer) if peer else None
