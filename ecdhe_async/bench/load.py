"""The load generator of ``ecdhe-async bench``: workers that connect, handshake and echo.

``handshakes`` workers repeat connect → full handshake → 16-byte echo → close; ``throughput``
connections keep a bounded window of blocks in flight. :func:`run_load` runs a warm-up and then
the measurement window (see :mod:`ecdhe_async.bench`), every network operation under a timeout;
:func:`probe` reports what the server negotiates. Counting is :mod:`.measure`'s job.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, cast

from .. import _openssl
from .measure import PAYLOAD, Counters, LoadConfig, LoadResult, Snapshot

__all__ = ["probe", "run_load"]

_ERROR_BACKOFF: Final = 0.01


class _EchoMismatchError(Exception):
    """The server answered with something other than the payload."""


_IO_ERRORS: Final = (OSError, ssl.SSLError, TimeoutError, EOFError, _EchoMismatchError)


# -- handshakes mode ---------------------------------------------------------------------------
class _EchoOnce(asyncio.Protocol):
    """Send the payload once the handshake is done; resolve when it comes back; note the end."""

    __slots__ = ("buf", "closed", "echoed", "transport")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.buf = b""
        self.echoed: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        cast(asyncio.Transport, transport).write(PAYLOAD)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= len(PAYLOAD) and not self.echoed.done():
            if self.buf[: len(PAYLOAD)] == PAYLOAD:
                self.echoed.set_result(None)
            else:
                self.echoed.set_exception(_EchoMismatchError(f"unexpected reply {self.buf!r}"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.echoed.done():
            self.echoed.set_exception(exc or EOFError("closed before the echo"))
        if not self.closed.done():
            self.closed.set_result(None)


async def _handshake_worker(
    cfg: LoadConfig, ctx: ssl.SSLContext, counters: Counters, stop: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = time.perf_counter()
        transport: asyncio.Transport | None = None
        try:
            async with asyncio.timeout(cfg.timeout):
                transport, proto = await loop.create_connection(
                    lambda: _EchoOnce(loop),
                    cfg.host,
                    cfg.port,
                    ssl=ctx,
                    server_hostname=cfg.server_hostname or cfg.host,
                    ssl_handshake_timeout=cfg.timeout,
                    ssl_shutdown_timeout=cfg.timeout,
                )
                await proto.echoed
                latency = time.perf_counter() - started
                transport.close()
                await proto.closed
        except _IO_ERRORS as exc:
            if transport is not None:
                transport.abort()
            counters.error(exc)
            await asyncio.sleep(_ERROR_BACKOFF)
            continue
        except BaseException:
            if transport is not None:
                transport.abort()
            raise
        counters.op(latency, len(PAYLOAD))


# -- throughput mode ---------------------------------------------------------------------------
class _Streamer(asyncio.Protocol):
    """Keep up to *window* blocks in flight; count what comes back; stop on request."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, block: bytes, window: int, counters: Counters
    ) -> None:
        self.block = block
        self.window = window
        self.counters = counters
        self.sent: deque[float] = deque()
        self.outstanding = 0
        self.partial = 0
        self.stopping = False
        self.drained: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)
        for _ in range(self.window):
            self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.block)
        self.sent.append(time.perf_counter())
        self.outstanding += len(self.block)

    def stop(self) -> None:
        self.stopping = True
        if self.outstanding == 0 and not self.drained.done():
            self.drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        size = len(self.block)
        self.outstanding -= len(data)
        self.partial += len(data)
        while self.partial >= size:
            self.partial -= size
            self.counters.op(time.perf_counter() - self.sent.popleft(), size)
            if not self.stopping:
                self._send()
        if self.stopping and self.outstanding <= 0 and not self.drained.done():
            self.drained.set_result(None)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.drained.done():
            if self.stopping and self.outstanding <= 0:
                self.drained.set_result(None)
            else:
                self.drained.set_exception(exc or EOFError("server closed the stream"))
        if not self.closed.done():
            self.closed.set_result(None)


async def _throughput_worker(
    cfg: LoadConfig, ctx: ssl.SSLContext, counters: Counters, stop: asyncio.Event, block: bytes
) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        transport: asyncio.Transport | None = None
        try:
            async with asyncio.timeout(cfg.timeout):
                transport, proto = await loop.create_connection(
                    lambda: _Streamer(loop, block, cfg.window, counters),
                    cfg.host,
                    cfg.port,
                    ssl=ctx,
                    server_hostname=cfg.server_hostname or cfg.host,
                    ssl_handshake_timeout=cfg.timeout,
                    ssl_shutdown_timeout=cfg.timeout,
                )
            stopper = loop.create_task(stop.wait())
            try:
                # Streams until told to stop (or the connection breaks).
                either: set[asyncio.Future[Any]] = {stopper, proto.drained}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
            proto.stop()
            async with asyncio.timeout(cfg.timeout):
                await proto.drained
                transport.close()
                await proto.closed
        except _IO_ERRORS as exc:
            if transport is not None:
                transport.abort()
            counters.error(exc)
            await asyncio.sleep(_ERROR_BACKOFF)
        except BaseException:
            if transport is not None:
                transport.abort()
            raise


# -- engine ------------------------------------------------------------------------------------
async def run_load(
    cfg: LoadConfig,
    ctx: ssl.SSLContext,
    on_mark: Callable[[str, Snapshot], None] | None = None,
) -> LoadResult:
    """Run *cfg* against its server: warm-up, then the measurement window, then a bounded stop.

    *on_mark* is called with ``("start", snapshot)`` and ``("end", snapshot)`` at the window's
    edges, while the load keeps running (so an outside observer can sample the server there).
    """
    loop = asyncio.get_running_loop()
    counters = Counters()
    stop = asyncio.Event()
    block = os.urandom(cfg.block_size)
    tasks: list[asyncio.Task[None]] = []
    for _ in range(cfg.concurrency):
        if cfg.mode == "handshakes":
            coro = _handshake_worker(cfg, ctx, counters, stop)
        else:
            coro = _throughput_worker(cfg, ctx, counters, stop, block)
        tasks.append(loop.create_task(coro))
    try:
        if cfg.warmup > 0:
            await asyncio.sleep(cfg.warmup)
        start = counters.snapshot()
        counters.recording = True
        if cfg.count is not None:
            counters.target = start.ops + cfg.count
            counters.reached = loop.create_future()
        if on_mark is not None:
            on_mark("start", start)
        waits: set[asyncio.Future[None]] = set()
        if counters.reached is not None:
            waits.add(counters.reached)
        sleeper = loop.create_task(asyncio.sleep(cfg.duration))
        waits.add(sleeper)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        end = counters.snapshot()
        counters.recording = False
        if on_mark is not None:
            on_mark("end", end)
    finally:
        stop.set()
        _, still = await asyncio.wait(tasks, timeout=cfg.timeout + 1.0)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=1.0)
    return LoadResult(
        cfg.mode, cfg.concurrency, start, end, tuple(counters.latencies), counters.last_error
    )


async def probe(
    host: str, port: int, ctx: ssl.SSLContext, server_hostname: str | None, op_timeout: float
) -> dict[str, str | None]:
    """One handshake and echo: what the server negotiates (version, cipher, group)."""
    loop = asyncio.get_running_loop()
    timeout = op_timeout
    async with asyncio.timeout(timeout):
        transport, proto = await loop.create_connection(
            lambda: _EchoOnce(loop),
            host,
            port,
            ssl=ctx,
            server_hostname=server_hostname or host,
            ssl_handshake_timeout=timeout,
            ssl_shutdown_timeout=timeout,
        )
        try:
            await proto.echoed
            obj: Any = transport.get_extra_info("ssl_object")
            cipher = obj.cipher() if obj is not None else None
            session = obj.session if obj is not None else None
            info: dict[str, str | None] = {
                "version": obj.version() if obj is not None else None,
                "cipher": cipher[0] if cipher else None,
                "group": _openssl.negotiated_group(obj) if obj is not None else None,
                "session_ticket": "yes" if session is not None and session.has_ticket else "no",
            }
            transport.close()
            await proto.closed
        finally:
            transport.abort()
    return info
