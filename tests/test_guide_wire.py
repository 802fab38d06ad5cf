"""The guide's wire layer: IANA names and the sans-IO handshake parsers (hand-built, captured)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecdhe_async import groups
from ecdhe_async.guide.iana import (
    HRR_RANDOM,
    cipher_suite_name,
    group_name,
    is_real_suite,
    signature_scheme_name,
    version_name,
)
from ecdhe_async.guide.wire import (
    KeyShare,
    WireFormatError,
    parse_certificate,
    parse_certificate_verify,
    parse_client_hello,
    parse_client_key_exchange,
    parse_server_hello,
    parse_server_key_exchange,
)

from .conftest import PKI
from .tls_messages import (
    CAPTURED_CH12,
    CAPTURED_CH13,
    CAPTURED_CKE12,
    CAPTURED_CV13,
    CAPTURED_SH12,
    CAPTURED_SH13,
    CAPTURED_SKE12,
    FFDHE2048,
    P256,
    P384,
    X25519,
    certificate12,
    certificate13,
    client_hello,
    der,
    ext,
    hs,
    key_share_entry,
    server_hello,
    u16,
    vec,
)

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


def test_group_names_come_from_the_registry() -> None:
    """Every group of ecdhe_async.groups is named on the wire as the registry names it."""
    assert {group_name(g.iana_id) for g in groups.GROUPS} == {g.name for g in groups.GROUPS}


def test_suite_and_version_names() -> None:
    assert cipher_suite_name(0x1302) == "TLS_AES_256_GCM_SHA384"
    assert cipher_suite_name(0xC02B) == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert cipher_suite_name(0x7A7A) == "GREASE"
    assert cipher_suite_name(0xFFFE) == "0xfffe"
    assert version_name(0x0304) == "TLS 1.3"
    assert version_name(0x0303) == "TLS 1.2"
    assert version_name(0x0300) == "0x0300"
    assert is_real_suite(0x1301)
    assert not is_real_suite(0x00FF)  # renegotiation SCSV
    assert not is_real_suite(0x5600)  # fallback SCSV
    assert not is_real_suite(0xDADA)  # GREASE


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


def test_certificate_both_layouts(pki: PKI) -> None:
    leaf, ca = der(pki.server_cert), der(pki.ca)
    assert parse_certificate(certificate13(leaf, ca), tls13=True) == (leaf, ca)
    assert parse_certificate(certificate12(leaf), tls13=False) == (leaf,)
    with pytest.raises(WireFormatError):
        parse_certificate(certificate12(leaf), tls13=True)


def test_certificate_verify_captured() -> None:
    assert parse_certificate_verify(CAPTURED_CV13) == 0x0403
    assert signature_scheme_name(0x0403) == "ecdsa_secp256r1_sha256"
    assert signature_scheme_name(0x0804) == "rsa_pss_rsae_sha256"
