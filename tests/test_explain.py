"""explain: the trace and its summary, the walkthrough, live annotation, colour."""

from __future__ import annotations

import io
import re
import ssl

import pytest

from ecdhe_async.guide.explain import explain_main, explain_text
from ecdhe_async.guide.iana import HRR_RANDOM, group_name
from ecdhe_async.guide.render import use_color
from ecdhe_async.guide.trace import (
    WIRE_TRACE_UNAVAILABLE,
    HandshakeTrace,
    TracedMessage,
    summarize,
    trace_handshakes,
)
from ecdhe_async.guide.wire import KeyShare, WireFormatError

from .conftest import PKI
from .tls_messages import (
    CAPTURED_CH12,
    CAPTURED_CH13,
    CAPTURED_CKE12,
    CAPTURED_CV13,
    CAPTURED_SH12,
    CAPTURED_SH13,
    CAPTURED_SKE12,
    P256,
    P384,
    X25519,
    certificate12,
    certificate13,
    der,
    ext,
    hs,
    key_share_entry,
    server_hello,
    u16,
    vec,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --- trace and summary ---------------------------------------------------------------------------


def sent(data: bytes) -> TracedMessage:
    return TracedMessage("sent", data[0], data)


def received(data: bytes) -> TracedMessage:
    return TracedMessage("received", data[0], data)


def test_summarize_tls13(pki: PKI) -> None:
    finished = hs(20, bytes(48))
    w = summarize(
        [
            sent(CAPTURED_CH13),
            received(CAPTURED_SH13),
            received(hs(8, vec(b"", 2))),  # EncryptedExtensions: ignored
            received(certificate13(der(pki.server_cert), der(pki.ca))),
            received(CAPTURED_CV13),
            received(finished),
            sent(hs(20, bytes(48))),
        ]
    )
    assert w.offered_groups == (X25519, P256, P384)
    assert w.offered_suites == 9  # the SCSV is not counted
    assert w.client_key_shares == (KeyShare(X25519, 32),)
    assert w.chosen_group == X25519
    assert w.server_key_share == KeyShare(X25519, 32)
    assert (w.version, w.cipher_suite) == (0x0304, 0x1302)
    assert w.certificate_key_type == "ECDSA P-256"
    assert w.certificate_count == 2
    assert w.certificate_verify_scheme == 0x0403
    assert w.finished_size == 48
    assert w.server_key_exchange is None


def test_summarize_tls12_rsa_certificate(pki: PKI) -> None:
    w = summarize(
        [
            sent(CAPTURED_CH12),
            received(CAPTURED_SH12),
            received(certificate12(der(pki.rsa_cert))),
            received(CAPTURED_SKE12),
            sent(CAPTURED_CKE12),
        ]
    )
    assert w.chosen_group == X25519
    assert w.server_key_exchange is not None
    assert w.server_key_exchange.curve_name == "X25519"
    assert w.client_key_exchange_size == 32
    assert w.certificate_key_type == "RSA 2048"
    assert w.downgrade_sentinel
    assert w.server_key_share is None


def test_summarize_hello_retry_request() -> None:
    hrr = server_hello(ext(43, u16(0x0304)) + ext(51, u16(P256)), random=HRR_RANDOM)
    final = server_hello(ext(43, u16(0x0304)) + ext(51, key_share_entry(P256, 65)))
    w = summarize([sent(CAPTURED_CH13), received(hrr), sent(CAPTURED_CH13), received(final)])
    assert w.retry_group == P256
    assert w.server_key_share == KeyShare(P256, 65)
    assert w.chosen_group == P256


def test_summarize_rejects_garbage() -> None:
    with pytest.raises(WireFormatError):
        summarize([received(hs(2, b"\x03"))])


def test_trace_keeps_handshake_messages_only() -> None:
    trace = HandshakeTrace()
    trace(None, "write", 0x0301, 256, 22, b"\x16\x03\x01\x00\xe4")  # record header
    trace(None, "write", 0x0304, 22, 1, CAPTURED_CH13)
    trace(None, "read", 0x0304, 22, 2, CAPTURED_SH13)
    trace(None, "read", 0x0304, 21, 0, b"\x01\x00")  # alert
    assert trace.messages == [sent(CAPTURED_CH13), received(CAPTURED_SH13)]


def test_trace_install(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    trace = HandshakeTrace()
    assert HandshakeTrace.supported()  # Python 3.11 has the hook
    assert trace.install(ctx)
    monkeypatch.setattr(HandshakeTrace, "supported", staticmethod(lambda: False))
    other = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert not trace.install(other)
    assert getattr(other, "_msg_callback", None) is None


# --- the walkthrough -----------------------------------------------------------------------------

KEY_STEPS = (
    "ClientHello with key_share",
    "ServerHello with the server's key_share",
    "Both compute the shared secret",
    "Key schedule",
    "Certificate and CertificateVerify sign the transcript",
    "Finished",
    "ServerKeyExchange",
    "Why this gives forward secrecy",
    "static RSA key transport",
    "long-lived ticket keys",
    "keylog files",
)


def test_static_text_has_the_steps_in_order() -> None:
    text = explain_text()
    positions = [text.index(step) for step in KEY_STEPS]
    assert positions == sorted(positions)
    assert "supported_groups" in text
    assert "SSLKEYLOGFILE" in text
    assert not ANSI.search(text)
    assert not re.search(r"^\s*(wire|live):", text, re.M)


@pytest.mark.asyncio
async def test_explain_main_static() -> None:
    out = io.StringIO()
    await explain_main(out)
    text = out.getvalue()
    assert text.startswith("How ECDHE works in TLS\n")
    assert explain_text() in text
    assert not ANSI.search(text)


def field(text: str, label: str) -> str:
    """The value of an aligned ``label  value`` line (first match)."""
    match = re.search(rf"^\s*(?:wire:|live:)?\s*{re.escape(label)}\s{{2,}}(.+)$", text, re.M)
    assert match, f"no {label!r} line in:\n{text}"
    return match.group(1).strip()


@pytest.mark.asyncio
async def test_explain_live_annotates_what_crossed_the_wire() -> None:
    out = io.StringIO()
    await explain_main(out, live=True, color=False)
    text = out.getvalue()
    tls13, tls12 = text.split("TLS 1.2: ServerKeyExchange and ClientKeyExchange")
    assert field(tls13, "offered groups") == "X25519, P-256, P-384"
    assert field(tls13, "key shares sent") == "X25519 (32 bytes)"
    assert field(tls13, "chosen group") == "X25519"
    assert field(tls13, "server key share") == "X25519 (32 bytes)"
    assert re.fullmatch(r"TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+", field(tls13, "cipher suite"))
    assert field(tls13, "certificate key").startswith("ECDSA P-256")
    assert field(tls13, "CertificateVerify") == "ecdsa_secp256r1_sha256"
    assert field(tls13, "shared secret").startswith("32 bytes on X25519")
    assert field(tls13, "version") == "TLS 1.3"

    assert field(tls12, "ServerKeyExchange").startswith("curve X25519, 32-byte public key")
    assert field(tls12, "ClientKeyExchange") == "32-byte public key"
    assert field(tls12, "cipher suite").startswith("ECDHE-ECDSA-")
    assert field(tls12, "version") == "TLS 1.2"
    assert "TLSv1.2" in tls12
    assert WIRE_TRACE_UNAVAILABLE not in text
    assert not ANSI.search(text)


@pytest.mark.asyncio
async def test_trace_handshakes_reports() -> None:
    tls13, tls12 = await trace_handshakes()
    assert (tls13.label, tls13.version, tls13.group) == ("TLS 1.3", "TLSv1.3", "X25519")
    assert (tls12.label, tls12.version, tls12.group) == ("TLS 1.2", "TLSv1.2", "X25519")
    assert tls13.wire is not None
    assert tls12.wire is not None
    assert tls13.wire.chosen_group == X25519
    for report in (tls13, tls12):
        assert report.wire is not None
        offered = [group_name(g) for g in report.wire.offered_groups]
        assert not [g for g in offered if g.startswith("ffdhe")], (
            f"{report.label}: our client offered finite-field groups {offered}: "
            "the configured group list is not applied to client contexts"
        )
    assert tls12.wire.server_key_exchange is not None
    assert tls12.wire.downgrade_sentinel
    assert tls13.error is tls12.error is None


@pytest.mark.asyncio
async def test_explain_live_without_msg_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HandshakeTrace, "supported", staticmethod(lambda: False))
    out = io.StringIO()
    await explain_main(out, live=True, color=False)
    text = out.getvalue()
    assert text.count(WIRE_TRACE_UNAVAILABLE) == 2
    assert not re.search(r"^\s*(wire|live):", text, re.M)
    # The negotiated facts are still there, from the connection itself.
    assert "TLSv1.3" in text
    assert "TLSv1.2" in text
    assert field(text, "group") == "X25519"
    assert field(text, "certificate key") == "ECDSA P-256"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("tty", "no_color", "color", "ansi"),
    [
        (True, None, None, True),
        (True, "1", None, False),
        (True, "", None, True),  # https://no-color.org: only a non-empty value counts
        (False, None, None, False),
        (False, None, True, True),
        (True, None, False, False),
    ],
)
async def test_colour_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch, tty: bool, no_color: str | None, color: bool | None, ansi: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    out = FakeTTY() if tty else io.StringIO()
    assert use_color(out, color) is ansi
    await explain_main(out, color=color)
    assert bool(ANSI.search(out.getvalue())) is ansi
    assert ANSI.sub("", out.getvalue()) == "How ECDHE works in TLS\n" + "=" * 22 + "\n" + (
        explain_text()
    )
