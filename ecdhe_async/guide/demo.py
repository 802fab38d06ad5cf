"""The "ECDHE for TLS" guide's functions, as a thin layer over the framework, and its demo.

The guide's names and parameter order, working on top of :mod:`ecdhe_async` instead of a toy:

=================================  ===========================================================
guide function                     here
=================================  ===========================================================
``demonstrate_basic_ecdhe()``      two tasks run :func:`ecdhe_async.ecdhe.exchange` over a real
                                   loopback TCP connection; returns the (identical) derived key
                                   (:mod:`~ecdhe_async.guide.basic_ecdhe`)
``create_self_signed_cert(c, k)``  re-exported from :mod:`ecdhe_async.certs`
``run_tls_server(h, p, c, k)``     :class:`~ecdhe_async.TLSServer` (echo) until cancelled
``run_tls_client(h, p)``           :func:`~ecdhe_async.connect` (verifying), one echo round trip
``demonstrate_tls_with_ecdhe()``   both of the above on loopback with a temporary certificate
                                   (:mod:`~ecdhe_async.guide.tls_demo`)
``explain_ecdhe_in_tls()``         the walkthrough of :mod:`ecdhe_async.guide.explain`
=================================  ===========================================================

:func:`demo_main` prints the guide's three sections with live values; it shows public-key sizes
and *fingerprints* of derived keys (a SHA-256 prefix, for humans to compare), never a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from ..ecdhe import CURVES, fingerprint
from .basic_ecdhe import demonstrate_basic_ecdhe, demonstrate_mitm, exchange_pair
from .render import Style, banner, fields, render, use_color
from .tls_demo import demonstrate_tls_with_ecdhe
from .trace import trace_handshakes

__all__ = ["demo_main"]


def _fields(pairs: Sequence[tuple[str, str]], style: Style, indent: str = "  ") -> str:
    return "\n".join(fields(pairs, style, indent)) + "\n"


async def _section_basic(out: TextIO, style: Style) -> None:
    out.write(banner("1. Basic ECDHE key exchange", style))
    out.write(
        "Alice and Bob (two asyncio tasks) send each other fresh ephemeral public keys over a\n"
        "loopback TCP connection, validate the peer's key and run HKDF over the shared secret.\n"
    )
    alice, bob = await exchange_pair("X25519")
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
        a, _ = await exchange_pair(curve)
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


async def _section_tls(out: TextIO, style: Style) -> None:
    out.write("\n" + banner("2. TLS with ECDHE key exchange", style))
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
    style = Style(use_color(out, color))
    await _section_basic(out, style)
    await _section_tls(out, style)
    out.write("\n" + banner("3. How ECDHE works in TLS", style))
    reports = await trace_handshakes()
    out.write(render(reports, color=style.color))
    out.flush()
