#!/usr/bin/env python3
"""Per-connection costs in isolation (µs), to attribute the server CPU the harness measures.

No sockets, no event loop running: each item is timed in a tight loop in this process.

1. OpenSSL's server-side handshake work (in-memory BIOs, X25519 + ECDSA P-256, TLS 1.3) for
   several server contexts: ecdhe_async's ``server_context``, the stdlib's
   ``create_default_context(CLIENT_AUTH)`` (what a user writes by hand: 2 session tickets, the
   system CA store loaded), and variants (tickets off; no CA store; prebuilt chain).
2. Python-side per-connection work in ecdhe_async's server path: the INFO "closed ..." log line,
   ``TLSInfo.from_ssl_object``, asyncio's ``SSLProtocol.__init__`` against our ``TLSPump`` (its
   ``SSLObject`` + BIOs created at the first byte), timers, the peer formatting.

    python benchmarks/micro.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import statistics
import sys
import tempfile
import time
from asyncio import sslproto
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecdhe_async._pump import TLSPump
from ecdhe_async.certs import create_self_signed_cert
from ecdhe_async.connection import TLSInfo
from ecdhe_async.settings import TLSSettings
from ecdhe_async.tls import client_context, server_context


def handshake_pair(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> tuple[float, ssl.SSLObject]:
    """One full handshake (+ tickets) over memory BIOs; returns server-side seconds and object."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname="localhost")
    spent = 0.0
    client_done = server_done = False
    for _ in range(10):
        if not client_done:
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        t = time.perf_counter()
        if not server_done:
            try:
                server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
        data = s_out.read()
        spent += time.perf_counter() - t
        c_in.write(data)
        if client_done and server_done:
            break
    # The client reads the post-handshake messages (tickets) like a real one would.
    client.write(b"x" * 16)
    s_in.write(c_out.read())
    t = time.perf_counter()
    server.read(1024)
    server.write(b"x" * 16)
    c_in.write(s_out.read())
    spent += time.perf_counter() - t
    try:
        client.read(1024)
    except ssl.SSLWantReadError:
        pass
    return spent, server


def per_call(fn: Callable[[], Any], n: int) -> float:
    """Median µs per call over 5 batches of n/5 calls."""
    batch = max(1, n // 5)
    out = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter() - t) / batch * 1e6)
    return statistics.median(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="iterations per item")
    args = p.parse_args()
    n = args.n
    tmp = Path(tempfile.mkdtemp(prefix="ecdhe-micro-"))
    cert, key = create_self_signed_cert(tmp / "c.pem", tmp / "k.pem", key_type="ec-p256")
    tls = TLSSettings(certfile=cert, keyfile=key, groups=["X25519"])
    client_ctx = client_context(TLSSettings(groups=["X25519"], profile="modern", ca_file=cert))

    def stock(tickets: int | None = None, cafile: bool = True) -> ssl.SSLContext:
        if cafile:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if tickets is not None:
            ctx.num_tickets = tickets
        return ctx

    contexts = {
        "ecdhe_async server_context (0 tickets, no CA store)": server_context(tls),
        "stdlib create_default_context(CLIENT_AUTH) (2 tickets, CA store)": stock(),
        "  same, num_tickets = 0": stock(tickets=0),
        "  same, no CA store (SSLContext(PROTOCOL_TLS_SERVER))": stock(cafile=False),
        "  no CA store, num_tickets = 0": stock(tickets=0, cafile=False),
    }
    rows: list[tuple[str, float]] = []
    print("OpenSSL server-side handshake CPU (median µs, in-memory, this process):")
    rounds = 5
    results: dict[str, list[float]] = {name: [] for name in contexts}
    for _ in range(rounds):  # interleaved, so drift hits every context alike
        for name, ctx in contexts.items():
            spent = [handshake_pair(ctx, client_ctx)[0] for _ in range(max(20, n // 20))]
            results[name].append(statistics.median(spent) * 1e6)
    for name, vals in results.items():
        med = statistics.median(vals)
        rows.append((name, med))
        print(f"  {med:7.1f}  {name}")

    print("\nPython per-connection work in ecdhe_async's server path (median µs per call):")
    _, sobj = handshake_pair(server_context(tls), client_ctx)
    print(f"  {per_call(lambda: TLSInfo.from_ssl_object(sobj), n):7.2f}  TLSInfo.from_ssl_object")

    # The INFO line written for every connection, as `ecdhe-async serve` configures logging
    # (a StreamHandler on stderr; here a line-buffered file, like stderr redirected to a file).
    sink = (tmp / "server.log").open("w", buffering=1)
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logger = logging.getLogger("micro.server")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def log_line() -> None:
        logger.info(
            "closed %s %s %s group=%s handshake=%.1fms in=%d out=%d",
            "127.0.0.1:4242",
            "TLSv1.3",
            "TLS_AES_256_GCM_SHA384",
            "X25519",
            1.234,
            16,
            16,
        )

    print(f"  {per_call(log_line, n):7.2f}  log.info('closed …') (formatted, written to a file)")
    logger.setLevel(logging.WARNING)
    print(f"  {per_call(log_line, n):7.2f}  the same call below the level (filtered)")

    loop = asyncio.new_event_loop()
    ctx = server_context(tls)

    def build_std() -> None:
        sslproto.SSLProtocol(
            loop,
            asyncio.Protocol(),
            ctx,
            loop.create_future(),
            server_side=True,
            call_connection_made=True,
            ssl_handshake_timeout=10,
            ssl_shutdown_timeout=5,
        )

    def build_ours() -> None:
        pump = TLSPump(None, ctx, server_side=True, groups=(), shutdown_timeout=5.0, loop=loop)  # type: ignore[arg-type]
        pump._start(b"")

    t_std = per_call(build_std, n)
    t_ours = per_call(build_ours, n)
    print(f"  {t_std:7.2f}  asyncio's SSLProtocol(...) (allocates a 256 KiB buffer per connection)")
    print(f"  {t_ours:7.2f}  our TLSPump(...) + its SSLObject and two MemoryBIOs")

    def timers() -> None:
        h = loop.call_later(10.0, print)
        h.cancel()

    print(f"  {per_call(timers, n):7.2f}  one call_later + cancel (ours: 4 per connection)")

    # Throughput path: what the StreamReader adds per 64 KiB echoed (the stdlib SSLProtocol's
    # b"".join of the records, StreamReader.feed_data's extend, read()'s copy and delete).
    records = [bytes(16384) for _ in range(4)]
    buf = bytearray()

    def stream_copies() -> None:
        data = b"".join(records)
        buf.extend(data)
        out = bytes(memoryview(buf)[: len(data)])
        del buf[: len(out)]

    us = per_call(stream_copies, n)
    print(
        f"  {us:7.2f}  copies between TLS layer and handler per 64 KiB "
        f"(join + feed_data + read) = {us / 65536 * 1e9 / 1e6:.2f} s per GB"
    )
    loop.close()
    sink.close()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
