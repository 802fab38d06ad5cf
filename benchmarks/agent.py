"""The harness's load-generator process: ``ecdhe_async.bench`` driven over stdin/stdout.

``benchmarks/run.py`` starts one agent, pinned to the client CPU, and sends it one JSON command
per line. The agent answers with lines ``KIND {json}``:

- ``{"op": "probe", "port": P}`` → ``PROBE {version, cipher, group, session_ticket}``
- ``{"op": "load", "mode": ..., "port": P, ...LoadConfig fields}`` → ``MARK start {...}``,
  ``MARK end {...}`` (printed at the window's edges while the load keeps running, so that the
  harness samples the server's CPU there), then ``RESULT {...}``
- ``{"op": "hold_tls", "port": P, "n": N}`` → N established TLS connections (16-byte echo each),
  kept open: ``HELD {alive, errors}``
- ``{"op": "hold_tcp", "port": P, "n": N}`` → N TCP connections that never send a byte: ``HELD``
- ``{"op": "status"}`` → ``HELD {alive, errors}`` (evicted connections are no longer alive)
- ``{"op": "release"}`` → close everything held: ``RELEASED {}``
- ``{"op": "quit"}``

Failures answer ``ERROR {"error": ...}``; every network wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Any

from ecdhe_async import bench

_OP_TIMEOUT = 10.0


def emit(kind: str, data: dict[str, Any]) -> None:
    sys.stdout.write(f"{kind} {json.dumps(data)}\n")
    sys.stdout.flush()


class Held(asyncio.Protocol):
    """A connection that we keep open; knows whether it is still alive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, echo: bool) -> None:
        self.echo = echo
        self.alive = False
        self.buf = b""
        self.ready: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.alive = True
        if self.echo:
            self.transport.write(bench.PAYLOAD)  # type: ignore[union-attr]
        elif not self.ready.done():
            self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= len(bench.PAYLOAD) and not self.ready.done():
            self.ready.set_result(None)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.alive = False
        if not self.ready.done():
            self.ready.set_exception(exc or EOFError("closed"))


class Agent:
    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.held: list[Held] = []
        self.errors = 0

    async def hold(self, port: int, n: int, tls: bool, concurrency: int) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with sem:
                proto = Held(loop, echo=tls)
                try:
                    async with asyncio.timeout(_OP_TIMEOUT):
                        if tls:
                            await loop.create_connection(
                                lambda: proto,
                                "127.0.0.1",
                                port,
                                ssl=self.ctx,
                                server_hostname="localhost",
                                ssl_handshake_timeout=_OP_TIMEOUT,
                                ssl_shutdown_timeout=2.0,
                            )
                        else:
                            await loop.create_connection(lambda: proto, "127.0.0.1", port)
                        await proto.ready
                except (OSError, TimeoutError, EOFError):
                    self.errors += 1
                    if proto.transport is not None:
                        proto.transport.abort()
                    return
                self.held.append(proto)

        await asyncio.gather(*(one() for _ in range(n)))
        return self.status()

    def status(self) -> dict[str, Any]:
        return {"alive": sum(p.alive for p in self.held), "errors": self.errors}

    async def release(self) -> None:
        for proto in self.held:
            if proto.transport is not None:
                proto.transport.abort()
        self.held.clear()
        self.errors = 0
        await asyncio.sleep(0.05)


def main() -> None:
    bench.raise_nofile_limit()
    ctx = bench.bench_context(insecure=True, groups="X25519")
    import uvloop

    agent = Agent(ctx)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            op = cmd.pop("op")
            try:
                if op == "quit":
                    break
                if op == "probe":
                    info = runner.run(
                        bench.probe("127.0.0.1", cmd["port"], ctx, "localhost", _OP_TIMEOUT)
                    )
                    emit("PROBE", dict(info))
                elif op == "load":
                    cfg = bench.LoadConfig(host="127.0.0.1", server_hostname="localhost", **cmd)
                    result = runner.run(
                        bench.run_load(cfg, ctx, lambda kind, snap: emit("MARK", {"kind": kind}))
                    )
                    emit("RESULT", result.as_dict())
                elif op in ("hold_tls", "hold_tcp"):
                    status = runner.run(
                        agent.hold(
                            cmd["port"], cmd["n"], op == "hold_tls", cmd.get("concurrency", 32)
                        )
                    )
                    emit("HELD", status)
                elif op == "status":
                    runner.run(asyncio.sleep(cmd.get("wait", 0.0)))
                    emit("HELD", agent.status())
                elif op == "release":
                    runner.run(agent.release())
                    emit("RELEASED", {})
                else:
                    emit("ERROR", {"error": f"unknown op {op!r}"})
            except Exception as exc:
                emit("ERROR", {"error": f"{exc.__class__.__name__}: {exc}"})
        runner.run(agent.release())


if __name__ == "__main__":
    main()
