"""Measurement for ``ecdhe-async bench``: what a run is, its counters, snapshots and result.

Pure bookkeeping, no network: :class:`LoadConfig` (validated), :class:`Snapshot` marks at the
edges of the measurement window, :class:`LoadResult` with derived rates and latency percentiles.
The load generator that feeds the counters is :mod:`ecdhe_async.bench.load`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from ..errors import ConfigError

__all__ = [
    "MB",
    "PAYLOAD",
    "Counters",
    "LoadConfig",
    "LoadResult",
    "Mode",
    "Snapshot",
    "percentile",
]

Mode = Literal["handshakes", "throughput"]

#: 16 bytes, newline-terminated and palindromic (so ``s_server -rev`` echoes it unchanged).
PAYLOAD: Final = b"ecdhe-010-ehdce\n"

#: Megabyte (10^6 bytes), the unit of MB/s.
MB: Final = 1e6


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
class Counters:
    """Operations, bytes and errors so far; latencies while the window records."""

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
            "mb_per_s": self.bytes / self.seconds / MB,
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
