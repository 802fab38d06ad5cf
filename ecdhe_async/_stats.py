"""A server's counters (:class:`ServerStats`), read by its logs, tests and metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ServerStats", "fmt_stats"]


@dataclass(slots=True)
class ServerStats:
    """Counters since start. ``pending`` and ``active`` are gauges."""

    accepted: int = 0
    refused: int = 0
    pending: int = 0
    active: int = 0
    handshakes: int = 0
    handshake_failures: int = 0
    handshake_timeouts: int = 0
    evicted: int = 0
    completed: int = 0
    protocol_errors: int = 0
    handler_errors: int = 0
    idle_timeouts: int = 0
    proxy_errors: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for logs and metrics)."""
        return asdict(self)


def fmt_stats(stats: ServerStats) -> str:
    """The non-zero counters as ``name=value`` pairs (the stop line)."""
    return " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if v) or "no connections"
