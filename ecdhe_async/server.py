"""``TLSServer``: accept TCP, own every TLS handshake, run a handler per connection, stop cleanly.

Data flow for one connection: accept (plain TCP, :meth:`asyncio.loop.create_server`, the call
under :func:`asyncio.start_server`; its protocol is our TLS pump, :mod:`ecdhe_async._pump`) →
counted as a *pending handshake*, timer started → the first bytes arrive → handshake (bounded by
``handshake_timeout``, failure reason known, alert sent) → :class:`Connection` with its TLS facts →
handler task → close (close_notify bounded by ``shutdown_timeout``, then abort) → one event
(:mod:`ecdhe_async.events`; the access log, the refusal log and the metrics subscribe to them,
:mod:`ecdhe_async.observe`; an event nobody subscribed to is never built).
The server is the pump's :class:`~ecdhe_async._pump.PumpOwner`: no Task per connection but the
handler's. Deployment hooks, each absent when off: a PROXY protocol header read before the first
TLS byte, inside ``handshake_timeout`` (:mod:`ecdhe_async._proxy_stage`), and the certificates of
a :class:`~ecdhe_async.certstore.CertStore` (SNI, :meth:`TLSServer.reload`, file watch).

Why accept plain TCP and upgrade ourselves: with ``ssl=`` given to ``start_server`` the handler
only runs after a successful handshake, so pending handshakes cannot be counted or capped, their
failures never reach the application, and a silent socket holds a 256 KiB buffer for the whole
``ssl_handshake_timeout``. Here a silent socket costs a transport and a small protocol object
until its first byte: no ``SSL`` object, no buffer.

Limits: ``max_connections`` counts pending and established connections; beyond it new ones are
closed at once (``stats.refused``). ``max_pending_handshakes`` caps handshakes in flight; beyond it
the oldest one that has not sent a byte (else the oldest) is dropped (``stats.evicted``), so a
flood of silent sockets cannot starve real clients. Failures of one connection never reach
another: they are counted, logged once (refused handshakes at INFO with what the client offered,
rate-limited by :class:`~ecdhe_async._refusals.RefusalLog`, an event subscriber; resets and
timeouts at DEBUG; protocol errors at INFO; handler crashes and errors in our own layer at ERROR
with a traceback) and the server keeps serving.

Guarantees (issue 10): a given ``ssl_context`` is restricted to the settings' policy
(:func:`~ecdhe_async.tls.apply_policy`); every finished handshake is checked by the pump
(:func:`~ecdhe_async.policy.check_forward_secret`: ERROR log, fatal alert, no handler); the
buffered input of all connections is charged to one :class:`~ecdhe_async._budget.MemoryBudget`
(``max_buffered_bytes``); the open-file limit is raised at start for ``max_connections``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from ._budget import BudgetExceeded, MemoryBudget
from ._listen import listen
from ._logfmt import fmt_addr as _fmt_addr
from ._logfmt import fmt_peer as _fmt_peer
from ._logfmt import handler_name as _handler_name
from ._logfmt import peer as _peer
from ._logfmt import reason as _reason
from ._proxy_stage import ProxyStage
from ._pump import TLSPump
from ._stats import ServerStats, fmt_stats
from .certstore import server_certificates
from .connection import Connection, TLSInfo
from .errors import RemoteProtocolError
from .events import CloseCause, ConnectionClosed, Event, HandshakeCompleted
from .handlers import Handler, HandlerSpec, resolve_handler
from .limits import ensure_fd_limit
from .observe import Observers
from .policy import NotForwardSecretError, log_refusal
from .settings import ServerSettings

__all__ = ["ServerStats", "TLSServer"]

log = logging.getLogger("ecdhe_async.server")

_LOST = (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError, EOFError)


class TLSServer:
    """An ECDHE-only TLS server running *handler* for every connection.

    ``settings`` is a :class:`ServerSettings` (it must name a certificate unless *ssl_context*
    is given; a given one is restricted in place by :func:`~ecdhe_async.tls.apply_policy`, or
    refused with :class:`ConfigError`); ``handler`` is a built-in name, an import path
    ``"pkg.mod:attr"``, a class or an async callable (default: ``settings.handler``). *sock*, an
    already bound socket, replaces ``host``/``port`` (how :mod:`ecdhe_async.workers` shares one
    socket between processes). Use ``async with TLSServer(...) as server:`` or :meth:`start` /
    :meth:`aclose`.
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        handler: HandlerSpec | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self._sock = sock  # an already bound listening socket (workers), else host/port
        self.stats = ServerStats()
        self.settings = settings if settings is not None else ServerSettings.load()
        self.handler: Handler = resolve_handler(
            handler if handler is not None else self.settings.handler, self.settings
        )
        tls = self.settings.tls
        self.certs, self.ssl_context = server_certificates(tls, ssl_context)
        self.budget = MemoryBudget(self.settings.max_buffered_bytes)
        self._proxy: ProxyStage | None = None  # PROXY protocol: None when off
        if self.settings.proxy_protocol != "off":
            self._proxy = ProxyStage(self.settings, self.stats, self._forget_pending)
        self._server: asyncio.Server | None = None
        self._pending: dict[TLSPump, None] = {}
        self._connections: dict[Connection, asyncio.Task[None]] = {}
        self._closing = False
        self._aclosing = False
        self._closed: asyncio.Event | None = None
        self._warned_full = False
        self._loop: asyncio.AbstractEventLoop  # set by start()
        # Events (issue 13): the refusal log, access log and metrics subscribe (.observe).
        self._observers = Observers(self)
        self._events = self._observers.bus
        self._close_causes: dict[Connection, CloseCause] = {}
        self._refused = self._observers.refused
        self._failed = self._observers.failed

    def subscribe(
        self, callback: Callable[[Any], object], kinds: tuple[type, ...] | None = None
    ) -> Callable[[], None]:
        """Call *callback(event)* for every :mod:`ecdhe_async.events` event (of *kinds*, if
        given); returns the function that unsubscribes. Runs inline on the loop: keep it cheap.
        An exception in a subscriber is logged (rate-limited) and never reaches a connection."""
        return self._events.subscribe(callback, kinds)

    @property
    def accepting(self) -> bool:
        """True while listening and not stopping (``/readyz``)."""
        return self._server is not None and not self._closing

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> list[tuple[str, int]]:
        """Bind and start accepting; return the bound ``(host, port)`` addresses."""
        if self._server is not None:
            raise RuntimeError("server already started")
        loop = asyncio.get_running_loop()
        s = self.settings
        ensure_fd_limit(s.max_connections)
        self._loop = loop
        self._observers.starting()
        self._server = await listen(loop, self._new_pump, s, self._sock)
        try:
            self._observers.started()
        except BaseException:
            self._server.close()
            self._server = None
            raise
        self._closed = asyncio.Event()
        if self.certs is not None:
            self.certs.start_watch(s.cert_check_interval)
        addrs = self.addresses
        tls = self.settings.tls
        log.info(
            "listening on %s (%s profile, groups %s, handler %s)",
            ", ".join(_fmt_addr(a) for a in addrs),
            tls.profile,
            ":".join(tls.groups),
            _handler_name(self.handler),
        )
        return addrs

    def reload(self) -> bool:
        """Reload the certificates for new handshakes, keep-last-good (:mod:`.certstore`).

        False (logged) if the new set is broken; always False with a caller's ``ssl_context``.
        Blocking (file reads): from a coroutine, ``await asyncio.to_thread(server.reload)``.
        """
        return self.certs is not None and self.certs.reload()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound addresses, ``(host, port)`` each (port 0 resolved)."""
        if self._server is None:
            return []
        return [(str(sk.getsockname()[0]), int(sk.getsockname()[1])) for sk in self._server.sockets]

    @property
    def port(self) -> int:
        """The first bound port (handy with ``port = 0``)."""
        return self.addresses[0][1]

    async def serve_forever(self) -> None:
        """Start if needed, then wait until :meth:`aclose` completes (or the task is cancelled)."""
        if self._server is None:
            await self.start()
        assert self._closed is not None
        await self._closed.wait()

    async def aclose(self, grace: float | None = None) -> None:
        """Stop gracefully; never waits longer than ``grace + shutdown_timeout`` (plus a tick).

        Stop accepting and drop pending handshakes → ask handlers to finish
        (:attr:`Connection.stop_requested`) and wait up to *grace* (default ``settings.grace``)
        → cancel the rest → close every connection (close_notify bounded by
        ``shutdown_timeout``, then abort).
        """
        if self._closed is None or self._closed.is_set() or self._aclosing:
            if self._closed is not None:
                await self._closed.wait()
            return
        self._aclosing = self._closing = True
        try:
            grace = self.settings.grace if grace is None else grace
            if self._server is not None:
                self._server.close()
            self._drop_pending()
            for conn in self._connections:
                conn.request_stop()
            tasks = list(self._connections.values())
            if tasks:
                _, still = await asyncio.wait(tasks, timeout=grace)
                for task in still:
                    task.cancel()
                if still:
                    log.info(
                        "cancelled %d handler(s) still running after %.1fs grace", len(still), grace
                    )
                    await asyncio.wait(still, timeout=self.settings.shutdown_timeout + 0.5)
            for conn in list(self._connections):
                conn.abort()
            if self._server is not None:
                try:
                    await asyncio.wait_for(self._server.wait_closed(), 1.0)
                except TimeoutError:  # pragma: no cover - cpython#104344
                    log.debug("wait_closed() did not return; continuing")
            self._observers.stopping()
            log.info("stopped: %s", fmt_stats(self.stats))
        except BaseException:
            self.abort()  # cancelled or failed mid-way: leave nothing running
            raise
        finally:
            self._observers.stopped()
            assert self._closed is not None
            self._closed.set()

    def abort(self) -> None:
        """Stop now: drop pending handshakes, cancel every handler, abort every connection.

        A running :meth:`aclose` then completes at once; otherwise call :meth:`aclose` after.
        """
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._drop_pending()
        for conn, task in list(self._connections.items()):
            conn.abort()
            task.cancel()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- accept and handshake (the PumpOwner side of every connection) ------------------------
    def _new_pump(self) -> TLSPump:
        s = self.settings
        return TLSPump(
            self,
            self.ssl_context,
            server_side=True,
            groups=s.tls.groups,
            shutdown_timeout=s.shutdown_timeout,
            write_timeout=s.write_timeout,
            loop=self._loop,
        )

    def pump_accepted(self, pump: TLSPump) -> None:
        """A TCP connection arrived: count it, cap it, arm its handshake timer."""
        try:
            self._on_accept(pump)
        except Exception:
            log.exception("internal error accepting a connection from %s", _peer(pump.transport))
            pump.abort()

    def _on_accept(self, pump: TLSPump) -> None:
        stats = self.stats
        stats.accepted += 1
        if self._closing:
            pump.abort()
            return
        if len(self._pending) + len(self._connections) >= self.settings.max_connections:
            stats.refused += 1
            self._refused(pump.transport, "max_connections")
            pump.abort()
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "max_connections (%d) reached: refusing new connections",
                    self.settings.max_connections,
                )
            return
        self._warned_full = False
        if len(self._pending) >= self.settings.max_pending_handshakes:
            self._evict_one()
        pump.set_timer(self.settings.handshake_timeout, self._on_handshake_timeout, pump)
        self._pending[pump] = None
        stats.pending = len(self._pending)
        if self._proxy is not None:  # PROXY protocol: trust the source, read the header first
            self._proxy.accept(pump)
        # No setsockopt(TCP_NODELAY) here: asyncio's and uvloop's TCP transports already set it
        # on every accepted socket (and get_extra_info("socket") costs a syscall or two).

    def pump_started(self, pump: TLSPump) -> bool:
        """The first bytes arrived: the handshake starts (False if the connection was dropped)."""
        if pump not in self._pending:
            return False
        if log.isEnabledFor(logging.DEBUG):
            log.debug("TLS handshake started from %s", _peer(pump.transport))
        return True

    def pump_lost(self, pump: TLSPump) -> None:
        """The transport is gone (a pending connection is forgotten, not counted as failed)."""
        if self._proxy is not None and pump in self._pending:
            self._proxy.cut_short(pump, "connection closed inside the PROXY header")
        self._forget_pending(pump)

    def _drop_pending(self) -> None:
        if self.certs is not None:  # aclose() and abort(): no more handshakes to serve
            self.certs.stop_watch()
        # Forget first, so that an aborted handshake is not counted as a client's failure.
        for pump in list(self._pending):
            self._forget_pending(pump)
            pump.abort()

    def _evict_one(self) -> None:
        victim = next((p for p in self._pending if p.ssl_object is None), None)
        if victim is None:
            victim = next(iter(self._pending))
        self.stats.evicted += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("max_pending_handshakes reached: dropping %s", _peer(victim.transport))
        self._refused(victim.transport, "max_pending_handshakes")
        self._forget_pending(victim)
        victim.abort()

    def _on_handshake_timeout(self, pump: TLSPump) -> None:
        if pump in self._pending:
            self.stats.handshake_timeouts += 1
            if self._proxy is not None and self._proxy.cut_short(
                pump, "PROXY header incomplete at handshake_timeout"
            ):
                return
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "handshake timeout (%.1fs) from %s",
                    self.settings.handshake_timeout,
                    _peer(pump.transport),
                )
            self._forget_pending(pump)
            self._failed(pump, TimeoutError())
            pump.abort()

    def _emit(self, event: Event) -> None:
        self._events.emit(event)

    def _forget_pending(self, pump: TLSPump) -> None:
        if self._pending.pop(pump, False) is None:
            self.stats.pending = len(self._pending)

    def handshake_done(self, pump: TLSPump, exc: BaseException | None) -> None:
        """The handshake of *pump* finished: start its handler, or count and log the failure."""
        was_pending = pump in self._pending
        self._forget_pending(pump)
        if exc is not None or not was_pending or self._closing:
            if was_pending and exc is not None:
                self.stats.handshake_failures += 1
                self._log_failure(pump, exc)
                self._failed(pump, exc)
            if exc is None:
                pump.abort()
            # else: the pump flushes the alert and closes, bounded by shutdown_timeout.
            return
        ssl_object = pump.ssl_object
        assert ssl_object is not None
        conn = Connection(
            pump,
            tls=TLSInfo.from_ssl_object(ssl_object, facts=pump.facts),
            handshake_duration=time.perf_counter() - pump.started,
        )
        if self._proxy is not None:  # the real client, behind the balancer
            self._proxy.apply(pump, conn)
        pump.account = self.budget.account(conn.peer)
        self.stats.handshakes += 1
        if self._events.wants(HandshakeCompleted):
            self._emit(HandshakeCompleted.of(conn))
        task = self._loop.create_task(self._run(conn))
        self._connections[conn] = task
        self.stats.active = len(self._connections)

    def _log_failure(self, pump: TLSPump, exc: BaseException) -> None:
        # The other failures are the refusal log's lines (an event subscriber, .observe).
        if isinstance(exc, NotForwardSecretError):
            log_refusal(exc.problem, _peer(pump.transport))

    # -- per-connection ----------------------------------------------------------------------
    async def _run(self, conn: Connection) -> None:
        idle = self.settings.idle_timeout
        if idle > 0:
            conn.set_idle_timer(self._loop.call_later(idle, self._check_idle, conn))
        cancelled = False
        started = time.perf_counter()
        cause: CloseCause = "error"
        try:
            await self.handler(conn)
            cause = "stop" if conn.stop_requested else "peer_close"
        except RemoteProtocolError as exc:
            self.stats.protocol_errors += 1
            cause = "limit" if isinstance(exc, BudgetExceeded) else "error"
            log.info("protocol error from %s: %s", _fmt_peer(conn), exc)
        except asyncio.CancelledError:
            cancelled = True
            cause = "stop"
        except _LOST as exc:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("connection %s lost: %s", _fmt_peer(conn), _reason(exc))
        except Exception:
            self.stats.handler_errors += 1
            log.exception("handler %s crashed on %s", _handler_name(self.handler), _fmt_peer(conn))
        finally:
            conn.set_idle_timer(None)
            await conn.close()
            self._connections.pop(conn, None)
            stats = self.stats
            stats.active = len(self._connections)
            stats.completed += 1
            stats.bytes_in += conn.bytes_in
            stats.bytes_out += conn.bytes_out
            cause = self._close_causes.pop(conn, cause)
            if self._events.wants(ConnectionClosed):  # the access log line comes from it
                self._emit(ConnectionClosed.of(conn, time.perf_counter() - started, cause))
        if cancelled:
            raise asyncio.CancelledError

    def _check_idle(self, conn: Connection) -> None:
        conn.set_idle_timer(None)
        if conn not in self._connections or conn.is_closing:
            return
        remaining = self.settings.idle_timeout - conn.idle_for
        if remaining > 0:
            conn.set_idle_timer(self._loop.call_later(remaining, self._check_idle, conn))
            return
        self.stats.idle_timeouts += 1
        self._close_causes[conn] = "idle"
        log.info("idle timeout (%.1fs) on %s: closing", self.settings.idle_timeout, _fmt_peer(conn))
        conn.close_soon()
