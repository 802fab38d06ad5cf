"""``ecdhe-async bench``: a load generator for any TLS server (handshakes/s, MB/s, latency).

Two modes, both against ``HOST PORT``:

``handshakes``
    *concurrency* workers, each repeating: TCP connect, full TLS handshake (a fresh session every
    time: no resumption), send a 16-byte line, read the 16-byte echo, close (close_notify, then
    wait for the connection to end). Reports handshakes/s and the latency of connect→echo.
``throughput``
    *concurrency* connections, each streaming 64 KiB blocks with a bounded window (at most
    *window* blocks sent and not yet echoed) and reading the echo back. Reports MB/s echoed and
    the round-trip time of each block.

Every run is bounded: a warm-up, then a measurement window that ends after *duration* seconds
or *count* operations (handshakes or blocks), whichever comes first; every network operation has
a timeout. The client context comes from :func:`ecdhe_async.tls.client_context` (ECDHE groups
only, certificate verified unless ``--insecure``). The 16-byte payload is a palindromic line so
that a line-reversing echo (``openssl s_server -rev``) answers with the same bytes.

:func:`run_load` is the engine; ``benchmarks/run.py`` drives it in a separate, CPU-pinned process
and reads :class:`Snapshot` marks at the edges of the measurement window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

from . import _openssl
from .errors import ConfigError
from .loops import LoopName
from .loops import run as run_loop
from .settings import ClientSettings

__all__ = [
    "PAYLOAD",
    "LoadConfig",
    "LoadResult",
    "Mode",
    "Snapshot",
    "add_arguments",
    "bench_context",
    "main",
    "percentile",
    "probe",
    "raise_nofile_limit",
    "run_load",
]

Mode = Literal["handshakes", "throughput"]

#: 16 bytes, newline-terminated and palindromic (so ``s_server -rev`` echoes it unchanged).
PAYLOAD: Final = b"ecdhe-010-ehdce\n"

_ERROR_BACKOFF: Final = 0.01
_MB: Final = 1e6


@dataclass(slots=True)
class LoadConfig:
    """What to run. *count* bounds the window in operations (handshakes, or blocks echoed)."""

    mode: Mode
    host: str
    port: int
    concurrency: int = 16
    warmup: float = 1.0
    duration: float = 10.0
    count: int | None = None
    block_size: int = 64 * 1024
    window: int = 4
    timeout: float = 10.0
    server_hostname: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in get_args(Mode):
            raise ConfigError(f"invalid setting mode={self.mode!r}: handshakes or throughput")
        for name in ("concurrency", "block_size", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"invalid setting {name}={getattr(self, name)}: must be >= 1")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"invalid setting count={self.count}: must be >= 1")
        if not (self.warmup >= 0 and self.duration > 0 and self.timeout > 0):
            raise ConfigError("invalid setting: warmup >= 0, duration > 0 and timeout > 0")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters at one instant: monotonic time, this process's CPU seconds, ops, bytes, errors."""

    time: float
    cpu: float
    ops: int
    bytes: int
    errors: int

    def as_dict(self) -> dict[str, float | int]:
        """A JSON-ready dict."""
        return {
            "time": self.time,
            "cpu": self.cpu,
            "ops": self.ops,
            "bytes": self.bytes,
            "errors": self.errors,
        }


@dataclass(slots=True)
class _Counters:
    ops: int = 0
    bytes: int = 0
    errors: int = 0
    recording: bool = False
    latencies: list[float] = field(default_factory=list)
    last_error: str | None = None
    target: int | None = None
    reached: asyncio.Future[None] | None = None

    def op(self, latency: float, nbytes: int) -> None:
        self.ops += 1
        self.bytes += nbytes
        if self.recording:
            self.latencies.append(latency)
            if (
                self.target is not None
                and self.ops >= self.target
                and self.reached is not None
                and not self.reached.done()
            ):
                self.reached.set_result(None)

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = _describe_error(exc)

    def snapshot(self) -> Snapshot:
        return Snapshot(time.monotonic(), time.process_time(), self.ops, self.bytes, self.errors)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Counts inside the measurement window, and derived rates."""

    mode: Mode
    concurrency: int
    start: Snapshot
    end: Snapshot
    latencies: Sequence[float]
    last_error: str | None

    @property
    def seconds(self) -> float:
        """Length of the measurement window."""
        return max(self.end.time - self.start.time, 1e-9)

    @property
    def ops(self) -> int:
        """Handshakes (or blocks echoed) completed in the window."""
        return self.end.ops - self.start.ops

    @property
    def bytes(self) -> int:
        """Application bytes echoed back in the window."""
        return self.end.bytes - self.start.bytes

    @property
    def errors(self) -> int:
        """Failed operations in the window."""
        return self.end.errors - self.start.errors

    @property
    def client_cpu(self) -> float:
        """CPU seconds this process spent in the window."""
        return self.end.cpu - self.start.cpu

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (latencies as p50/p90/p99/max in milliseconds)."""
        lat = sorted(self.latencies)
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "seconds": self.seconds,
            "ops": self.ops,
            "ops_per_s": self.ops / self.seconds,
            "bytes": self.bytes,
            "mb_per_s": self.bytes / self.seconds / _MB,
            "errors": self.errors,
            "last_error": self.last_error,
            "client_cpu_s": self.client_cpu,
            "client_cpu_us_per_op": self.client_cpu / self.ops * 1e6 if self.ops else None,
            "latency_ms": {
                "p50": _ms(percentile(lat, 50)),
                "p90": _ms(percentile(lat, 90)),
                "p99": _ms(percentile(lat, 99)),
                "max": _ms(lat[-1] if lat else None),
            },
            "start": self.start.as_dict(),
            "end": self.end.as_dict(),
        }


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence (``None`` when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1e3


def _describe_error(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason) if reason else str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


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
    cfg: LoadConfig, ctx: ssl.SSLContext, counters: _Counters, stop: asyncio.Event
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
        self, loop: asyncio.AbstractEventLoop, block: bytes, window: int, counters: _Counters
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
    cfg: LoadConfig, ctx: ssl.SSLContext, counters: _Counters, stop: asyncio.Event, block: bytes
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
    counters = _Counters()
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


def bench_context(
    *,
    ca_file: str | None = None,
    insecure: bool = False,
    groups: str | None = None,
    tls13_only: bool = True,
) -> ssl.SSLContext:
    """The load generator's client context (ECDHE only; TLS 1.3 only unless told otherwise)."""
    tls: dict[str, Any] = {"profile": "modern" if tls13_only else "intermediate"}
    if ca_file is not None:
        tls["ca_file"] = ca_file
    if insecure:
        tls["insecure_skip_verify"] = True
    if groups is not None:
        tls["groups"] = groups
    from .tls import client_context

    return client_context(ClientSettings.load(tls=tls).tls)


def raise_nofile_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- command line ------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to *parser*."""
    parser.add_argument("mode", choices=get_args(Mode), help="what to measure")
    parser.add_argument("host", help="server address")
    parser.add_argument("port", type=int, help="server port")
    parser.add_argument("--ca-file", metavar="PEM", help="CA certificates to trust (PEM)")
    parser.add_argument(
        "--insecure", action="store_true", help="DO NOT verify the certificate (testing only)"
    )
    parser.add_argument("--server-hostname", help="name to verify and send as SNI (default HOST)")
    parser.add_argument(
        "--groups", metavar="LIST", help="key-exchange groups to offer (default: X25519)"
    )
    parser.add_argument(
        "--allow-tls12", action="store_true", help="allow TLS 1.2 (default: TLS 1.3 only)"
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        type=int,
        help="concurrent workers (handshakes, default 16) or connections (throughput, default 4)",
    )
    parser.add_argument(
        "-d", "--duration", type=float, default=10.0, help="measurement window in seconds"
    )
    parser.add_argument(
        "-n", "--count", type=int, help="end the window after this many handshakes or blocks"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before the window")
    parser.add_argument(
        "--block-size", type=int, default=64 * 1024, help="throughput: bytes per block"
    )
    parser.add_argument(
        "--window", type=int, default=4, help="throughput: blocks in flight per connection"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="per connection/operation timeout (s)"
    )
    parser.add_argument(
        "--loop",
        choices=get_args(LoopName),
        default="auto",
        help="client event loop (auto = uvloop when installed)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def _config(args: argparse.Namespace) -> LoadConfig:
    concurrency = args.concurrency
    if concurrency is None:
        concurrency = 16 if args.mode == "handshakes" else 4
    return LoadConfig(
        mode=args.mode,
        host=args.host,
        port=args.port,
        concurrency=concurrency,
        warmup=args.warmup,
        duration=args.duration,
        count=args.count,
        block_size=args.block_size,
        window=args.window,
        timeout=args.timeout,
        server_hostname=args.server_hostname,
    )


async def _bench(cfg: LoadConfig, ctx: ssl.SSLContext) -> tuple[dict[str, str | None], LoadResult]:
    info = await probe(cfg.host, cfg.port, ctx, cfg.server_hostname, cfg.timeout)
    return info, await run_load(cfg, ctx)


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def _report(cfg: LoadConfig, info: dict[str, str | None], result: LoadResult) -> str:
    data = result.as_dict()
    lat = data["latency_ms"]
    lines = [
        f"{cfg.mode} against {cfg.host}:{cfg.port}: {info['version']} {info['cipher']} "
        f"group={info['group']}, {cfg.concurrency} "
        f"{'workers' if cfg.mode == 'handshakes' else 'connections'}, "
        f"{result.seconds:.1f} s window after {cfg.warmup:g} s warm-up",
    ]
    if cfg.mode == "handshakes":
        lines.append(f"  handshakes   {result.ops} ({data['ops_per_s']:.1f} hs/s)")
        lines.append(f"  latency      p50 {_fmt(lat['p50'], 'ms')}  p99 {_fmt(lat['p99'], 'ms')}")
    else:
        lines.append(
            f"  echoed       {result.bytes / _MB:.1f} MB ({data['mb_per_s']:.1f} MB/s, "
            f"{result.ops} blocks of {cfg.block_size} B)"
        )
        lines.append(f"  block RTT    p50 {_fmt(lat['p50'], 'ms')}  p99 {_fmt(lat['p99'], 'ms')}")
    per_op = data["client_cpu_us_per_op"]
    lines.append(
        f"  client CPU   {result.client_cpu / result.seconds:.0%} of one core"
        + (f" ({per_op:.0f} us per op)" if per_op is not None else "")
    )
    lines.append(
        f"  errors       {result.errors}"
        + (f" (last: {result.last_error})" if result.last_error else "")
    )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run ``ecdhe-async bench``; 0 when operations completed without error, else 1."""
    cfg = _config(args)
    if not args.insecure and not args.ca_file:
        sys.stderr.write(
            "ecdhe-async bench: verifying against the system CA store "
            "(use --ca-file PEM for a private CA, --insecure to skip verification)\n"
        )
    ctx = bench_context(
        ca_file=args.ca_file,
        insecure=args.insecure,
        groups=args.groups or "X25519",
        tls13_only=not args.allow_tls12,
    )
    raise_nofile_limit()
    info, result = run_loop(_bench(cfg, ctx), loop=args.loop)
    if args.json:
        sys.stdout.write(json.dumps({"server": info, **result.as_dict()}, indent=2) + "\n")
    else:
        sys.stdout.write(_report(cfg, info, result) + "\n")
    return 0 if result.ops > 0 and result.errors == 0 else 1
