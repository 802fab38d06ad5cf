"""The application side of a connection: buffered decrypted bytes, one reader, write flow control.

:class:`StreamBuffer` holds what the TLS pump (:mod:`ecdhe_async._pump`) decrypted until the
handler reads it. Each decrypted batch is one ``bytes`` chunk, handed to the reader as is when it
asks for everything (no copy) and sliced otherwise. Unread chunks are the only per-connection
memory, so an idle connection holds none.

Flow control both ways:

- **Reading.** Past ``high_water`` unread bytes the pump stops decrypting and pauses the socket;
  it resumes once the reader took the buffer down to a quarter of that. A reader waiting for
  *n* bytes (:meth:`readexactly`) raises the mark to *n* for as long as it waits: the bytes it
  asked for are allowed in (it bounds them itself, e.g. by ``max_frame_size``), so it can never
  wait on a paused socket.
- **Writing.** :meth:`drain` waits while the transport's write buffer is above its high-water
  mark, at most ``write_timeout`` seconds (a peer that never reads cannot hold the connection and
  its buffers longer): then the connection is aborted and the writer gets ``TimeoutError``.

On a server, :attr:`StreamBuffer.account` charges the unread bytes, and what the handler declares
it holds (:meth:`StreamBuffer.hold`), to the server-wide memory budget (:mod:`ecdhe_async._budget`):
charged on delivery, refunded on read, all given back when the transport goes. A connection the
budget cannot take is aborted and its reader gets :class:`~ecdhe_async._budget.BudgetExceeded`.
"""

from __future__ import annotations

import asyncio
from typing import Final

from ._budget import Account

__all__ = ["StreamBuffer"]

HIGH_WATER: Final = 256 * 1024


class StreamBuffer:
    """Decrypted chunks for one reader plus the drain side; the pump subclasses it."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_closed_waiter",
        "_drain_waiter",
        "_eof",
        "_exc",
        "_high_water",
        "_loop",
        "_read_paused",
        "_stopping",
        "_waiter",
        "_want",
        "_write_paused",
        "_write_timeout",
        "account",
        "closed",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, *, write_timeout: float = 0.0) -> None:
        self._loop = loop
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._high_water = HIGH_WATER
        self._want = 0
        self._read_paused = False
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._write_timeout = write_timeout
        self._stopping = False
        self.closed = False
        self.account: Account | None = None  # the server's memory budget (None: unbounded)

    # -- hooks for the transport side (the pump overrides them) ------------------------------
    def _pause_input(self) -> None:
        """Stop feeding (the pump pauses the socket)."""

    def _resume_input(self) -> None:
        """Feed again (the pump resumes the socket and decrypts what it held back)."""

    def _abort(self) -> None:
        """Drop the connection at once (the pump aborts the transport)."""

    # -- the feeding side --------------------------------------------------------------------
    @property
    def input_paused(self) -> bool:
        """True while the reader is behind (more than the high-water mark is buffered)."""
        return self._read_paused

    def _deliver(self, data: bytes) -> None:
        if self.account is not None and not self.account.charge(len(data)):
            self._over_budget(self.account)
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if not self._read_paused and self._buffered > max(self._high_water, self._want):
            self._read_paused = True
            self._pause_input()
        self._wake()

    def _set_eof(self, exc: BaseException | None = None) -> None:
        self._eof = True
        if exc is not None and self._exc is None:
            self._exc = exc
        self._wake()

    def _set_closed(self, exc: BaseException | None) -> None:
        """The transport is gone: end the stream, fail a pending drain, wake :meth:`wait_closed`."""
        self.closed = True
        account, self.account = self.account, None
        if account is not None:
            account.close()  # everything back to the budget; later reads and holds are free
        self._set_eof(exc)
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(ConnectionResetError("connection lost while draining"))
        waiter, self._closed_waiter = self._closed_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def interrupt(self) -> None:
        """Wake a reader waiting in :meth:`read_next` (graceful stop): it returns ``b""``."""
        self._stopping = True
        self._wake()

    # -- the reader's side -------------------------------------------------------------------
    @property
    def at_eof(self) -> bool:
        """True when the peer closed and every received byte was read."""
        return self._eof and not self._buffered

    def _wait(self) -> asyncio.Future[None]:
        # A future to await, not a coroutine: no frame kept per idle reader. _wake clears it;
        # a reader cancelled while waiting leaves it done (cancelled), which counts as free.
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            raise RuntimeError("read() called while another coroutine is already reading")
        self._waiter = waiter = self._loop.create_future()
        return waiter

    def _take(self, n: int | None) -> bytes:
        chunks = self._chunks
        first = chunks[0]
        if n is None or n >= self._buffered:
            data = first if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        elif n < len(first):
            data, chunks[0] = first[:n], first[n:]
        else:
            taken = 0
            count = 0
            while taken + len(chunks[count]) <= n:
                taken += len(chunks[count])
                count += 1
            parts = chunks[:count]
            rest = n - taken
            if rest:
                parts.append(chunks[count][:rest])
                chunks[count] = chunks[count][rest:]
            del chunks[:count]
            data = b"".join(parts)
        self._buffered -= len(data)
        if self.account is not None:
            self.account.refund(len(data))
        if self._read_paused and self._buffered <= self._high_water // 4:
            self._read_paused = False
            self._resume_input()
        return data

    def _end(self) -> bytes:
        if self._exc is not None:
            raise self._exc
        return b""

    async def read(self, n: int | None = None) -> bytes:
        """Up to *n* bytes (``None``: all that arrived); ``b""`` at the end of the stream."""
        if n == 0:
            return b""
        while not self._buffered:
            if self._eof:
                return self._end()
            await self._wait()
        return self._take(n)

    async def read_next(self, n: int | None = None) -> bytes:
        """Like :meth:`read`, but ``b""`` at once when :meth:`interrupt` was called."""
        while not (self._buffered or self._eof):
            if self._stopping:
                return b""
            await self._wait()
        return await self.read(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly *n* bytes, or :class:`asyncio.IncompleteReadError` at the end of the stream."""
        if n <= 0:
            if n < 0:
                raise ValueError("readexactly size can not be less than zero")
            return b""
        if self._buffered < n:
            self._want = n
            if self._read_paused and self._buffered < n:
                # Asked for more than the mark: let the bytes it asked for in.
                self._read_paused = False
                self._resume_input()
            try:
                while self._buffered < n:
                    if self._eof:
                        partial = self._take(None) if self._buffered else b""
                        if self._exc is not None:
                            raise self._exc
                        raise asyncio.IncompleteReadError(partial, n)
                    await self._wait()
            finally:
                self._want = 0
        return self._take(n)

    def hold(self, nbytes: int) -> None:
        """The reader now keeps *nbytes* of input elsewhere (a partial message): charge them.

        Raises :class:`~ecdhe_async._budget.BudgetExceeded` (the connection is aborted) when the
        server's budget cannot take them.
        """
        account = self.account
        if account is not None and not account.hold(nbytes):
            self._over_budget(account)
            assert self._exc is not None
            raise self._exc

    def _over_budget(self, account: Account) -> None:
        # Drop this connection only: its unread bytes go back to the budget at once, nothing
        # more is decrypted (input stays paused), the reader gets the error.
        account.refund(self._buffered)
        self._chunks.clear()
        self._buffered = 0
        self._read_paused = True
        self._set_eof(account.exceeded())
        self._abort()

    # -- the writer's side -------------------------------------------------------------------
    def pause_writing(self) -> None:
        """The transport's write buffer went above its high-water mark."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark."""
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait while the write buffer is above its high-water mark (bounded by write_timeout)."""
        if self.closed:
            raise ConnectionResetError("connection lost") from self._exc
        if not self._write_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        waiter = asyncio.shield(self._drain_waiter)
        if self._write_timeout <= 0:
            await waiter
            return
        try:
            async with asyncio.timeout(self._write_timeout):
                await waiter
        except TimeoutError:
            self._abort()
            raise TimeoutError(
                f"the peer read nothing for {self._write_timeout:g}s (write_timeout): aborted"
            ) from None

    async def wait_closed(self) -> None:
        """Wait until the transport is gone (the pump bounds that wait itself)."""
        if self.closed:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self._loop.create_future()
        await asyncio.shield(self._closed_waiter)
