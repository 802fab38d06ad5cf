"""Server events with real peers: normalised failure reasons, completed/closed facts, refusals.

Failures come from real clients (``openssl s_client`` offering only ffdhe groups, only RSA key
transport, only TLS 1.1; raw sockets sending HTTP or nothing). Tests wait on the events
themselves (:class:`tests.eventwatch.EventWatch`), bounded, never on sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import pytest

from ecdhe_async import connect
from ecdhe_async.connection import Connection
from ecdhe_async.events import (
    ConnectionClosed,
    ConnectionRefused,
    Event,
    EventBus,
    HandshakeCompleted,
    HandshakeFailed,
    RateLimit,
    classify_failure,
)
from ecdhe_async.server import TLSServer

from .conftest import PKI, client_settings, running_server, s_client, server_settings
from .eventwatch import EventWatch
from .netutil import log_watch, raw_connect, read_until_closed

# (normalised reason, s_client arguments, what the client reports receiving)
REFUSED_CLIENTS = [
    ("no_shared_group", ["-tls1_3", "-groups", "ffdhe2048"], "alert handshake failure"),
    ("no_shared_cipher", ["-tls1_2", "-cipher", "AES128-GCM-SHA256"], "alert handshake failure"),
    ("protocol_version", ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], "alert protocol version"),
]


async def echo_once(port: int, pki: PKI, payload: bytes = b"hello") -> None:
    async with asyncio.timeout(10):
        async with connect("127.0.0.1", port, client_settings(pki)) as conn:
            await conn.send(payload)
            assert await conn.readexactly(len(payload)) == payload


@pytest.mark.asyncio
async def test_ffdhe_rsa_kex_and_tls11_clients_get_distinct_reasons(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        watch = EventWatch(server)
        for i, (reason, args, alert) in enumerate(REFUSED_CLIENTS):
            res = await s_client(server.port, *args)
            assert res.returncode != 0
            assert alert in res.output  # the alert really went back to the client
            failed = (await watch.wait(HandshakeFailed, count=i + 1))[i]
            assert failed.reason == reason, failed
            assert failed.alert_sent is True
            assert failed.phase == "handshake"
            assert failed.peer is not None
            assert failed.peer[0] == "127.0.0.1"
            assert failed.duration > 0
        reasons = [e.reason for e in watch.of(HandshakeFailed)]
        assert len(set(reasons)) == 3, reasons
        assert [e.detail for e in watch.of(HandshakeFailed)] == [
            "NO_SUITABLE_KEY_SHARE",
            "NO_SHARED_CIPHER",
            "UNSUPPORTED_PROTOCOL",
        ]
        assert watch.of(HandshakeCompleted) == []
        assert server.stats.handshake_failures == 3


@pytest.mark.asyncio
async def test_missing_client_certificate_and_client_rejecting_ours(pki: PKI) -> None:
    settings = server_settings(pki, tls={"client_auth": "required", "ca_file": pki.ca})
    async with running_server(settings) as server:
        watch = EventWatch(server)
        await s_client(server.port, "-tls1_2")  # no client certificate
        (failed,) = await watch.wait(HandshakeFailed)
        assert (failed.reason, failed.alert_sent) == ("certificate_required", True)
    async with running_server(server_settings(pki)) as server:
        watch = EventWatch(server)
        # The client does not trust our CA and says so with an alert: the peer's alert, not ours.
        res = await s_client(server.port, "-tls1_3", "-verify_return_error")
        assert "certificate verify failed" in res.output
        (failed,) = await watch.wait(HandshakeFailed)
        assert (failed.reason, failed.alert_sent) == ("peer_alert", False)
        assert failed.detail == "TLSV1_ALERT_UNKNOWN_CA"


@pytest.mark.asyncio
async def test_plain_http_and_silence(pki: PKI) -> None:
    async with running_server(server_settings(pki, handshake_timeout=0.5)) as server:
        watch = EventWatch(server)
        sock = await raw_connect(server.port)
        try:
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data, _ = await read_until_closed(sock)
        finally:
            sock.close()
        (failed,) = await watch.wait(HandshakeFailed)
        assert (failed.reason, failed.detail) == ("not_tls", "HTTP_REQUEST")
        assert failed.alert_sent is False
        assert data == b""  # indeed no alert on the wire
        silent = await raw_connect(server.port)
        try:
            await read_until_closed(silent, deadline=5)
        finally:
            silent.close()
        timeout = (await watch.wait(HandshakeFailed, count=2))[1]
        assert (timeout.reason, timeout.phase, timeout.alert_sent) == ("timeout", "waiting", False)


@pytest.mark.asyncio
async def test_completed_and_closed_events_carry_the_facts(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        watch = EventWatch(server)
        await echo_once(server.port, pki, b"hello")
        (closed,) = await watch.wait(ConnectionClosed)
        (done,) = watch.of(HandshakeCompleted)
    assert done.version == "TLSv1.3"
    assert done.group == "X25519"
    assert done.sni == "localhost"
    assert done.cipher
    assert done.cipher.startswith("TLS_")
    assert done.client_subject is None
    assert 0 < done.duration < 5
    assert (closed.bytes_in, closed.bytes_out, closed.cause) == (5, 5, "peer_close")
    assert (closed.group, closed.sni, closed.peer) == ("X25519", "localhost", done.peer)
    assert closed.duration >= 0
    assert watch.events.index(done) < watch.events.index(closed)


@pytest.mark.asyncio
async def test_close_causes_idle_and_stop(pki: PKI) -> None:
    async with running_server(server_settings(pki, idle_timeout=0.3)) as server:
        watch = EventWatch(server)
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            (closed,) = await watch.wait(ConnectionClosed)
            assert closed.cause == "idle"
            assert await asyncio.wait_for(conn.read(), 5) == b""
    started = asyncio.Event()

    async def stubborn(conn: Connection) -> None:
        started.set()
        await asyncio.sleep(60)  # never returns by itself: cancelled by aclose(grace=0)

    server = TLSServer(server_settings(pki), stubborn)
    await asyncio.wait_for(server.start(), 10)
    watch = EventWatch(server)
    try:
        async with connect("127.0.0.1", server.port, client_settings(pki)):
            await asyncio.wait_for(started.wait(), 10)
            await asyncio.wait_for(server.aclose(grace=0), 15)
    finally:
        await asyncio.wait_for(server.aclose(grace=0), 15)
    (closed,) = await watch.wait(ConnectionClosed)
    assert closed.cause == "stop"


@pytest.mark.asyncio
async def test_limits_emit_refusals(pki: PKI) -> None:
    async with running_server(server_settings(pki, max_connections=1)) as server:
        watch = EventWatch(server)
        async with connect("127.0.0.1", server.port, client_settings(pki)):
            sock = await raw_connect(server.port)
            try:
                await read_until_closed(sock)
            finally:
                sock.close()
            (refused,) = await watch.wait(ConnectionRefused)
            assert refused.limit == "max_connections"
    async with running_server(server_settings(pki, max_pending_handshakes=1)) as server:
        watch = EventWatch(server)
        first = await raw_connect(server.port)
        second = await raw_connect(server.port)
        try:
            (refused,) = await watch.wait(ConnectionRefused)
            assert refused.limit == "max_pending_handshakes"
            assert refused.peer is not None
            assert refused.peer[1] == first.getsockname()[1]  # the oldest silent one went
        finally:
            first.close()
            second.close()


@pytest.mark.asyncio
async def test_failing_subscriber_never_hurts_a_connection(pki: PKI) -> None:
    calls = 0

    def broken(event: Event) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("subscriber bug")

    with log_watch() as logs:
        async with running_server(server_settings(pki)) as server:
            server.subscribe(broken)
            watch = EventWatch(server)  # subscribed after the broken one: still served
            for i in range(4):
                await echo_once(server.port, pki, b"x%d" % i)
            await watch.wait(ConnectionClosed, count=4)
            assert server.stats.handler_errors == 0
    assert calls == 8  # completed + closed, four times
    failures = logs.matching("event subscriber", logging.ERROR)
    assert len(failures) == 5  # rate-limited: 5 per minute
    assert failures[0].exc_info is not None


@pytest.mark.asyncio
async def test_unsubscribe(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        seen: list[Event] = []
        unsubscribe = server.subscribe(seen.append)
        watch = EventWatch(server)
        await echo_once(server.port, pki)
        await watch.wait(ConnectionClosed)
        unsubscribe()
        await echo_once(server.port, pki)
        await watch.wait(ConnectionClosed, count=2)
        assert [type(e) for e in seen] == [HandshakeCompleted, ConnectionClosed]


@pytest.mark.asyncio
async def test_subscribe_to_some_kinds_only(pki: PKI) -> None:
    """``kinds`` narrows what a subscriber gets; an event nobody wants is not built at all."""
    async with running_server(server_settings(pki, access_log=False)) as server:
        failures: list[Event] = []
        server.subscribe(failures.append, kinds=(HandshakeFailed,))
        assert not server._events.wants(ConnectionClosed)  # no access log, nobody else
        assert not server._events.wants(HandshakeCompleted)
        watch = EventWatch(server)
        await echo_once(server.port, pki)
        await watch.wait(ConnectionClosed)
        await s_client(server.port, *REFUSED_CLIENTS[0][1])
        await watch.wait(HandshakeFailed)
    assert [type(e) for e in failures] == [HandshakeFailed]


def test_event_bus_is_false_without_subscribers() -> None:
    bus = EventBus()
    assert not bus
    off = bus.subscribe(lambda e: None)
    assert bus
    off()
    assert not bus


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (None, ("eof", False)),
        (TimeoutError("x"), ("timeout", False)),
        (ConnectionResetError(), ("reset", False)),
        (ConnectionAbortedError("closed during the TLS handshake"), ("eof", False)),
        (ssl.SSLEOFError(8, "EOF"), ("eof", False)),
        (ValueError("?"), ("other", False)),
    ],
)
def test_classify_failure_without_openssl_reason(exc: Any, expected: tuple[str, bool]) -> None:
    reason, alert, _detail = classify_failure(exc)
    assert (reason, alert) == expected


def test_rate_limit_counts_what_it_left_out() -> None:
    limit = RateLimit(burst=2, window=3600)
    assert [limit.allow()[0] for _ in range(5)] == [True, True, False, False, False]
    limit._start -= 3600  # the window is over
    assert limit.allow() == (True, 3)
