"""The "ECDHE for TLS" guide's functions, as a thin layer over the framework.

The guide's names and parameter order, working on top of :mod:`ecdhe_async` instead of a toy:

=================================  ===========================================================
guide function                     here
=================================  ===========================================================
``demonstrate_basic_ecdhe()``      two tasks run :func:`ecdhe_async.ecdhe.exchange` over a real
                                   loopback TCP connection; returns the (identical) derived key
``create_self_signed_cert(c, k)``  re-exported from :mod:`ecdhe_async.certs`
``run_tls_server(h, p, c, k)``     :class:`~ecdhe_async.TLSServer` (echo) until cancelled
``run_tls_client(h, p)``           :func:`~ecdhe_async.connect` (verifying), one echo round trip
``demonstrate_tls_with_ecdhe()``   both of the above on loopback with a temporary certificate
``explain_ecdhe_in_tls()``         the walkthrough of :mod:`ecdhe_async.explain`
=================================  ===========================================================

:func:`demo_main` prints the guide's three sections with live values; it shows public-key sizes
and *fingerprints* of derived keys (a SHA-256 prefix, for humans to compare), never a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519

from . import ecdhe, explain
from .certs import CertInfo, StrPath, create_self_signed_cert, describe_certificate
from .client import connect
from .ecdhe import CURVES, Curve, ExchangeResult, fingerprint
from .errors import KeyExchangeError
from .server import TLSServer
from .settings import ClientSettings, ServerSettings
from .tls import client_context

__all__ = [
    "ECDHE_GROUPS",
    "MITMResult",
    "TLSClientResult",
    "TLSDemoResult",
    "create_self_signed_cert",
    "demo_main",
    "demonstrate_basic_ecdhe",
    "demonstrate_mitm",
    "demonstrate_tls_with_ecdhe",
    "explain_ecdhe_in_tls",
    "run_tls_client",
    "run_tls_server",
]

#: Bound on each demo step (connect, exchange, echo): loopback needs milliseconds, so a step
#: that takes this long is stuck, not slow.
DEMO_TIMEOUT: Final = 10.0

#: Key-exchange groups that are elliptic-curve Diffie-Hellman (what every session must use).
ECDHE_GROUPS: Final = frozenset(CURVES)

_T = TypeVar("_T")
_Pair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


# --- 1. basic ECDHE ---------------------------------------------------------------------------


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), DEMO_TIMEOUT)


@contextlib.asynccontextmanager
async def _loopback() -> AsyncIterator[tuple[_Pair, _Pair]]:
    """A real TCP connection on 127.0.0.1: yields (client end, server end); closes everything."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[_Pair] = loop.create_future()

    def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if accepted.done():  # not ours (port 0 on loopback: unlikely, but never keep it)
            writer.close()
        else:
            accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncio.timeout(DEMO_TIMEOUT):
            client = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(DEMO_TIMEOUT):
                server_end = await accepted
            try:
                yield client, server_end
            finally:
                await _close(server_end[1])
        finally:
            await _close(client[1])
    finally:
        if not accepted.done():
            accepted.cancel()
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), DEMO_TIMEOUT)


async def _both(first: Coroutine[Any, Any, _T], second: Coroutine[Any, Any, _T]) -> tuple[_T, _T]:
    """Run two parties as tasks (bounded); the first failure cancels the other and is raised."""
    try:
        async with asyncio.timeout(DEMO_TIMEOUT), asyncio.TaskGroup() as tg:
            a = tg.create_task(first)
            b = tg.create_task(second)
    except* KeyExchangeError as group:
        raise group.exceptions[0] from None
    return a.result(), b.result()


async def _exchange_pair(curve: Curve) -> tuple[ExchangeResult, ExchangeResult]:
    """Alice (initiator) and Bob (responder) as two tasks over one loopback connection."""
    async with _loopback() as ((a_reader, a_writer), (b_reader, b_writer)):
        alice, bob = await _both(
            ecdhe.exchange(a_reader, a_writer, curve=curve, initiator=True),
            ecdhe.exchange(b_reader, b_writer, curve=curve, initiator=False),
        )
    if not hmac.compare_digest(alice.key, bob.key):  # pragma: no cover - would be a bug
        raise KeyExchangeError(f"{curve}: the two parties derived different keys")
    return alice, bob


async def demonstrate_basic_ecdhe(curve: Curve = "X25519") -> bytes:
    """Two parties (tasks) exchange ephemeral public keys over loopback TCP; return the key.

    Each side generates a fresh key pair on *curve*, sends its public key, validates the peer's
    and runs HKDF over the raw shared secret (:func:`ecdhe_async.ecdhe.exchange`). Both keys are
    compared with :func:`hmac.compare_digest`; the 32-byte key is returned. It is a secret:
    show :func:`~ecdhe_async.ecdhe.fingerprint` of it, never the key.
    """
    alice, _ = await _exchange_pair(curve)
    return alice.key


# --- the man in the middle ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MITMResult:
    """What a relaying man in the middle (Mallory) achieves, without and with authentication.

    Only fingerprints and error messages: the keys themselves never leave the demo.
    """

    curve: Curve
    #: Unauthenticated: both exchanges "succeed" but Alice's and Bob's keys differ...
    unauthenticated_alice_fingerprint: str
    unauthenticated_bob_fingerprint: str
    #: ...and Mallory holds each of them.
    mallory_knows_alice_key: bool
    mallory_knows_bob_key: bool
    #: Authenticated (signed transcripts, known verify keys): why Alice and Bob abort.
    alice_error: str | None
    bob_error: str | None

    @property
    def authenticated_detected(self) -> bool:
        """Whether both parties refused the authenticated run."""
        return self.alice_error is not None and self.bob_error is not None


async def _outcome(awaitable: Awaitable[ExchangeResult]) -> ExchangeResult | KeyExchangeError:
    try:
        return await awaitable
    except KeyExchangeError as exc:
        return exc


async def _relay_run(
    curve: Curve,
    alice_kwargs: dict[str, Any],
    bob_kwargs: dict[str, Any],
    mallory_kwargs: dict[str, Any],
) -> list[ExchangeResult | KeyExchangeError]:
    """Alice <-> Mallory <-> Bob on two loopback connections.

    Returns the outcomes of Alice, Mallory (facing Alice), Mallory (facing Bob) and Bob.
    """
    async with _loopback() as (alice_end, mallory_a), _loopback() as (mallory_b, bob_end):
        async with asyncio.timeout(DEMO_TIMEOUT):
            return list(
                await asyncio.gather(
                    _outcome(
                        ecdhe.exchange(*alice_end, curve=curve, initiator=True, **alice_kwargs)
                    ),
                    _outcome(
                        ecdhe.exchange(*mallory_a, curve=curve, initiator=False, **mallory_kwargs)
                    ),
                    _outcome(
                        ecdhe.exchange(*mallory_b, curve=curve, initiator=True, **mallory_kwargs)
                    ),
                    _outcome(ecdhe.exchange(*bob_end, curve=curve, initiator=False, **bob_kwargs)),
                )
            )


def _ok(outcome: ExchangeResult | KeyExchangeError) -> ExchangeResult:
    if isinstance(outcome, KeyExchangeError):  # pragma: no cover - unauthenticated never fails
        raise outcome
    return outcome


def _error(outcome: ExchangeResult | KeyExchangeError) -> str | None:
    return str(outcome) if isinstance(outcome, KeyExchangeError) else None


async def demonstrate_mitm(curve: Curve = "X25519") -> MITMResult:
    """Show that unauthenticated ECDHE is open to a relaying MITM and authenticated ECDHE is not.

    Mallory sits between Alice and Bob and runs his own exchange with each, with his own
    ephemeral keys. Unauthenticated, both exchanges complete: Alice and Bob hold different keys,
    both known to Mallory, and nothing tells them (only comparing fingerprints out of band
    would). Authenticated (each signs the transcript with a long-term Ed25519 key and checks the
    other's known public key), Mallory can only sign with his own key, and both refuse.
    """
    alice, mallory_a, mallory_b, bob = await _relay_run(curve, {}, {}, {})
    a, b, ma, mb = _ok(alice), _ok(bob), _ok(mallory_a), _ok(mallory_b)

    alice_id, bob_id = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    alice2, _, _, bob2 = await _relay_run(
        curve,
        {"identity": alice_id, "peer_verify_key": bob_id.public_key()},
        {"identity": bob_id, "peer_verify_key": alice_id.public_key()},
        {"identity": ed25519.Ed25519PrivateKey.generate()},
    )
    return MITMResult(
        curve=curve,
        unauthenticated_alice_fingerprint=a.key_fingerprint,
        unauthenticated_bob_fingerprint=b.key_fingerprint,
        mallory_knows_alice_key=hmac.compare_digest(a.key, ma.key),
        mallory_knows_bob_key=hmac.compare_digest(b.key, mb.key),
        alice_error=_error(alice2),
        bob_error=_error(bob2),
    )


# --- 2. TLS with ECDHE --------------------------------------------------------------------------


async def run_tls_server(
    host: str,
    port: int,
    cert_file: StrPath,
    key_file: StrPath,
    *,
    handler: Any = "echo",
    ready: asyncio.Future[tuple[str, int]] | None = None,
) -> None:
    """Run the framework's TLS server (echo by default) on *host*:*port* until cancelled.

    Port 0 picks a free port: pass a *ready* future to learn the bound ``(host, port)``. If the
    server cannot start, *ready* gets the exception too. Cancelling the task stops the server
    gracefully (:meth:`TLSServer.aclose`).
    """
    try:
        settings = await asyncio.to_thread(
            ServerSettings.load,
            host=host,
            port=port,
            tls={"certfile": cert_file, "keyfile": key_file},
        )
        server = await asyncio.to_thread(TLSServer, settings, handler)
        await server.start()
    except BaseException as exc:
        if ready is not None and not ready.done():
            if isinstance(exc, Exception):
                ready.set_exception(exc)
            else:
                ready.cancel()
        raise
    try:
        if ready is not None and not ready.done():
            ready.set_result(server.addresses[0])
        await server.serve_forever()
    finally:
        await server.aclose()


@dataclass(frozen=True, slots=True)
class TLSClientResult:
    """One client round trip: the reply and what the handshake negotiated."""

    reply: bytes
    version: str | None
    cipher: str | None
    group: str | None
    peer_subject: str | None
    handshake_duration: float

    @property
    def forward_secret(self) -> bool:
        """Whether the key exchange was ephemeral elliptic-curve Diffie-Hellman."""
        return self.group in ECDHE_GROUPS


async def run_tls_client(
    host: str,
    port: int,
    message: bytes = b"Hello, ECDHE!",
    *,
    ca_file: StrPath | None = None,
    server_hostname: str | None = None,
) -> TLSClientResult:
    """Connect (verifying the server), send *message*, read the echo, report the handshake.

    The certificate is checked against *ca_file* (e.g. a self-signed server's own certificate)
    or the system store, for *server_hostname* (default: *host*). Raises
    :class:`~ecdhe_async.HandshakeError` if verification or the handshake fails, and
    :class:`TimeoutError` if the server does not echo within :data:`DEMO_TIMEOUT`.
    """
    settings = await asyncio.to_thread(
        ClientSettings.load,
        server_hostname=server_hostname,
        tls={"ca_file": ca_file} if ca_file is not None else None,
    )
    context = await asyncio.to_thread(client_context, settings.tls)
    async with connect(host, port, settings, ssl_context=context) as conn:
        async with asyncio.timeout(DEMO_TIMEOUT):
            await conn.send(message)
            reply = await conn.readexactly(len(message)) if message else b""
    return TLSClientResult(
        reply=reply,
        version=conn.version,
        cipher=conn.cipher,
        group=conn.group,
        peer_subject=conn.peer_subject,
        handshake_duration=conn.handshake_duration,
    )


async def _stop(task: asyncio.Task[None], *, raise_errors: bool = False) -> None:
    """Cancel a server task and wait (bounded) until it has closed; optionally raise its error."""
    task.cancel()
    await asyncio.wait({task}, timeout=DEMO_TIMEOUT)
    if task.done() and not task.cancelled():
        exc = task.exception()  # always retrieved, so never "exception was never retrieved"
        if exc is not None and raise_errors:
            raise exc


@dataclass(frozen=True, slots=True)
class TLSDemoResult:
    """What :func:`demonstrate_tls_with_ecdhe` negotiated, end to end."""

    address: tuple[str, int]
    certificate: CertInfo
    message: bytes
    client: TLSClientResult

    @property
    def forward_secret(self) -> bool:
        """Whether the session used an ephemeral ECDHE group."""
        return self.client.forward_secret


async def demonstrate_tls_with_ecdhe(message: bytes = b"Hello, ECDHE!") -> TLSDemoResult:
    """Run :func:`run_tls_server` and :func:`run_tls_client` against each other on loopback.

    A temporary self-signed certificate (removed afterwards) is the server's identity and the
    client's only trust anchor; the server is stopped before returning.
    """
    async with explain.temporary_certificate() as (cert, key):
        info = await asyncio.to_thread(describe_certificate, cert)
        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(run_tls_server("127.0.0.1", 0, cert, key, ready=ready))
        try:
            async with asyncio.timeout(DEMO_TIMEOUT):
                host, port = await ready
            client = await run_tls_client(host, port, message, ca_file=cert)
        except BaseException:
            await _stop(server)
            raise
        await _stop(server, raise_errors=True)
    return TLSDemoResult(address=(host, port), certificate=info, message=message, client=client)


# --- 3. how it works ----------------------------------------------------------------------------


def explain_ecdhe_in_tls() -> str:
    """How ECDHE works in a TLS handshake, as text (see :mod:`ecdhe_async.explain`)."""
    return explain.explain_text()


# --- the three sections -------------------------------------------------------------------------


def _heading(title: str, style: explain.Style) -> str:
    return f"{style.heading(title)}\n{style.heading('=' * len(title))}\n"


def _fields(pairs: Sequence[tuple[str, str]], style: explain.Style, indent: str = "  ") -> str:
    return "\n".join(explain.fields(pairs, style, indent)) + "\n"


async def _section_basic(out: TextIO, style: explain.Style) -> None:
    out.write(_heading("1. Basic ECDHE key exchange", style))
    out.write(
        "Alice and Bob (two asyncio tasks) send each other fresh ephemeral public keys over a\n"
        "loopback TCP connection, validate the peer's key and run HKDF over the shared secret.\n"
    )
    alice, bob = await _exchange_pair("X25519")
    again = await demonstrate_basic_ecdhe("X25519")
    out.write(
        _fields(
            [
                ("curve", alice.curve),
                (
                    "Alice's public key",
                    f"{len(alice.local_public)} bytes, fp {fingerprint(alice.local_public)}",
                ),
                (
                    "Bob's public key",
                    f"{len(bob.local_public)} bytes, fp {fingerprint(bob.local_public)}",
                ),
                ("derived key", f"{len(alice.key)} bytes, fp {alice.key_fingerprint}"),
                ("both sides agree", "yes (hmac.compare_digest)"),
                ("run it again", f"fp {fingerprint(again)} (fresh ephemeral keys, new key)"),
            ],
            style,
        )
    )
    out.write("\n  Every curve (public-key size on the wire, fingerprint of the derived key):\n")
    rows = []
    for curve in CURVES:
        a, _ = await _exchange_pair(curve)
        rows.append((curve, f"{len(a.local_public):>3}-byte public key, fp {a.key_fingerprint}"))
    out.write(_fields(rows, style, "    "))

    mitm = await demonstrate_mitm("X25519")
    both = mitm.mallory_knows_alice_key and mitm.mallory_knows_bob_key
    out.write("\n  Mallory in the middle runs his own exchange with each side. Unauthenticated:\n")
    out.write(
        _fields(
            [
                ("Alice's key", f"fp {mitm.unauthenticated_alice_fingerprint}"),
                ("Bob's key", f"fp {mitm.unauthenticated_bob_fingerprint} (a different key)"),
                ("Mallory", f"holds both keys: {'yes' if both else 'no'}"),
                ("detected", "no: only comparing fingerprints out of band would reveal him"),
            ],
            style,
            "    ",
        )
    )
    out.write("  Authenticated (each side signs the transcript with a long-term Ed25519 key):\n")
    out.write(
        _fields(
            [
                ("Alice", f"refuses: {mitm.alice_error}"),
                ("Bob", f"refuses: {mitm.bob_error}"),
                ("detected", "yes: no key was agreed" if mitm.authenticated_detected else "NO"),
            ],
            style,
            "    ",
        )
    )


async def _section_tls(out: TextIO, style: explain.Style) -> None:
    out.write("\n" + _heading("2. TLS with ECDHE key exchange", style))
    out.write(
        "run_tls_server() and run_tls_client() on 127.0.0.1 with a temporary self-signed\n"
        "certificate; the client verifies it and sends one message through the echo handler.\n"
    )
    result = await demonstrate_tls_with_ecdhe()
    c = result.client
    host, port = result.address
    out.write(
        _fields(
            [
                ("server", f"{host}:{port} (TLSServer, echo handler)"),
                ("certificate", f"{result.certificate.key_type}, {result.certificate.subject}"),
                ("sent / echoed", f"{result.message!r} / {c.reply!r}"),
                ("version", c.version or "?"),
                ("cipher suite", c.cipher or "?"),
                ("key exchange", f"ECDHE on {c.group}" if c.forward_secret else f"{c.group}"),
                ("forward secret", "yes" if result.forward_secret else "NO"),
                ("handshake", f"{c.handshake_duration * 1e3:.1f} ms"),
            ],
            style,
        )
    )


async def demo_main(out: TextIO, *, color: bool | None = None) -> None:
    """Print the guide's three sections, with live values, to *out*.

    1. a basic ECDHE exchange (curve, public-key sizes, key fingerprints) and the MITM demo,
    2. a real TLS server and client on loopback (version, suite, group),
    3. how ECDHE works in TLS, annotated with a traced TLS 1.3 and TLS 1.2 handshake.
    """
    style = explain.Style(explain.use_color(out, color))
    await _section_basic(out, style)
    await _section_tls(out, style)
    out.write("\n" + _heading("3. How ECDHE works in TLS", style))
    reports = await explain.trace_handshakes()
    out.write(explain.render(reports, color=style.color))
    out.flush()
