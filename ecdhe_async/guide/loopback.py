"""Loopback scaffolding for the guide's live parts: a temporary certificate, a TCP connection.

Everything here stays on 127.0.0.1, cleans up after itself (the certificate's temporary directory
is removed, every socket and listener closed) and bounds each wait by :data:`DEMO_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, TypeAlias

from ..certs import create_self_signed_cert

__all__ = ["DEMO_TIMEOUT", "StreamPair", "loopback_pair", "temporary_certificate"]

#: Bound on each demo step (connect, exchange, echo): loopback needs milliseconds, so a step
#: that takes this long is stuck, not slow.
DEMO_TIMEOUT: Final = 10.0

#: One end of a TCP connection.
StreamPair: TypeAlias = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def temporary_certificate() -> AsyncIterator[tuple[Path, Path]]:
    """A self-signed ECDSA P-256 certificate for localhost in a private temp dir, removed after.

    Key generation and file writes (fsync'd) run in a worker thread, off the event loop.
    """
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="ecdhe-async-"))
    try:
        cert, key = await asyncio.to_thread(
            create_self_signed_cert, directory / "server.crt", directory / "server.key"
        )
        yield cert, key
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), DEMO_TIMEOUT)


@contextlib.asynccontextmanager
async def loopback_pair() -> AsyncIterator[tuple[StreamPair, StreamPair]]:
    """A real TCP connection on 127.0.0.1: yields (client end, server end); closes everything."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[StreamPair] = loop.create_future()

    def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if accepted.done():  # not ours (port 0 on loopback: unlikely, but never keep it)
            writer.close()
        else:
            accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncio.timeout(DEMO_TIMEOUT):
            client = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(DEMO_TIMEOUT):
                server_end = await accepted
            try:
                yield client, server_end
            finally:
                await _close(server_end[1])
        finally:
            await _close(client[1])
    finally:
        if not accepted.done():
            accepted.cancel()
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), DEMO_TIMEOUT)
