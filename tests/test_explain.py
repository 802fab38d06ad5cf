"""explain: the wire parsers (byte-level, hand-built and captured), the trace, the walkthrough."""

from __future__ import annotations

import io
import re
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from ecdhe_async import explain
from ecdhe_async.explain import (
    HRR_RANDOM,
    WIRE_TRACE_UNAVAILABLE,
    HandshakeTrace,
    KeyShare,
    TracedMessage,
    WireFormatError,
    explain_main,
    explain_text,
    group_name,
    parse_certificate,
    parse_certificate_verify,
    parse_client_hello,
    parse_client_key_exchange,
    parse_server_hello,
    parse_server_key_exchange,
    summarize,
    use_color,
)

from .conftest import PKI

ANSI = re.compile(r"\x1b\[[0-9;]*m")

# --- builders for hand-made messages ------------------------------------------------------------


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def vec(data: bytes, size: int) -> bytes:
    return len(data).to_bytes(size, "big") + data


def hs(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def ext(ext_type: int, data: bytes) -> bytes:
    return u16(ext_type) + vec(data, 2)


def key_share_entry(group: int, size: int) -> bytes:
    return u16(group) + vec(bytes([0x42]) * size, 2)


def client_hello(extensions: bytes | None, suites: tuple[int, ...] = (0x1301,)) -> bytes:
    body = (
        u16(0x0303)
        + bytes(32)
        + vec(bytes(32), 1)
        + vec(b"".join(map(u16, suites)), 2)
        + vec(b"\x00", 1)
    )
    if extensions is not None:
        body += vec(extensions, 2)
    return hs(1, body)


def server_hello(extensions: bytes, *, random: bytes = bytes(32), suite: int = 0x1301) -> bytes:
    body = u16(0x0303) + random + vec(bytes(32), 1) + u16(suite) + b"\x00" + vec(extensions, 2)
    return hs(2, body)


# --- captured from a real handshake (our TLSServer and client, via _msg_callback) ---------------

CAPTURED_CH13 = bytes.fromhex(
    "010000f203030f70e48de2846d4063639b656590fa1b749f46ee93a7884f50bf500b65c2b2aa20390f9c3065"
    "e86c6f4da28ac0b6d4305628ce828db90f46194600ddbc92d3989d0014130213031301c02bc02fc02cc030cc"
    "a9cca800ff010000950000000e000c0000096c6f63616c686f7374000b000403000102000a00080006001d00"
    "1700180016000000170000000d002a0028040305030603080708080809080a080b0804080508060401050106"
    "01030303010302040205020602002b00050403040303002d00020101003300260024001d0020c93bc9847e29"
    "8ce12c176904535d5c01bc8553133bbf82f6363bd2821df78355"
)
CAPTURED_SH13 = bytes.fromhex(
    "02000076030325e88ded0a4bbf44546b84f64195efd21c7f6cabeed5c2dbcd8803dd580b6d7520390f9c3065"
    "e86c6f4da28ac0b6d4305628ce828db90f46194600ddbc92d3989d130200002e002b0002030400330024001d"
    "00207b3f800c5f9b3c424f35b6c8dbb33d4fd48f9aec052cb6c20a5df3315b90c647"
)
CAPTURED_CV13 = bytes.fromhex(
    "0f00004a040300463044022009e5b8bd14a20b5199de62c2ac7780d5c76e058910868a9b1834ef82e91c1b84"
    "022049677e85a459b759c24d66c047d9a24dc8395719edf99e1cc1cb3df47564f702"
)
CAPTURED_CH12 = bytes.fromhex(
    "0100009303034a65ddf74ed64a73c2f812ab1f496877b8a253e7b09c1e5c889932c2a2b4745b00000ec02bc0"
    "2fc02cc030cca9cca800ff0100005c0000000e000c0000096c6f63616c686f7374000b000403000102000a00"
    "080006001d001700180016000000170000000d002a0028040305030603080708080809080a080b0804080508"
    "06040105010601030303010302040205020602"
)
CAPTURED_SH12 = bytes.fromhex(
    "020000590303281f8a3c1d3f647df91f2b99f20a1fa3a9ac52a26c4b6ec4444f574e475244012092d874d508"
    "db80835db66cea8411629b25f463e6837340cf32107922455a1a30c02b000011ff01000100000b0004030001"
    "0200170000"
)
CAPTURED_SKE12 = bytes.fromhex(
    "0c00006f03001d20228a535588e45ac4dd15e4f9201d510d9eba58df8222b08a9496e7514413016604030047"
    "3045022100e7d088b053ed9204d51ed8578b7a95222dd170e32a40027d4146aca677689ec20220421442ada6"
    "ccb99148e21a470ce994573e91324ff4302d6052e0465f8f8a17a2"
)
CAPTURED_CKE12 = bytes.fromhex(
    "10000021205b054881b0955af49d079abc8ae39c943b92a86a2b597ab0d205f4a6b9941160"
)

X25519, P256, P384, FFDHE2048 = 0x001D, 0x0017, 0x0018, 0x0100


# --- names ---------------------------------------------------------------------------------------


def test_group_names() -> None:
    assert [group_name(g) for g in (X25519, 0x001E, P256, P384, 0x0019)] == [
        "X25519",
        "X448",
        "P-256",
        "P-384",
        "P-521",
    ]
    assert group_name(FFDHE2048) == "ffdhe2048"
    assert group_name(0x11EC) == "X25519MLKEM768"
    assert group_name(0x3A3A) == "GREASE"
    assert group_name(0x1234) == "0x1234"


# --- ClientHello ---------------------------------------------------------------------------------


def test_client_hello_hand_built() -> None:
    groups = vec(b"".join(map(u16, (0x0A0A, X25519, P256, FFDHE2048))), 2)
    shares = vec(key_share_entry(X25519, 32) + key_share_entry(P256, 65), 2)
    versions = vec(u16(0x0304) + u16(0x0303), 1)
    msg = client_hello(
        ext(10, groups) + ext(51, shares) + ext(43, versions) + ext(0, b""),
        suites=(0x1301, 0x1302, 0xC02B),
    )
    hello = parse_client_hello(msg)
    assert hello.legacy_version == 0x0303
    assert hello.cipher_suites == (0x1301, 0x1302, 0xC02B)
    assert hello.supported_groups == (0x0A0A, X25519, P256, FFDHE2048)
    assert hello.key_shares == (KeyShare(X25519, 32), KeyShare(P256, 65))
    assert hello.supported_versions == (0x0304, 0x0303)
    assert hello.extensions == (10, 51, 43, 0)
    assert str(hello.key_shares[1]) == "P-256 (65 bytes)"


def test_client_hello_without_extensions() -> None:
    """A bare TLS 1.2 ClientHello may omit the extensions block entirely."""
    hello = parse_client_hello(client_hello(None))
    assert hello.supported_groups == ()
    assert hello.key_shares == ()
    assert hello.extensions == ()


def test_client_hello_captured_tls13() -> None:
    hello = parse_client_hello(CAPTURED_CH13)
    assert hello.supported_groups == (X25519, P256, P384)
    assert hello.key_shares == (KeyShare(X25519, 32),)
    assert hello.supported_versions == (0x0304, 0x0303)
    assert 0x1302 in hello.cipher_suites
    assert 0x00FF in hello.cipher_suites  # the renegotiation SCSV, not a real suite


def test_client_hello_captured_tls12_has_no_key_share() -> None:
    hello = parse_client_hello(CAPTURED_CH12)
    assert hello.supported_groups == (X25519, P256, P384)
    assert hello.key_shares == ()
    assert hello.supported_versions == ()
    assert all(s >> 8 in (0xC0, 0xCC, 0x00) for s in hello.cipher_suites)


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (b"\x01\x00", "shorter than a handshake header"),
        (hs(2, b""), "handshake type 2, expected 1"),
        (CAPTURED_CH13[:-1], "header says 242 bytes, body has 241"),
        (client_hello(ext(10, b"") + ext(10, b"")), "duplicate extension 10"),
        (client_hello(ext(10, vec(b"\x00\x1d\x00", 2))), "odd length"),
        (client_hello(ext(51, vec(u16(X25519) + u16(32) + bytes(5), 2))), "truncated key share"),
        (client_hello(ext(43, vec(u16(0x0304), 1) + b"x")), "unexpected bytes after versions"),
    ],
)
def test_client_hello_malformed(msg: bytes, error: str) -> None:
    with pytest.raises(WireFormatError, match=re.escape(error)):
        parse_client_hello(msg)


def test_client_hello_every_truncation_is_a_wire_format_error() -> None:
    """Cut the captured body anywhere (header fixed up): a clean result or WireFormatError."""
    body = CAPTURED_CH13[4:]
    for n in range(len(body)):
        try:
            parse_client_hello(hs(1, body[:n]))
        except WireFormatError:
            pass


_PARSERS = (
    parse_client_hello,
    parse_server_hello,
    parse_server_key_exchange,
    parse_client_key_exchange,
    parse_certificate_verify,
)


@given(st.integers(0, len(_PARSERS) - 1), st.binary(max_size=300))
def test_parsers_only_raise_wire_format_error(which: int, body: bytes) -> None:
    parser = _PARSERS[which]
    msg_type = {0: 1, 1: 2, 2: 12, 3: 16, 4: 15}[which]
    try:
        parser(hs(msg_type, body))
    except WireFormatError:
        pass


# --- ServerHello ---------------------------------------------------------------------------------


def test_server_hello_captured_tls13() -> None:
    hello = parse_server_hello(CAPTURED_SH13)
    assert hello.version == 0x0304
    assert hello.cipher_suite == 0x1302
    assert hello.key_share == KeyShare(X25519, 32)
    assert not hello.hello_retry_request
    assert hello.retry_group is None
    assert not hello.downgrade_sentinel


def test_server_hello_hand_built_p256() -> None:
    msg = server_hello(ext(43, u16(0x0304)) + ext(51, key_share_entry(P256, 65)), suite=0x1301)
    hello = parse_server_hello(msg)
    assert (hello.version, hello.cipher_suite) == (0x0304, 0x1301)
    assert hello.key_share == KeyShare(P256, 65)


def test_hello_retry_request() -> None:
    msg = server_hello(ext(43, u16(0x0304)) + ext(51, u16(P256)), random=HRR_RANDOM)
    hello = parse_server_hello(msg)
    assert hello.hello_retry_request
    assert hello.retry_group == P256
    assert hello.key_share is None


def test_server_hello_captured_tls12_with_downgrade_sentinel() -> None:
    hello = parse_server_hello(CAPTURED_SH12)
    assert hello.version == 0x0303
    assert hello.cipher_suite == 0xC02B
    assert hello.key_share is None
    assert hello.downgrade_sentinel  # "DOWNGRD\x01": the server could have done TLS 1.3


def test_server_hello_malformed_key_share() -> None:
    msg = server_hello(ext(43, u16(0x0304)) + ext(51, key_share_entry(X25519, 32) + b"\x00"))
    with pytest.raises(WireFormatError, match="unexpected bytes after server_share"):
        parse_server_hello(msg)


# --- TLS 1.2 key exchange ------------------------------------------------------------------------


def test_server_key_exchange_captured() -> None:
    ske = parse_server_key_exchange(CAPTURED_SKE12)
    assert ske.named_curve == X25519
    assert ske.curve_name == "X25519"
    assert ske.public_key_size == 32
    assert ske.signature_scheme == 0x0403
    assert ske.signature_size == 0x47


def test_server_key_exchange_hand_built_p384() -> None:
    point = b"\x04" + bytes(96)
    msg = hs(12, b"\x03" + u16(P384) + vec(point, 1) + u16(0x0503) + vec(bytes(103), 2))
    ske = parse_server_key_exchange(msg)
    assert (ske.curve_name, ske.public_key_size, ske.signature_scheme) == ("P-384", 97, 0x0503)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\x01" + bytes(10), "curve_type 1, only named_curve"),
        (b"\x03" + u16(X25519) + b"\x00" + u16(0x0403) + vec(b"s", 2), "empty public point"),
        (b"\x03" + u16(X25519) + vec(bytes(32), 1) + u16(0x0403), "truncated signature length"),
    ],
)
def test_server_key_exchange_malformed(body: bytes, error: str) -> None:
    with pytest.raises(WireFormatError, match=error):
        parse_server_key_exchange(hs(12, body))


def test_client_key_exchange_captured() -> None:
    assert parse_client_key_exchange(CAPTURED_CKE12) == 32
    assert parse_client_key_exchange(hs(16, vec(b"\x04" + bytes(64), 1))) == 65


# --- Certificate, CertificateVerify --------------------------------------------------------------


def der(path: object) -> bytes:
    with open(str(path), "rb") as fh:
        cert = x509.load_pem_x509_certificate(fh.read())
    return cert.public_bytes(serialization.Encoding.DER)


def certificate13(*ders: bytes) -> bytes:
    entries = b"".join(vec(d, 3) + vec(b"", 2) for d in ders)
    return hs(11, vec(b"", 1) + vec(entries, 3))


def certificate12(*ders: bytes) -> bytes:
    return hs(11, vec(b"".join(vec(d, 3) for d in ders), 3))


def test_certificate_both_layouts(pki: PKI) -> None:
    leaf, ca = der(pki.server_cert), der(pki.ca)
    assert parse_certificate(certificate13(leaf, ca), tls13=True) == (leaf, ca)
    assert parse_certificate(certificate12(leaf), tls13=False) == (leaf,)
    with pytest.raises(WireFormatError):
        parse_certificate(certificate12(leaf), tls13=True)


def test_certificate_verify_captured() -> None:
    assert parse_certificate_verify(CAPTURED_CV13) == 0x0403
    assert explain.signature_scheme_name(0x0403) == "ecdsa_secp256r1_sha256"
    assert explain.signature_scheme_name(0x0804) == "rsa_pss_rsae_sha256"


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
    tls13, tls12 = await explain.trace_handshakes()
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
