"""``Connection``: one established TLS stream plus the typed facts of its handshake.

Handlers and clients talk to the peer through :meth:`Connection.read`, :meth:`Connection.write`,
:meth:`Connection.drain` and :meth:`Connection.close`; the framework counts bytes, tracks idleness
and closes gracefully (close_notify bounded by ``shutdown_timeout``, then abort). The bytes go
through our TLS pump (:mod:`ecdhe_async._pump`).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from . import _openssl
from ._pump import SHUTDOWN, TLSPump

if TYPE_CHECKING:
    from .proxy import ProxyHeader

__all__ = ["Connection", "TLSInfo"]


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What one handshake negotiated. ``group`` is the key-exchange group, e.g. ``"X25519"``."""

    version: str | None
    cipher: str | None
    group: str | None
    alpn: str | None
    server_name: str | None
    peer_subject: str | None
    peer_cert: dict[str, Any] | None

    @classmethod
    def from_ssl_object(
        cls,
        obj: ssl.SSLObject | ssl.SSLSocket,
        *,
        facts: tuple[str | None, str | None] | None = None,
    ) -> TLSInfo:
        """Read the negotiated facts off a completed handshake.

        *facts*: ``(group, server_name)`` already read by
        :func:`ecdhe_async._openssl.handshake_facts` (the pump reads them once per connection).
        """
        cipher = obj.cipher()
        peer = obj.getpeercert()
        group, server_name = _openssl.handshake_facts(obj) if facts is None else facts
        return cls(
            version=obj.version(),
            cipher=cipher[0] if cipher else None,
            group=group,
            alpn=obj.selected_alpn_protocol(),
            server_name=server_name,
            peer_subject=_subject(peer) if peer else None,
            peer_cert=dict(peer) if peer else None,
        )


def _subject(cert: Any) -> str | None:
    rdns = cert.get("subject", ())
    parts = [f"{key}={value}" for rdn in rdns for key, value in rdn]
    return ",".join(parts) or None


class Connection:
    """An established TLS connection (server or client side).

    Attributes are read-only facts: :attr:`tls` (:class:`TLSInfo`), :attr:`peer` (address
    tuple; the original client's behind a PROXY-protocol balancer, whose own address is then
    :attr:`proxy`), :attr:`handshake_duration` (seconds), :attr:`bytes_in` / :attr:`bytes_out`
    (application bytes handed to the handler / accepted for sending). :attr:`stop_requested`
    becomes true when the server is shutting down: handlers should finish the message in hand and
    return; :meth:`read_next` and :meth:`wait_stop` let them await that instead of polling.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_idle_timer",
        "_last_activity",
        "_loop",
        "_pump",
        "_stop",
        "_stop_waiter",
        "bytes_in",
        "bytes_out",
        "handshake_duration",
        "peer",
        "proxy",
        "proxy_header",
        "tls",
    )

    def __init__(self, pump: TLSPump, *, tls: TLSInfo, handshake_duration: float) -> None:
        self._pump = pump
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._stop = False
        self._stop_waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self.tls = tls
        self.handshake_duration = handshake_duration
        peer = pump.transport.get_extra_info("peername")
        self.peer: tuple[Any, ...] | None = tuple(peer) if peer else None
        self.bytes_in = 0
        self.bytes_out = 0
        self.proxy: tuple[Any, ...] | None = None
        self.proxy_header: ProxyHeader | None = None

    def set_proxy_header(self, header: ProxyHeader) -> None:
        """Apply a PROXY header: :attr:`peer` becomes the original client (when the header names
        one; not for ``LOCAL`` health checks) and :attr:`proxy` the load balancer's address."""
        self.proxy = self.peer
        self.proxy_header = header
        if header.source is not None:
            self.peer = header.source

    @property
    def proxy_tlvs(self) -> tuple[tuple[int, bytes], ...]:
        """Raw PROXY v2 TLVs ``(type, value)`` (e.g. AWS VPC endpoint id); empty otherwise."""
        return self.proxy_header.tlvs if self.proxy_header is not None else ()

    # -- facts, as properties for convenience -------------------------------------------------
    @property
    def version(self) -> str | None:
        """Negotiated protocol version, e.g. ``"TLSv1.3"``."""
        return self.tls.version

    @property
    def cipher(self) -> str | None:
        """Negotiated cipher suite, e.g. ``"TLS_AES_256_GCM_SHA384"``."""
        return self.tls.cipher

    @property
    def group(self) -> str | None:
        """Negotiated key-exchange group, e.g. ``"X25519"``."""
        return self.tls.group

    @property
    def peer_subject(self) -> str | None:
        """The verified peer certificate's subject (mTLS on a server; the server on a client)."""
        return self.tls.peer_subject

    @property
    def alpn(self) -> str | None:
        """The ALPN protocol both sides agreed on, if any."""
        return self.tls.alpn

    @property
    def server_name(self) -> str | None:
        """The SNI host name the client asked for."""
        return self.tls.server_name

    @property
    def stop_requested(self) -> bool:
        """True once the server has begun a graceful shutdown."""
        return self._stop

    @property
    def idle_for(self) -> float:
        """Seconds since the last byte was read or written through this connection."""
        return self._loop.time() - self._last_activity

    @property
    def is_closing(self) -> bool:
        """True once :meth:`close` was called or the connection is going away."""
        return self._closed or self._pump.closed or self._pump.state >= SHUTDOWN

    def request_stop(self) -> None:
        """Ask the handler to finish (set by the server on graceful shutdown).

        A handler waiting in :meth:`read_next` with nothing buffered gets ``b""`` at once, and
        :meth:`wait_stop` returns; :meth:`read` keeps waiting for the peer.
        """
        self._stop = True
        self._pump.interrupt()
        waiter, self._stop_waiter = self._stop_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_stop(self) -> None:
        """Return once the server begins a graceful shutdown (at once if it has)."""
        if self._stop:
            return
        if self._stop_waiter is None:
            self._stop_waiter = self._loop.create_future()
        await asyncio.shield(self._stop_waiter)

    def set_idle_timer(self, timer: asyncio.TimerHandle | None) -> None:
        """Hold the server's idle timer (replacing and cancelling the previous one)."""
        old, self._idle_timer = self._idle_timer, timer
        if old is not None:
            old.cancel()

    # -- I/O ---------------------------------------------------------------------------------
    async def read(self, n: int | None = None) -> bytes:
        """Read up to *n* bytes (``None``: whatever has arrived); ``b""`` at end of stream.

        The peer's close_notify (or its TCP FIN) is the end of the stream; the handler may still
        write a reply after it. Raises the connection's error (e.g. :class:`ssl.SSLError` for a
        peer's fatal alert, :class:`ConnectionResetError`) once every byte received before it
        was read.
        """
        data = await self._pump.read(n)
        self.bytes_in += len(data)
        self._last_activity = self._loop.time()
        return data

    async def read_next(self, n: int | None = None) -> bytes:
        """Read the start of the next message: like :meth:`read`, but ``b""`` once a graceful
        stop begins while nothing is buffered (so a handler idle at a message boundary ends).
        """
        data = await self._pump.read_next(n)
        self.bytes_in += len(data)
        self._last_activity = self._loop.time()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Read exactly *n* bytes or raise :class:`asyncio.IncompleteReadError`."""
        data = await self._pump.readexactly(n)
        self.bytes_in += n
        self._last_activity = self._loop.time()
        return data

    def hold(self, nbytes: int) -> None:
        """Declare that the handler now keeps *nbytes* of input buffered (a partial message).

        On a server this is charged to the server-wide ``max_buffered_bytes`` budget; when the
        budget cannot take it, the connection is closed and :class:`RemoteProtocolError`
        (``BudgetExceeded``) is raised. Handlers that buffer input should call it after each
        read; the built-in ``lines`` and ``frames`` handlers do.
        """
        self._pump.hold(nbytes)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and queue *data*; call :meth:`drain` to respect flow control.

        Raises :class:`ConnectionResetError` if the connection can no longer send (closed,
        reset, failed): a write is never dropped silently, and :attr:`bytes_out` counts only
        what was accepted for sending.
        """
        self._pump.write(data)
        self.bytes_out += len(data)
        self._last_activity = self._loop.time()

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark.

        Bounded by the server's ``write_timeout``: a peer that reads nothing for that long gets
        the connection aborted and the caller a :class:`TimeoutError`.
        """
        await self._pump.drain()

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """:meth:`write` then :meth:`drain`."""
        self.write(data)
        await self._pump.drain()

    def at_eof(self) -> bool:
        """True when the peer closed and every received byte has been read."""
        return self._pump.at_eof

    async def close(self) -> None:
        """Close with close_notify; abort if the peer does not finish within shutdown_timeout.

        Never raises for an already broken connection and never waits longer than the
        connection's ``shutdown_timeout`` (cpython#104344, aiohttp#11091).
        """
        self._closed = True
        self.set_idle_timer(None)
        self._pump.close()
        await self._pump.wait_closed()

    def close_soon(self) -> None:
        """Start a graceful close without waiting (the handler's next read sees the end)."""
        self._closed = True
        self._pump.close()

    def abort(self) -> None:
        """Drop the connection at once (no close_notify)."""
        self._closed = True
        self._pump.abort()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        peer = ":".join(map(str, self.peer[:2])) if self.peer else "?"
        return (
            f"<Connection peer={peer} {self.tls.version} {self.tls.cipher} "
            f"group={self.tls.group} in={self.bytes_in} out={self.bytes_out}>"
        )
