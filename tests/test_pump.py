"""Our TLS record pump (``ecdhe_async._pump``): the guarantees it owns, against real peers.

Each test holds on both loops (the conftest runs every async test on the stdlib loop and on
uvloop): large exact reads, TLS 1.3 half-close, bounded closes after a peer stops reading, no
timer keeping a closed connection alive, internal errors logged loudly, refused handshakes
logged (rate-limited), clear client errors. The buffered stream itself is property-tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import socket
import ssl
import warnings
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecdhe_async import connect
from ecdhe_async._refusals import RefusalLog, describe_offer
from ecdhe_async._stream import StreamBuffer
from ecdhe_async.connection import Connection, TLSInfo
from ecdhe_async.errors import HandshakeError
from ecdhe_async.events import ConnectionClosed
from ecdhe_async.server import TLSServer
from ecdhe_async.tls import client_context

from .conftest import (
    PKI,
    both_tls,
    client_settings,
    running_server,
    s_client_echo,
    server_settings,
)
from .eventwatch import EventWatch
from .netutil import DumbTLSClient, client_hello, log_watch, raw_connect, rst_close

# -- point 5: exact reads above the high-water mark; the stream against any chunking --------


@both_tls
@pytest.mark.asyncio
async def test_readexactly_above_the_high_water_mark(pki: PKI) -> None:
    """A handler asking for 1 MB (4x the 256 KiB mark) gets it (it used to wait forever)."""
    size = 1_000_000

    async def handler(conn: Connection) -> None:
        data = await conn.readexactly(size)
        await conn.send(hashlib.sha256(data).digest())

    payload = os.urandom(size)
    async with running_server(server_settings(pki), handler) as server:
        async with asyncio.timeout(20):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(payload)
                assert await conn.readexactly(32) == hashlib.sha256(payload).digest()


class _FedBuffer(StreamBuffer):
    """A StreamBuffer fed by a test task that honours pause/resume like a socket would."""

    __slots__ = ("resumed",)

    def __init__(self, loop: asyncio.AbstractEventLoop, high_water: int) -> None:
        super().__init__(loop)
        self._high_water = high_water
        self.resumed = asyncio.Event()
        self.resumed.set()

    def _pause_input(self) -> None:
        self.resumed.clear()

    def _resume_input(self) -> None:
        self.resumed.set()


_READ = st.one_of(
    st.tuples(st.just("read"), st.none() | st.integers(1, 9000)),
    st.tuples(st.just("exactly"), st.integers(0, 70_000)),
)


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=6000), max_size=25),
    reads=st.lists(_READ, max_size=40),
    high_water=st.integers(1, 20_000),
)
def test_stream_buffer_any_chunking_any_reads(
    chunks: list[bytes], reads: list[tuple[str, int | None]], high_water: int
) -> None:
    """Bytes come out in order, exactly once, never a hang, the buffer bounded by the reads."""
    data = b"".join(chunks)
    biggest = max((len(c) for c in chunks), default=0)

    async def scenario() -> None:
        buf = _FedBuffer(asyncio.get_running_loop(), high_water)
        peak = 0

        async def feed() -> None:
            nonlocal peak
            for chunk in chunks:
                await buf.resumed.wait()
                buf._deliver(chunk)
                peak = max(peak, buf._buffered - max(high_water, buf._want))
                await asyncio.sleep(0)
            buf._set_eof()

        feeder = asyncio.create_task(feed())
        out = bytearray()
        async with asyncio.timeout(5):
            for kind, n in reads:
                if kind == "read":
                    got = await buf.read(n)
                    assert n is None or len(got) <= n
                    if not got:
                        break
                    out += got
                else:
                    assert n is not None
                    try:
                        got = await buf.readexactly(n)
                    except asyncio.IncompleteReadError as exc:
                        out += exc.partial
                        break
                    assert len(got) == n
                    out += got
            out += await buf.read()  # the rest, up to EOF
            while more := await buf.read():
                out += more
            await feeder
        assert bytes(out) == data
        assert peak <= biggest  # never more than one chunk past the (raised) mark

    asyncio.run(scenario())


# -- point 6: TLS 1.3 half-close ----------------------------------------------------------------


class RawTLSClient:
    """A TLS client on ``ssl.SSLObject`` + two ``MemoryBIO``s over a plain socket."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext) -> None:
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")

    @classmethod
    async def connect(cls, port: int, ctx: ssl.SSLContext) -> RawTLSClient:
        client = cls(await raw_connect(port), ctx)
        try:
            while True:
                try:
                    client.obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await client._flush()
                    await client._recv()
            await client._flush()
        except BaseException:
            client.sock.close()
            raise
        return client

    async def _flush(self) -> None:
        if data := self.out.read():
            await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def _recv(self) -> None:
        raw = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not raw:
            raise ConnectionError("socket closed without close_notify")
        self.inc.write(raw)

    async def send(self, data: bytes) -> None:
        self.obj.write(data)
        await self._flush()

    async def send_close_notify(self) -> None:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.obj.unwrap()
        await self._flush()

    async def read_to_close_notify(self) -> bytes:
        """Everything the server sends until its close_notify (error if the socket ends first)."""
        got = bytearray()
        while True:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    return bytes(got)
                got += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return bytes(got)
            await self._recv()


def _raw_client_context(pki: PKI, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


async def _reply_after_eof(conn: Connection, seen: list[Connection]) -> None:
    seen.append(conn)
    request = bytearray()
    while chunk := await conn.read():
        request += chunk
    await conn.send(b"reply to " + bytes(request))


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
@pytest.mark.asyncio
async def test_reply_after_the_peers_close_notify_is_delivered(
    pki: PKI, version: ssl.TLSVersion
) -> None:
    """Request + close_notify, then read: the reply arrives, then our close_notify."""
    seen: list[Connection] = []

    async def handler(conn: Connection) -> None:
        await _reply_after_eof(conn, seen)

    with log_watch():
        async with running_server(server_settings(pki), handler) as server:
            events = EventWatch(server)
            for _ in range(5):
                ctx = _raw_client_context(pki, version)
                client = await RawTLSClient.connect(server.port, ctx)
                try:
                    async with asyncio.timeout(10):
                        await client.send(b"question")
                        await client.send_close_notify()
                        assert await client.read_to_close_notify() == b"reply to question"
                finally:
                    client.sock.close()
            await events.wait(ConnectionClosed, count=5)
        assert [c.bytes_out for c in seen] == [len(b"reply to question")] * 5
        assert server.stats.bytes_out == 5 * len(b"reply to question")


@both_tls
@pytest.mark.asyncio
async def test_a_write_that_cannot_be_delivered_raises(pki: PKI) -> None:
    """After the peer reset the connection, write() raises; bytes_out stays at what was sent."""
    outcome: asyncio.Future[tuple[BaseException | None, int]] = (
        asyncio.get_running_loop().create_future()
    )

    async def handler(conn: Connection) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while await conn.read():
                pass
        try:
            await conn.send(b"too late")
        except ConnectionError as exc:
            outcome.set_result((exc, conn.bytes_out))
        else:
            outcome.set_result((None, conn.bytes_out))

    async with running_server(server_settings(pki), handler) as server:
        ctx = client_context(client_settings(pki).tls)
        client = await DumbTLSClient.connect(server.port, ctx)
        await client.send(b"hello")
        rst_close(client.sock)
        exc, sent = await asyncio.wait_for(outcome, 10)
    assert isinstance(exc, ConnectionError), exc
    assert sent == 0


# -- point 7: every close bounded; write timeout ---------------------------------------------


@both_tls
@pytest.mark.asyncio
async def test_write_timeout_aborts_a_peer_that_never_reads(pki: PKI) -> None:
    """drain() against a peer that reads nothing raises TimeoutError after write_timeout."""
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def flood(conn: Connection) -> None:
        block = bytes(256 * 1024)
        try:
            for _ in range(10_000):  # bounded; 2.5 GB, never reached
                await conn.send(block)
        except BaseException as exc:
            outcome.set_result(exc)
            raise

    settings = server_settings(pki, write_timeout=0.5, idle_timeout=0)
    with log_watch():
        async with running_server(settings, flood) as server:
            events = EventWatch(server)
            ctx = client_context(client_settings(pki).tls)
            client = await DumbTLSClient.connect(server.port, ctx)
            try:
                exc = await asyncio.wait_for(outcome, 10)
                await events.wait(ConnectionClosed)
            finally:
                client.close()
    assert isinstance(exc, TimeoutError), exc
    assert "write_timeout" in str(exc)


@both_tls
@pytest.mark.asyncio
async def test_fatal_error_close_is_bounded_when_the_peer_does_not_read(pki: PKI) -> None:
    """Peer stops reading, server has megabytes queued, peer sends a forged record: the server
    flushes what it can, then aborts after shutdown_timeout (it used to wait for idle_timeout,
    forever with 0)."""
    queued = asyncio.get_running_loop().create_future()

    async def writer(conn: Connection) -> None:
        chunk = bytes(4 * 1024 * 1024)
        for _ in range(12):  # 48 MiB: far more than the socket buffers hold
            conn.write(chunk)  # write() encrypts at once: 4 MiB per loop step, not 48
            await asyncio.sleep(0)
        queued.set_result(None)
        await conn.read()

    settings = server_settings(pki, shutdown_timeout=0.5, idle_timeout=0, write_timeout=0)
    with log_watch():
        async with running_server(settings, writer) as server:
            events = EventWatch(server)
            ctx = client_context(client_settings(pki).tls)
            client = await DumbTLSClient.connect(server.port, ctx)
            try:
                await asyncio.wait_for(queued, 10)
                forged = b"\x17\x03\x03\x00\x40" + os.urandom(64)
                await asyncio.get_running_loop().sock_sendall(client.sock, forged)
                await events.wait(ConnectionClosed, deadline=10)
                assert server.stats.active == 0
            finally:
                client.close()


# -- point 8: closed connections are collectable at once -------------------------------------


@both_tls
@pytest.mark.load  # a full-heap gc.collect() holds the GIL even in a thread: >0.1 s loop steps
@pytest.mark.asyncio
async def test_closed_connections_are_collectable_at_once(pki: PKI) -> None:
    """No timer (idle, handshake, shutdown) keeps a closed Connection or its SSLObject alive."""
    refs: list[weakref.ref[Any]] = []
    idle_checked = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def handler(conn: Connection) -> None:
        obj = conn._pump.ssl_object
        assert obj is not None
        refs.extend([weakref.ref(conn), weakref.ref(obj), weakref.ref(conn._pump)])
        del obj
        while data := await conn.read():
            await conn.send(data)
            if conn._idle_timer is not None and data == b"re-armed?":
                idle_checked.set()

    settings = server_settings(pki, idle_timeout=0.2)
    with log_watch():
        async with running_server(settings, handler) as server:
            events = EventWatch(server)
            async with asyncio.timeout(10):
                async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                    # Busy past one idle period, so that the idle timer re-arms itself.
                    until = loop.time() + 0.35
                    for _ in range(100_000):
                        await conn.send(b"ping")
                        assert await conn.readexactly(4) == b"ping"
                        if loop.time() > until:
                            break
                    await conn.send(b"re-armed?")
                    assert await conn.readexactly(9) == b"re-armed?"
                await events.wait(ConnectionClosed)
            assert server.stats.idle_timeouts == 0
        assert idle_checked.is_set()
        del conn
        # A full collection of the whole session's heap: in a thread, while the loop idles
        # (on the loop it is a >0.1 s step in debug mode).
        await asyncio.to_thread(gc.collect)
        assert [r() for r in refs] == [None, None, None]


# -- point 13: errors in our own layer are loud ----------------------------------------------


@pytest.mark.asyncio
async def test_internal_error_in_the_tls_layer_is_logged_at_error_once(
    pki: PKI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = TLSInfo.from_ssl_object

    def broken(obj: Any, **kwargs: Any) -> TLSInfo:
        if obj.server_side:  # the client in this process keeps working
            raise RuntimeError("facts exploded on purpose")
        return original(obj, **kwargs)

    async with running_server(server_settings(pki)) as server:
        monkeypatch.setattr(TLSInfo, "from_ssl_object", broken)
        with contextlib.suppress(HandshakeError, ConnectionError, ssl.SSLError, TimeoutError):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await asyncio.wait_for(conn.read(), 5)
        monkeypatch.undo()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "internal error in the TLS layer" in errors[0].getMessage()
        assert errors[0].exc_info is not None
        assert "facts exploded on purpose" in caplog.text
        async with asyncio.timeout(10):  # the server keeps serving
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(b"still fine")
                assert await conn.readexactly(10) == b"still fine"


@pytest.mark.asyncio
async def test_internal_error_on_accept_is_logged_at_error_once(
    pki: PKI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_server(server_settings(pki)) as server:
        original = server._on_accept

        def broken(pump: Any) -> None:
            monkeypatch.setattr(server, "_on_accept", original)
            raise RuntimeError("accept exploded on purpose")

        monkeypatch.setattr(server, "_on_accept", broken)
        sock = await raw_connect(server.port)
        sock.close()
        async with asyncio.timeout(10):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(b"ok")
                assert await conn.readexactly(2) == b"ok"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "accepting a connection" in errors[0].getMessage()
    assert errors[0].exc_info is not None


# -- issue 11 point 5: refused handshakes visible at INFO, rate-limited ---------------------


@pytest.mark.asyncio
async def test_refused_handshakes_logged_at_info_rate_limited(
    pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RefusalLog, "burst", 3)
    monkeypatch.setattr(RefusalLog, "window", 600.0)  # one window for the whole test
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        old_client = _raw_client_context(pki, ssl.TLSVersion.TLSv1_1)
    old_client.set_ciphers("DEFAULT@SECLEVEL=0")  # lets OpenSSL 3 offer TLS 1.1 at all
    with log_watch() as watch:
        async with running_server(server_settings(pki)) as server:
            for _ in range(6):
                with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
                    await asyncio.wait_for(RawTLSClient.connect(server.port, old_client), 10)
            # Each client got its alert, so the server counted it (it counts, then sends).
            assert server.stats.handshake_failures == 6
            await asyncio.wait_for(server.aclose(), 10)  # the stop writes the pending summary
    lines = watch.matching("handshake failed from", logging.INFO)
    assert len(lines) == 3, [r.getMessage() for r in lines]
    text = lines[0].getMessage()
    assert "UNSUPPORTED_PROTOCOL (offered: versions TLSv1.1;" in text, text
    assert "allowed: TLSv1.2+, groups X25519,P-256,P-384" in text, text
    (summary,) = watch.matching("more handshake failures in the last")
    assert summary.getMessage() == "… and 3 more handshake failures in the last 600 s"
    assert summary.levelno == logging.INFO


def test_refusal_log_summary_comes_when_the_window_ends() -> None:
    """Past the burst, lines are counted; the window's end writes one summary (its timer)."""
    logger = logging.getLogger("ecdhe_async.test_refusals")
    with log_watch("ecdhe_async.test_refusals") as watch:

        async def flood() -> None:
            refusals = RefusalLog(logger, "TLSv1.2+")
            refusals.burst, refusals.window = 2, 0.2
            for i in range(5):
                refusals.refused(f"10.0.0.{i}:1", "NO_SUITABLE_KEY_SHARE", None)
            await watch.wait("more handshake failures", deadline=5)
            refusals.close()

        asyncio.run(flood())
    messages = [r.getMessage() for r in watch.records]
    assert len(messages) == 3, messages
    assert messages[-1] == "… and 3 more handshake failures in the last 0.2 s"


def test_describe_offer_reads_a_real_client_hello() -> None:
    text = describe_offer(client_hello())
    assert "TLSv1.3" in text
    assert "X25519" in text
    assert describe_offer(b"GET / HTTP/1.1\r\n") == ""
    assert describe_offer(None) == ""


# -- issue 11 points 1 and 12: client errors -------------------------------------------------


@contextlib.asynccontextmanager
async def _mtls_server(pki: PKI) -> AsyncIterator[TLSServer]:
    settings = server_settings(pki, tls={"ca_file": pki.ca, "client_auth": "required"})
    async with running_server(settings) as server:
        yield server


@pytest.mark.asyncio
async def test_mtls_refusal_surfaces_as_handshake_error_with_a_hint(pki: PKI) -> None:
    """No ValueError from half-built facts, ever; the first read raises HandshakeError."""
    async with _mtls_server(pki) as server:
        for _ in range(10):
            async with asyncio.timeout(10):
                try:
                    conn = await connect("127.0.0.1", server.port, client_settings(pki))
                except HandshakeError as exc:  # the alert may beat the client's own finish
                    message = str(exc)
                    assert "client certificate" in message or "ALERT" in message, message
                    continue
                try:
                    assert conn.version == "TLSv1.3"
                    with pytest.raises(HandshakeError, match="pass --certfile and --keyfile"):
                        await conn.read()
                finally:
                    await conn.close()


@pytest.mark.asyncio
async def test_connect_errors_name_the_target(pki: PKI) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(ConnectionRefusedError) as info:
        await asyncio.wait_for(connect("127.0.0.1", port, client_settings(pki)), 10)
    assert str(info.value) == f"cannot connect to 127.0.0.1:{port}: connection refused"
    with pytest.raises(ValueError, match="port 70000 is out of range"):
        connect("127.0.0.1", 70000, client_settings(pki))


@pytest.mark.asyncio
async def test_renegotiation_is_refused(pki: PKI) -> None:
    """A TLS 1.2 client asking to renegotiate gets the no_renegotiation alert."""
    async with running_server(server_settings(pki)) as server:
        res = await s_client_echo(
            server.port, "-tls1_2", send=b"R\n", expect=b"no renegotiation", deadline=10
        )
    assert "RENEGOTIATING" in res.output, res.output
    assert "no renegotiation" in res.output, res.output
