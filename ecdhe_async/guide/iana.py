"""TLS registry values (IANA) and their names, for the guide's wire parser and walkthrough.

Handshake message types, extension numbers, versions, signature schemes and cipher suites, each
with a ``*_name`` lookup that falls back to ``GREASE`` or the code in hex, so that nothing on the
wire is ever hidden. Group names and sizes are not here: they come from the one registry,
:mod:`ecdhe_async.groups`. Pure data and lookups: no I/O.
"""

from __future__ import annotations

from typing import Final

from .._hello import (
    CLIENT_HELLO,
    EXT_KEY_SHARE,
    EXT_SUPPORTED_GROUPS,
    EXT_SUPPORTED_VERSIONS,
    HANDSHAKE,
    group_name,
    is_grease,
)

__all__ = [
    "CERTIFICATE",
    "CERTIFICATE_VERIFY",
    "CLIENT_HELLO",
    "CLIENT_KEY_EXCHANGE",
    "DOWNGRADE_TLS12",
    "EXT_KEY_SHARE",
    "EXT_SUPPORTED_GROUPS",
    "EXT_SUPPORTED_VERSIONS",
    "FINISHED",
    "HANDSHAKE",
    "HRR_RANDOM",
    "NAMED_CURVE",
    "SERVER_HELLO",
    "SERVER_KEY_EXCHANGE",
    "TLS13",
    "cipher_suite_name",
    "group_name",
    "is_grease",
    "is_real_suite",
    "signature_scheme_name",
    "version_name",
]

SERVER_HELLO: Final = 2
CERTIFICATE: Final = 11
SERVER_KEY_EXCHANGE: Final = 12
CERTIFICATE_VERIFY: Final = 15
CLIENT_KEY_EXCHANGE: Final = 16
FINISHED: Final = 20


TLS13: Final = 0x0304
NAMED_CURVE: Final = 3  # ECCurveType.named_curve in a TLS 1.2 ServerKeyExchange

# Signalling suite values, not real suites (renegotiation_info, fallback).
_SCSV: Final = frozenset({0x00FF, 0x5600})

# Last 8 bytes of a TLS 1.2 ServerHello.random from a TLS 1.3-capable server (RFC 8446 §4.1.3).
DOWNGRADE_TLS12: Final = b"DOWNGRD\x01"

# ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
HRR_RANDOM: Final = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

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


def _name(known: str | None, code: int) -> str:
    """*known* if there is one, else ``GREASE`` or the code in hex (``0x1234``)."""
    if known is not None:
        return known
    return "GREASE" if is_grease(code) else f"0x{code:04x}"


def signature_scheme_name(code: int) -> str:
    """IANA signature scheme code -> name (``0x0403`` -> ``"ecdsa_secp256r1_sha256"``)."""
    return _name(_SIGNATURE_SCHEMES.get(code), code)


def cipher_suite_name(code: int) -> str:
    """IANA cipher suite code -> OpenSSL name (``0x1302`` -> ``"TLS_AES_256_GCM_SHA384"``)."""
    return _name(_CIPHER_SUITES.get(code), code)


def version_name(code: int) -> str:
    """Protocol version code -> name (``0x0304`` -> ``"TLS 1.3"``)."""
    return _name(_VERSIONS.get(code), code)


def is_real_suite(code: int) -> bool:
    """False for GREASE and signalling values (SCSVs), which are not cipher suites."""
    return not is_grease(code) and code not in _SCSV
