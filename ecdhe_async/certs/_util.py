"""Types, constants and small helpers shared by the ``certs`` modules: passwords, time, names.

Nothing here touches the filesystem. Hostnames become subject-alternative-name entries here
(IP literals as IPAddress, the rest as IDNA-encoded DNSName), so every module parses them alike.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_HOSTNAMES",
    "KEY_TYPES",
    "KeyType",
    "PasswordLike",
    "PrivateKey",
    "StrPath",
    "SupportsSecretValue",
]

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from typing import Literal, Protocol, TypeAlias, get_args

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from ..errors import CertificateError

KeyType = Literal["ec-p256", "ec-p384", "rsa2048", "rsa3072"]
"""Key algorithms offered for generated keys; ``"ec-p256"`` is the default everywhere."""

KEY_TYPES: tuple[KeyType, ...] = get_args(KeyType)
"""Every valid :data:`KeyType`, in declaration order."""

DEFAULT_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
"""Subject alternative names of development server certificates unless told otherwise."""

StrPath: TypeAlias = str | os.PathLike[str]
"""A filesystem path given as ``str`` or path-like object."""

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""The key objects :func:`generate_private_key` returns."""


class SupportsSecretValue(Protocol):
    """Anything holding a secret behind ``get_secret_value()`` (pydantic ``SecretStr``...)."""

    def get_secret_value(self) -> str | bytes:
        """Return the secret itself."""
        ...


PasswordLike: TypeAlias = str | bytes | SupportsSecretValue
"""A private-key password: text (encoded as UTF-8), raw bytes, or a secret wrapper."""

_CLOCK_SKEW = dt.timedelta(minutes=1)
_MAX_CN_LENGTH = 64
_DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")


def _password_bytes(password: PasswordLike | None) -> bytes | None:
    """Normalize a password to bytes (``None`` stays ``None``); reject empty or odd values."""
    if password is None:
        return None
    value: object = password
    if not isinstance(value, str | bytes | bytearray) and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if isinstance(value, str):
        secret = value.encode("utf-8")
    elif isinstance(value, bytes | bytearray):
        secret = bytes(value)
    else:
        raise CertificateError(
            f"a key password must be str, bytes or have get_secret_value(), "
            f"not {type(value).__name__}"
        )
    if not secret:
        raise CertificateError("the key password is empty")
    return secret


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise CertificateError(f"certificate validity must be a positive number of days: {days!r}")


def _check_key_type(key_type: str) -> None:
    if key_type not in KEY_TYPES:
        raise CertificateError(
            f"unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}"
        )


def _name(common_name: str) -> x509.Name:
    if not common_name or len(common_name) > _MAX_CN_LENGTH:
        raise CertificateError(
            f"common name must be 1 to {_MAX_CN_LENGTH} characters long: {common_name!r}"
        )
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


_HostKey: TypeAlias = tuple[str, str]


def _parse_hostname(hostname: str) -> x509.GeneralName:
    """Turn one hostname or IP literal into a SAN entry (IP addresses become IPAddress)."""
    text = hostname.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    text = text.rstrip(".")
    try:
        ascii_name = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_name = ""
    if not ascii_name or len(ascii_name) > 253 or not _DNS_NAME.match(ascii_name):
        raise CertificateError(f"invalid hostname for a certificate: {hostname!r}")
    return x509.DNSName(ascii_name)


def _host_key(name: x509.GeneralName) -> _HostKey | None:
    if isinstance(name, x509.DNSName):
        return ("DNS", name.value.lower())
    if isinstance(name, x509.IPAddress):
        return ("IP", str(name.value))
    return None


def _san_entries(hostnames: Sequence[str], *, required: bool = True) -> list[x509.GeneralName]:
    """Parse and de-duplicate hostnames, keeping their order; at least one unless not required."""
    if isinstance(hostnames, str):
        hostnames = (hostnames,)
    entries: list[x509.GeneralName] = []
    seen: set[_HostKey | None] = set()
    for hostname in hostnames:
        entry = _parse_hostname(hostname)
        key = _host_key(entry)
        if key not in seen:
            seen.add(key)
            entries.append(entry)
    if required and not entries:
        raise CertificateError("a server certificate needs at least one hostname")
    return entries


def _default_common_name(sans: Sequence[x509.GeneralName], fallback: str) -> str:
    first = sans[0].value if sans else None
    text = str(first) if first is not None else ""
    return text if 0 < len(text) <= _MAX_CN_LENGTH else fallback


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
