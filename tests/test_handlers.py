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
from .conftest import PKI, client_settings, running_server, server_settings
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


@pytest.mark.asyncio
async def test_echo_handler(pki: PKI) -> None:
    payload = bytes(range(256)) * 1000
    async with running_server(server_settings(pki, handler="echo")) as server:
        assert await exchange(server.port, pki, payload, len(payload)) == payload


@pytest.mark.asyncio
async def test_lines_handler(pki: PKI) -> None:
    async with running_server(server_settings(pki, handler="lines")) as server:
        async with asyncio.timeout(10):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(b"one\r\ntwo\nthr")  # CRLF and LF; a line split over writes
                assert await conn.readexactly(8) == b"one\ntwo\n"
                await conn.send(b"ee\n\n")
                assert await conn.readexactly(7) == b"three\n\n"


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


@pytest.mark.parametrize(
    ("handler", "message"),
    [("lines", b"last line\n"), ("frames", frame(b"last frame"))],
)
@pytest.mark.asyncio
async def test_framed_handlers_stop_at_a_message_boundary(
    pki: PKI, handler: str, message: bytes
) -> None:
    """On aclose() the framed handlers answer the message in hand, then close: no full grace."""
    grace = 10.0
    settings = server_settings(pki)
    builtin = resolve_handler(handler, settings)
    conns: list[Connection] = []

    async def watched(conn: Connection) -> None:
        conns.append(conn)
        await builtin(conn)

    server = TLSServer(settings, watched)
    await asyncio.wait_for(server.start(), 10)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(10):
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                await conn.send(message)  # the handler is running and idle in read()
                assert await conn.readexactly(len(message)) == message
                started = loop.time()
                stop = asyncio.create_task(server.aclose(grace=grace))
                await asyncio.sleep(0)  # one loop turn: aclose() runs up to its first wait
                assert conns[0].stop_requested
                await conn.send(message)  # arrives after stop was requested
                assert await conn.readexactly(len(message)) == message
                assert await conn.read() == b""  # then the server closes
            await stop
        assert loop.time() - started < grace / 2
    finally:
        await asyncio.wait_for(server.aclose(grace=0), 30)
