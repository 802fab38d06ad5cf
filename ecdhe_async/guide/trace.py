"""The live trace: real loopback handshakes, what crossed the wire, and what was negotiated.

Seeing the wire: ``ssl.SSLContext._msg_callback`` is a private but long-present debugging hook
(OpenSSL's ``SSL_CTX_set_msg_callback``) that reports every handshake message a connection sends
or receives, TLS 1.3's encrypted ones after decryption. :class:`HandshakeTrace` only copies the
handshake messages there (the callback must never raise: an exception would abort the handshake),
and everything is parsed afterwards by the pure functions of :mod:`ecdhe_async.guide.wire`
(:func:`summarize`). Handshake messages carry only public values (key shares, certificates,
signatures), never a secret. Where the hook is missing the live mode says "wire trace unavailable
on this Python" and still reports what the connection negotiated.

:func:`trace_handshakes` runs our :class:`~ecdhe_async.TLSServer` and our
:func:`~ecdhe_async.connect` against each other on 127.0.0.1, once with TLS 1.3 and once capped at
TLS 1.2, every step bounded by :data:`LIVE_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from ..certs import describe_certificate
from ..client import connect
from ..errors import HandshakeError
from ..server import TLSServer
from ..settings import ClientSettings, ServerSettings, TLSSettings
from ..tls import client_context
from .iana import (
    CERTIFICATE,
    CERTIFICATE_VERIFY,
    CLIENT_HELLO,
    CLIENT_KEY_EXCHANGE,
    FINISHED,
    HANDSHAKE,
    SERVER_HELLO,
    SERVER_KEY_EXCHANGE,
    TLS13,
    is_real_suite,
)
from .loopback import temporary_certificate
from .wire import (
    KeyShare,
    ServerKeyExchangeInfo,
    WireFormatError,
    leaf_key_type,
    parse_certificate,
    parse_certificate_verify,
    parse_client_hello,
    parse_client_key_exchange,
    parse_finished,
    parse_server_hello,
    parse_server_key_exchange,
)

__all__ = [
    "LIVE_TIMEOUT",
    "WIRE_TRACE_UNAVAILABLE",
    "HandshakeReport",
    "HandshakeTrace",
    "TracedMessage",
    "WireSummary",
    "summarize",
    "trace_handshakes",
]

WIRE_TRACE_UNAVAILABLE: Final = "wire trace unavailable on this Python"

#: Bound on every live step (certificate, connect, handshake, echo): loopback needs milliseconds.
LIVE_TIMEOUT: Final = 10.0

_MSG_CALLBACK: Final = "_msg_callback"  # ssl.SSLContext's private debugging hook (3.8+)

Direction = Literal["sent", "received"]


@dataclass(frozen=True, slots=True)
class TracedMessage:
    """One handshake message as the client saw it (``sent`` or ``received``)."""

    direction: Direction
    msg_type: int
    data: bytes


class HandshakeTrace:
    """Records the handshake messages of the connections made with one client context.

    Install with :meth:`install`; the callback only copies bytes and never raises.
    """

    def __init__(self) -> None:
        """Start with an empty trace."""
        self.messages: list[TracedMessage] = []

    @staticmethod
    def supported() -> bool:
        """Whether this Python has ``SSLContext._msg_callback``."""
        return hasattr(ssl.SSLContext, _MSG_CALLBACK)

    def install(self, ctx: ssl.SSLContext) -> bool:
        """Trace every handshake made with *ctx*; False (and nothing done) if unsupported."""
        if not self.supported():
            return False
        setattr(ctx, _MSG_CALLBACK, self)
        return True

    def __call__(
        self,
        conn: object,
        direction: str,
        version: int,
        content_type: int,
        msg_type: int,
        data: bytes,
    ) -> None:
        """The ``_msg_callback`` signature; keeps handshake messages (content type 22) only."""
        if content_type == HANDSHAKE and len(data) >= 4:
            side: Direction = "sent" if direction == "write" else "received"
            self.messages.append(TracedMessage(side, data[0], bytes(data)))


@dataclass(frozen=True, slots=True)
class WireSummary:
    """What crossed the wire during one handshake, from the client's trace."""

    offered_groups: tuple[int, ...] = ()
    offered_versions: tuple[int, ...] = ()
    offered_suites: int = 0
    client_key_shares: tuple[KeyShare, ...] = ()
    version: int | None = None
    cipher_suite: int | None = None
    server_key_share: KeyShare | None = None
    retry_group: int | None = None
    server_key_exchange: ServerKeyExchangeInfo | None = None
    client_key_exchange_size: int | None = None
    certificate_key_type: str | None = None
    certificate_count: int = 0
    certificate_verify_scheme: int | None = None
    finished_size: int | None = None
    downgrade_sentinel: bool = False

    @property
    def chosen_group(self) -> int | None:
        """The group the server picked (TLS 1.3 key_share, else the ServerKeyExchange curve)."""
        if self.server_key_share is not None:
            return self.server_key_share.group
        if self.server_key_exchange is not None:
            return self.server_key_exchange.named_curve
        return self.retry_group


def summarize(messages: Iterable[TracedMessage]) -> WireSummary:
    """Parse a trace into a :class:`WireSummary`; raises :class:`WireFormatError`.

    With a HelloRetryRequest the offer is the first ClientHello's and the server's share is the
    one in the second ServerHello.
    """
    fields: dict[str, Any] = {}
    tls13 = False
    for m in messages:
        if m.direction == "sent" and m.msg_type == CLIENT_HELLO and "offered_groups" not in fields:
            hello = parse_client_hello(m.data)
            fields.update(
                offered_groups=hello.supported_groups,
                offered_versions=hello.supported_versions,
                offered_suites=len([s for s in hello.cipher_suites if is_real_suite(s)]),
                client_key_shares=hello.key_shares,
            )
        elif m.direction == "received" and m.msg_type == SERVER_HELLO:
            server = parse_server_hello(m.data)
            tls13 = server.version == TLS13
            fields.update(
                version=server.version,
                cipher_suite=server.cipher_suite,
                downgrade_sentinel=server.downgrade_sentinel,
            )
            if server.hello_retry_request:
                fields["retry_group"] = server.retry_group
            else:
                fields["server_key_share"] = server.key_share
        elif m.direction == "received" and m.msg_type == CERTIFICATE:
            chain = parse_certificate(m.data, tls13=tls13)
            fields["certificate_count"] = len(chain)
            if chain:
                fields["certificate_key_type"] = leaf_key_type(chain[0])
        elif m.direction == "received" and m.msg_type == CERTIFICATE_VERIFY:
            fields["certificate_verify_scheme"] = parse_certificate_verify(m.data)
        elif m.direction == "received" and m.msg_type == SERVER_KEY_EXCHANGE:
            fields["server_key_exchange"] = parse_server_key_exchange(m.data)
        elif m.direction == "sent" and m.msg_type == CLIENT_KEY_EXCHANGE:
            fields["client_key_exchange_size"] = parse_client_key_exchange(m.data)
        elif m.direction == "received" and m.msg_type == FINISHED:
            fields["finished_size"] = parse_finished(m.data)
    return WireSummary(**fields)


# --- live handshakes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeReport:
    """One live loopback handshake: the negotiated facts and, when traced, the wire summary.

    ``error`` is set (and the facts are ``None``) when the handshake failed; ``note`` says why
    ``wire`` is missing (no ``_msg_callback``, or a message that could not be parsed).
    """

    label: str
    version: str | None = None
    cipher: str | None = None
    group: str | None = None
    certificate_key_type: str | None = None
    wire: WireSummary | None = None
    note: str | None = None
    error: str | None = None


_PING: Final = b"ping"


async def _traced_handshake(
    port: int, cert: Path, label: str, maximum: ssl.TLSVersion | None, key_type: str
) -> HandshakeReport:
    settings = await asyncio.to_thread(ClientSettings.load)
    ctx = await asyncio.to_thread(client_context, TLSSettings(ca_file=cert))
    if maximum is not None:
        ctx.maximum_version = maximum
    trace = HandshakeTrace()
    traced = trace.install(ctx)
    try:
        async with asyncio.timeout(LIVE_TIMEOUT):
            conn = await connect(
                "127.0.0.1", port, settings, ssl_context=ctx, server_hostname="localhost"
            )
            async with conn:
                await conn.send(_PING)
                await conn.readexactly(len(_PING))
    except HandshakeError as exc:
        return HandshakeReport(label, error=str(exc))
    wire: WireSummary | None = None
    note: str | None = None
    if not traced:
        note = WIRE_TRACE_UNAVAILABLE
    else:
        try:
            wire = summarize(trace.messages)
        except WireFormatError as exc:
            note = f"wire trace could not be parsed: {exc}"
    return HandshakeReport(
        label,
        version=conn.version,
        cipher=conn.cipher,
        group=conn.group,
        certificate_key_type=key_type,
        wire=wire,
        note=note,
    )


async def trace_handshakes() -> tuple[HandshakeReport, ...]:
    """Run one TLS 1.3 and one TLS 1.2 loopback handshake and report each.

    The server is our :class:`~ecdhe_async.TLSServer` (``intermediate`` profile, echo handler,
    a temporary self-signed certificate); the client is :func:`~ecdhe_async.connect` verifying
    that certificate, with its context traced by :class:`HandshakeTrace`.
    """
    async with temporary_certificate() as (cert, key):
        settings = await asyncio.to_thread(
            ServerSettings.load,
            host="127.0.0.1",
            port=0,
            handler="echo",
            tls=TLSSettings(certfile=cert, keyfile=key, profile="intermediate"),
        )
        server = await asyncio.to_thread(TLSServer, settings)
        key_type = (await asyncio.to_thread(describe_certificate, cert)).key_type
        async with asyncio.timeout(LIVE_TIMEOUT):
            await server.start()
        try:
            reports = []
            for label, maximum in (("TLS 1.3", None), ("TLS 1.2", ssl.TLSVersion.TLSv1_2)):
                reports.append(await _traced_handshake(server.port, cert, label, maximum, key_type))
        finally:
            await server.aclose(grace=1.0)
    return tuple(reports)
