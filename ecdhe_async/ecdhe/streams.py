"""The ECDHE exchange as a coroutine over asyncio streams: a thin pump around the sans-IO machine.

All protocol decisions live in :class:`~ecdhe_async.ecdhe.protocol.KeyExchange`; this module only
moves bytes. It reads exactly :attr:`~ecdhe_async.ecdhe.protocol.KeyExchange.bytes_needed` bytes
at a time, so whatever the peer sends after its last exchange message stays in the
:class:`asyncio.StreamReader` for the application.
"""

from __future__ import annotations

import asyncio

from ecdhe_async.ecdhe.agreement import DEFAULT_INFO_LABEL, Curve
from ecdhe_async.ecdhe.auth import SigningKey, VerifyKey
from ecdhe_async.ecdhe.protocol import ExchangeResult, KeyExchange
from ecdhe_async.ecdhe.wire import RemoteExchangeError

__all__ = ["exchange"]


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError as exc:
        raise RemoteExchangeError("connection lost while sending a key exchange message") from exc


async def exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    curve: Curve = "X25519",
    initiator: bool,
    identity: SigningKey | None = None,
    peer_verify_key: VerifyKey | None = None,
    info_label: bytes = DEFAULT_INFO_LABEL,
) -> ExchangeResult:
    """Run one ECDHE exchange over a stream pair and return the derived 32-byte key.

    Exactly one side must pass ``initiator=True``. With ``identity`` we sign the transcript; with
    ``peer_verify_key`` we require and verify the peer's signature (``authenticated`` is then
    True). Without ``peer_verify_key`` the result is unauthenticated and an active man in the
    middle cannot be detected. Every failure raises :class:`~ecdhe_async.errors.KeyExchangeError`
    (:class:`~ecdhe_async.ecdhe.wire.RemoteExchangeError` when the peer is to blame); bad
    arguments are refused before anything is sent. The caller owns the streams (close them) and
    should bound the call with :func:`asyncio.wait_for`. Bytes the peer sends after the exchange
    are left unread in ``reader``.
    """
    machine = KeyExchange(
        curve=curve,
        initiator=initiator,
        identity=identity,
        peer_verify_key=peer_verify_key,
        info_label=info_label,
    )
    await _send(writer, machine.initiate())
    while (result := machine.result) is None:
        try:
            data = await reader.read(machine.bytes_needed)
        except ConnectionError as exc:
            raise RemoteExchangeError("connection lost during the key exchange") from exc
        if not data:
            machine.receive_eof()  # raises: the peer closed before its AUTH
        reply = machine.receive_data(data)
        if reply:
            await _send(writer, reply)
    return result
