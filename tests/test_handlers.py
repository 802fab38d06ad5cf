"""Handler resolution (names, import paths, classes, callables, clear errors) and the built-ins
(echo, lines, frames) over real TLS connections on 127.0.0.1, on both loops."""

from __future__ import annotations

import asyncio
import functools
import struct
from typing import Any

import pytest

from ecdhe_async import connect
from ecdhe_async.connection import Connection
from ecdhe_async.handlers import (
    BUILTIN_HANDLERS,
    EchoHandler,
    FrameEchoHandler,
    Handler,
    LineEchoHandler,
    resolve_handler,
)
from ecdhe_async.handlers.framing import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_LINE_LENGTH
from ecdhe_async.server import TLSServer
from ecdhe_async.settings import ServerSettings

from . import netutil
from .conftest import PKI, both_tls, client_settings, running_server, server_settings
from .netutil import frame, log_watch

# -- resolution ----------------------------------------------------------------------------------


def test_builtin_names() -> None:
    settings = ServerSettings.load(max_line_length=77, max_frame_size=1234)
    echo = resolve_handler("echo", settings)
    lines = resolve_handler("lines", settings)
    frames = resolve_handler("frames", settings)
    assert isinstance(echo, EchoHandler)
    assert isinstance(lines, LineEchoHandler)
    assert lines.max_line_length == 77  # from_settings
    assert isinstance(frames, FrameEchoHandler)
    assert frames.max_frame_size == 1234
    assert set(BUILTIN_HANDLERS) == {"echo", "lines", "frames"}
    for handler in (echo, lines, frames):
        assert isinstance(handler, Handler)
    # Without settings a class is built with its defaults.
    assert resolve_handler("lines").max_line_length == DEFAULT_MAX_LINE_LENGTH  # type: ignore[attr-defined]
    assert resolve_handler("frames").max_frame_size == DEFAULT_MAX_FRAME_SIZE  # type: ignore[attr-defined]


def test_import_paths() -> None:
    settings = ServerSettings.load(max_line_length=99)
    assert resolve_handler("tests.netutil:upper_handler", settings) is netutil.upper_handler
    assert resolve_handler("tests.netutil:Namespace.handler", settings) is netutil.upper_handler
    prefix = resolve_handler("tests.netutil:PrefixHandler", settings)
    assert isinstance(prefix, netutil.PrefixHandler)
    assert prefix.prefix == b"[99] "  # built with from_settings
    plain = resolve_handler("tests.netutil:PlainHandler", settings)
    assert isinstance(plain, netutil.PlainHandler)  # no from_settings: built with no arguments


def test_objects() -> None:
    async def handler(conn: Connection, greeting: bytes = b"") -> None:
        await conn.send(greeting)

    instance = netutil.PlainHandler()
    partial = functools.partial(handler, greeting=b"hi")
    assert resolve_handler(handler) is handler
    assert resolve_handler(instance) is instance
    assert resolve_handler(partial) is partial
    assert isinstance(resolve_handler(netutil.PlainHandler), netutil.PlainHandler)
    settings = ServerSettings.load(max_line_length=5)
    built = resolve_handler(netutil.PrefixHandler, settings)
    assert isinstance(built, netutil.PrefixHandler)
    assert built.prefix == b"[5] "


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown handler 'nope': use one of echo, lines, frames"),
        ("Echo", "unknown handler 'Echo'"),
        ("no_such_module_xyz:handler", "cannot import 'no_such_module_xyz'"),
        ("tests.netutil:missing", "'tests.netutil' has no 'missing'"),
        ("tests.netutil:Namespace.missing", "has no 'Namespace.missing'"),
        (":handler", "needs both parts"),
        ("tests.netutil:", "needs both parts"),
        ("tests.netutil:NOT_CALLABLE", "is not callable"),
        ("tests.netutil:sync_handler", "must be an async callable"),
        ("tests.netutil:SyncCallable", "must be an async callable"),
        (42, "is not callable"),
        (netutil.sync_handler, "must be an async callable"),
    ],
)
def test_bad_handlers_are_clear_value_errors(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")) as info:
        resolve_handler(spec, ServerSettings.load())
    assert "\n" not in str(info.value)  # one line


def test_server_refuses_a_bad_handler_at_construction(pki: PKI) -> None:
    with pytest.raises(ValueError, match="unknown handler 'nope'"):
        TLSServer(server_settings(pki, handler="nope"))
    with pytest.raises(ValueError, match="must be an async callable"):
        TLSServer(server_settings(pki), netutil.sync_handler)  # type: ignore[arg-type]


# -- end to end ----------------------------------------------------------------------------------


async def exchange(port: int, pki: PKI, send: bytes, expect: int) -> bytes:
    async with asyncio.timeout(10):
        async with connect("127.0.0.1", port, client_settings(pki)) as conn:
            await conn.send(send)
            return await conn.readexactly(expect)


@both_tls
@pytest.mark.parametrize(
    ("spec", "send", "reply"),
    [
        ("tests.netutil:upper_handler", b"shout", b"SHOUT"),
        ("tests.netutil:Namespace.handler", b"shout", b"SHOUT"),
        ("tests.netutil:PrefixHandler", b"hi", b"[123] hi"),
        ("tests.netutil:PlainHandler", b"abc", b"cba"),
    ],
)
@pytest.mark.asyncio
async def test_handler_by_import_path_in_settings(
    pki: PKI, spec: str, send: bytes, reply: bytes
) -> None:
    settings = server_settings(pki, handler=spec, max_line_length=123)
    async with running_server(settings) as server:  # handler=None: settings.handler is used
        assert await exchange(server.port, pki, send, len(reply)) == reply


@both_tls
@pytest.mark.asyncio
async def test_echo_handler(pki: PKI) -> None:
    payload = bytes(range(256)) * 1000
    async with running_server(server_settings(pki, handler="echo")) as server:
        assert await exchange(server.port, pki, payload, len(payload)) == payload


@both_tls
@pytest.mark.asyncio
async def test_lines_handler(pki: PKI) -> None:
    async with running_server(server_settings(pki, handler="lines")) as server:
        async with asyncio.timeout(10):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(b"one\r\ntwo\nthr")  # CRLF and LF; a line split over writes
                assert await conn.readexactly(8) == b"one\ntwo\n"
                await conn.send(b"ee\n\n")
                assert await conn.readexactly(7) == b"three\n\n"


@both_tls
@pytest.mark.asyncio
async def test_frames_handler(pki: PKI) -> None:
    frames = [b"", b"a", b"x" * 70_000]
    wire = b"".join(frame(f) for f in frames)
    async with running_server(server_settings(pki, handler="frames")) as server:
        async with asyncio.timeout(10):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(wire[:3])  # even the first header arrives in pieces
                await conn.send(wire[3:])
                assert await conn.readexactly(len(wire)) == wire


@both_tls
@pytest.mark.asyncio
async def test_truncated_frame_is_a_protocol_error(pki: PKI) -> None:
    with log_watch() as watch:
        async with running_server(server_settings(pki, handler="frames")) as server:
            async with asyncio.timeout(10):
                async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                    await conn.send(struct.pack(">I", 10) + b"abc")  # then close mid-frame
            await watch.wait("protocol error from")
            assert server.stats.protocol_errors == 1
            assert server.stats.handler_errors == 0


class _Spy:
    """A Connection seen by a built-in handler, telling the test when the handler read bytes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.got_bytes = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    async def read(self, n: int | None = None) -> bytes:
        data = await self.conn.read(n)
        self.got_bytes.set()
        return data

    async def read_next(self, n: int | None = None) -> bytes:
        data = await self.conn.read_next(n)
        self.got_bytes.set()
        return data


@pytest.mark.parametrize(
    ("handler", "message"),
    [("lines", b"last line\n"), ("frames", frame(b"last frame"))],
)
@pytest.mark.asyncio
async def test_framed_handlers_stop_at_a_message_boundary(
    pki: PKI, handler: str, message: bytes
) -> None:
    """On aclose() a framed handler in the middle of a message answers it, then closes; one
    idle at a message boundary closes at once (close_notify): never the full grace."""
    grace = 30.0
    settings = server_settings(pki)
    builtin = resolve_handler(handler, settings)
    spies: list[_Spy] = []

    async def watched(conn: Connection) -> None:
        spy = _Spy(conn)
        spies.append(spy)
        await builtin(spy)  # type: ignore[arg-type]

    server = TLSServer(settings, watched)
    await asyncio.wait_for(server.start(), 10)
    try:
        async with asyncio.timeout(10):
            csettings = client_settings(pki)
            async with (
                connect("127.0.0.1", server.port, csettings) as mid,
                connect("127.0.0.1", server.port, csettings) as idle,
            ):
                await idle.send(message)
                assert await idle.readexactly(len(message)) == message  # idle at a boundary
                await mid.send(message[:3])  # half a message in hand
                await asyncio.wait_for(_second_spy(spies).got_bytes.wait(), 5)
                stop = asyncio.create_task(server.aclose(grace=grace))
                assert await idle.read() == b""  # closed at once, with close_notify
                await mid.send(message[3:])  # the rest of the message in hand
                assert await mid.readexactly(len(message)) == message
                assert await mid.read() == b""  # then the server closes
            await stop  # well before the grace (the timeout above is a third of it)
        assert all(s.stop_requested for s in spies)
        assert server.stats.handler_errors == 0
    finally:
        await asyncio.wait_for(server.aclose(grace=0), 30)


def _second_spy(spies: list[_Spy]) -> _Spy:
    assert len(spies) == 2, spies
    return spies[1]


@pytest.mark.asyncio
async def test_echo_handler_keeps_running_until_the_grace_ends(pki: PKI) -> None:
    """``echo`` has no message boundary: an idle echo connection lives until the grace ends."""
    with log_watch() as watch:
        server = TLSServer(server_settings(pki), "echo")
        await asyncio.wait_for(server.start(), 10)
        try:
            async with asyncio.timeout(10):
                async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                    await conn.send(b"ping")
                    assert await conn.readexactly(4) == b"ping"
                    stop = asyncio.create_task(server.aclose(grace=0.3))
                    await conn.send(b"still echoing")  # during the grace
                    assert await conn.readexactly(13) == b"still echoing"
                    assert await conn.read() == b""
                await stop
            await watch.wait("cancelled 1 handler(s) still running")
        finally:
            await asyncio.wait_for(server.aclose(grace=0), 30)


@pytest.mark.asyncio
async def test_user_handler_can_await_the_stop(pki: PKI) -> None:
    """A user handler awaits the stop (read_next ends, wait_stop returns) instead of polling."""
    outcome: list[str] = []

    async def handler(conn: Connection) -> None:
        waiter = asyncio.ensure_future(conn.wait_stop())
        data = await conn.read_next()
        outcome.append(f"read_next={data!r} stop={conn.stop_requested}")
        await asyncio.wait_for(waiter, 5)
        outcome.append("wait_stop returned")

    server = TLSServer(server_settings(pki), handler)
    await asyncio.wait_for(server.start(), 10)
    try:
        async with asyncio.timeout(10):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(b"")  # connected; the handler waits in read_next()
                stop = asyncio.create_task(server.aclose(grace=30))
                assert await conn.read() == b""
            await stop
        assert outcome == ["read_next=b'' stop=True", "wait_stop returned"]
    finally:
        await asyncio.wait_for(server.aclose(grace=0), 30)
