"""Run a server as a program: dev certificate when none is configured, signals, loop choice.

Used by ``ecdhe-async serve`` and ``examples/echo_server.py``; apps that embed a server use
:class:`~ecdhe_async.server.TLSServer` directly instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from .certs import dev_certificate
from .loops import run as run_loop
from .server import TLSServer
from .settings import ServerSettings

__all__ = ["prepare_server", "run_server", "serve", "with_dev_certificate"]

log = logging.getLogger("ecdhe_async.server")


def with_dev_certificate(settings: ServerSettings) -> ServerSettings:
    """*settings* unchanged if a certificate is configured, else with the cached dev certificate.

    The development certificate (self-signed, ECDSA P-256, for localhost/127.0.0.1/::1) lives
    in the per-user cache directory and is reused across runs; this says so in the log.
    """
    if settings.tls.certfile is not None:
        return settings
    cert, key, created = dev_certificate()
    log.warning(
        "no certificate configured: using the self-signed development certificate %s (%s). "
        "Clients must trust it explicitly (--ca-file %s); never use it in production.",
        cert,
        "created now" if created else "reused",
        cert,
    )
    tls = settings.tls.model_copy(update={"certfile": cert, "keyfile": key, "key_password": None})
    return settings.model_copy(update={"tls": tls})


async def prepare_server(settings: ServerSettings, handler: Any = None) -> TLSServer:
    """Build the server in a worker thread: the dev certificate (key generation, a lock file that
    another process may hold) and the context (certificate and key files) never block the loop.
    """
    return await asyncio.to_thread(lambda: TLSServer(with_dev_certificate(settings), handler))


async def serve(settings: ServerSettings, handler: Any = None) -> None:
    """Serve until SIGTERM/SIGINT: the first signal stops gracefully, a second SIGINT at once."""
    server = await prepare_server(settings, handler)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("received %s: stopping gracefully", signal.Signals(signum).name)
            stop.set()
        elif signum == signal.SIGINT:
            log.warning("second SIGINT: stopping now")
            server.abort()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        await server.start()
        await stop.wait()
    finally:
        await server.aclose()
        for signum in installed:
            loop.remove_signal_handler(signum)


def run_server(settings: ServerSettings, handler: Any = None) -> None:
    """Blocking: :func:`serve` on the loop that ``settings.loop`` selects."""
    run_loop(serve(settings, handler), loop=settings.loop)
