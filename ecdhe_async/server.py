"""``TLSServer``: accept TCP, own every TLS handshake, run a handler per connection, stop cleanly.

Data flow for one connection: accept (plain TCP, :meth:`asyncio.loop.create_server`, the call
under :func:`asyncio.start_server`) → counted as a *pending handshake*, timer started → the first
bytes arrive → switched to our TLS layer (:mod:`ecdhe_async._tlsproto`) → handshake (bounded by
``handshake_timeout``, failure reason known, alert sent) → :class:`Connection` with its TLS facts →
handler task → close (close_notify bounded by ``shutdown_timeout``, then abort) → one INFO line.

Why accept plain TCP and upgrade ourselves: with ``ssl=`` given to ``start_server`` the handler
only runs after a successful handshake, so pending handshakes cannot be counted or capped, their
failures never reach the application, and a silent socket holds a 256 KiB buffer for the whole
``ssl_handshake_timeout``. Here a silent socket costs a transport and a small protocol object
until its first byte: no ``SSL`` object, no buffer.

Limits: ``max_connections`` counts pending and established connections; beyond it new ones are
closed at once (``stats.refused``). ``max_pending_handshakes`` caps handshakes in flight; beyond it
the oldest one that has not sent a byte (else the oldest) is dropped (``stats.evicted``), so a
flood of silent sockets cannot starve real clients. Failures of one connection never reach
another: they are counted, logged once (handshake failures at DEBUG, protocol errors at INFO,
handler crashes at ERROR with a traceback) and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self, cast

from ._budget import MemoryBudget
from ._stream import StreamProtocol
from ._tlsproto import TLSProtocol, start_tls
from .connection import Connection, TLSInfo
from .errors import RemoteProtocolError
from .handlers import Handler, resolve_handler
from .limits import ensure_fd_limit
from .policy import check_forward_secret, fatal_alert, log_refusal
from .settings import ServerSettings
from .tls import apply_policy, server_context

__all__ = ["ServerStats", "TLSServer"]

log = logging.getLogger("ecdhe_async.server")

_LOST = (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError, EOFError)


@dataclass(slots=True)
class ServerStats:
    """Counters since start. ``pending`` and ``active`` are gauges."""

    accepted: int = 0
    refused: int = 0
    pending: int = 0
    active: int = 0
    handshakes: int = 0
    handshake_failures: int = 0
    handshake_timeouts: int = 0
    evicted: int = 0
    completed: int = 0
    protocol_errors: int = 0
    handler_errors: int = 0
    idle_timeouts: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for logs and metrics)."""
        return asdict(self)


class _Pending(asyncio.Protocol):
    """A TCP connection waiting for its ClientHello, then for its handshake to finish."""

    __slots__ = (
        "got_data",
        "server",
        "started",
        "stream",
        "timer",
        "tls",
        "transport",
    )

    def __init__(self, server: TLSServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.got_data = False
        self.started = 0.0
        self.tls: TLSProtocol | None = None
        self.stream: StreamProtocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack the same.
        self.transport = cast(asyncio.Transport, transport)
        self.server._on_accept(self)

    def data_received(self, data: bytes) -> None:
        self.server._on_first_data(self, data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.server._forget_pending(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def refuse(self, alert: bytes) -> None:
        # Send the fatal alert, then close (the kernel sends it; nothing waits on the peer).
        if self.transport is not None:
            if alert:
                self.transport.write(alert)
            self.transport.close()


class TLSServer:
    """An ECDHE-only TLS server running *handler* for every connection.

    ``settings`` is a :class:`ServerSettings` (it must name a certificate unless *ssl_context*
    is given; a given *ssl_context* is restricted in place to the settings' policy by
    :func:`~ecdhe_async.tls.apply_policy`, or refused with :class:`ConfigError`); ``handler``
    is a built-in name, an import path ``"pkg.mod:attr"``, a class or an async callable
    (default: ``settings.handler``). Every established connection passes
    :func:`~ecdhe_async.policy.check_forward_secret` before its handler runs. Use
    ``async with TLSServer(...) as server:`` or :meth:`start` / :meth:`aclose`.
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        handler: Any = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ServerSettings.load()
        self.handler: Handler = resolve_handler(
            handler if handler is not None else self.settings.handler, self.settings
        )
        tls = self.settings.tls
        self.ssl_context = (
            apply_policy(ssl_context, tls, server_side=True) if ssl_context else server_context(tls)
        )
        self.stats = ServerStats()
        self.budget = MemoryBudget(self.settings.max_buffered_bytes)
        self._server: asyncio.Server | None = None
        self._pending: dict[_Pending, None] = {}
        self._connections: dict[Connection, asyncio.Task[None]] = {}
        self._closing = False
        self._aclosing = False
        self._closed: asyncio.Event | None = None
        self._warned_full = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> list[tuple[str, int]]:
        """Bind and start accepting; return the bound ``(host, port)`` addresses."""
        if self._server is not None:
            raise RuntimeError("server already started")
        loop = asyncio.get_running_loop()
        s = self.settings
        ensure_fd_limit(s.max_connections)
        # backlog=1, then the real backlog on the sockets: the stdlib's accept loop calls
        # accept() `backlog` times per readiness event and, out of file descriptors (EMFILE),
        # does not stop: `backlog` ERROR tracebacks and `backlog` retry timers per event
        # (gh-151615, Python < 3.15), a storm that starves every live connection for as long as
        # the process is out of fds. One accept per event (the listener stays readable, so the
        # next loop iteration takes the next connection) turns that into one log line and one
        # retry per second. uvloop accepts in libuv (no such loop) and is unaffected either way.
        self._server = await loop.create_server(
            lambda: _Pending(self),
            host=s.host,
            port=s.port,
            backlog=1,
            reuse_port=s.reuse_port or None,
            start_serving=True,
        )
        self._closed = asyncio.Event()
        for sock in self._server.sockets:
            with socket.fromfd(sock.fileno(), sock.family, sock.type) as listener:
                listener.listen(s.backlog)
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
            log.info("stopped: %s", _fmt_stats(self.stats))
        except BaseException:
            self.abort()  # cancelled or failed mid-way: leave nothing running
            raise
        finally:
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

    # -- accept and handshake ----------------------------------------------------------------
    def _on_accept(self, pending: _Pending) -> None:
        stats = self.stats
        stats.accepted += 1
        transport = pending.transport
        assert transport is not None
        if self._closing:
            transport.abort()
            return
        if len(self._pending) + len(self._connections) >= self.settings.max_connections:
            stats.refused += 1
            transport.abort()
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
        loop = asyncio.get_running_loop()
        pending.timer = loop.call_later(
            self.settings.handshake_timeout, self._on_handshake_timeout, pending
        )
        self._pending[pending] = None
        stats.pending = len(self._pending)
        # No setsockopt(TCP_NODELAY) here: asyncio's and uvloop's TCP transports already set it
        # on every accepted socket (and get_extra_info("socket") costs a syscall or two).

    def _drop_pending(self) -> None:
        # Forget first, so that an aborted handshake is not counted as a client's failure.
        for pending in list(self._pending):
            self._forget_pending(pending)
            pending.abort()

    def _evict_one(self) -> None:
        victim = next((p for p in self._pending if not p.got_data), None)
        if victim is None:
            victim = next(iter(self._pending))
        self.stats.evicted += 1
        log.debug("max_pending_handshakes reached: dropping %s", _peer(victim.transport))
        self._forget_pending(victim)
        victim.abort()

    def _on_first_data(self, pending: _Pending, data: bytes) -> None:
        transport = pending.transport
        if pending.got_data or transport is None or pending not in self._pending:
            return
        pending.got_data = True
        pending.started = time.perf_counter()  # loop.time() is 1 ms coarse on uvloop
        if log.isEnabledFor(logging.DEBUG):
            log.debug("TLS handshake started from %s", _peer(transport))
        pending.stream = StreamProtocol(account=self.budget.account())
        pending.tls, waiter = start_tls(
            transport,
            pending.stream,
            self.ssl_context,
            server_side=True,
            handshake_timeout=self.settings.handshake_timeout,
            shutdown_timeout=self.settings.shutdown_timeout,
            initial_data=data,
        )
        waiter.add_done_callback(lambda fut: self._on_handshake_done(pending, fut))

    def _on_handshake_timeout(self, pending: _Pending) -> None:
        if pending in self._pending:
            self.stats.handshake_timeouts += 1
            log.debug(
                "handshake timeout (%.1fs) from %s",
                self.settings.handshake_timeout,
                _peer(pending.transport),
            )
            self._forget_pending(pending)
            pending.abort()

    def _forget_pending(self, pending: _Pending) -> None:
        if self._pending.pop(pending, False) is None:
            if pending.timer is not None:
                pending.timer.cancel()
            self.stats.pending = len(self._pending)

    def _on_handshake_done(self, pending: _Pending, fut: asyncio.Future[None]) -> None:
        was_pending = pending in self._pending
        self._forget_pending(pending)
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None or not was_pending or self._closing:
            if was_pending and not fut.cancelled():
                self.stats.handshake_failures += 1
                log.debug("handshake failed from %s: %s", _peer(pending.transport), _reason(exc))
            pending.abort()
            return
        tls_proto, stream = pending.tls, pending.stream
        assert tls_proto is not None
        assert stream is not None
        ssl_object = cast(ssl.SSLObject, stream.transport.get_extra_info("ssl_object"))
        if (problem := check_forward_secret(ssl_object, self.settings.tls.groups)) is not None:
            self.stats.handshake_failures += 1
            log_refusal(problem, _peer(pending.transport))
            pending.refuse(fatal_alert(ssl_object, tls_proto._incoming, tls_proto._outgoing))
            return
        conn = Connection(
            stream,
            tls=TLSInfo.from_ssl_object(ssl_object),
            handshake_duration=time.perf_counter() - pending.started,
            shutdown_timeout=self.settings.shutdown_timeout,
        )
        loop = asyncio.get_running_loop()
        self.stats.handshakes += 1
        task = loop.create_task(self._run(conn))
        self._connections[conn] = task
        self.stats.active = len(self._connections)

    # -- per-connection ----------------------------------------------------------------------
    async def _run(self, conn: Connection) -> None:
        idle = self.settings.idle_timeout
        loop = asyncio.get_running_loop()
        timer = loop.call_later(idle, self._check_idle, conn) if idle > 0 else None
        cancelled = False
        try:
            await self.handler(conn)
        except RemoteProtocolError as exc:
            self.stats.protocol_errors += 1
            log.info("protocol error from %s: %s", _fmt_peer(conn), exc)
        except asyncio.CancelledError:
            cancelled = True
        except _LOST as exc:
            log.debug("connection %s lost: %s", _fmt_peer(conn), _reason(exc))
        except Exception:
            self.stats.handler_errors += 1
            log.exception("handler %s crashed on %s", _handler_name(self.handler), _fmt_peer(conn))
        finally:
            if timer is not None:
                timer.cancel()
            await conn.close()
            self._connections.pop(conn, None)
            stats = self.stats
            stats.active = len(self._connections)
            stats.completed += 1
            stats.bytes_in += conn.bytes_in
            stats.bytes_out += conn.bytes_out
            if log.isEnabledFor(logging.INFO):  # skip formatting the peer when filtered
                log.info(
                    "closed %s %s %s group=%s handshake=%.1fms in=%d out=%d",
                    _fmt_peer(conn),
                    conn.version,
                    conn.cipher,
                    conn.group,
                    conn.handshake_duration * 1e3,
                    conn.bytes_in,
                    conn.bytes_out,
                )
        if cancelled:
            raise asyncio.CancelledError

    def _check_idle(self, conn: Connection) -> None:
        if conn not in self._connections or conn.is_closing:
            return
        remaining = self.settings.idle_timeout - conn.idle_for
        if remaining > 0:
            asyncio.get_running_loop().call_later(remaining, self._check_idle, conn)
            return
        self.stats.idle_timeouts += 1
        log.info("idle timeout (%.1fs) on %s: closing", self.settings.idle_timeout, _fmt_peer(conn))
        conn.close_soon()


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason)
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return _fmt_addr(peer) if peer else "?"


def _fmt_peer(conn: Connection) -> str:
    return _fmt_addr(conn.peer) if conn.peer else "?"


def _fmt_addr(addr: Iterable[Any]) -> str:
    host, port = tuple(addr)[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _handler_name(handler: Any) -> str:
    return getattr(handler, "__qualname__", None) or type(handler).__qualname__


def _fmt_stats(stats: ServerStats) -> str:
    return " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if v) or "no connections"
