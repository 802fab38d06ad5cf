"""``connect()``: verified by default, bounded connect and handshake, mTLS, facts, clean close.

Real sockets on 127.0.0.1 (port 0), our TLSServer or ``openssl s_server`` as the peer; every async
test runs on the stdlib loop and on uvloop (see conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import pytest

from ecdhe_async import connect
from ecdhe_async.connection import Connection
from ecdhe_async.errors import HandshakeError
from ecdhe_async.events import HandshakeFailed
from ecdhe_async.settings import ClientSettings

from .conftest import PKI, both_tls, client_settings, running_server, s_server, server_settings
from .eventwatch import EventWatch
from .netutil import log_watch


class Recorder:
    """Echo handler that remembers each connection and how its stream ended."""

    def __init__(self) -> None:
        self.conns: list[Connection] = []
        self.endings: list[str] = []
        self.ended = asyncio.Event()

    async def __call__(self, conn: Connection) -> None:
        self.conns.append(conn)
        try:
            while data := await conn.read():
                await conn.send(data)
            self.endings.append("eof")
        except Exception as exc:
            self.endings.append(type(exc).__name__)
            raise
        finally:
            self.ended.set()


# -- verification ------------------------------------------------------------------------------


@both_tls
@pytest.mark.parametrize("trust", ["other_ca", "wrong_hostname", "system_store"])
@pytest.mark.asyncio
async def test_connect_verifies_the_server_by_default(pki: PKI, trust: str) -> None:
    settings: ClientSettings
    if trust == "other_ca":
        settings = client_settings(pki, tls={"ca_file": pki.other_ca})
    elif trust == "wrong_hostname":
        settings = client_settings(pki, server_hostname="example.com")
    else:
        settings = ClientSettings.load(server_hostname="localhost")  # no CA file: system store
    assert not settings.tls.insecure_skip_verify
    handler = Recorder()
    with log_watch():
        async with running_server(server_settings(pki), handler) as server:
            events = EventWatch(server)
            with pytest.raises(HandshakeError) as info:
                await asyncio.wait_for(connect("127.0.0.1", server.port, settings), 10)
            assert info.value.reason == "CERTIFICATE_VERIFY_FAILED"
            if trust == "wrong_hostname":
                assert "example.com" in str(info.value) or "mismatch" in str(info.value)
            # The client told the server why (an alert), instead of just hanging up.
            (failed,) = await events.wait(HandshakeFailed)
            assert failed.reason == "peer_alert", failed
            assert "ALERT" in failed.detail, failed
            assert handler.conns == []
            # The same server is fine with a client that trusts the right CA.
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(b"ok")
                assert await asyncio.wait_for(conn.readexactly(2), 5) == b"ok"


@both_tls
@pytest.mark.asyncio
async def test_insecure_skip_verify_is_explicit(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    settings = ClientSettings.load(tls={"insecure_skip_verify": True})
    async with running_server(server_settings(pki)) as server:
        async with connect("127.0.0.1", server.port, settings) as conn:
            await conn.send(b"x")
            assert await asyncio.wait_for(conn.readexactly(1), 5) == b"x"
    assert "verification is OFF" in caplog.text


# -- bounded connect and handshake ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_connect_to_a_closed_port_fails_fast(pki: PKI) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(connect("127.0.0.1", port, client_settings(pki)), 5)
    assert loop.time() - started < 2.0


@pytest.mark.asyncio
async def test_connect_timeout(pki: PKI) -> None:
    """A listener whose accept queue is full drops our SYN: connect_timeout must fire."""
    loop = asyncio.get_running_loop()
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # Linux: room for one queued connection, never accepted
        port = listener.getsockname()[1]
        filler.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(filler, ("127.0.0.1", port)), 5)
        settings = client_settings(pki, connect_timeout=0.3)
        started = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(connect("127.0.0.1", port, settings), 5)
        elapsed = loop.time() - started
    assert 0.25 <= elapsed < 2.0, elapsed


@pytest.mark.asyncio
async def test_handshake_timeout(pki: PKI) -> None:
    """A TCP server that accepts and never answers: HandshakeError(reason="timeout"), bounded."""
    got_hello = asyncio.get_running_loop().create_future()
    peer_done = asyncio.Event()
    release = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = await reader.read(65536)
            if not got_hello.done():
                got_hello.set_result(hello)
            # The client gives up and hangs up; we see that, without ever answering.
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass
            peer_done.set()
            await release.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        settings = client_settings(pki, handshake_timeout=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(HandshakeError) as info:
            await asyncio.wait_for(connect("127.0.0.1", port, settings), 5)
        elapsed = loop.time() - started
        assert info.value.reason == "timeout"
        assert "timed out" in str(info.value)
        assert 0.25 <= elapsed < 2.0, elapsed
        hello = await asyncio.wait_for(got_hello, 5)
        assert hello[:1] == b"\x16"  # a TLS handshake record: the ClientHello was sent
        await asyncio.wait_for(peer_done.wait(), 5)  # and the client closed its socket
    finally:
        release.set()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


@pytest.mark.asyncio
async def test_server_hanging_up_at_once_is_a_handshake_error(pki: PKI) -> None:
    """A server that closes right after accept (e.g. at its limit) never leaves connect hanging."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        for _ in range(5):
            with pytest.raises(HandshakeError):
                await asyncio.wait_for(connect("127.0.0.1", port, client_settings(pki)), 5)
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


# -- mTLS, facts, close ----------------------------------------------------------------------------


@both_tls
@pytest.mark.asyncio
async def test_mtls_client_certificate(pki: PKI) -> None:
    handler = Recorder()
    settings = server_settings(pki, tls={"client_auth": "required", "ca_file": pki.ca})
    csettings = client_settings(pki, tls={"certfile": pki.client_cert, "keyfile": pki.client_key})
    async with running_server(settings, handler) as server:
        async with connect("127.0.0.1", server.port, csettings) as conn:
            await conn.send(b"who am i")
            assert await asyncio.wait_for(conn.readexactly(8), 5) == b"who am i"
            assert conn.peer_subject is not None
            assert "commonName=localhost" in conn.peer_subject.split(",")
        (server_side,) = handler.conns
        assert server_side.peer_subject is not None
        assert "commonName=alice" in server_side.peer_subject.split(",")


@both_tls
@pytest.mark.asyncio
async def test_client_connection_facts(pki: PKI, tls_version: str) -> None:
    settings = server_settings(pki, tls={"alpn": ["echo/1"]})
    csettings = client_settings(pki, tls={"alpn": ["echo/1"]})
    async with running_server(settings) as server:
        async with connect("127.0.0.1", server.port, csettings) as conn:
            assert conn.version == tls_version
            assert conn.cipher is not None
            assert conn.cipher.startswith("TLS_" if tls_version == "TLSv1.3" else "ECDHE-")
            assert conn.group == "X25519"
            assert conn.alpn == "echo/1"
            assert conn.server_name == "localhost"
            assert conn.peer == ("127.0.0.1", server.port)
            assert conn.handshake_duration > 0
            await conn.send(b"0123456789")
            assert await asyncio.wait_for(conn.readexactly(10), 5) == b"0123456789"
            assert conn.bytes_out == conn.bytes_in == 10
            text = repr(conn)
            assert tls_version in text
            assert "group=X25519" in text


@pytest.mark.parametrize(
    ("tls", "group", "version"),
    [
        ({"groups": ["P-384"]}, "P-384", "TLSv1.3"),
        ({"groups": ["P-256"], "profile": "modern"}, "P-256", "TLSv1.3"),
    ],
)
@pytest.mark.asyncio
async def test_client_group_choice(pki: PKI, tls: dict[str, Any], group: str, version: str) -> None:
    handler = Recorder()
    async with running_server(server_settings(pki), handler) as server:
        async with connect("127.0.0.1", server.port, client_settings(pki, tls=tls)) as conn:
            assert conn.group == group
            assert conn.version == version
            await conn.send(b"x")
            await asyncio.wait_for(conn.readexactly(1), 5)
        assert handler.conns[0].group == group


@both_tls
@pytest.mark.asyncio
async def test_no_common_group_fails_with_the_servers_alert(pki: PKI) -> None:
    settings = server_settings(pki, tls={"groups": ["X25519"]})
    async with running_server(settings) as server:
        with pytest.raises(HandshakeError) as info:
            await asyncio.wait_for(
                connect("127.0.0.1", server.port, client_settings(pki, tls={"groups": ["P-256"]})),
                10,
            )
    assert info.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"


@pytest.mark.asyncio
async def test_against_openssl_s_server(pki: PKI) -> None:
    cert = ("-cert", str(pki.server_cert), "-key", str(pki.server_key))
    async with s_server(*cert) as (_, port):
        async with connect("127.0.0.1", port, client_settings(pki)) as conn:
            assert conn.group == "X25519"
            await conn.send(b"hello\n")
            assert await asyncio.wait_for(conn.readexactly(6), 10) == b"olleh\n"
    # An FFDHE-only server: our client offers elliptic curves only, so no session at all.
    async with s_server(*cert, "-groups", "ffdhe2048") as (_, port):
        with pytest.raises(HandshakeError) as info:
            await asyncio.wait_for(connect("127.0.0.1", port, client_settings(pki)), 10)
        assert info.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"


@both_tls
@pytest.mark.asyncio
async def test_async_with_closes_cleanly(pki: PKI) -> None:
    handler = Recorder()
    async with running_server(server_settings(pki), handler) as server:
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            await conn.send(b"bye")
            assert await asyncio.wait_for(conn.readexactly(3), 5) == b"bye"
            assert not conn.is_closing
        assert conn.is_closing
        await asyncio.wait_for(handler.ended.wait(), 5)
        assert handler.endings == ["eof"]  # close_notify, not a reset or a truncation
        await conn.close()  # idempotent

        # Plain await + explicit close works the same way.
        handler.ended.clear()
        conn = await asyncio.wait_for(connect("127.0.0.1", server.port, client_settings(pki)), 10)
        await conn.send(b"x")
        await asyncio.wait_for(conn.readexactly(1), 5)
        await asyncio.wait_for(conn.close(), 10)
        await asyncio.wait_for(handler.ended.wait(), 5)
        assert handler.endings == ["eof", "eof"]


@both_tls
@pytest.mark.asyncio
async def test_server_close_is_seen_as_eof(pki: PKI) -> None:
    async def one_reply(conn: Connection) -> None:
        await conn.send(b"only this")

    async with running_server(server_settings(pki), one_reply) as server:
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            assert await asyncio.wait_for(conn.readexactly(9), 5) == b"only this"
            assert await asyncio.wait_for(conn.read(), 5) == b""
            assert conn.at_eof()
