"""The PROXY protocol on a real TLSServer: header before TLS, trust, and every way to fail."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import pytest

from ecdhe_async.connection import Connection
from ecdhe_async.events import ConnectionRefused
from ecdhe_async.proxy import ProxyHeader, encode_v1, encode_v2
from ecdhe_async.settings import ClientSettings
from ecdhe_async.tls import client_context

from .conftest import PKI, client_settings, running_server, server_settings
from .eventwatch import EventWatch
from .netutil import client_hello, log_watch, raw_connect, read_until_closed


async def who(conn: Connection) -> None:
    """Reply with what the server believes about the peer, then echo."""
    header = conn.proxy_header
    facts = [
        ":".join(map(str, conn.peer[:2])) if conn.peer else "-",
        ":".join(map(str, conn.proxy[:2])) if conn.proxy else "-",
        f"v{header.version} {header.command}" if header else "direct",
        ",".join(f"{t}={v.hex()}" for t, v in conn.proxy_tlvs) or "-",
    ]
    await conn.send(" ".join(facts).encode() + b"\n")
    while data := await conn.read():
        await conn.send(data)


async def tls_over(
    header: bytes, port: int, csettings: ClientSettings
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, send *header* in clear, then run a TLS handshake over the same socket."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(header)
    await writer.drain()
    await asyncio.wait_for(
        writer.start_tls(client_context(csettings.tls), server_hostname="localhost"), 10
    )
    return reader, writer


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.write(b"ping")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
    writer.close()
    return line.decode().strip()


def settings_for(pki: PKI, mode: str, **kw: Any) -> Any:
    return server_settings(pki, proxy_protocol=mode, **kw)


V1 = ProxyHeader(1, "PROXY", "TCP4", ("203.0.113.7", 51234), ("192.0.2.1", 443))
V2 = ProxyHeader(
    2, "PROXY", "TCP6", ("2001:db8::7", 4000), ("2001:db8::1", 443), ((0xEA, b"\x01vpce-0a1"),)
)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["v1", "auto"])
async def test_v1_header_sets_peer_and_proxy(pki: PKI, mode: str) -> None:
    async with running_server(settings_for(pki, mode), who) as server:
        reader, writer = await tls_over(encode_v1(V1), server.port, client_settings(pki))
        peer, proxy, kind, command, tlvs = (await ask(reader, writer)).split()
    assert peer == "203.0.113.7:51234"
    assert proxy.startswith("127.0.0.1:")
    assert (kind, command) == ("v1", "PROXY")
    assert tlvs == "-"


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["v2", "auto"])
async def test_v2_header_with_tlvs(pki: PKI, mode: str) -> None:
    async with running_server(settings_for(pki, mode), who) as server:
        reader, writer = await tls_over(encode_v2(V2), server.port, client_settings(pki))
        host, port = writer.get_extra_info("sockname")[:2]
        tlv = b"\x01vpce-0a1".hex()
        assert await ask(reader, writer) == f"2001:db8::7:4000 {host}:{port} v2 PROXY 234={tlv}"


@pytest.mark.asyncio
async def test_v2_local_keeps_the_real_peer(pki: PKI) -> None:
    local = encode_v2(ProxyHeader(2, "LOCAL", "UNSPEC"))
    async with running_server(settings_for(pki, "v2"), who) as server:
        reader, writer = await tls_over(local, server.port, client_settings(pki))
        sockname = writer.get_extra_info("sockname")
        peer, proxy, version, command, _ = (await ask(reader, writer)).split()
    assert peer == proxy == f"{sockname[0]}:{sockname[1]}"
    assert (version, command) == ("v2", "LOCAL")


@pytest.mark.asyncio
async def test_off_by_default_a_header_is_not_tls(pki: PKI) -> None:
    async with running_server(server_settings(pki), who) as server:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await tls_over(encode_v1(V1), server.port, client_settings(pki))
        assert server.stats.proxy_errors == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (client_hello(), "no PROXY v1 or v2 header: the connection starts with a TLS record"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "malformed PROXY v1 header"),
        (b"PROXY " + b"A" * 200, "without CRLF"),
        (encode_v2(V2)[:12] + b"\x21\x21\xff\xff", "exceeds the 4096-byte limit"),
    ],
    ids=["missing", "malformed", "oversized-v1", "oversized-v2"],
)
async def test_bad_header_closes_only_that_connection(pki: PKI, first: bytes, reason: str) -> None:
    async with running_server(settings_for(pki, "auto"), who) as server:
        events = EventWatch(server)
        with log_watch("ecdhe_async.server") as logs:
            bad = await raw_connect(server.port)
            try:
                await asyncio.get_running_loop().sock_sendall(bad, first)
                _, how = await read_until_closed(bad)
            finally:
                bad.close()
            assert how in ("eof", "reset")
            (refused,) = await events.wait(ConnectionRefused)
            assert refused.limit == "proxy_header"
            assert refused.peer is not None
            lines = logs.matching("PROXY protocol: closing", logging.WARNING)
            assert len(lines) == 1
            assert reason in lines[0].getMessage()
        reader, writer = await tls_over(encode_v1(V1), server.port, client_settings(pki))
        assert (await ask(reader, writer)).startswith("203.0.113.7:51234 ")
        assert server.stats.proxy_errors == 1


@pytest.mark.asyncio
async def test_truncated_header_times_out(pki: PKI) -> None:
    async with running_server(settings_for(pki, "v2", handshake_timeout=0.3), who) as server:
        with log_watch("ecdhe_async.server") as logs:
            sock = await raw_connect(server.port)
            try:
                await asyncio.get_running_loop().sock_sendall(sock, encode_v2(V2)[:20])
                _, how = await read_until_closed(sock)
            finally:
                sock.close()
            (line,) = logs.matching("PROXY protocol: closing", logging.WARNING)
        assert how in ("eof", "reset")
        assert "incomplete at handshake_timeout" in line.getMessage()
        assert server.stats.handshake_timeouts == 1
        assert server.stats.proxy_errors == 1


@pytest.mark.asyncio
async def test_truncated_header_then_close_is_one_line(pki: PKI) -> None:
    async with running_server(settings_for(pki, "v1"), who) as server:
        events = EventWatch(server)
        with log_watch("ecdhe_async.server") as logs:
            sock = await raw_connect(server.port)
            await asyncio.get_running_loop().sock_sendall(sock, b"PROXY TCP4 1.2.3.4")
            sock.close()
            await events.wait(ConnectionRefused, pred=lambda e: e.limit == "proxy_header")
            (line,) = logs.matching("PROXY protocol: closing")
            silent = await raw_connect(server.port)  # a health check: connect, close, no bytes
            silent.close()
            reader, writer = await tls_over(encode_v1(V1), server.port, client_settings(pki))
            assert (await ask(reader, writer)).startswith("203.0.113.7:51234 ")
        assert "connection closed inside the PROXY header" in line.getMessage()
        assert len(logs.matching("PROXY protocol: closing")) == 1
        assert server.stats.proxy_errors == 1


@pytest.mark.asyncio
async def test_untrusted_source_is_closed_before_reading(pki: PKI) -> None:
    settings = settings_for(pki, "auto", proxy_trusted=["10.0.0.0/8", "fd00::/8"])
    async with running_server(settings, who) as server:
        with log_watch("ecdhe_async.server") as logs:
            sock = await raw_connect(server.port)
            try:
                _, how = await read_until_closed(sock)
            finally:
                sock.close()
            assert how in ("eof", "reset")
            (line,) = logs.matching("PROXY protocol: closing")
            assert "source not in proxy_trusted" in line.getMessage()
