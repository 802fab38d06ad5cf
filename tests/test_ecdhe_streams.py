"""The asyncio layer (ecdhe_async.ecdhe.exchange) over real loopback TCP: one test per mode.

Everything about the protocol itself is tested without I/O (test_ecdhe_wire.py,
test_ecdhe_protocol.py); here we check that the coroutine pumps real sockets correctly in each
mode (unauthenticated, one side authenticated, both authenticated, a peer that hangs up), on both
event loops (conftest), and that it never reads past the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

from ecdhe_async.ecdhe import (
    Auth,
    ExchangeResult,
    KeyExchange,
    RemoteExchangeError,
    encode_message,
    exchange,
)
from ecdhe_async.errors import KeyExchangeError

TIMEOUT = 10.0
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Any]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[int, asyncio.Future[Any]]]:
    """Serve one connection on 127.0.0.1:0 with ``handler``; its outcome lands in the future."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Any] = loop.create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            outcome.set_result(await handler(reader, writer))
        except Exception as exc:
            outcome.set_result(exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(writer.wait_closed(), TIMEOUT)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], outcome
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


async def run_pair(client_kwargs: dict[str, Any], server_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """``exchange`` on both ends of one TCP connection; after it, each side sends a line of
    application data on the same streams and reads the other's, unharmed by the exchange."""

    async def responder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        result = await asyncio.wait_for(
            exchange(reader, writer, initiator=False, **server_kwargs), TIMEOUT
        )
        writer.write(b"from server\n")
        assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"from client\n"
        return result

    async with serve(responder) as (port, server_outcome):
        async with connect(port) as (reader, writer):
            client = await asyncio.wait_for(
                exchange(reader, writer, initiator=True, **client_kwargs), TIMEOUT
            )
            writer.write(b"from client\n")
            assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"from server\n"
        server = await asyncio.wait_for(server_outcome, TIMEOUT)
    return client, server


def assert_ok(outcome: Any) -> ExchangeResult:
    assert isinstance(outcome, ExchangeResult), f"exchange failed: {outcome!r}"
    return outcome


@pytest.mark.asyncio
async def test_unauthenticated_over_tcp_reads_nothing_past_the_exchange(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The peer is a sans-IO machine that pipelines its HELLO, AUTH and application data in a
    single write before reading anything: the coroutine must leave the data in the reader."""
    peer = KeyExchange(initiator=False, curve="P-256")

    async def pipelining_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        writer.write(peer.initiate() + encode_message(Auth()) + b"APP DATA")
        await writer.drain()
        while peer.result is None:
            data = await asyncio.wait_for(reader.read(peer.bytes_needed), TIMEOUT)
            if not data:
                peer.receive_eof()
            peer.receive_data(data)  # our AUTH reply was sent ahead
        return peer.result

    with caplog.at_level(logging.DEBUG):
        async with serve(pipelining_peer) as (port, peer_outcome):
            async with connect(port) as (reader, writer):
                result = await asyncio.wait_for(
                    exchange(reader, writer, curve="P-256", initiator=True), TIMEOUT
                )
                assert await asyncio.wait_for(reader.readexactly(8), TIMEOUT) == b"APP DATA"
            other = assert_ok(await asyncio.wait_for(peer_outcome, TIMEOUT))
    assert hmac.compare_digest(result.key, other.key)
    assert not result.authenticated
    assert result.peer_public == other.local_public
    assert not [r for r in caplog.records if r.name.startswith("ecdhe_async")]  # nothing logged
    assert result.key.hex() not in caplog.text


@pytest.mark.asyncio
async def test_server_authenticated_over_tcp() -> None:
    server_id = ed25519.Ed25519PrivateKey.generate()
    client, server = await run_pair(
        {"peer_verify_key": server_id.public_key()}, {"identity": server_id}
    )
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated  # the client verified the server
    assert not s.authenticated  # the server has no idea who the client is
    assert hmac.compare_digest(c.key, s.key)


@pytest.mark.asyncio
async def test_mutually_authenticated_over_tcp() -> None:
    client_id = ec.generate_private_key(ec.SECP384R1())
    server_id = ed25519.Ed25519PrivateKey.generate()
    client, server = await run_pair(
        {"curve": "X448", "identity": client_id, "peer_verify_key": server_id.public_key()},
        {"curve": "X448", "identity": server_id, "peer_verify_key": client_id.public_key()},
    )
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated
    assert s.authenticated
    assert c.curve == "X448"
    assert hmac.compare_digest(c.key, s.key)
    assert c.local_public == s.peer_public


@pytest.mark.asyncio
async def test_peer_hanging_up_mid_exchange_is_a_remote_error() -> None:
    async def half_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(KeyExchange(initiator=False).initiate()[:20])
        await writer.drain()
        writer.write_eof()
        await asyncio.wait_for(reader.read(), TIMEOUT)  # until the client gives up and closes

    async with serve(half_hello) as (port, outcome):
        async with connect(port) as (reader, writer):
            with pytest.raises(RemoteExchangeError, match=r"truncated HELLO frame body: .* 17 of"):
                await asyncio.wait_for(exchange(reader, writer, initiator=True), TIMEOUT)
        assert await asyncio.wait_for(outcome, TIMEOUT) is None


class Tripwire:
    """Stands in for a StreamWriter that must not be touched: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the writer was used ({name}) although the arguments are bad")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        pytest.param({"curve": "P-192"}, "unsupported curve 'P-192'", id="curve"),
        pytest.param({"identity": ed448.Ed448PrivateKey.generate()}, "unsupported", id="ed448"),
        pytest.param({"info_label": bytes(70_000)}, "too long", id="label"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    kwargs: dict[str, Any], pattern: str
) -> None:
    writer = cast(asyncio.StreamWriter, Tripwire())
    with pytest.raises(KeyExchangeError, match=pattern):
        await exchange(asyncio.StreamReader(), writer, initiator=True, **kwargs)
