from __future__ import annotations

import asyncio
import ssl

import pytest

from ecdhe_async import TLSServer, connect

from .conftest import PKI, client_settings, running_server, server_settings


@pytest.mark.asyncio
async def test_echo_roundtrip(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            await conn.send(b"ping")
            assert await asyncio.wait_for(conn.readexactly(4), 5) == b"ping"
            assert conn.group == "X25519"
            assert conn.version == "TLSv1.3"


@pytest.mark.asyncio
async def test_ipv6_loopback_with_ip_san(pki: PKI) -> None:
    """Bind ::1, verify the certificate's IP address SAN for ::1 (no server_hostname given)."""
    async with running_server(server_settings(pki, host="::1")) as server:
        assert server.addresses[0][0] == "::1"
        settings = client_settings(pki, server_hostname=None)
        async with connect("::1", server.port, settings) as conn:
            await conn.send(b"six")
            assert await asyncio.wait_for(conn.readexactly(3), 5) == b"six"
            assert conn.peer is not None
            assert conn.peer[0] == "::1"


@pytest.mark.asyncio
async def test_cancelled_aclose_leaves_nothing_running(pki: PKI) -> None:
    """Cancelling aclose() mid-grace aborts what is left; a later aclose() returns at once."""
    server = TLSServer(server_settings(pki))
    await asyncio.wait_for(server.start(), 10)
    try:
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            await conn.send(b"x")
            assert await asyncio.wait_for(conn.readexactly(1), 5) == b"x"
            closing = asyncio.create_task(server.aclose(grace=60))
            await asyncio.sleep(0)  # one loop turn: aclose() is now waiting out the grace
            assert server.stats.active == 1
            closing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await closing
            try:  # aborted: the peer sees the end (FIN, or RST if bytes were unread)
                tail = await asyncio.wait_for(conn.read(), 5)
            except (ConnectionError, ssl.SSLError):
                tail = b""
            assert tail == b""
    finally:
        await asyncio.wait_for(server.aclose(), 5)
    assert server.stats.active == 0
