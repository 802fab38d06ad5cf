"""Development certificates and private-key handling, built on ``cryptography`` (no OpenSSL CLI).

* :func:`create_self_signed_cert` writes a self-signed TLS server certificate (usable for both
  ends of a development connection) whose certificate file is also its own trust anchor:
  ``ssl.create_default_context(cafile=cert_file)`` verifies it for every requested hostname.
* :class:`DevCA` is a throw-away certificate authority for mutual TLS: it issues server and
  client certificates that verify against :attr:`DevCA.cert_pem`.
* :func:`dev_certificate` returns a per-user cached development certificate for ``serve`` when
  none is configured.
* :func:`load_private_key`, :func:`load_certificate`, :func:`check_key_pair` turn every failure
  into a :class:`~ecdhe_async.errors.CertificateError` with a message naming the file.

Private keys are written as PKCS#8 PEM (encrypted with ``BestAvailableEncryption`` when a
password is given) to files that are mode ``0600`` from the moment they exist: the data goes to
a temporary file created ``O_EXCL`` with mode ``0600`` in the same directory, is fsynced, then
renamed over the destination with :func:`os.replace`. Certificates are written the same way
with mode ``0644``. Passwords may be ``str``, ``bytes`` or anything with a
``get_secret_value()`` method (such as pydantic's ``SecretStr``); neither passwords nor key
material ever appear in logs, messages or reprs.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_HOSTNAMES",
    "KEY_TYPES",
    "CertInfo",
    "DevCA",
    "KeyType",
    "PasswordLike",
    "PrivateKey",
    "StrPath",
    "SupportsSecretValue",
    "check_key_pair",
    "create_self_signed_cert",
    "default_cache_dir",
    "describe_certificate",
    "dev_certificate",
    "fingerprint",
    "generate_private_key",
    "is_group_or_world_readable",
    "is_world_readable",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "write_certificate",
    "write_private_key",
]

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol, TypeAlias, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import CertificateError

if sys.platform != "win32":
    import fcntl

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

_log = logging.getLogger(__name__)

_CLOCK_SKEW = dt.timedelta(minutes=1)
_CA_DAYS = 3650
_MAX_CN_LENGTH = 64
_CERT_MODE = 0o644
_KEY_MODE = 0o600
_DIR_MODE = 0o700
_DEV_CERT_NAME = "dev-cert.pem"
_DEV_KEY_NAME = "dev-key.pem"
_DEV_LOCK_NAME = ".dev-cert.lock"
_DEV_COMMON_NAME = "ecdhe_async development certificate"

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")
_SignatureHash: TypeAlias = hashes.SHA256 | hashes.SHA384 | hashes.SHA512


# --------------------------------------------------------------------------------------------
# Small helpers: passwords, paths, time, names
# --------------------------------------------------------------------------------------------


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


def _san_entries(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    """Parse and de-duplicate hostnames, keeping their order; at least one is required."""
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
    if not entries:
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


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> _SignatureHash | None:
    """SHA-256, except SHA-384 for P-384 and SHA-512 for P-521; ``None`` for EdDSA keys."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size >= 521:
            return hashes.SHA512()
        if key.curve.key_size >= 384:
            return hashes.SHA384()
        return hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    raise CertificateError(f"unsupported signing key type: {type(key).__name__}")


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


# --------------------------------------------------------------------------------------------
# Atomic file writing
# --------------------------------------------------------------------------------------------


def _stage(path: Path, data: bytes, mode: int) -> Path:
    """Write ``data`` to a new temporary file next to ``path`` with exactly ``mode``; fsync it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    # The file is born with at most `mode` (the umask can only remove bits)...
    fd = os.open(tmp, flags, mode)
    try:
        # ...and fchmod restores bits a strict umask removed, never adding any beyond `mode`.
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    return tmp


def _fsync_directory(directory: Path) -> None:
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomically(files: Sequence[tuple[Path, bytes, int]]) -> None:
    """Stage every file first, then rename them into place in order; no temp file survives."""
    staged: list[tuple[Path, Path]] = []
    current: Path | None = None
    try:
        for path, data, mode in files:
            current = path
            staged.append((_stage(path, data, mode), path))
        while staged:
            tmp, path = staged[0]
            current = path
            os.replace(tmp, path)
            staged.pop(0)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CertificateError(f"cannot write '{current}': {reason}") from exc
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
    for directory in {path.parent for path, _, _ in files}:
        _fsync_directory(directory)


def _private_key_pem(key: PrivateKeyTypes, password: PasswordLike | None) -> bytes:
    secret = _password_bytes(password)
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if secret is None
        else serialization.BestAvailableEncryption(secret)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _certs_pem(certs: x509.Certificate | Sequence[x509.Certificate]) -> bytes:
    items = [certs] if isinstance(certs, x509.Certificate) else list(certs)
    if not items:
        raise CertificateError("no certificate to write")
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in items)


def _distinct_paths(cert_file: StrPath, key_file: StrPath) -> tuple[Path, Path]:
    cert_path, key_path = Path(cert_file), Path(key_file)
    if cert_path.absolute() == key_path.absolute():
        raise CertificateError(f"certificate and key must be different files: '{cert_path}'")
    return cert_path, key_path


def _write_pair(
    cert_path: Path,
    certs: x509.Certificate | Sequence[x509.Certificate],
    key_path: Path,
    key: PrivateKeyTypes,
    password: PasswordLike | None,
) -> tuple[Path, Path]:
    _write_atomically(
        [
            (key_path, _private_key_pem(key, password), _KEY_MODE),
            (cert_path, _certs_pem(certs), _CERT_MODE),
        ]
    )
    return cert_path, key_path


def write_private_key(
    path: StrPath, key: PrivateKeyTypes, password: PasswordLike | None = None
) -> Path:
    """Write ``key`` as PKCS#8 PEM to ``path``, atomically and with mode ``0600``.

    With a ``password`` the key is encrypted with ``BestAvailableEncryption``. The file is
    never readable by anyone but its owner, not even for a moment.
    """
    target = Path(path)
    _write_atomically([(target, _private_key_pem(key, password), _KEY_MODE)])
    return target


def write_certificate(path: StrPath, certs: x509.Certificate | Sequence[x509.Certificate]) -> Path:
    """Write one certificate (or a chain, leaf first) as PEM to ``path``, atomically, mode 0644."""
    target = Path(path)
    _write_atomically([(target, _certs_pem(certs), _CERT_MODE)])
    return target


# --------------------------------------------------------------------------------------------
# Loading and checking
# --------------------------------------------------------------------------------------------


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


def load_private_key(path: StrPath, password: PasswordLike | None = None) -> PrivateKeyTypes:
    """Load the first PEM private key in ``path`` (a combined cert+key file is fine).

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
        return serialization.load_pem_private_key(block, secret)
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

    The comparison is on the DER-encoded public keys, so it works for every key type.
    """
    cert = load_certificate(cert_file)
    key = load_private_key(key_file, password)
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


# --------------------------------------------------------------------------------------------
# Generating keys and certificates
# --------------------------------------------------------------------------------------------


def generate_private_key(key_type: KeyType = "ec-p256") -> PrivateKey:
    """Generate a fresh private key of the given :data:`KeyType`."""
    _check_key_type(key_type)
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(
        public_exponent=65537, key_size=2048 if key_type == "rsa2048" else 3072
    )


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(
    issuer_key: CertificateIssuerPrivateKeyTypes, issuer_cert: x509.Certificate | None
) -> x509.AuthorityKeyIdentifier:
    if issuer_cert is not None:
        try:
            ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            pass
        else:
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _sign_leaf(
    *,
    subject: x509.Name,
    public_key: PrivateKey,
    sans: Sequence[x509.GeneralName],
    usages: Sequence[x509.ObjectIdentifier],
    server: bool,
    days: int,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    issuer_cert: x509.Certificate | None,
) -> x509.Certificate:
    """Build and sign an end-entity certificate (self-signed when ``issuer_cert`` is None)."""
    now = _now()
    not_after = now + dt.timedelta(days=days)
    if issuer_cert is not None:
        # A leaf must not outlive its CA.
        not_after = min(not_after, issuer_cert.not_valid_after_utc)
        if not_after <= now:
            raise CertificateError("the CA certificate has expired; create a new CA")
    leaf_public = public_key.public_key()
    # keyEncipherment only matters for RSA key transport, and only on the server side.
    key_encipherment = server and isinstance(leaf_public, rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer_cert is None else issuer_cert.subject)
        .public_key(leaf_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_encipherment=key_encipherment), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_public), critical=False)
        .add_extension(_authority_key_id(issuer_key, issuer_cert), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, _signature_hash(issuer_key))


def create_self_signed_cert(
    cert_file: StrPath,
    key_file: StrPath,
    *,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    common_name: str | None = None,
    key_type: KeyType = "ec-p256",
    days: int = 365,
    key_password: PasswordLike | None = None,
) -> tuple[Path, Path]:
    """Create a self-signed TLS server certificate and its private key; return both paths.

    Hostnames that parse as IP addresses become IPAddress SANs, the others DNSName SANs. The
    certificate is an end-entity certificate (``CA:FALSE``; serverAuth and clientAuth) that
    OpenSSL accepts as its own trust anchor, so a client using
    ``ssl.create_default_context(cafile=cert_file)`` verifies it for each hostname. The key
    file is written ``0600`` (encrypted PKCS#8 when ``key_password`` is given), the certificate
    ``0644``, both atomically.
    """
    cert_path, key_path = _distinct_paths(cert_file, key_file)
    _check_key_type(key_type)
    _check_days(days)
    _password_bytes(key_password)  # fail on a bad password before generating anything
    sans = _san_entries(hostnames)
    subject = _name(common_name or _default_common_name(sans, "ecdhe_async self-signed"))
    key = generate_private_key(key_type)
    cert = _sign_leaf(
        subject=subject,
        public_key=key,
        sans=sans,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        server=True,
        days=days,
        issuer_key=key,
        issuer_cert=None,
    )
    return _write_pair(cert_path, cert, key_path, key, key_password)


class DevCA:
    """A development certificate authority for mutual TLS.

    Create one with :meth:`create` (or :meth:`load` a saved one), trust :attr:`cert_pem` on
    both sides, and issue leaves with :meth:`issue_server_cert` / :meth:`issue_client_cert`.
    The CA private key is never exposed by ``repr``; :meth:`save` writes it ``0600``.
    """

    __slots__ = ("_cert", "_key")

    def __init__(self, cert: x509.Certificate, key: CertificateIssuerPrivateKeyTypes) -> None:
        """Wrap an existing CA certificate and its private key (checked to match)."""
        if not _is_ca(cert):
            raise CertificateError(
                f"certificate '{cert.subject.rfc4514_string()}' is not a CA certificate"
            )
        _signature_hash(key)  # rejects key types we cannot sign with
        if _public_der(cert.public_key()) != _public_der(key.public_key()):
            raise CertificateError("the CA private key does not match the CA certificate")
        self._cert = cert
        self._key = key

    @classmethod
    def create(
        cls,
        common_name: str = "ecdhe_async dev CA",
        *,
        key_type: KeyType = "ec-p256",
        days: int = _CA_DAYS,
    ) -> DevCA:
        """Generate a new self-signed CA (``CA:TRUE, pathlen:0``, keyCertSign and cRLSign)."""
        _check_key_type(key_type)
        _check_days(days)
        name = _name(common_name)
        key = generate_private_key(key_type)
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False
            )
            .sign(key, _signature_hash(key))
        )
        return cls(cert, key)

    @classmethod
    def load(
        cls, cert_file: StrPath, key_file: StrPath, password: PasswordLike | None = None
    ) -> DevCA:
        """Load a CA saved with :meth:`save` (or any CA certificate and its key)."""
        cert = load_certificate(cert_file)
        key = load_private_key(key_file, password)
        if not isinstance(
            key,
            ec.EllipticCurvePrivateKey
            | rsa.RSAPrivateKey
            | ed25519.Ed25519PrivateKey
            | ed448.Ed448PrivateKey,
        ):
            raise CertificateError(
                f"key file '{Path(key_file)}' holds an unsupported CA key type: "
                f"{type(key).__name__}"
            )
        if _public_der(cert.public_key()) != _public_der(key.public_key()):
            raise CertificateError(
                f"private key in '{Path(key_file)}' does not match the certificate in "
                f"'{Path(cert_file)}'"
            )
        return cls(cert, key)

    def save(
        self, cert_file: StrPath, key_file: StrPath, password: PasswordLike | None = None
    ) -> tuple[Path, Path]:
        """Write the CA certificate (``0644``) and private key (``0600``) atomically."""
        cert_path, key_path = _distinct_paths(cert_file, key_file)
        return _write_pair(cert_path, self._cert, key_path, self._key, password)

    @property
    def cert(self) -> x509.Certificate:
        """The CA certificate."""
        return self._cert

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate as PEM: the trust anchor to give ``load_verify_locations``."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the CA certificate."""
        return fingerprint(self._cert)

    def issue_server_cert(
        self,
        cert_file: StrPath,
        key_file: StrPath,
        *,
        hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
        common_name: str | None = None,
        key_type: KeyType = "ec-p256",
        days: int = 365,
        key_password: PasswordLike | None = None,
    ) -> tuple[Path, Path]:
        """Issue a server certificate (EKU serverAuth) for ``hostnames``; return both paths."""
        sans = _san_entries(hostnames)
        return self._issue(
            cert_file,
            key_file,
            common_name=common_name or _default_common_name(sans, "ecdhe_async server"),
            sans=sans,
            server=True,
            key_type=key_type,
            days=days,
            key_password=key_password,
        )

    def issue_client_cert(
        self,
        cert_file: StrPath,
        key_file: StrPath,
        *,
        common_name: str = "ecdhe_async dev client",
        key_type: KeyType = "ec-p256",
        days: int = 365,
        key_password: PasswordLike | None = None,
    ) -> tuple[Path, Path]:
        """Issue a client certificate (EKU clientAuth) named ``common_name``; return both paths."""
        return self._issue(
            cert_file,
            key_file,
            common_name=common_name,
            sans=(),
            server=False,
            key_type=key_type,
            days=days,
            key_password=key_password,
        )

    def _issue(
        self,
        cert_file: StrPath,
        key_file: StrPath,
        *,
        common_name: str,
        sans: Sequence[x509.GeneralName],
        server: bool,
        key_type: KeyType,
        days: int,
        key_password: PasswordLike | None,
    ) -> tuple[Path, Path]:
        cert_path, key_path = _distinct_paths(cert_file, key_file)
        _check_key_type(key_type)
        _check_days(days)
        _password_bytes(key_password)
        key = generate_private_key(key_type)
        cert = _sign_leaf(
            subject=_name(common_name),
            public_key=key,
            sans=sans,
            usages=[ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH],
            server=server,
            days=days,
            issuer_key=self._key,
            issuer_cert=self._cert,
        )
        return _write_pair(cert_path, cert, key_path, key, key_password)

    def __repr__(self) -> str:
        """Subject and fingerprint only: never key material."""
        return (
            f"DevCA(subject={self._cert.subject.rfc4514_string()!r}, "
            f"fingerprint={self.fingerprint!r})"
        )


# --------------------------------------------------------------------------------------------
# Cached development certificate
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ecdhe_async``, else ``~/.cache/ecdhe_async``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative paths are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "ecdhe_async"


def _ensure_private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=_DIR_MODE, parents=True)
    except FileExistsError:
        if not directory.is_dir():
            raise CertificateError(f"cache path '{directory}' is not a directory") from None
    except OSError as exc:
        raise CertificateError(
            f"cannot create cache directory '{directory}': {exc.strerror or exc}"
        ) from exc
    else:
        with contextlib.suppress(OSError):
            os.chmod(directory, _DIR_MODE)  # the umask may have removed owner bits


@contextlib.contextmanager
def _exclusive_lock(directory: Path) -> Iterator[None]:
    """Serialize dev-certificate generation between processes (best effort on Windows)."""
    if sys.platform == "win32":
        yield
        return
    try:
        fd = os.open(directory / _DEV_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _KEY_MODE)
    except OSError:
        # Read-only cache directory or similar: atomic writes still keep each file whole.
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _reuse_problem(
    cert_path: Path, key_path: Path, hostnames: Sequence[str], min_validity: dt.timedelta
) -> str | None:
    """Why the cached pair cannot be reused, or None when it can."""
    if not cert_path.exists() or not key_path.exists():
        return "not created yet"
    try:
        if is_group_or_world_readable(key_path):
            return "the cached key is readable by other users"
        check_key_pair(cert_path, key_path)
        cert = load_certificate(cert_path)
    except CertificateError as exc:
        return str(exc)
    now = _now()
    if cert.not_valid_before_utc > now + _CLOCK_SKEW:
        return "the cached certificate is not valid yet"
    if cert.not_valid_after_utc - now < min_validity:
        return "the cached certificate expires soon or has expired"
    wanted = {_host_key(entry) for entry in _san_entries(hostnames)}
    present = {_host_key(entry) for entry in _sans(cert)}
    if not wanted <= present:
        return "the cached certificate does not cover every requested hostname"
    return None


def dev_certificate(
    cache_dir: StrPath | None = None,
    *,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    key_type: KeyType = "ec-p256",
    days: int = 365,
    min_validity: dt.timedelta = dt.timedelta(days=1),
) -> tuple[Path, Path, bool]:
    """Return ``(cert, key, created)`` for a per-user cached self-signed development certificate.

    The pair lives in ``cache_dir`` (default :func:`default_cache_dir`, created ``0700``) as
    ``dev-cert.pem`` / ``dev-key.pem``. It is reused when both files load, match, cover
    ``hostnames``, the key is private to its owner and the certificate stays valid for at least
    ``min_validity``; otherwise a new pair is generated and ``created`` is True. Concurrent
    callers are serialized with a lock file, and each file is replaced atomically.
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    _san_entries(hostnames)  # validate before touching the filesystem
    _ensure_private_dir(directory)
    cert_path, key_path = directory / _DEV_CERT_NAME, directory / _DEV_KEY_NAME
    with _exclusive_lock(directory):
        problem = _reuse_problem(cert_path, key_path, hostnames, min_validity)
        if problem is None:
            _log.debug("reusing development certificate %s", cert_path)
            return cert_path, key_path, False
        _log.info("generating development certificate in %s: %s", directory, problem)
        create_self_signed_cert(
            cert_path,
            key_path,
            hostnames=hostnames,
            common_name=_DEV_COMMON_NAME,
            key_type=key_type,
            days=days,
        )
        _log.info(
            "development certificate %s (SHA-256 %s); trust it with cafile=%s",
            cert_path,
            fingerprint(cert_path),
            cert_path,
        )
    return cert_path, key_path, True
