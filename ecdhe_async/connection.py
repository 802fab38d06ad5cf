"""``Connection``: one established TLS stream plus the typed facts of its handshake.

Handlers and clients talk to the peer through :meth:`Connection.read`, :meth:`Connection.write`,
:meth:`Connection.drain` and :meth:`Connection.close`; the framework counts bytes, tracks idleness
and closes gracefully (close_notify bounded by ``shutdown_timeout``, then abort).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from . import _openssl
from ._stream import StreamProtocol

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
    def from_ssl_object(cls, obj: ssl.SSLObject | ssl.SSLSocket) -> TLSInfo:
        """Read the negotiated facts off a completed handshake."""
        cipher = obj.cipher()
        peer = obj.getpeercert()
        group, server_name = _openssl.handshake_facts(obj)
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
    tuple), :attr:`handshake_duration` (seconds), :attr:`bytes_in` / :attr:`bytes_out`
    (application bytes). :attr:`stop_requested` becomes true when the server is shutting down:
    handlers should finish the message in hand and return.
    """

    __slots__ = (
        "_closed",
        "_last_activity",
        "_loop",
        "_shutdown_timeout",
        "_stop",
        "_stream",
        "_transport",
        "bytes_in",
        "bytes_out",
        "handshake_duration",
        "peer",
        "tls",
    )

    def __init__(
        self,
        stream: StreamProtocol,
        *,
        tls: TLSInfo,
        handshake_duration: float,
        shutdown_timeout: float,
    ) -> None:
        self._stream = stream
        self._transport: Any = stream.transport
        self._loop = asyncio.get_running_loop()
        self._shutdown_timeout = shutdown_timeout
        self._last_activity = self._loop.time()
        self._stop = False
        self._closed = False
        self.tls = tls
        self.handshake_duration = handshake_duration
        peer = self._transport.get_extra_info("peername")
        self.peer: tuple[Any, ...] | None = tuple(peer) if peer else None
        self.bytes_in = 0
        self.bytes_out = 0

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
        """True once :meth:`close` was called or the transport is closing."""
        return self._closed or bool(self._transport.is_closing())

    def request_stop(self) -> None:
        """Ask the handler to finish (set by the server on graceful shutdown)."""
        self._stop = True

    # -- I/O ---------------------------------------------------------------------------------
    async def read(self, n: int | None = None) -> bytes:
        """Read up to *n* bytes (``None``: whatever has arrived); ``b""`` at end of stream.

        Raises the connection's error (e.g. :class:`ssl.SSLError` for a peer's fatal alert,
        :class:`ConnectionResetError`) once every byte received before it was read.
        """
        data = await self._stream.read(n)
        self.bytes_in += len(data)
        self._last_activity = self._loop.time()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Read exactly *n* bytes or raise :class:`asyncio.IncompleteReadError`."""
        data = await self._stream.readexactly(n)
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
        self._stream.hold(nbytes)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue *data* for sending; call :meth:`drain` to respect flow control."""
        self._transport.write(data)
        self.bytes_out += len(data)
        self._last_activity = self._loop.time()

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        await self._stream.drain()

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """:meth:`write` then :meth:`drain`."""
        self.write(data)
        await self._stream.drain()

    def at_eof(self) -> bool:
        """True when the peer closed and every received byte has been read."""
        return self._stream.at_eof

    async def close(self) -> None:
        """Close with close_notify; abort if the peer does not finish within shutdown_timeout.

        Never raises for an already broken connection and never waits longer than the
        connection's ``shutdown_timeout`` (cpython#104344, aiohttp#11091).
        """
        if self._closed:
            return
        self._closed = True
        transport = self._transport
        with contextlib.suppress(Exception):
            transport.close()
        try:
            async with asyncio.timeout(self._shutdown_timeout):
                await asyncio.shield(self._stream.closed)
        except TimeoutError:
            transport.abort()

    def close_soon(self) -> None:
        """Start a graceful close without waiting (the handler's next read sees the end)."""
        if not self._closed:
            self._closed = True
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once (no close_notify)."""
        self._closed = True
        self._transport.abort()

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
