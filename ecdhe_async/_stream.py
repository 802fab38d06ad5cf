"""The application side of our TLS layer: decrypted bytes go straight to the handler.

With ``asyncio.StreamReader`` every received byte is copied three times after OpenSSL decrypts
it (into a fresh ``bytes``, into the reader's ``bytearray``, out again on ``read()``) plus a
``memmove`` of the remainder. :class:`StreamProtocol` is a ``BufferedProtocol``: OpenSSL decrypts
into one per-thread scratch buffer, each batch is copied once into a ``bytes`` chunk, and
:meth:`read` hands that chunk to the handler as is. Unread chunks are the only per-connection
memory, so an idle connection holds none.

Flow control both ways: past ``high_water`` unread bytes the TLS layer stops decrypting (and
then stops reading the socket); :meth:`drain` waits while the TLS layer's write buffer is full.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any, Final

from ._budget import Account

__all__ = ["StreamProtocol"]

_SCRATCH_SIZE: Final = 256 * 1024
_local = threading.local()


def _scratch() -> memoryview:
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(_SCRATCH_SIZE))
    return view


class StreamProtocol(asyncio.BufferedProtocol):
    """Buffers decrypted chunks for one reader; tracks write flow control and the close."""

    def __init__(self, *, high_water: int = 256 * 1024, account: Account | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._account = account  # the server's memory budget (None: unbounded, e.g. a client)
        self._dropped = False  # closed for exceeding the budget: ignore further bytes
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._high_water = high_water
        self.transport: Any = None
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused = False
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # -- protocol callbacks (called by the TLS layer) ------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return _scratch()

    def buffer_updated(self, nbytes: int) -> None:
        if self._account is not None and not self._account.charge(nbytes):
            self._over_budget()
        if self._dropped:
            return
        self._chunks.append(bytes(_scratch()[:nbytes]))
        self._buffered += nbytes
        if self._buffered > self._high_water and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._account is not None:
            self._account.close()
        self._eof = True
        if exc is not None and self._exc is None:
            self._exc = exc
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(ConnectionResetError("connection lost while draining"))
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the reader's side -------------------------------------------------------------------
    @property
    def at_eof(self) -> bool:
        """True when the peer closed and every received byte was read."""
        return self._eof and not self._buffered

    async def _wait(self) -> None:
        if self._waiter is not None:
            raise RuntimeError("read() called while another coroutine is already reading")
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _take(self, n: int | None) -> bytes:
        chunks = self._chunks
        first = chunks[0]
        if n is None or n >= self._buffered:
            data = first if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        elif n < len(first):
            data, chunks[0] = first[:n], first[n:]
        else:
            parts = []
            need = n
            while need and chunks:
                chunk = chunks.popleft()
                if len(chunk) > need:
                    chunks.appendleft(chunk[need:])
                    chunk = chunk[:need]
                parts.append(chunk)
                need -= len(chunk)
            data = b"".join(parts)
        self._buffered -= len(data)
        if self._account is not None:
            self._account.refund(len(data))
        if self._read_paused and self._buffered <= self._high_water // 4:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    async def read(self, n: int | None = None) -> bytes:
        """Up to *n* bytes (``None``: all that arrived); ``b""`` at the end of the stream."""
        while not self._buffered:
            if self._eof:
                if self._exc is not None:
                    raise self._exc
                return b""
            await self._wait()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly *n* bytes, or :class:`asyncio.IncompleteReadError` at the end of the stream."""
        while self._buffered < n:
            if self._eof:
                partial = self._take(None) if self._buffered else b""
                if self._exc is not None:
                    raise self._exc
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait()
        return self._take(n)

    def hold(self, nbytes: int) -> None:
        """The reader holds *nbytes* of input elsewhere (a partial frame): charge the budget."""
        if self._account is not None and not self._account.hold(nbytes):
            self._over_budget()
            assert self._exc is not None
            raise self._exc

    def _over_budget(self) -> None:
        # Drop this connection only: its buffered bytes go back to the budget at once.
        if self._dropped:
            return
        self._dropped = True
        assert self._account is not None
        self._exc = self._account.exceeded(self.transport.get_extra_info("peername"))
        self._account.refund(self._buffered)
        self._chunks.clear()
        self._buffered = 0
        self._eof = True
        self.transport.abort()
        self._wake()

    # -- the writer's side -------------------------------------------------------------------
    async def drain(self) -> None:
        """Wait while the TLS layer's write buffer is above its high-water mark."""
        if self.closed.done():
            raise ConnectionResetError("connection lost") from self._exc
        if not self._write_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        await asyncio.shield(self._drain_waiter)
