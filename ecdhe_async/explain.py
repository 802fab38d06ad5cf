"""How ECDHE works in a TLS handshake: a walkthrough for people, optionally annotated live.

Theory of operation
-------------------
:func:`explain_text` is the static walkthrough (TLS 1.3 step by step, the TLS 1.2 variant, why
this gives forward secrecy and what would break it). :func:`explain_main` prints it; with
``live=True`` it first runs two real loopback handshakes (our :class:`~ecdhe_async.TLSServer` and
our :func:`~ecdhe_async.connect`, one TLS 1.3 and one capped at TLS 1.2) and annotates every step
with what actually crossed the wire.

Seeing the wire: ``ssl.SSLContext._msg_callback`` is a private but long-present debugging hook
(OpenSSL's ``SSL_CTX_set_msg_callback``) that reports every handshake message a connection sends
or receives, TLS 1.3's encrypted ones after decryption. :class:`HandshakeTrace` only copies the
handshake messages there (the callback must never raise: an exception would abort the handshake),
and everything is parsed afterwards by small pure functions (:func:`parse_client_hello`,
:func:`parse_server_hello`, :func:`parse_server_key_exchange`, ...). Handshake messages carry only
public values (key shares, certificates, signatures), never a secret. Where the hook is missing
the live mode says "wire trace unavailable on this Python" and still reports what the connection
negotiated.

Colour: ANSI escapes only when the stream is a terminal and ``NO_COLOR`` is not set to a
non-empty value (https://no-color.org); ``color=True``/``False`` overrides both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TextIO

from cryptography import x509

from .certs import create_self_signed_cert, describe_certificate
from .client import connect
from .errors import HandshakeError
from .server import TLSServer
from .settings import ClientSettings, ServerSettings, TLSSettings
from .tls import client_context

__all__ = [
    "ClientHelloInfo",
    "HandshakeReport",
    "HandshakeTrace",
    "KeyShare",
    "ServerHelloInfo",
    "ServerKeyExchangeInfo",
    "Style",
    "TracedMessage",
    "WireFormatError",
    "WireSummary",
    "explain_main",
    "explain_text",
    "fields",
    "group_name",
    "parse_certificate",
    "parse_certificate_verify",
    "parse_client_hello",
    "parse_client_key_exchange",
    "parse_server_hello",
    "parse_server_key_exchange",
    "render",
    "summarize",
    "temporary_certificate",
    "trace_handshakes",
    "use_color",
]

WIRE_TRACE_UNAVAILABLE: Final = "wire trace unavailable on this Python"

#: Bound on every live step (certificate, connect, handshake, echo): loopback needs milliseconds.
LIVE_TIMEOUT: Final = 10.0

_WIDTH: Final = 92
_MSG_CALLBACK: Final = "_msg_callback"  # ssl.SSLContext's private debugging hook (3.8+)

# --- TLS registry values (IANA) ------------------------------------------------------------------

HANDSHAKE: Final = 22  # TLS record content type
CLIENT_HELLO: Final = 1
SERVER_HELLO: Final = 2
CERTIFICATE: Final = 11
SERVER_KEY_EXCHANGE: Final = 12
CERTIFICATE_VERIFY: Final = 15
CLIENT_KEY_EXCHANGE: Final = 16
FINISHED: Final = 20

EXT_SUPPORTED_GROUPS: Final = 10
EXT_SUPPORTED_VERSIONS: Final = 43
EXT_KEY_SHARE: Final = 51

TLS13: Final = 0x0304
_NAMED_CURVE: Final = 3  # ECCurveType.named_curve in a TLS 1.2 ServerKeyExchange

# Signalling suite values, not real suites (renegotiation_info, fallback).
_SCSV: Final = frozenset({0x00FF, 0x5600})

# Last 8 bytes of a TLS 1.2 ServerHello.random from a TLS 1.3-capable server (RFC 8446 §4.1.3).
DOWNGRADE_TLS12: Final = b"DOWNGRD\x01"

# ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
HRR_RANDOM: Final = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

_GROUPS: Final = {
    0x0017: "P-256",
    0x0018: "P-384",
    0x0019: "P-521",
    0x001A: "brainpoolP256r1",
    0x001B: "brainpoolP384r1",
    0x001C: "brainpoolP512r1",
    0x001D: "X25519",
    0x001E: "X448",
    0x0100: "ffdhe2048",
    0x0101: "ffdhe3072",
    0x0102: "ffdhe4096",
    0x0103: "ffdhe6144",
    0x0104: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
}

# Raw ECDHE shared-secret size per group (the x-coordinate / u-coordinate).
_SECRET_SIZES: Final = {"X25519": 32, "X448": 56, "P-256": 32, "P-384": 48, "P-521": 66}

_SIGNATURE_SCHEMES: Final = {
    0x0201: "rsa_pkcs1_sha1",
    0x0203: "ecdsa_sha1",
    0x0401: "rsa_pkcs1_sha256",
    0x0403: "ecdsa_secp256r1_sha256",
    0x0501: "rsa_pkcs1_sha384",
    0x0503: "ecdsa_secp384r1_sha384",
    0x0601: "rsa_pkcs1_sha512",
    0x0603: "ecdsa_secp521r1_sha512",
    0x0804: "rsa_pss_rsae_sha256",
    0x0805: "rsa_pss_rsae_sha384",
    0x0806: "rsa_pss_rsae_sha512",
    0x0807: "ed25519",
    0x0808: "ed448",
    0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384",
    0x080B: "rsa_pss_pss_sha512",
}

# OpenSSL's names, so the wire agrees with what ssl.SSLObject.cipher() reports.
_CIPHER_SUITES: Final = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
    0x009C: "AES128-GCM-SHA256",
    0x009D: "AES256-GCM-SHA384",
}

_VERSIONS: Final = {0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLS 1.0"}


def _is_grease(code: int) -> bool:
    # RFC 8701: 0x0A0A, 0x1A1A, ... 0xFAFA.
    return code & 0x0F0F == 0x0A0A and code >> 8 == code & 0xFF


def _name(table: dict[int, str], code: int) -> str:
    if code in table:
        return table[code]
    return "GREASE" if _is_grease(code) else f"0x{code:04x}"


def group_name(code: int) -> str:
    """IANA named group code -> our name (``0x001d`` -> ``"X25519"``, ``0x0017`` -> ``"P-256"``)."""
    return _name(_GROUPS, code)


def signature_scheme_name(code: int) -> str:
    """IANA signature scheme code -> name (``0x0403`` -> ``"ecdsa_secp256r1_sha256"``)."""
    return _name(_SIGNATURE_SCHEMES, code)


def cipher_suite_name(code: int) -> str:
    """IANA cipher suite code -> OpenSSL name (``0x1302`` -> ``"TLS_AES_256_GCM_SHA384"``)."""
    return _name(_CIPHER_SUITES, code)


def version_name(code: int) -> str:
    """Protocol version code -> name (``0x0304`` -> ``"TLS 1.3"``)."""
    return _name(_VERSIONS, code)


# --- sans-IO parsers ------------------------------------------------------------------------------


class WireFormatError(ValueError):
    """A handshake message is truncated or malformed (names the message and the field)."""


class _Cursor:
    """Bounds-checked big-endian reads over one message; every overrun is a WireFormatError."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def take(self, n: int, field: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise WireFormatError(
                f"{self._what}: truncated {field} (needs {n} bytes, "
                f"{len(self._data) - self._pos} left)"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "big")

    def vector(self, length_size: int, field: str) -> bytes:
        return self.take(self.uint(length_size, f"{field} length"), field)

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def end(self, field: str) -> None:
        if self.remaining:
            raise WireFormatError(f"{self._what}: {self.remaining} unexpected bytes after {field}")


def _body(msg: bytes, msg_type: int, what: str) -> bytes:
    """Check the 4-byte handshake header (type, 24-bit length) and return the body."""
    msg = bytes(msg)
    if len(msg) < 4:
        raise WireFormatError(f"{what}: {len(msg)} bytes is shorter than a handshake header")
    if msg[0] != msg_type:
        raise WireFormatError(f"{what}: handshake type {msg[0]}, expected {msg_type}")
    length = int.from_bytes(msg[1:4], "big")
    if length != len(msg) - 4:
        raise WireFormatError(f"{what}: header says {length} bytes, body has {len(msg) - 4}")
    return msg[4:]


def _u16_list(data: bytes, what: str, field: str) -> tuple[int, ...]:
    if len(data) % 2:
        raise WireFormatError(f"{what}: {field} has an odd length ({len(data)})")
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def _extensions(cur: _Cursor, what: str) -> dict[int, bytes]:
    """The extensions block (absent in a bare TLS 1.2 hello) as {type: data}; no duplicates."""
    if cur.remaining == 0:
        return {}
    block = _Cursor(cur.vector(2, "extensions"), what)
    cur.end("extensions")
    found: dict[int, bytes] = {}
    while block.remaining:
        ext_type = block.uint(2, "extension type")
        data = block.vector(2, f"extension {ext_type}")
        if ext_type in found:
            raise WireFormatError(f"{what}: duplicate extension {ext_type}")
        found[ext_type] = data
    return found


@dataclass(frozen=True, slots=True)
class KeyShare:
    """One key_share entry: the group and the size of its public key (the bytes are public)."""

    group: int
    size: int

    @property
    def group_name(self) -> str:
        """The group's name, e.g. ``"X25519"``."""
        return group_name(self.group)

    def __str__(self) -> str:
        return f"{self.group_name} ({self.size} bytes)"


def _key_share_entry(cur: _Cursor) -> KeyShare:
    group = cur.uint(2, "key share group")
    key = cur.vector(2, "key share key_exchange")
    return KeyShare(group, len(key))


@dataclass(frozen=True, slots=True)
class ClientHelloInfo:
    """What a ClientHello offered."""

    legacy_version: int
    cipher_suites: tuple[int, ...]
    supported_groups: tuple[int, ...]
    key_shares: tuple[KeyShare, ...]
    supported_versions: tuple[int, ...]
    extensions: tuple[int, ...]


def parse_client_hello(msg: bytes) -> ClientHelloInfo:
    """Parse a ClientHello handshake message (with its 4-byte header).

    Reads supported_groups (extension 10), key_share (51) and supported_versions (43); every
    other extension is listed by number only.
    """
    what = "ClientHello"
    cur = _Cursor(_body(msg, CLIENT_HELLO, what), what)
    legacy_version = cur.uint(2, "legacy_version")
    cur.take(32, "random")
    session_id = cur.vector(1, "legacy_session_id")
    if len(session_id) > 32:
        raise WireFormatError(f"{what}: session id of {len(session_id)} bytes (max 32)")
    suites = _u16_list(cur.vector(2, "cipher_suites"), what, "cipher_suites")
    cur.vector(1, "compression_methods")
    exts = _extensions(cur, what)

    groups: tuple[int, ...] = ()
    if EXT_SUPPORTED_GROUPS in exts:
        g = _Cursor(exts[EXT_SUPPORTED_GROUPS], f"{what} supported_groups")
        groups = _u16_list(g.vector(2, "named_group_list"), what, "supported_groups")
        g.end("named_group_list")
    shares: list[KeyShare] = []
    if EXT_KEY_SHARE in exts:
        k = _Cursor(exts[EXT_KEY_SHARE], f"{what} key_share")
        entries = _Cursor(k.vector(2, "client_shares"), f"{what} key_share")
        k.end("client_shares")
        while entries.remaining:
            shares.append(_key_share_entry(entries))
    versions: tuple[int, ...] = ()
    if EXT_SUPPORTED_VERSIONS in exts:
        v = _Cursor(exts[EXT_SUPPORTED_VERSIONS], f"{what} supported_versions")
        versions = _u16_list(v.vector(1, "versions"), what, "supported_versions")
        v.end("versions")
    return ClientHelloInfo(
        legacy_version=legacy_version,
        cipher_suites=suites,
        supported_groups=groups,
        key_shares=tuple(shares),
        supported_versions=versions,
        extensions=tuple(exts),
    )


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
    cur = _Cursor(_body(msg, SERVER_HELLO, what), what)
    legacy_version = cur.uint(2, "legacy_version")
    random = cur.take(32, "random")
    hrr = random == HRR_RANDOM
    session_id = cur.vector(1, "legacy_session_id_echo")
    if len(session_id) > 32:
        raise WireFormatError(f"{what}: session id of {len(session_id)} bytes (max 32)")
    suite = cur.uint(2, "cipher_suite")
    cur.uint(1, "legacy_compression_method")
    exts = _extensions(cur, what)

    version = legacy_version
    if EXT_SUPPORTED_VERSIONS in exts:
        v = _Cursor(exts[EXT_SUPPORTED_VERSIONS], f"{what} supported_versions")
        version = v.uint(2, "selected_version")
        v.end("selected_version")
    share: KeyShare | None = None
    retry_group: int | None = None
    if EXT_KEY_SHARE in exts:
        k = _Cursor(exts[EXT_KEY_SHARE], f"{what} key_share")
        if hrr:
            retry_group = k.uint(2, "selected_group")
            k.end("selected_group")
        else:
            share = _key_share_entry(k)
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
    cur = _Cursor(_body(msg, SERVER_KEY_EXCHANGE, what), what)
    curve_type = cur.uint(1, "curve_type")
    if curve_type != _NAMED_CURVE:
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
    cur = _Cursor(_body(msg, CLIENT_KEY_EXCHANGE, what), what)
    point = cur.vector(1, "public point")
    cur.end("public point")
    return len(point)


def parse_certificate(msg: bytes, *, tls13: bool) -> tuple[bytes, ...]:
    """The DER certificates (leaf first) of a Certificate message, TLS 1.3 or 1.2 layout."""
    what = "Certificate"
    cur = _Cursor(_body(msg, CERTIFICATE, what), what)
    if tls13:
        cur.vector(1, "certificate_request_context")
    entries = _Cursor(cur.vector(3, "certificate_list"), what)
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
    cur = _Cursor(_body(msg, CERTIFICATE_VERIFY, what), what)
    scheme = cur.uint(2, "algorithm")
    cur.vector(2, "signature")
    cur.end("signature")
    return scheme


def _finished_size(msg: bytes) -> int:
    return len(_body(msg, FINISHED, "Finished"))


def _leaf_key_type(der: bytes) -> str:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise WireFormatError(f"Certificate: leaf is not a DER certificate ({exc})") from None
    return describe_certificate(cert).key_type


# --- the trace --------------------------------------------------------------------------------

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
                offered_suites=len(
                    [s for s in hello.cipher_suites if not _is_grease(s) and s not in _SCSV]
                ),
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
                fields["certificate_key_type"] = _leaf_key_type(chain[0])
        elif m.direction == "received" and m.msg_type == CERTIFICATE_VERIFY:
            fields["certificate_verify_scheme"] = parse_certificate_verify(m.data)
        elif m.direction == "received" and m.msg_type == SERVER_KEY_EXCHANGE:
            fields["server_key_exchange"] = parse_server_key_exchange(m.data)
        elif m.direction == "sent" and m.msg_type == CLIENT_KEY_EXCHANGE:
            fields["client_key_exchange_size"] = parse_client_key_exchange(m.data)
        elif m.direction == "received" and m.msg_type == FINISHED:
            fields["finished_size"] = _finished_size(m.data)
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


@contextlib.asynccontextmanager
async def temporary_certificate() -> AsyncIterator[tuple[Path, Path]]:
    """A self-signed ECDSA P-256 certificate for localhost in a private temp dir, removed after.

    Key generation and file writes (fsync'd) run in a worker thread, off the event loop.
    """
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="ecdhe-async-"))
    try:
        cert, key = await asyncio.to_thread(
            create_self_signed_cert, directory / "server.crt", directory / "server.key"
        )
        yield cert, key
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)


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


# --- the walkthrough ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    title: str
    text: str
    on_the_wire: bool = True  # False: nothing of this step is sent (annotated "live:")


TLS13_STEPS: Final = (
    _Step(
        "ClientHello with key_share",
        "The client lists the groups it supports (supported_groups) and, to save a round trip, "
        "already sends a fresh ephemeral public key for its preferred group (key_share). The "
        "private half stays in the client's memory.",
    ),
    _Step(
        "ServerHello with the server's key_share",
        "The server picks a group that both sides allow, generates its own ephemeral key pair "
        "on it and answers with the public half. (Had the client sent no share for that group, "
        "the server would first ask for one with a HelloRetryRequest.)",
    ),
    _Step(
        "Both compute the shared secret",
        "Each side combines its own ephemeral private key with the other's public key and gets "
        "the same ECDHE shared secret. It never crosses the wire: an eavesdropper sees two "
        "public keys and cannot compute it.",
        on_the_wire=False,
    ),
    _Step(
        "Key schedule",
        "HKDF (RFC 8446 section 7.1) mixes the shared secret with a hash of the transcript into "
        "the handshake traffic keys; everything after ServerHello is encrypted. The application "
        "traffic keys are derived the same way, later in the schedule.",
        on_the_wire=False,
    ),
    _Step(
        "Certificate and CertificateVerify sign the transcript",
        "The server sends its certificate and signs the transcript hash, which covers both key "
        "shares, with its long-term key. A man in the middle cannot produce that signature over "
        "his own key shares. The long-term key only signs; it never encrypts a secret.",
    ),
    _Step(
        "Finished",
        "Each side sends an HMAC over the whole transcript, keyed from the key schedule: proof "
        "that both derived the same keys and saw the same messages. The ephemeral private keys "
        "are then thrown away.",
    ),
)

TLS12_TEXT: Final = (
    "TLS 1.2 runs the same exchange in other messages (ECDHE_ECDSA / ECDHE_RSA suites only): "
    "ServerKeyExchange carries the curve and the server's ephemeral public key, signed with the "
    "certificate's key; ClientKeyExchange carries the client's ephemeral public key. The shared "
    "secret becomes the premaster secret, and Finished messages confirm the handshake."
)

FORWARD_SECRECY_TEXT: Final = (
    "Someone who records the traffic today and steals the server's private key tomorrow still "
    "cannot decrypt it: that key only signed the handshake, and the ephemeral keys that could "
    "recompute the shared secret no longer exist. Every session's keys are independent."
)

BREAKS_FORWARD_SECRECY: Final = (
    (
        "static RSA key transport",
        "TLS 1.2 'RSA' suites (e.g. AES128-GCM-SHA256) encrypt the premaster secret to the "
        "server's long-term RSA key, so whoever gets that key later decrypts every recorded "
        "session. ecdhe_async allows ECDHE suites only.",
    ),
    (
        "long-lived ticket keys",
        "a TLS 1.2 session ticket holds the session's master secret encrypted under a ticket "
        "key that lives for hours or days; steal it and the sessions open up (TLS 1.3 psk_ke "
        "resumption would skip ECDHE entirely). ecdhe_async issues no tickets by default "
        "(OP_NO_TICKET, num_tickets = 0).",
    ),
    (
        "keylog files",
        "SSLKEYLOGFILE writes every session secret to disk for tools like Wireshark; anyone who "
        "reads the file decrypts the traffic. ecdhe_async ignores it unless allow_keylog = true, "
        "and then warns loudly.",
    ),
    (
        "reused 'ephemeral' keys",
        "one key pair reused across sessions is a static key in disguise. ecdhe_async sets "
        "OP_SINGLE_ECDH_USE and never offers finite-field groups.",
    ),
)


def use_color(out: TextIO, color: bool | None = None) -> bool:
    """Whether to emit ANSI colour: *color* if given, else a terminal and no ``NO_COLOR``."""
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty is not None and isatty())


class Style:
    """ANSI styling that is a no-op when ``color`` is False."""

    def __init__(self, color: bool) -> None:
        """Style with colour on or off."""
        self.color = color

    def _sgr(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def heading(self, text: str) -> str:
        """Bold."""
        return self._sgr("1", text)

    def step(self, text: str) -> str:
        """Bold cyan."""
        return self._sgr("1;36", text)

    def label(self, text: str) -> str:
        """Dim."""
        return self._sgr("2", text)

    def value(self, text: str) -> str:
        """Green."""
        return self._sgr("32", text)

    def warn(self, text: str) -> str:
        """Yellow."""
        return self._sgr("33", text)


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=indent)


def _section(title: str, style: Style, underline: str = "-") -> list[str]:
    return ["", style.heading(title), style.heading(underline * len(title))]


def fields(pairs: Sequence[tuple[str, str]], style: Style, indent: str = "     ") -> list[str]:
    """Aligned ``label  value`` lines (labels padded to the longest; long values wrapped)."""
    width = max((len(label) for label, _ in pairs), default=0)
    lines = []
    for label, value in pairs:
        room = max(_WIDTH - len(indent) - width - 2, 30)
        chunks = textwrap.wrap(value, room, break_on_hyphens=False) or [""]
        lines.append(f"{indent}{style.label(label.ljust(width))}  {style.value(chunks[0])}")
        pad = " " * (len(indent) + width + 2)
        lines += [f"{pad}{style.value(chunk)}" for chunk in chunks[1:]]
    return lines


def _names(codes: Iterable[int]) -> str:
    return ", ".join(group_name(c) for c in codes) or "(none)"


def _secret_size(group: str | None) -> str:
    size = _SECRET_SIZES.get(group or "")
    if size is None:
        return "never on the wire, never printed"
    return f"{size} bytes on {group}: never on the wire, never printed"


def _tls13_annotations(report: HandshakeReport) -> list[list[tuple[str, str]]]:
    """Wire facts per TLS 1.3 step (same order as TLS13_STEPS)."""
    w = report.wire
    if w is None:
        return [[] for _ in TLS13_STEPS]
    chosen = w.chosen_group
    server_share = [("server key share", str(w.server_key_share))] if w.server_key_share else []
    retry = [("HelloRetryRequest", group_name(w.retry_group))] if w.retry_group is not None else []
    cert = []
    if w.certificate_key_type:
        cert.append(("certificate key", f"{w.certificate_key_type} ({w.certificate_count} cert)"))
    if w.certificate_verify_scheme is not None:
        cert.append(("CertificateVerify", signature_scheme_name(w.certificate_verify_scheme)))
    finished = []
    if w.finished_size is not None:
        finished.append(("server Finished", f"{w.finished_size}-byte verify_data"))
    suite = cipher_suite_name(w.cipher_suite) if w.cipher_suite is not None else "?"
    return [
        [
            ("offered groups", _names(w.offered_groups)),
            ("key shares sent", ", ".join(map(str, w.client_key_shares)) or "(none)"),
            ("offered versions", ", ".join(version_name(v) for v in w.offered_versions)),
            ("offered suites", str(w.offered_suites)),
        ],
        [
            ("chosen group", group_name(chosen) if chosen is not None else "?"),
            *retry,
            *server_share,
            ("version", version_name(w.version) if w.version is not None else "?"),
            ("cipher suite", suite),
        ],
        [("shared secret", _secret_size(report.group))],
        [("traffic keys", f"from the schedule of {suite}")],
        cert,
        finished,
    ]


def _tls12_annotations(report: HandshakeReport) -> list[tuple[str, str]]:
    w = report.wire
    if w is None:
        return []
    pairs = [("offered groups", _names(w.offered_groups))]
    ske = w.server_key_exchange
    if ske is not None:
        pairs.append(
            (
                "ServerKeyExchange",
                f"curve {ske.curve_name}, {ske.public_key_size}-byte public key, signed with "
                f"{signature_scheme_name(ske.signature_scheme)}",
            )
        )
    if w.client_key_exchange_size is not None:
        pairs.append(("ClientKeyExchange", f"{w.client_key_exchange_size}-byte public key"))
    if w.certificate_key_type:
        pairs.append(("certificate key", w.certificate_key_type))
    if w.cipher_suite is not None:
        pairs.append(("cipher suite", cipher_suite_name(w.cipher_suite)))
    if w.version is not None:
        pairs.append(("version", version_name(w.version)))
    if w.downgrade_sentinel:
        pairs.append(
            (
                "ServerHello random",
                "ends in DOWNGRD\\x01: the server speaks TLS 1.3, so a TLS 1.3 client "
                "would detect an attacker forcing this downgrade",
            )
        )
    return pairs


def _negotiated(report: HandshakeReport, style: Style) -> list[str]:
    if report.error is not None:
        return fields([("handshake", f"failed: {report.error}")], style, "   ")
    pairs = [
        ("version", report.version or "?"),
        ("cipher suite", report.cipher or "?"),
        ("group", report.group or "?"),
        ("certificate key", report.certificate_key_type or "?"),
    ]
    lines = fields(pairs, style, "   ")
    if report.note:
        lines.append(f"   {style.warn(report.note)}")
    return lines


def _wire_lines(pairs: Sequence[tuple[str, str]], style: Style, tag: str = "wire:") -> list[str]:
    """Annotation lines: ``wire:`` for facts read off the trace, ``live:`` for derived ones."""
    if not pairs:
        return []
    indent = " " * 11
    lines = fields(pairs, style, indent)
    lines[0] = "     " + style.label(tag.ljust(6)) + lines[0][len(indent) :]
    return lines


def render(reports: Sequence[HandshakeReport] = (), *, color: bool = False) -> str:
    """The walkthrough as text; with *reports* (from :func:`trace_handshakes`) annotated live."""
    style = Style(color)
    tls13 = next((r for r in reports if r.label == "TLS 1.3"), None)
    tls12 = next((r for r in reports if r.label == "TLS 1.2"), None)
    lines: list[str] = []
    if reports:
        intro = (
            "Annotated with a live loopback handshake: our TLSServer and our client on "
            "127.0.0.1, once with TLS 1.3 and once capped at TLS 1.2. "
        )
        if any(r.wire is not None for r in reports):
            intro += (
                "'wire:' lines show what the client's trace saw cross the wire, 'live:' lines "
                "what follows from it."
            )
        else:
            intro += "Only the negotiated facts are shown: no wire trace."
        lines += _wrap(intro, "")
    lines += _section("The TLS 1.3 handshake, step by step", style)
    annotations = _tls13_annotations(tls13) if tls13 else [[] for _ in TLS13_STEPS]
    for number, (step, pairs) in enumerate(zip(TLS13_STEPS, annotations, strict=True), 1):
        lines.append(style.step(f"  {number}. {step.title}"))
        lines += _wrap(step.text, "     ")
        lines += _wire_lines(pairs, style, "wire:" if step.on_the_wire else "live:")
    if tls13 is not None:
        lines.append("")
        lines.append(style.heading("   Negotiated (TLS 1.3 connection):"))
        lines += _negotiated(tls13, style)

    lines += _section("TLS 1.2: ServerKeyExchange and ClientKeyExchange", style)
    lines += _wrap(TLS12_TEXT, "  ")
    if tls12 is not None:
        lines += _wire_lines(_tls12_annotations(tls12), style)
        lines.append("")
        lines.append(style.heading("   Negotiated (TLS 1.2 connection):"))
        lines += _negotiated(tls12, style)

    lines += _section("Why this gives forward secrecy", style)
    lines += _wrap(FORWARD_SECRECY_TEXT, "  ")
    lines += _section("What would break it", style)
    width = max(len(name) for name, _ in BREAKS_FORWARD_SECRECY)
    for name, text in BREAKS_FORWARD_SECRECY:
        wrapped = _wrap(text, " " * (6 + width))
        wrapped[0] = f"  - {style.label(name.ljust(width))}  " + wrapped[0].lstrip()
        lines += wrapped
    return "\n".join(lines).lstrip("\n") + "\n"


def explain_text() -> str:
    """The static walkthrough (no colour, no live values)."""
    return render()


async def explain_main(
    out: TextIO,
    *,
    live: bool = False,
    color: bool | None = None,
) -> None:
    """Print the walkthrough to *out*; with *live*, run loopback handshakes and annotate it.

    *color*: ``None`` = auto (a terminal and no ``NO_COLOR``), ``True``/``False`` force it.
    """
    style = Style(use_color(out, color))
    reports: Sequence[HandshakeReport] = ()
    if live:
        reports = await trace_handshakes()
    title = "How ECDHE works in TLS"
    out.write(style.heading(title) + "\n" + style.heading("=" * len(title)) + "\n")
    out.write(render(reports, color=style.color))
    out.flush()
