"""One probe handshake: plain TCP from asyncio, TLS through ``ssl.SSLObject`` and memory BIOs.

Driving the handshake by hand (rather than ``open_connection(ssl=...)``) lets a probe tell apart
what the audit must not confuse: a server that *refused* the offer (it answered in TLS, usually
with an alert), one that is not speaking TLS at all (its first bytes are not a TLS record), a
connection that failed or stayed silent past the deadline, and an offer this OpenSSL could not
even send (an error before the first byte left) — which is "not tested", not a refusal.

After a successful handshake the probe says goodbye properly (close_notify, then waits — bounded —
for the server to close): a TLS 1.2 server drops a session from its cache after an unclean
close, which would hide session-ID resumption, and TLS 1.3 session tickets arrive after the
handshake, so counting them needs the server's last bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from .. import _openssl
from ..groups import by_openssl_name
from .report import Negotiated

__all__ = ["Failure", "FailureKind", "Handshake", "Target", "handshake"]

#: ``refused``: the server answered in TLS and said no; ``untrusted``: our certificate check
#: failed; ``unreachable``: no TCP connection; ``not_tls``: the server answered, but not in TLS;
#: ``timeout``: no answer in time; ``local``: this OpenSSL could not make the offer.
FailureKind: TypeAlias = Literal[
    "refused", "untrusted", "unreachable", "not_tls", "timeout", "local"
]

#: The longest we wait for the server's close after our close_notify (bounded; never an error).
CLOSE_WAIT: Final = 1.0
_READ_SIZE: Final = 65536
#: How much of a non-TLS answer the reason quotes.
_SAMPLE: Final = 24
# First byte of a TLS record: change_cipher_spec, alert, handshake, application_data, heartbeat.
_TLS_CONTENT_TYPES: Final = frozenset(range(20, 25))


@dataclass(frozen=True, slots=True)
class Target:
    """Where to probe and how long each probe may take."""

    host: str
    port: int
    #: SNI (and the name verified by the certificate check); ``None`` sends none.
    servername: str | None
    timeout: float


@dataclass(frozen=True, slots=True)
class Handshake:
    """A completed probe handshake."""

    negotiated: Negotiated
    session: ssl.SSLSession | None
    #: The leaf certificate (DER), or ``None`` when the server sent none we could read.
    peer_cert: bytes | None


class Failure(Exception):
    """A probe handshake that did not complete; ``kind`` says whose doing it was."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: FailureKind = kind
        self.reason = reason


def _looks_like_tls(first: bytes) -> bool:
    return len(first) < 2 or (first[0] in _TLS_CONTENT_TYPES and first[1] == 3)


def _ssl_reason(exc: ssl.SSLError) -> str:
    reason = exc.reason or exc.__class__.__name__
    return reason.lower().replace("_", " ")


async def handshake(
    target: Target,
    ctx: ssl.SSLContext,
    *,
    session: ssl.SSLSession | None = None,
    server_hostname: str | None = None,
) -> Handshake:
    """Run one handshake with *ctx* against *target*; raise :class:`Failure` if it fails.

    Connect and handshake are bounded by ``target.timeout``; the goodbye after a successful
    handshake by :data:`CLOSE_WAIT` (it never turns a success into a failure).
    """
    deadline = asyncio.get_running_loop().time() + target.timeout
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise Failure("unreachable", f"cannot connect: {reason}") from None
    except TimeoutError:
        raise Failure("timeout", f"no answer within {target.timeout:g} s") from None
    try:
        name = server_hostname or target.servername
        conn = _Conn(reader, writer, ctx, name, session)
        try:
            async with asyncio.timeout_at(deadline):
                await conn.drive()
        except TimeoutError:
            raise Failure("timeout", f"no answer within {target.timeout:g} s") from None
        negotiated = conn.negotiated()
        await conn.goodbye()
        return Handshake(negotiated, conn.obj.session, conn.obj.getpeercert(binary_form=True))
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), CLOSE_WAIT)


class _Conn:
    """A TCP stream and the ``SSLObject`` driven over it through two memory BIOs."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ctx: ssl.SSLContext,
        server_hostname: str | None,
        session: ssl.SSLSession | None,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(
            self.incoming, self.outgoing, server_hostname=server_hostname, session=session
        )

    async def drive(self) -> None:
        """Pump bytes until the handshake completes; classify every way it can fail."""
        received = b""
        sent = False
        while True:
            try:
                # In a thread: a key share for ffdhe8192 (and verifying the chain) takes the
                # better part of 0.1 s of CPU, too long to hold the loop the other probes share.
                await asyncio.to_thread(self.obj.do_handshake)
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                raise Failure("untrusted", exc.verify_message or _ssl_reason(exc)) from None
            except ssl.SSLError as exc:
                if not sent:  # nothing left our side: this OpenSSL could not make the offer
                    raise Failure("local", _ssl_reason(exc)) from None
                if not _looks_like_tls(received[:2]):
                    reason = f"the server does not speak TLS ({_ssl_reason(exc)})"
                    raise Failure("not_tls", reason) from None
                raise Failure("refused", _ssl_reason(exc)) from None
            if data := self.outgoing.read():
                sent = True
                await self._send(data)
            try:
                chunk = await self.reader.read(_READ_SIZE)
            except OSError as exc:
                raise Failure("refused", f"connection lost during the handshake: {exc}") from None
            if not chunk:
                when = "without answering" if not received else "during the handshake"
                raise Failure("refused", f"the server closed the connection {when}")
            if len(received) < 2:
                received += chunk[:2]
                if not _looks_like_tls(received[:2]):
                    sample = (received + chunk[2:])[:_SAMPLE]
                    reason = f"the server does not speak TLS (it sent {sample!r})"
                    raise Failure("not_tls", reason)
            self.incoming.write(chunk)
        if data := self.outgoing.read():
            await self._send(data)

    def negotiated(self) -> Negotiated:
        """What the completed handshake settled on."""
        cipher = self.obj.cipher()
        group = _openssl.negotiated_group(self.obj)
        return Negotiated(
            version=self.obj.version() or "?",
            cipher=cipher[0] if cipher else "?",
            group=None if group is None else by_openssl_name(group),
            resumed=self.obj.session_reused,
        )

    async def _send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except OSError as exc:
            raise Failure("refused", f"connection lost during the handshake: {exc}") from None

    async def goodbye(self) -> None:
        """close_notify, then read (bounded) until the server closes: tickets arrive meanwhile."""
        with contextlib.suppress(ssl.SSLError, OSError, TimeoutError):
            with contextlib.suppress(ssl.SSLWantReadError):
                self.obj.unwrap()
            self.writer.write(self.outgoing.read())
            async with asyncio.timeout(CLOSE_WAIT):
                while chunk := await self.reader.read(_READ_SIZE):
                    self.incoming.write(chunk)
                    try:
                        self.obj.unwrap()
                        return  # the server's close_notify
                    except ssl.SSLWantReadError:
                        continue
