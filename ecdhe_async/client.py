"""``connect()``: an ECDHE-only TLS client, verified by default, returning a ``Connection``.

The handshake runs through the same TLS layer as the server (:mod:`ecdhe_async._tlsproto`), so a
client that rejects a certificate sends the alert OpenSSL chose (``bad certificate``, ``unknown
ca``) instead of just hanging up, on the stdlib loop and on uvloop alike.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Generator
from typing import Any

from ._stream import StreamProtocol
from ._tlsproto import start_tls
from .connection import Connection, TLSInfo
from .contexts import cached_client_context
from .errors import HandshakeError
from .policy import check_forward_secret, fatal_alert, log_refusal
from .settings import ClientSettings
from .tls import apply_policy

__all__ = ["connect"]


class _Connecting(Awaitable[Connection]):
    """``await connect(...)`` or ``async with connect(...) as conn``."""

    def __init__(self, coro: Awaitable[Connection]) -> None:
        self._coro = coro
        self._conn: Connection | None = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._coro.__await__()

    async def __aenter__(self) -> Connection:
        self._conn = await self._coro
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()


def connect(
    host: str,
    port: int,
    settings: ClientSettings | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> _Connecting:
    """Open a TLS connection to *host*:*port* and return a :class:`Connection`.

    The certificate chain and host name are verified (against ``settings.tls.ca_file`` or the
    system store) unless ``settings.tls.insecure_skip_verify`` says otherwise. The name checked
    (and sent as SNI) is *server_hostname*, else ``settings.server_hostname``, else *host*.
    Without *ssl_context*, one context per settings is built (off the loop) and reused; a given
    *ssl_context* is restricted in place to the settings' policy (:func:`~ecdhe_async.tls.
    apply_policy`). A handshake that is not forward secret is refused after the fact too.
    Connect and handshake are bounded by ``settings.connect_timeout`` / ``handshake_timeout``.
    Raises :class:`~ecdhe_async.errors.HandshakeError` if the handshake fails and
    :class:`TimeoutError` / :class:`OSError` if the connection cannot be made.
    """
    settings = settings if settings is not None else ClientSettings.load()
    context = apply_policy(ssl_context, settings.tls, server_side=False) if ssl_context else None
    name = server_hostname or settings.server_hostname or host
    return _Connecting(_connect(host, port, settings, context, name))


async def _connect(
    host: str,
    port: int,
    settings: ClientSettings,
    context: ssl.SSLContext | None,
    server_hostname: str,
) -> Connection:
    loop = asyncio.get_running_loop()
    context = context or await cached_client_context(settings.tls)
    # Plain TCP first (the client speaks first in TLS, so nothing arrives before the switch).
    transport, _ = await asyncio.wait_for(
        loop.create_connection(asyncio.Protocol, host, port), settings.connect_timeout
    )
    started = time.perf_counter()
    stream = StreamProtocol()
    try:
        if transport.is_closing():
            # The server hung up (e.g. its connection limit) before we could say hello. Writing
            # to a dead uvloop transport would raise RuntimeError; the stdlib would just wait.
            raise ConnectionResetError("the server closed the connection before the handshake")
        tls_proto, waiter = start_tls(
            transport,
            stream,
            context,
            server_side=False,
            server_hostname=server_hostname,
            handshake_timeout=settings.handshake_timeout,
            shutdown_timeout=settings.shutdown_timeout,
        )
        await asyncio.wait_for(waiter, settings.handshake_timeout)
    except TimeoutError:
        transport.abort()
        raise HandshakeError(
            f"TLS handshake with {host}:{port} timed out after {settings.handshake_timeout}s",
            reason="timeout",
        ) from None
    except (ssl.SSLError, OSError) as exc:
        transport.abort()
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        verify = getattr(exc, "verify_message", None)
        message = f"certificate verify failed: {verify}" if verify else str(exc) or reason
        raise HandshakeError(
            f"TLS handshake with {host}:{port} failed: {message}", reason=reason
        ) from exc
    except BaseException:
        transport.abort()
        raise
    ssl_object = stream.transport.get_extra_info("ssl_object")
    if (problem := check_forward_secret(ssl_object, settings.tls.groups)) is not None:
        log_refusal(problem, f"{host}:{port}")
        transport.write(fatal_alert(ssl_object, tls_proto._incoming, tls_proto._outgoing))
        transport.close()
        raise HandshakeError(
            f"TLS handshake with {host}:{port} refused: not forward secret: {problem}",
            reason="not forward secret",
        )
    return Connection(
        stream,
        tls=TLSInfo.from_ssl_object(ssl_object),
        handshake_duration=time.perf_counter() - started,
        shutdown_timeout=settings.shutdown_timeout,
    )
