"""Helpers for the network tests (test_server, test_client, test_handlers) and sample handlers.

Nothing here sleeps to synchronise: waits are on log records (:class:`LogWatch`), on futures, or
on the peer's bytes, and every one is bounded by a timeout. The sample handlers at the bottom are
loaded by import path (``"tests.netutil:upper_handler"``) in the handler-resolution tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from typing import Self

from ecdhe_async.connection import Connection
from ecdhe_async.handlers.framing import encode_frame
from ecdhe_async.settings import ServerSettings

# -- logs as events ---------------------------------------------------------------------------


class LogWatch(logging.Handler):
    """Collect ``ecdhe_async`` log records and let a test await one (no polling, no sleeps)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._waiters: list[tuple[Callable[[logging.LogRecord], bool], asyncio.Future[None]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(record):
                # Records also come from worker threads (asyncio.to_thread): wake the loop's way.
                fut.get_loop().call_soon_threadsafe(_wake, fut)

    def matching(self, text: str, level: int | None = None) -> list[logging.LogRecord]:
        """Records whose formatted message contains *text* (and have *level*, if given)."""
        return [
            r
            for r in self.records
            if text in r.getMessage() and (level is None or r.levelno == level)
        ]

    async def wait(
        self, text: str, count: int = 1, deadline: float = 10.0
    ) -> list[logging.LogRecord]:
        """Wait until at least *count* records contain *text*; return them."""
        loop = asyncio.get_running_loop()
        while len(found := self.matching(text)) < count:
            fut: asyncio.Future[None] = loop.create_future()
            entry = (lambda r: text in r.getMessage(), fut)
            self._waiters.append(entry)
            try:
                await asyncio.wait_for(fut, deadline)
            except TimeoutError:
                raise AssertionError(
                    f"no {count} log record(s) containing {text!r} within {deadline}s; got: "
                    + "; ".join(r.getMessage() for r in self.records[-20:])
                ) from None
            finally:
                self._waiters.remove(entry)
        return found


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@contextlib.contextmanager
def log_watch(name: str = "ecdhe_async") -> Iterator[LogWatch]:
    """Attach a :class:`LogWatch` to logger *name* at DEBUG for the duration of the block."""
    logger = logging.getLogger(name)
    watch = LogWatch()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(old_level)


# -- raw sockets ------------------------------------------------------------------------------


async def raw_connect(port: int, deadline: float = 5.0) -> socket.socket:
    """A plain non-blocking TCP socket connected to 127.0.0.1:*port*."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), deadline)
    except BaseException:
        sock.close()
        raise
    return sock


def rst_close(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def read_until_closed(sock: socket.socket, deadline: float = 5.0) -> tuple[bytes, str]:
    """Read until EOF or reset; return (bytes received, ``"eof"`` or ``"reset"``)."""
    loop = asyncio.get_running_loop()
    got = bytearray()
    async with asyncio.timeout(deadline):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                return bytes(got), "reset"
            if not chunk:
                return bytes(got), "eof"
            got += chunk


def client_hello(server_hostname: str = "localhost") -> bytes:
    """The bytes of a real TLS ClientHello (generated with a memory BIO, never sent)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname=server_hostname)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


class DumbTLSClient:
    """A TLS client over a raw socket that completes the handshake and then does nothing.

    It never reads again, so it never answers close_notify: the peer that ignores our close
    (aiohttp#11091). ``send`` writes application data without ever reading.
    """

    def __init__(self, sock: socket.socket, obj: ssl.SSLObject, out: ssl.MemoryBIO) -> None:
        self.sock = sock
        self._obj = obj
        self._out = out

    @classmethod
    async def connect(cls, port: int, ctx: ssl.SSLContext, deadline: float = 5.0) -> Self:
        loop = asyncio.get_running_loop()
        sock = await raw_connect(port, deadline)
        incoming, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, out, server_hostname="localhost")
        try:
            async with asyncio.timeout(deadline):
                while True:
                    try:
                        obj.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        if data := out.read():
                            await loop.sock_sendall(sock, data)
                        chunk = await loop.sock_recv(sock, 65536)
                        if not chunk:
                            raise ConnectionError("server closed during the handshake") from None
                        incoming.write(chunk)
                if data := out.read():
                    await loop.sock_sendall(sock, data)
        except BaseException:
            sock.close()
            raise
        return cls(sock, obj, out)

    async def send(self, data: bytes, deadline: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        for start in range(0, len(data), 16384):
            self._obj.write(data[start : start + 16384])
            await asyncio.wait_for(loop.sock_sendall(self.sock, self._out.read()), deadline)

    def close(self) -> None:
        self.sock.close()


# -- a connection that keeps echoing while something else misbehaves -------------------------


class LiveEcho:
    """Ping-pong numbered random messages over one established connection in the background.

    ``encode`` turns a payload into what goes on the wire for the server's handler (raw bytes,
    a line, a frame); the echo must come back byte for byte, in order. :meth:`finish` stops,
    re-raises anything that went wrong, and returns the number of bytes verified.
    """

    def __init__(self, conn: Connection, encode: Callable[[bytes], bytes] | None = None) -> None:
        self.conn = conn
        self.encode = encode or (lambda b: b)
        self.rounds = 0
        self.verified = 0
        self._stop = asyncio.Event()
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        rng = random.Random(1234)
        for i in range(10_000_000):  # bounded; stopped long before by finish()
            if self._stop.is_set():
                return
            payload = b"%08d:" % i + rng.randbytes(rng.randrange(1, 8192)).hex().encode()
            wire = self.encode(payload)
            self.conn.write(wire)
            await asyncio.wait_for(self.conn.drain(), 10)
            echoed = await asyncio.wait_for(self.conn.readexactly(len(wire)), 10)
            assert echoed == wire, f"live connection corrupted at message {i}"
            self.rounds += 1
            self.verified += len(wire)
            if not self._first.done():
                self._first.set_result(None)

    async def started(self) -> None:
        """Wait until at least one message made the round trip."""
        await asyncio.wait_for(asyncio.shield(self._first), 10)

    async def finish(self) -> int:
        self._stop.set()
        await asyncio.wait_for(self._task, 15)
        return self.verified

    def cancel(self) -> None:
        """Stop without checking (cleanup after a failure); never leaves an unretrieved error."""
        if self._task.done():
            if not self._task.cancelled():
                self._task.exception()
        else:
            self._task.cancel()


# -- sample handlers, loaded by import path ---------------------------------------------------


async def upper_handler(conn: Connection) -> None:
    """Echo every chunk upper-cased."""
    while data := await conn.read():
        await conn.send(data.upper())


class PrefixHandler:
    """Echo each chunk behind a prefix; ``from_settings`` picks the prefix from the settings."""

    def __init__(self, prefix: bytes = b"> ") -> None:
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Self:
        return cls(b"[%d] " % settings.max_line_length)

    async def __call__(self, conn: Connection) -> None:
        while data := await conn.read():
            await conn.send(self.prefix + data)


class PlainHandler:
    """A handler class without ``from_settings`` (instantiated with no arguments)."""

    async def __call__(self, conn: Connection) -> None:
        while data := await conn.read():
            await conn.send(data[::-1])


class Namespace:
    """Holds a handler one attribute deep (``"tests.netutil:Namespace.handler"``)."""

    handler = staticmethod(upper_handler)


def sync_handler(conn: Connection) -> None:
    """Not async: the resolver must refuse it."""


class SyncCallable:
    def __call__(self, conn: Connection) -> None:
        """Not async: the resolver must refuse it."""


NOT_CALLABLE = 42


def frame(payload: bytes) -> bytes:
    return encode_frame(payload)


def line(payload: bytes) -> bytes:
    return payload + b"\n"
