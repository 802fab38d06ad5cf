"""``connect()``: an ECDHE-only TLS client, verified by default, returning a ``Connection``.

The handshake runs through the same TLS layer as the server (:mod:`ecdhe_async._pump`), so a
client that rejects a certificate sends the alert OpenSSL chose (``bad certificate``, ``unknown
ca``) instead of just hanging up, on the stdlib loop and on uvloop alike.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Generator
from typing import Any

from ._pump import TLSPump
from .connection import Connection, TLSInfo
from .contexts import cached_client_context
from .errors import HandshakeError
from .policy import NotForwardSecretError, log_refusal
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
    *ssl_context* is restricted in place to the settings' policy
    (:func:`~ecdhe_async.tls.apply_policy`). A finished handshake that is not forward secret is
    refused too (fatal alert, ERROR log, :class:`~ecdhe_async.errors.HandshakeError`).
    Connect and handshake are bounded by ``settings.connect_timeout`` / ``handshake_timeout``.
    Raises :class:`~ecdhe_async.errors.HandshakeError` if the handshake fails and
    :class:`TimeoutError` / :class:`OSError` if the connection cannot be made.
    """
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range (1-65535)")
    settings = settings if settings is not None else ClientSettings.load()
    context = apply_policy(ssl_context, settings.tls, server_side=False) if ssl_context else None
    name = server_hostname or settings.server_hostname or host
    return _Connecting(_connect(host, port, settings, context, name))


class _Handshake:
    """The :class:`~ecdhe_async._pump.PumpOwner` of one client connection: a future."""

    __slots__ = ("done", "info")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.info: TLSInfo | None = None

    def pump_accepted(self, pump: TLSPump) -> None:
        pass

    def pump_started(self, pump: TLSPump) -> bool:
        return True

    def handshake_done(self, pump: TLSPump, exc: BaseException | None) -> None:
        if not self.done.done():
            if exc is None:
                # Read the facts now, while the handshake is fresh: in TLS 1.3 the server's
                # verdict on our certificate may arrive in the very next record.
                ssl_object = pump.ssl_object
                assert ssl_object is not None
                self.info = TLSInfo.from_ssl_object(ssl_object, facts=pump.facts)
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)

    def pump_lost(self, pump: TLSPump) -> None:
        self.handshake_done(pump, ConnectionResetError("connection closed during the handshake"))


_ERRNO_WORDS: dict[type[OSError], str] = {
    ConnectionRefusedError: "connection refused",
    ConnectionResetError: "connection reset",
    socket.gaierror: "host name not found",
}


def _cannot_connect(host: str, port: int, exc: OSError) -> OSError:
    """The same kind of error, naming the target: "cannot connect to HOST:PORT: …"."""
    words = _ERRNO_WORDS.get(type(exc)) or (exc.strerror or str(exc) or type(exc).__name__)
    if isinstance(exc, socket.gaierror) and exc.strerror:
        words = f"{words} ({exc.strerror})"
    err = OSError if isinstance(exc, socket.gaierror) else type(exc)
    return err(f"cannot connect to {_hostport(host, port)}: {words.lower()}")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _connect(
    host: str,
    port: int,
    settings: ClientSettings,
    context: ssl.SSLContext | None,
    server_hostname: str,
) -> Connection:
    loop = asyncio.get_running_loop()
    tls_context = context or await cached_client_context(settings.tls)
    owner = _Handshake(loop)

    def factory() -> TLSPump:
        return TLSPump(
            owner,
            tls_context,
            server_side=False,
            server_hostname=server_hostname,
            groups=settings.tls.groups,
            shutdown_timeout=settings.shutdown_timeout,
            loop=loop,
        )

    try:
        async with asyncio.timeout(settings.connect_timeout):
            _, pump = await loop.create_connection(factory, host, port)
    except TimeoutError:
        raise TimeoutError(
            f"cannot connect to {_hostport(host, port)}: "
            f"timed out after {settings.connect_timeout:g}s"
        ) from None
    except OSError as exc:
        raise _cannot_connect(host, port, exc) from exc
    try:
        async with asyncio.timeout(settings.handshake_timeout):
            await owner.done
    except TimeoutError:
        pump.abort()
        raise HandshakeError(
            f"TLS handshake with {host}:{port} timed out after {settings.handshake_timeout}s",
            reason="timeout",
        ) from None
    except (ssl.SSLError, OSError) as exc:
        if isinstance(exc, NotForwardSecretError):  # the pump sends the alert and closes
            log_refusal(exc.problem, _hostport(host, port))
        else:
            pump.abort()
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        verify = getattr(exc, "verify_message", None)
        message = f"certificate verify failed: {verify}" if verify else str(exc) or reason
        raise HandshakeError(
            f"TLS handshake with {host}:{port} failed: {message}", reason=reason
        ) from exc
    except BaseException:
        pump.abort()
        raise
    assert owner.info is not None
    return Connection(
        pump,
        tls=owner.info,
        handshake_duration=time.perf_counter() - pump.started,
    )
