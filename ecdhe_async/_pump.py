"""Our TLS record pump: ``ssl.SSLObject`` + two ``MemoryBIO``s over a plain TCP transport.

Theory of operation
-------------------
:class:`TLSPump` is the protocol of a plain TCP transport (``loop.create_server`` /
``loop.create_connection``, public asyncio API only). Bytes from the socket go into the incoming
``MemoryBIO``; the pump drives ``SSLObject.do_handshake`` / ``read`` / ``write`` / ``unwrap`` and,
after every step, writes whatever OpenSSL put in the outgoing BIO to the transport. So every alert
OpenSSL queues (``handshake failure``, ``protocol version``, ``bad record mac``, ``close_notify``)
reaches the peer, on every loop, by construction: stdlib asyncio and uvloop drop them (gh-98078).

- **No per-connection buffer.** The socket reads into one per-thread buffer (``get_buffer``); the
  bytes are copied into the incoming BIO at once, and the same buffer then receives the plaintext
  (``SSLObject.read(n, buffer)``), copied once into a ``bytes`` chunk for the handler
  (:class:`~ecdhe_async._stream.StreamBuffer`). A server-side socket that has not sent a byte has
  no ``SSLObject`` at all.
- **Bounded waits, one timer slot.** The handshake and the close each run under one timer
  (``handshake_timeout``, then ``shutdown_timeout``), cancelled when the transport goes away: a
  closed connection is collectable at once. Every close - ours, the peer's, after a fatal error -
  ends in ``transport.close()`` under that timer, and in ``abort()`` when it fires.
- **Half-close (TLS 1.3).** The peer's close_notify is the end of the stream for the reader; the
  handler may still write its reply, then :meth:`close` sends our close_notify.
- **Forward secrecy, checked.** A finished handshake passes
  :func:`~ecdhe_async.policy.check_forward_secret` (the owner's allowed groups) before the owner
  hears of it; one that fails gets OpenSSL's fatal alert and closes, and the owner gets a
  :class:`~ecdhe_async.policy.NotForwardSecretError` instead: no ``Connection``, no handler.
- **Errors.** A fatal ``SSLError`` flushes the alert and closes; the reader gets the error once it
  read every byte before it. Anything else is a bug (ours or a changed loop): logged at ERROR with
  its traceback, once, and the connection is aborted.

- **A preface before TLS.** A server may set :attr:`TLSPump.preface` at accept (the PROXY protocol
  header, :mod:`ecdhe_async._proxy_stage`): the bytes before the ClientHello go to it, the rest to
  OpenSSL. Left ``None``, it costs one attribute test per connection.

Renegotiation is refused by the contexts (``OP_NO_RENEGOTIATION``, :mod:`ecdhe_async.tls`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Collection
from typing import Any, Final, Protocol, cast

from ._openssl import handshake_facts
from ._stream import StreamBuffer
from .errors import RejectedByPeerError, rejection
from .policy import NotForwardSecretError, check_forward_secret, fatal_alert

__all__ = ["Preface", "PumpOwner", "RejectedByPeerError", "TLSPump"]  # the error: from .errors

log = logging.getLogger("ecdhe_async.tls")

_BUFFER_SIZE: Final = 256 * 1024
_local = threading.local()

# States. WAIT_HELLO: server socket, no byte yet (no SSLObject). SHUTDOWN: our close_notify sent.
WAIT_HELLO: Final = 0
HANDSHAKE: Final = 1
OPEN: Final = 2
SHUTDOWN: Final = 3
CLOSED: Final = 4

_WantRead = ssl.SSLWantReadError


def _shared_buffer() -> memoryview:
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(_BUFFER_SIZE))
    return view


class PumpOwner(Protocol):
    """Who is told about a pump's life: the server (per listener) or one ``connect()``."""

    def pump_accepted(self, pump: TLSPump) -> None:
        """The TCP connection exists (``pump.transport`` is set)."""

    def pump_started(self, pump: TLSPump) -> bool:
        """The first bytes arrived (server side); False drops the connection."""

    def handshake_done(self, pump: TLSPump, exc: BaseException | None) -> None:
        """The handshake finished (*exc* None) or failed; called once."""

    def pump_lost(self, pump: TLSPump) -> None:
        """The transport is gone."""


class Preface(Protocol):
    """Bytes a server connection reads in clear before TLS (a PROXY protocol header)."""

    def feed(self, pump: TLSPump, data: memoryview) -> memoryview | bytes | None:
        """Take *data*; return what follows the preface (TLS), or nothing to wait for more.

        To refuse the connection, abort *pump* (and return nothing).
        """


class TLSPump(StreamBuffer, asyncio.BufferedProtocol):
    """One TLS connection: the record pump plus the handler's buffered stream."""

    __slots__ = (
        "__weakref__",
        "_groups",
        "_hello",
        "_incoming",
        "_outgoing",
        "_owner",
        "_peer_closed",
        "_shutdown_timeout",
        "_sslobj",
        "_tcp_eof",
        "_timer",
        "context",
        "facts",
        "preface",
        "server_hostname",
        "server_side",
        "started",
        "state",
        "transport",
    )

    def __init__(
        self,
        owner: PumpOwner,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        groups: Collection[str],
        shutdown_timeout: float,
        write_timeout: float = 0.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(loop or asyncio.get_running_loop(), write_timeout=write_timeout)
        self._owner = owner
        self.context = context
        self.server_side = server_side
        self.server_hostname = server_hostname
        self._groups = groups  # the key-exchange groups a finished handshake may have used
        self._shutdown_timeout = shutdown_timeout
        self.transport: Any = None
        self._sslobj: ssl.SSLObject | None = None
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._hello: bytes | None = None
        self._peer_closed = False
        self._tcp_eof = False
        self.preface: Preface | None = None
        #: ``(group, server_name)`` of the finished handshake (``_openssl.handshake_facts``).
        self.facts: tuple[str | None, str | None] | None = None
        self.state = WAIT_HELLO
        self.started = 0.0

    # -- what the server and the client read ---------------------------------------------------
    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The ``SSLObject`` (None before the first byte and after the close)."""
        return self._sslobj

    @property
    def client_hello(self) -> bytes | None:
        """The first bytes the client sent (kept only while the handshake runs)."""
        return self._hello

    def set_timer(self, delay: float, callback: Any, *args: Any) -> None:
        """Arm the connection's one timer (replacing any); cancelled when the transport goes."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(delay, callback, *args)

    def cancel_timer(self) -> None:
        """Cancel the timer, if armed."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    # -- asyncio.BufferedProtocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._owner.pump_accepted(self)
        if not self.server_side and self.state == WAIT_HELLO:
            self.started = time.perf_counter()
            self._start(b"")

    def get_buffer(self, sizehint: int) -> memoryview:
        return _shared_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        try:
            data: memoryview | bytes = _shared_buffer()[:nbytes]
            if self.state == WAIT_HELLO:
                if self.preface is not None:  # bytes in clear before the ClientHello
                    tls = self.preface.feed(self, _shared_buffer()[:nbytes])
                    if not tls or self.state != WAIT_HELLO:
                        return
                    data = tls
                # The first bytes of a server connection: only now does it cost an SSLObject.
                self.started = time.perf_counter()  # loop.time() is 1 ms coarse on uvloop
                if not self._owner.pump_started(self):
                    self.transport.abort()
                    return
                self._start(bytes(data[:2048]))
            incoming = self._incoming
            if incoming is None:  # closed in the meantime: drop the bytes
                return
            incoming.write(data)
            self._process()
        except Exception as exc:  # noqa: BLE001 - a bug: loud, once, and this connection only
            self._internal_error(exc)

    def eof_received(self) -> bool:
        self._tcp_eof = True
        if self.state in (WAIT_HELLO, HANDSHAKE):
            self._fail(ConnectionResetError("connection closed during the TLS handshake"))
            return False
        if self.state == OPEN:
            self._set_eof()  # a TCP FIN without close_notify: end of stream (truncation)
            return True  # keep our side open: the handler may still reply
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.cancel_timer()
        state, self.state = self.state, CLOSED
        if state == HANDSHAKE or (state == WAIT_HELLO and not self.server_side):
            self._owner.handshake_done(
                self,
                exc
                or self._exc
                or ConnectionAbortedError("connection closed during the TLS handshake"),
            )
        self._set_closed(exc if exc is not None else self._exc)
        self._sslobj = self._incoming = self._outgoing = None
        self._hello = None
        self._owner.pump_lost(self)

    # -- the pump ----------------------------------------------------------------------------
    def _start(self, hello: bytes) -> None:
        self.state = HANDSHAKE
        self._hello = hello or None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = self.context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=self.server_side,
            server_hostname=self.server_hostname,
        )
        if not self.server_side:
            self._process()

    def _flush(self) -> None:
        outgoing = self._outgoing
        if outgoing is not None and outgoing.pending:
            self.transport.write(outgoing.read())

    def _process(self) -> None:
        sslobj = self._sslobj
        assert sslobj is not None
        try:
            if self.state == HANDSHAKE:
                try:
                    sslobj.do_handshake()
                except _WantRead:
                    self._flush()
                    return
                self.facts = facts = handshake_facts(sslobj)  # read once: policy + TLSInfo
                if (problem := check_forward_secret(sslobj, self._groups, facts=facts)) is not None:
                    self._flush()
                    self._refuse(sslobj, problem)
                    return
                self.state = OPEN
                self._hello = None
                self.cancel_timer()
                self._flush()
                self._owner.handshake_done(self, None)
            if self.state == OPEN:
                if not self._read_paused:
                    self._decrypt(sslobj)
            elif self.state == SHUTDOWN:
                self._drain_after_close(sslobj)
            self._flush()
        except ssl.SSLError as exc:
            self._fail(exc)

    def _decrypt(self, sslobj: ssl.SSLObject) -> None:
        buf = _shared_buffer()
        size = len(buf)
        total = 0
        try:
            while total < size:
                n = cast(int, sslobj.read(size - total, buf[total:]))  # with a buffer: a count
                if not n:  # the peer's close_notify
                    self._peer_closed = True
                    break
                total += n
        except _WantRead:
            pass
        except ssl.SSLZeroReturnError:
            self._peer_closed = True
        if total:
            self._deliver(bytes(buf[:total]))
            if total == size and not self._read_paused and self._incoming:
                # The buffer was full: more may be waiting in the BIO.
                self._decrypt(sslobj)
                return
        if self._peer_closed:
            self._set_eof()

    def _drain_after_close(self, sslobj: ssl.SSLObject) -> None:
        # Our close_notify is out: discard what still arrives until the peer's close_notify.
        buf = _shared_buffer()
        try:
            while sslobj.read(len(buf), buf):
                pass
        except _WantRead:
            return
        except ssl.SSLZeroReturnError:
            pass
        self._peer_closed = True
        self.transport.close()

    def _resume_input(self) -> None:
        if self.state == OPEN and self.transport is not None:
            self.transport.resume_reading()
            self._process()  # what the BIO and OpenSSL held back while paused

    def _pause_input(self) -> None:
        self.transport.pause_reading()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- writing and closing -----------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt *data* and hand the records to the transport; raise if it cannot be sent."""
        if self.state != OPEN or self.transport.is_closing():
            if self._exc is not None:
                raise ConnectionResetError(f"connection lost: {self._exc}") from self._exc
            raise ConnectionResetError("connection closed: cannot send")
        if not data:
            return
        sslobj = self._sslobj
        assert sslobj is not None
        try:
            if len(data) <= _BUFFER_SIZE:
                sslobj.write(data)
                self._flush()
                return
            # Large writes in slices: the outgoing BIO never holds more than one slice.
            view = memoryview(data)
            for start in range(0, len(view), _BUFFER_SIZE):
                sslobj.write(view[start : start + _BUFFER_SIZE])
                self._flush()
        except ssl.SSLError as exc:
            self._fail(exc)
            raise ConnectionResetError(f"cannot send: {exc}") from exc

    def close(self) -> None:
        """Send close_notify and close; the transport is aborted after ``shutdown_timeout``."""
        state = self.state
        if state >= SHUTDOWN:
            return
        if self.transport is None:
            self.state = CLOSED
            return
        self.state = SHUTDOWN
        sslobj = self._sslobj
        if state != OPEN or sslobj is None or self._tcp_eof:
            if sslobj is not None and state == OPEN:
                self._unwrap(sslobj)
            self._close_transport()
            return
        if self._unwrap(sslobj) or self._peer_closed:
            self._close_transport()
            return
        self.set_timer(self._shutdown_timeout, self._abort)
        if self._read_paused:  # we must read on, to see the peer's close_notify
            self._read_paused = False
            self.transport.resume_reading()
        self._process()

    def _close_transport(self) -> None:
        transport = self.transport
        if transport.get_write_buffer_size():  # bytes still queued: bound the wait for them
            self.set_timer(self._shutdown_timeout, self._abort)
        transport.close()

    def _unwrap(self, sslobj: ssl.SSLObject) -> bool:
        """Send close_notify; True if the peer's is in too."""
        try:
            sslobj.unwrap()
            done = True
        except _WantRead:
            done = False
        except ssl.SSLError:
            done = True  # e.g. the peer's alert: nothing more to wait for
        try:
            self._flush()
        except Exception:  # noqa: BLE001 - the transport is already failing
            return True
        return done

    def abort(self) -> None:
        """Drop the connection at once (no close_notify)."""
        if self.state < SHUTDOWN:
            self.state = SHUTDOWN
        self._abort()

    def _fail(self, exc: BaseException) -> None:
        """A fatal error: flush the alert OpenSSL queued, then close, bounded by the timer."""
        state = self.state
        if not self.server_side and state == OPEN and isinstance(exc, ssl.SSLError):
            exc = rejection(exc)
        if self._exc is None:
            self._exc = exc
        if state == CLOSED:
            return
        self.state = SHUTDOWN
        if state == HANDSHAKE:
            self._owner.handshake_done(self, exc)
        self._set_eof(exc)
        transport = self.transport
        try:
            self._flush()
        except Exception:  # noqa: BLE001 - the transport is already failing
            transport.abort()
            return
        if transport.is_closing():
            return
        self.set_timer(self._shutdown_timeout, self._abort)
        transport.close()

    def _refuse(self, sslobj: ssl.SSLObject, problem: str) -> None:
        """Not forward secret: OpenSSL's fatal alert out, then fail like a refused handshake."""
        assert self._incoming is not None
        assert self._outgoing is not None
        alert = fatal_alert(sslobj, self._incoming, self._outgoing)
        if alert:
            self.transport.write(alert)
        self._fail(NotForwardSecretError(problem))

    def _internal_error(self, exc: BaseException) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        log.error("internal error in the TLS layer (connection from %s)", peer, exc_info=exc)
        if self._exc is None:
            self._exc = exc
        if self.state == HANDSHAKE or (self.state == WAIT_HELLO and self.transport is not None):
            self.state = SHUTDOWN
            self._owner.handshake_done(self, exc)
        self._set_eof(exc)
        self._abort()
