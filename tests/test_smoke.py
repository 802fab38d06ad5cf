from __future__ import annotations

import asyncio

import pytest

from ecdhe_async import connect

from .conftest import PKI, client_settings, running_server, server_settings


@pytest.mark.asyncio
async def test_echo_roundtrip(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            await conn.send(b"ping")
            assert await asyncio.wait_for(conn.readexactly(4), 5) == b"ping"
            assert conn.group == "X25519"
            assert conn.version == "TLSv1.3"
