"""Our TLS layer over any asyncio transport: asyncio's ``SSLProtocol``, with three fixes.

Why not ``loop.start_tls`` / ``start_server(ssl=...)``
------------------------------------------------------
1. **Alerts.** When a handshake or a record fails, OpenSSL queues a fatal alert (``handshake
   failure``, ``protocol version``, ``bad record mac``) in the outgoing memory BIO. Stdlib asyncio
   and uvloop close the transport without flushing it (gh-98078), so the peer only sees an
   "unexpected eof". :class:`TLSProtocol` writes the pending bytes, then closes gracefully.
2. **Any loop.** The stdlib class calls the private ``_force_close()`` of selector transports;
   uvloop's transports have no such Python method. We only use public transport methods, so the
   same class (and the same alert behaviour) runs on uvloop and on the stdlib loop.
3. **Memory.** The stdlib allocates a 256 KiB receive buffer per connection up front. Between
   ``get_buffer()`` and ``buffer_updated()`` (called back to back by the loop, on its thread) the
   bytes are copied straight into the incoming BIO, so one buffer per thread serves every
   connection: per-connection cost drops to the ``SSL`` object and its BIOs.

Failures are not reported to the loop's exception handler (which logs each at ERROR: a scanner
would flood the log); the waiter gets the exception and the caller decides how loud to be.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from asyncio import sslproto
from typing import Any, Final

__all__ = ["TLSProtocol", "start_tls"]

log = logging.getLogger("ecdhe_async.tls")

_BUFFER_SIZE: Final = 256 * 1024
_local = threading.local()


def _shared_buffer() -> memoryview:
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(_BUFFER_SIZE))
    return view


# The private hooks we override or call. They exist, with these meanings, in the SSLProtocol that
# CPython ported from uvloop in 3.11 (and that 3.12-3.14 keep); fail loudly, not subtly, if a
# future Python reshapes the class.
_BASE_HOOKS: Final = (
    "_do_handshake",
    "_on_handshake_complete",
    "_fatal_error",
    "_check_handshake_timeout",
    "_check_shutdown_timeout",
    "_process_outgoing",
    "_wakeup_waiter",
    "buffer_updated",
)
_missing = [name for name in _BASE_HOOKS if not hasattr(sslproto.SSLProtocol, name)]
if _missing:  # pragma: no cover - depends on the Python version
    raise ImportError(
        "ecdhe_async's TLS layer does not support this Python's asyncio.sslproto "
        f"(missing {', '.join(_missing)}); please report your Python version"
    )


class TLSProtocol(sslproto.SSLProtocol):
    """``asyncio.sslproto.SSLProtocol`` that sends OpenSSL's alert and runs on any transport."""

    # Private attributes of the base class that we use (typeshed does not declare them).
    _transport: Any
    _incoming: ssl.MemoryBIO
    _outgoing: ssl.MemoryBIO
    _sslobj: Any
    _state: Any
    _process_outgoing: Any

    max_size = _BUFFER_SIZE
    failure: BaseException | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The base class allocates and zero-fills bytearray(self.max_size) (256 KiB) for every
        # connection; shadow max_size while it runs so that it allocates nothing. Reads still
        # use the class attribute afterwards.
        object.__setattr__(self, "max_size", 0)
        super().__init__(*args, **kwargs)
        object.__delattr__(self, "max_size")

    def get_buffer(self, n: int) -> memoryview:
        return _shared_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._ssl_buffer_view = _shared_buffer()
        super().buffer_updated(nbytes)

    def feed(self, data: bytes) -> None:
        """Hand bytes that arrived before the upgrade (e.g. the ClientHello's first segment)."""
        view = _shared_buffer()
        for start in range(0, len(data), len(view)):
            chunk = data[start : start + len(view)]
            view[: len(chunk)] = chunk
            self.buffer_updated(len(chunk))

    def _flush_alert(self) -> None:
        # gh-98078: send what OpenSSL queued (the fatal alert) before the transport goes away.
        transport = self._transport
        if transport is not None and not transport.is_closing():
            data = self._outgoing.read()
            if data:
                transport.write(data)

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except sslproto.SSLAgainErrors:
            self._process_outgoing()
        except ssl.SSLError as exc:
            self._flush_alert()
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if self.failure is None:
            self.failure = exc
        transport = self._transport
        if transport is not None:
            if isinstance(exc, ssl.SSLError):
                # Bad record, failed handshake: flush the alert, then FIN after it.
                self._flush_alert()
                transport.close()
            else:
                transport.abort()
        log.debug("%s: %r", message, exc)

    def _check_handshake_timeout(self) -> None:
        # The base class aborts with a ConnectionAbortedError that never reaches the waiter
        # (connection_lost then wakes it with *success*). Report a TimeoutError instead.
        if self._state == sslproto.SSLProtocolState.DO_HANDSHAKE:
            exc = TimeoutError(
                f"TLS handshake did not finish within {self._ssl_handshake_timeout}s"
            )
            if self.failure is None:
                self.failure = exc
            self._wakeup_waiter(exc)
            if self._transport is not None:
                self._transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        # The base class wakes the handshake waiter with exc, i.e. with *success* when the
        # transport was closed or aborted (exc None) before the handshake finished: a caller
        # would then build a connection on a dead transport. Fail the waiter instead.
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._wakeup_waiter(
                exc
                or self.failure
                or ConnectionAbortedError("connection closed during the TLS handshake")
            )
        # After a fatal TLS error (an alert from the peer, a bad record) we closed the transport
        # gracefully to flush our alert, so it reports no error. Hand the real one to the
        # application: its next read raises instead of looking like a clean end of stream.
        super().connection_lost(exc if exc is not None else self.failure)

    def _check_shutdown_timeout(self) -> None:
        if self._state in (sslproto.SSLProtocolState.FLUSHING, sslproto.SSLProtocolState.SHUTDOWN):
            # The peer ignored our close_notify (aiohttp#11091): stop waiting.
            if self._transport is not None:
                self._transport.abort()


def start_tls(
    transport: asyncio.Transport,
    app_protocol: asyncio.BaseProtocol,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None = None,
    handshake_timeout: float,
    shutdown_timeout: float,
    initial_data: bytes = b"",
) -> tuple[TLSProtocol, asyncio.Future[None]]:
    """Switch *transport* to TLS now; return the protocol and a future done at handshake end.

    Called from a protocol callback (e.g. ``data_received`` with the first bytes as
    *initial_data*) the switch is synchronous: no byte can slip past the TLS layer.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    proto = TLSProtocol(
        loop,
        app_protocol,
        context,
        waiter,
        server_side=server_side,
        server_hostname=server_hostname,
        call_connection_made=True,
        ssl_handshake_timeout=handshake_timeout,
        ssl_shutdown_timeout=shutdown_timeout,
    )
    transport.set_protocol(proto)
    proto.connection_made(transport)
    if initial_data:
        proto.feed(initial_data)
    return proto, waiter
