"""Sans-IO parsers for the TLS handshake messages the guide annotates: bytes in, facts out.

Each ``parse_*`` function takes one handshake message with its 4-byte header (as
:class:`~ecdhe_async.guide.trace.HandshakeTrace` records it) and returns a small frozen dataclass
of *public* facts: offered and chosen groups, key-share sizes, cipher suites, signature schemes.
Every read is bounds-checked, so a truncated or malformed message raises
:class:`WireFormatError` naming the message and the field, never ``IndexError``. No I/O, no
sockets: the tests feed hand-built and captured bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from .._hello import (
    ClientHelloInfo,
    Cursor,
    KeyShare,
    WireFormatError,
    extensions,
    handshake_body,
    key_share_entry,
    parse_client_hello,
)
from ..certs import describe_certificate
from .iana import (
    CERTIFICATE,
    CERTIFICATE_VERIFY,
    CLIENT_KEY_EXCHANGE,
    DOWNGRADE_TLS12,
    EXT_KEY_SHARE,
    EXT_SUPPORTED_VERSIONS,
    FINISHED,
    HRR_RANDOM,
    NAMED_CURVE,
    SERVER_HELLO,
    SERVER_KEY_EXCHANGE,
    TLS13,
    group_name,
)

__all__ = [
    "ClientHelloInfo",
    "KeyShare",
    "ServerHelloInfo",
    "ServerKeyExchangeInfo",
    "WireFormatError",
    "leaf_key_type",
    "parse_certificate",
    "parse_certificate_verify",
    "parse_client_hello",
    "parse_client_key_exchange",
    "parse_finished",
    "parse_server_hello",
    "parse_server_key_exchange",
]


@dataclass(frozen=True, slots=True)
class ServerHelloInfo:
    """What a ServerHello (or HelloRetryRequest) chose."""

    version: int
    cipher_suite: int
    key_share: KeyShare | None
    hello_retry_request: bool
    retry_group: int | None
    extensions: tuple[int, ...]
    downgrade_sentinel: bool = False


def parse_server_hello(msg: bytes) -> ServerHelloInfo:
    """Parse a ServerHello handshake message (with its 4-byte header).

    ``version`` is the selected version (supported_versions in TLS 1.3, else legacy_version).
    A HelloRetryRequest (the special random of RFC 8446 §4.1.3) carries only the group the
    server wants a share for: ``retry_group``; ``key_share`` is then ``None``.
    ``downgrade_sentinel`` is set when a TLS 1.3-capable server answers with TLS 1.2.
    """
    what = "ServerHello"
    cur = Cursor(handshake_body(msg, SERVER_HELLO, what), what)
    legacy_version = cur.uint(2, "legacy_version")
    random = cur.take(32, "random")
    hrr = random == HRR_RANDOM
    session_id = cur.vector(1, "legacy_session_id_echo")
    if len(session_id) > 32:
        raise WireFormatError(f"{what}: session id of {len(session_id)} bytes (max 32)")
    suite = cur.uint(2, "cipher_suite")
    cur.uint(1, "legacy_compression_method")
    exts = extensions(cur, what)

    version = legacy_version
    if EXT_SUPPORTED_VERSIONS in exts:
        v = Cursor(exts[EXT_SUPPORTED_VERSIONS], f"{what} supported_versions")
        version = v.uint(2, "selected_version")
        v.end("selected_version")
    share: KeyShare | None = None
    retry_group: int | None = None
    if EXT_KEY_SHARE in exts:
        k = Cursor(exts[EXT_KEY_SHARE], f"{what} key_share")
        if hrr:
            retry_group = k.uint(2, "selected_group")
            k.end("selected_group")
        else:
            share = key_share_entry(k)
            k.end("server_share")
    return ServerHelloInfo(
        version=version,
        cipher_suite=suite,
        key_share=share,
        hello_retry_request=hrr,
        retry_group=retry_group,
        extensions=tuple(exts),
        downgrade_sentinel=version != TLS13 and random.endswith(DOWNGRADE_TLS12),
    )


@dataclass(frozen=True, slots=True)
class ServerKeyExchangeInfo:
    """A TLS 1.2 ECDHE ServerKeyExchange: the curve, the server's public key size, the signature."""

    named_curve: int
    public_key_size: int
    signature_scheme: int
    signature_size: int

    @property
    def curve_name(self) -> str:
        """The curve's name, e.g. ``"X25519"``."""
        return group_name(self.named_curve)


def parse_server_key_exchange(msg: bytes) -> ServerKeyExchangeInfo:
    """Parse a TLS 1.2 ECDHE ServerKeyExchange (RFC 8422 §5.4) with its 4-byte header.

    Layout: curve_type (3 = named_curve) || named_curve (2) || point <1..255> ||
    signature scheme (2) || signature <0..2^16-1>.
    """
    what = "ServerKeyExchange"
    cur = Cursor(handshake_body(msg, SERVER_KEY_EXCHANGE, what), what)
    curve_type = cur.uint(1, "curve_type")
    if curve_type != NAMED_CURVE:
        raise WireFormatError(f"{what}: curve_type {curve_type}, only named_curve (3) is used")
    curve = cur.uint(2, "named_curve")
    point = cur.vector(1, "public point")
    if not point:
        raise WireFormatError(f"{what}: empty public point")
    scheme = cur.uint(2, "signature algorithm")
    signature = cur.vector(2, "signature")
    cur.end("signature")
    return ServerKeyExchangeInfo(curve, len(point), scheme, len(signature))


def parse_client_key_exchange(msg: bytes) -> int:
    """Size of the client's ephemeral public key in a TLS 1.2 ECDHE ClientKeyExchange."""
    what = "ClientKeyExchange"
    cur = Cursor(handshake_body(msg, CLIENT_KEY_EXCHANGE, what), what)
    point = cur.vector(1, "public point")
    cur.end("public point")
    return len(point)


def parse_certificate(msg: bytes, *, tls13: bool) -> tuple[bytes, ...]:
    """The DER certificates (leaf first) of a Certificate message, TLS 1.3 or 1.2 layout."""
    what = "Certificate"
    cur = Cursor(handshake_body(msg, CERTIFICATE, what), what)
    if tls13:
        cur.vector(1, "certificate_request_context")
    entries = Cursor(cur.vector(3, "certificate_list"), what)
    cur.end("certificate_list")
    certs = []
    while entries.remaining:
        certs.append(entries.vector(3, "cert_data"))
        if tls13:
            entries.vector(2, "certificate extensions")
    return tuple(certs)


def parse_certificate_verify(msg: bytes) -> int:
    """The signature scheme of a TLS 1.3 CertificateVerify."""
    what = "CertificateVerify"
    cur = Cursor(handshake_body(msg, CERTIFICATE_VERIFY, what), what)
    scheme = cur.uint(2, "algorithm")
    cur.vector(2, "signature")
    cur.end("signature")
    return scheme


def parse_finished(msg: bytes) -> int:
    """The size of a Finished message's verify_data (it is an HMAC: only its size is shown)."""
    return len(handshake_body(msg, FINISHED, "Finished"))


def leaf_key_type(der: bytes) -> str:
    """The key type of a DER certificate (``"ECDSA P-256"``), or :class:`WireFormatError`."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise WireFormatError(f"Certificate: leaf is not a DER certificate ({exc})") from None
    return describe_certificate(cert).key_type
