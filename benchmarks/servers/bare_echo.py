"""The baseline a user writes by hand: ``asyncio.start_server(ssl=ctx)`` and an echo loop.

Nothing of ecdhe_async is imported: a stock server context (``ssl.create_default_context`` for
client auth purposes, plus the certificate), the stdlib SSL protocol (or uvloop's), stock stream
handling. Logs ``listening on HOST:PORT`` to stderr when ready; stops on SIGTERM/SIGINT.

    python benchmarks/servers/bare_echo.py --certfile C --keyfile K --port 0 --loop asyncio
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            await writer.wait_closed()


async def serve(args: argparse.Namespace) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.certfile, args.keyfile)
    if args.num_tickets is not None:
        ctx.num_tickets = args.num_tickets  # reference variant: what tickets cost
    server = await asyncio.start_server(handle, args.host, args.port, ssl=ctx, backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    sys.stderr.write(f"bare {args.loop} echo listening on {host}:{port}\n")
    sys.stderr.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--num-tickets", type=int, help="TLS 1.3 tickets (default: OpenSSL's 2)")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args))
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
