#!/usr/bin/env python3
"""Per-connection cost of observing a server (issue 13), each item in isolation, in µs.

One connection emits two events (``HandshakeCompleted``, ``ConnectionClosed``); this times building
them, counting them in Prometheus metrics, and the access-log line (formatted as ``ecdhe-async
serve`` does, written to a line-buffered file), on and off. ``make bench`` measures the same
end to end (``ours-uvloop-metrics`` vs ``ours-uvloop``); this is the noise-free breakdown.

    python benchmarks/observe_micro.py [--n 50000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecdhe_async.events import ConnectionClosed, EventBus, HandshakeCompleted
from ecdhe_async.logs import AccessLog
from ecdhe_async.metrics import ServerMetrics

FACTS: dict[str, Any] = {
    "peer": ("127.0.0.1", 4242),
    "version": "TLSv1.3",
    "cipher": "TLS_AES_256_GCM_SHA384",
    "group": "X25519",
    "sni": "localhost",
    "alpn": None,
    "client_subject": None,
}


def per_call(fn: Callable[[], object], n: int) -> float:
    """Best of 5 runs of *n* calls, in µs per call."""
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=50_000, help="calls per item")
    n = p.parse_args().n

    def build() -> tuple[HandshakeCompleted, ConnectionClosed]:
        done = HandshakeCompleted(**FACTS, duration=0.002)
        closed = ConnectionClosed(
            **FACTS,
            handshake_duration=0.002,
            duration=0.01,
            bytes_in=16,
            bytes_out=16,
            cause="peer_close",
        )
        return done, closed

    done, closed = build()
    metrics = ServerMetrics()
    sink = (Path(tempfile.mkdtemp(prefix="ecdhe-observe-")) / "server.log").open("w", buffering=1)
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logger = logging.getLogger("ecdhe_async.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    access = AccessLog()  # subscribed to ConnectionClosed only, and only with access_log on
    bus = EventBus()  # access log off, metrics off: nobody wants these two events

    def count() -> None:
        metrics(done)
        metrics(closed)

    def log_on() -> None:
        access(closed)

    def log_off() -> None:
        if bus.wants(HandshakeCompleted):
            bus.emit(done)
        if bus.wants(ConnectionClosed):
            bus.emit(closed)

    rows = [
        ("build the two events", per_call(build, n)),
        ("metrics: count both (ServerMetrics)", per_call(count, n)),
        ("access log on: both (one line written)", per_call(log_on, n // 10)),
        ("access log and metrics off: nobody wants them (two checks)", per_call(log_off, n)),
    ]
    print("Per-connection cost of observing (µs, best of 5):")
    for name, us in rows:
        print(f"  {us:7.2f}  {name}")
    sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
