"""The guide's second part: a real TLS server and client with ECDHE, on the framework.

:func:`run_tls_server` is :class:`~ecdhe_async.TLSServer` (echo by default) until cancelled;
:func:`run_tls_client` is :func:`~ecdhe_async.connect` (verifying) for one echo round trip;
:func:`demonstrate_tls_with_ecdhe` runs both on loopback with a temporary certificate. Whether a
session was forward secret is read from the group registry (:mod:`ecdhe_async.groups`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .. import groups
from ..certs import CertInfo, StrPath, describe_certificate
from ..client import connect
from ..server import TLSServer
from ..settings import ClientSettings, ServerSettings
from ..tls import client_context
from .loopback import DEMO_TIMEOUT, temporary_certificate

__all__ = [
    "TLSClientResult",
    "TLSDemoResult",
    "demonstrate_tls_with_ecdhe",
    "run_tls_client",
    "run_tls_server",
]


async def run_tls_server(
    host: str,
    port: int,
    cert_file: StrPath,
    key_file: StrPath,
    *,
    handler: Any = "echo",
    ready: asyncio.Future[tuple[str, int]] | None = None,
) -> None:
    """Run the framework's TLS server (echo by default) on *host*:*port* until cancelled.

    Port 0 picks a free port: pass a *ready* future to learn the bound ``(host, port)``. If the
    server cannot start, *ready* gets the exception too. Cancelling the task stops the server
    gracefully (:meth:`TLSServer.aclose`).
    """
    try:
        settings = await asyncio.to_thread(
            ServerSettings.load,
            host=host,
            port=port,
            tls={"certfile": cert_file, "keyfile": key_file},
        )
        server = await asyncio.to_thread(TLSServer, settings, handler)
        await server.start()
    except BaseException as exc:
        if ready is not None and not ready.done():
            if isinstance(exc, Exception):
                ready.set_exception(exc)
            else:
                ready.cancel()
        raise
    try:
        if ready is not None and not ready.done():
            ready.set_result(server.addresses[0])
        await server.serve_forever()
    finally:
        await server.aclose()


@dataclass(frozen=True, slots=True)
class TLSClientResult:
    """One client round trip: the reply and what the handshake negotiated."""

    reply: bytes
    version: str | None
    cipher: str | None
    group: str | None
    peer_subject: str | None
    handshake_duration: float

    @property
    def forward_secret(self) -> bool:
        """Whether the key exchange was ephemeral elliptic-curve Diffie-Hellman."""
        group = groups.lookup(self.group) if self.group is not None else None
        return group is not None and group.is_ecdhe


async def run_tls_client(
    host: str,
    port: int,
    message: bytes = b"Hello, ECDHE!",
    *,
    ca_file: StrPath | None = None,
    server_hostname: str | None = None,
) -> TLSClientResult:
    """Connect (verifying the server), send *message*, read the echo, report the handshake.

    The certificate is checked against *ca_file* (e.g. a self-signed server's own certificate)
    or the system store, for *server_hostname* (default: *host*). Raises
    :class:`~ecdhe_async.HandshakeError` if verification or the handshake fails, and
    :class:`TimeoutError` if the server does not echo within :data:`DEMO_TIMEOUT`.
    """
    settings = await asyncio.to_thread(
        ClientSettings.load,
        server_hostname=server_hostname,
        tls={"ca_file": ca_file} if ca_file is not None else None,
    )
    context = await asyncio.to_thread(client_context, settings.tls)
    async with connect(host, port, settings, ssl_context=context) as conn:
        async with asyncio.timeout(DEMO_TIMEOUT):
            await conn.send(message)
            reply = await conn.readexactly(len(message)) if message else b""
    return TLSClientResult(
        reply=reply,
        version=conn.version,
        cipher=conn.cipher,
        group=conn.group,
        peer_subject=conn.peer_subject,
        handshake_duration=conn.handshake_duration,
    )


async def _stop(task: asyncio.Task[None], *, raise_errors: bool = False) -> None:
    """Cancel a server task and wait (bounded) until it has closed; optionally raise its error."""
    task.cancel()
    await asyncio.wait({task}, timeout=DEMO_TIMEOUT)
    if task.done() and not task.cancelled():
        exc = task.exception()  # always retrieved, so never "exception was never retrieved"
        if exc is not None and raise_errors:
            raise exc


@dataclass(frozen=True, slots=True)
class TLSDemoResult:
    """What :func:`demonstrate_tls_with_ecdhe` negotiated, end to end."""

    address: tuple[str, int]
    certificate: CertInfo
    message: bytes
    client: TLSClientResult

    @property
    def forward_secret(self) -> bool:
        """Whether the session used an ephemeral ECDHE group."""
        return self.client.forward_secret


async def demonstrate_tls_with_ecdhe(message: bytes = b"Hello, ECDHE!") -> TLSDemoResult:
    """Run :func:`run_tls_server` and :func:`run_tls_client` against each other on loopback.

    A temporary self-signed certificate (removed afterwards) is the server's identity and the
    client's only trust anchor; the server is stopped before returning.
    """
    async with temporary_certificate() as (cert, key):
        info = await asyncio.to_thread(describe_certificate, cert)
        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(run_tls_server("127.0.0.1", 0, cert, key, ready=ready))
        try:
            async with asyncio.timeout(DEMO_TIMEOUT):
                host, port = await ready
            client = await run_tls_client(host, port, message, ca_file=cert)
        except BaseException:
            await _stop(server)
            raise
        await _stop(server, raise_errors=True)
    return TLSDemoResult(address=(host, port), certificate=info, message=message, client=client)
