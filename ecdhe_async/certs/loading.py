"""Loading and checking keys and certificates; every failure is a one-line CertificateError.

Messages name the file ("key file 'x.key' is encrypted: a password is required"), never key
material.
"""

from __future__ import annotations

__all__ = [
    "CertInfo",
    "check_key_pair",
    "describe_certificate",
    "fingerprint",
    "is_group_or_world_readable",
    "is_world_readable",
    "load_certificate",
    "load_certificates",
    "load_private_key",
]

import dataclasses
import datetime as dt
import os
import re
import stat
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

from ..errors import CertificateError
from ._util import PasswordLike, StrPath, _password_bytes, _public_der

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{what} '{path}' not found") from None
    except IsADirectoryError:
        raise CertificateError(f"{what} '{path}' is a directory") from None
    except PermissionError:
        raise CertificateError(f"{what} '{path}' is not readable: permission denied") from None
    except OSError as exc:
        raise CertificateError(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from exc


def load_private_key(
    path: StrPath, password: PasswordLike | None = None, *, validate: bool = True
) -> PrivateKeyTypes:
    """Load the first PEM private key in ``path`` (a combined cert+key file is fine).

    ``validate=False`` skips cryptography's RSA consistency check (~40 ms per 2048-bit key, with
    the GIL held), for callers that only read the public key (:func:`check_key_pair`).

    Raises :class:`CertificateError` when the file is missing or unreadable, holds no PEM
    private key, is encrypted but no password was given ("... is encrypted: a password is
    required"), the password is wrong ("wrong password for key file ..."), or a password was
    given for a key that is not encrypted.
    """
    key_path = Path(path)
    secret = _password_bytes(password)
    data = _read_file(key_path, "key file")
    blocks = [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(data)]
    key_blocks = [(label, block) for label, block in blocks if label.endswith(b"PRIVATE KEY")]
    if not key_blocks:
        found = sorted({label.decode("ascii") for label, _ in blocks})
        detail = f" (found: {', '.join(found)})" if found else ""
        raise CertificateError(f"key file '{key_path}' does not contain a PEM private key{detail}")
    label, block = key_blocks[0]
    encrypted = label == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
    if encrypted and secret is None:
        raise CertificateError(f"key file '{key_path}' is encrypted: a password is required")
    if not encrypted and secret is not None:
        raise CertificateError(f"key file '{key_path}' is not encrypted, but a password was given")
    try:
        return serialization.load_pem_private_key(
            block, secret, unsafe_skip_rsa_key_validation=not validate
        )
    except UnsupportedAlgorithm as exc:
        raise CertificateError(
            f"key file '{key_path}' uses an unsupported key type or encryption: {exc}"
        ) from None
    except (ValueError, TypeError):
        if encrypted:
            raise CertificateError(
                f"wrong password for key file '{key_path}' (or the key is corrupted)"
            ) from None
        raise CertificateError(
            f"key file '{key_path}' does not contain a valid private key"
        ) from None


def load_certificates(path: StrPath) -> list[x509.Certificate]:
    """Load every certificate of a PEM file (a chain), or the single certificate of a DER file."""
    cert_path = Path(path)
    data = _read_file(cert_path, "certificate file")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError(
            f"certificate file '{cert_path}' does not contain a valid certificate"
        ) from None


def load_certificate(path: StrPath) -> x509.Certificate:
    """Load the first certificate of a PEM chain (the leaf); :class:`CertificateError` if none."""
    return load_certificates(path)[0]


def check_key_pair(
    cert_file: StrPath, key_file: StrPath, password: PasswordLike | None = None
) -> None:
    """Raise :class:`CertificateError` unless the key in ``key_file`` belongs to the certificate.

    The comparison is on the DER-encoded public keys, so it works for every key type. Only the
    public half is read, so an RSA key is not checked for consistency here (OpenSSL, which signs
    with it, verifies its own RSA results).
    """
    cert = load_certificate(cert_file)
    key = load_private_key(key_file, password, validate=False)
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise CertificateError(
            f"private key in '{Path(key_file)}' does not match the certificate in "
            f"'{Path(cert_file)}'"
        )


def _mode_bits(path: StrPath) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        raise CertificateError(f"file '{Path(path)}' not found") from None
    except OSError as exc:
        raise CertificateError(f"cannot stat '{Path(path)}': {exc.strerror or exc}") from exc


def is_world_readable(path: StrPath) -> bool:
    """True when "other" users may read ``path`` (mode bit ``0o004``); always False on Windows.

    Use it to warn about private keys that anyone on the machine can read.
    """
    if os.name == "nt":
        return False
    return bool(_mode_bits(path) & stat.S_IROTH)


def is_group_or_world_readable(path: StrPath) -> bool:
    """True when the group or other users may read ``path`` (mode bits ``0o044``).

    The stricter check: a private key should be ``0600``/``0400``. Always False on Windows.
    """
    if os.name == "nt":
        return False
    return bool(_mode_bits(path) & (stat.S_IRGRP | stat.S_IROTH))


def _as_certificate(cert_or_path: x509.Certificate | StrPath) -> x509.Certificate:
    if isinstance(cert_or_path, x509.Certificate):
        return cert_or_path
    return load_certificate(cert_or_path)


def fingerprint(cert_or_path: x509.Certificate | StrPath) -> str:
    """SHA-256 fingerprint of the DER certificate as ``AB:CD:...`` (like ``openssl x509``)."""
    return _as_certificate(cert_or_path).fingerprint(hashes.SHA256()).hex(":").upper()


@dataclasses.dataclass(frozen=True, slots=True)
class CertInfo:
    """A human-oriented summary of a certificate (see :func:`describe_certificate`)."""

    subject: str
    issuer: str
    serial_number: str
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str
    is_ca: bool
    self_signed: bool
    fingerprint: str

    def as_dict(self) -> dict[str, str]:
        """The fields as strings (SANs comma-separated, times in ISO 8601), e.g. for a CLI."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial_number": self.serial_number,
            "sans": ", ".join(self.sans),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "key_type": self.key_type,
            "is_ca": str(self.is_ca).lower(),
            "self_signed": str(self.self_signed).lower(),
            "fingerprint": self.fingerprint,
        }


def _format_san(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    return str(name.value)


def _sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(ext.value)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def describe_certificate(cert_or_path: x509.Certificate | StrPath) -> CertInfo:
    """Summarize a certificate (object or file): names, SANs, validity, key type, fingerprint."""
    cert = _as_certificate(cert_or_path)
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=f"{cert.serial_number:X}",
        sans=tuple(_format_san(name) for name in _sans(cert)),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=_describe_key(cert.public_key()),
        is_ca=_is_ca(cert),
        self_signed=_is_self_signed(cert),
        fingerprint=fingerprint(cert),
    )


def _describe_key(key: CertificatePublicKeyTypes | PublicKeyTypes) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {curves.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__
