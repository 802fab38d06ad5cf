"""Run a server as a program: dev certificate when none is configured, signals, loop choice.

Used by ``ecdhe-async serve`` and ``examples/echo_server.py``; apps that embed a server use
:class:`~ecdhe_async.server.TLSServer` directly instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.metadata
import logging
import os
import signal
import socket
from collections.abc import Callable

from .certs import dev_certificate
from .handlers import HandlerSpec, resolve_handler
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


async def prepare_server(
    settings: ServerSettings,
    handler: HandlerSpec | None = None,
    *,
    sock: socket.socket | None = None,
) -> TLSServer:
    """Build the server in a worker thread: the dev certificate (key generation, a lock file that
    another process may hold) and the context (certificate and key files) never block the loop.
    """
    return await asyncio.to_thread(
        lambda: TLSServer(with_dev_certificate(settings), handler, sock=sock)
    )


async def serve(
    settings: ServerSettings,
    handler: HandlerSpec | None = None,
    *,
    sock: socket.socket | None = None,
    on_started: Callable[[TLSServer], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT: the first signal stops gracefully, a second SIGINT at once.

    Use it inside your own ``asyncio.run(main())``; :func:`run_server` is the blocking form.
    Ctrl-C never ends in a ``KeyboardInterrupt`` traceback: the signal handlers installed here
    turn it into a graceful stop, and are removed again when the server has stopped. SIGHUP
    reloads the certificates (keep-last-good). *sock* is an already bound listening socket to
    serve on instead of ``host``/``port``; *on_started* runs once it is accepting (both used by
    :mod:`ecdhe_async.workers`).
    """
    # The handler first: a bad --handler is one line, before any certificate is made.
    resolved = resolve_handler(handler if handler is not None else settings.handler, settings)
    server = await prepare_server(settings, resolved, sock=sock)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info(
                "received %s: stopping gracefully (waiting up to %gs for open connections; "
                "press Ctrl-C again to force)",
                signal.Signals(signum).name,
                settings.grace,
            )
            stop.set()
        elif signum == signal.SIGINT:
            log.warning("second SIGINT: stopping now")
            server.abort()

    reloads: set[asyncio.Future[bool]] = set()

    def on_hup() -> None:
        log.info("received SIGHUP: reloading certificates")
        fut = asyncio.ensure_future(asyncio.to_thread(server.reload))
        reloads.add(fut)
        fut.add_done_callback(reloads.discard)

    installed = []
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        installed.append(signal.SIGHUP)
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        try:
            await server.start()
        except OSError as exc:  # the port is taken, the address is not ours, a name unknown
            raise OSError(exc.errno, _listen_failure(settings, exc)) from None
        if on_started is not None:
            on_started(server)
        stop_hint = "press Ctrl-C to stop" if signal.SIGINT in installed else "stop the process"
        log.info("server process %d on the %s loop (%s)", os.getpid(), loop_name(loop), stop_hint)
        await stop.wait()
    finally:
        await server.aclose()
        for signum in installed:
            loop.remove_signal_handler(signum)


def _listen_failure(settings: ServerSettings, exc: OSError) -> str:
    """``cannot listen on 127.0.0.1:8443: address already in use (...)``."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    reason = exc.strerror or str(exc)
    if ": " in reason and reason.startswith("error while attempting to bind"):
        reason = reason.rpartition(": ")[2]  # asyncio's "error while attempting to bind on ..."
    hints = {
        errno.EADDRINUSE: " (is another server running there? choose another port with --port)",
        errno.EACCES: " (ports below 1024 need privileges: choose a port >= 1024)",
        errno.EADDRNOTAVAIL: " (not an address of this machine: try 127.0.0.1 or 0.0.0.0)",
    }
    hint = hints.get(exc.errno or 0, "")
    return f"cannot listen on {host}:{settings.port}: {reason.lower()}{hint}"


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``"uvloop 0.23.0"`` or ``"asyncio"``: the loop in use, for the start-up line."""
    module = type(loop).__module__.partition(".")[0]
    if module == "uvloop":
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"uvloop {importlib.metadata.version('uvloop')}"
        return "uvloop"
    return "asyncio"


def run_server(settings: ServerSettings, handler: HandlerSpec | None = None) -> None:
    """Blocking: :func:`serve` on the loop that ``settings.loop`` selects."""
    run_loop(serve(settings, handler), loop=settings.loop)
