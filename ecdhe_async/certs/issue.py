"""Generating keys and certificates: self-signed server certificates and a development CA.

* :func:`create_self_signed_cert` writes a self-signed TLS server certificate (usable for both
  ends of a development connection) whose certificate file is also its own trust anchor:
  ``ssl.create_default_context(cafile=cert_file)`` verifies it for every requested hostname.
* :class:`DevCA` is a throw-away certificate authority for mutual TLS: it issues server and
  client certificates that verify against :attr:`DevCA.cert_pem`.
"""

from __future__ import annotations

__all__ = ["DevCA", "create_self_signed_cert", "generate_private_key"]

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import CertificateError
from ._util import (
    _CLOCK_SKEW,
    DEFAULT_HOSTNAMES,
    KeyType,
    PasswordLike,
    PrivateKey,
    StrPath,
    _check_days,
    _check_key_type,
    _default_common_name,
    _name,
    _now,
    _password_bytes,
    _public_der,
    _san_entries,
)
from .files import _distinct_paths, _refuse_existing, _write_pair
from .loading import _is_ca, fingerprint, load_certificate, load_private_key

_CA_DAYS = 3650
_SignatureHash: TypeAlias = hashes.SHA256 | hashes.SHA384 | hashes.SHA512


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
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Create a self-signed TLS server certificate and its private key; return both paths.

    Hostnames that parse as IP addresses become IPAddress SANs, the others DNSName SANs. The
    certificate is an end-entity certificate (``CA:FALSE``; serverAuth and clientAuth) that
    OpenSSL accepts as its own trust anchor, so a client using
    ``ssl.create_default_context(cafile=cert_file)`` verifies it for each hostname. The key
    file is written ``0600`` (encrypted PKCS#8 when ``key_password`` is given), the certificate
    ``0644``, both atomically. When either file exists, :class:`CertificateExistsError` is
    raised before anything is generated or written, unless ``overwrite`` is true.
    """
    sans = _san_entries(hostnames)
    return _issue_pair(
        cert_file,
        key_file,
        common_name=common_name or _default_common_name(sans, "ecdhe_async self-signed"),
        sans=sans,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        server=True,
        key_type=key_type,
        days=days,
        key_password=key_password,
        overwrite=overwrite,
        issuer=None,
    )


def _issue_pair(
    cert_file: StrPath,
    key_file: StrPath,
    *,
    common_name: str,
    sans: Sequence[x509.GeneralName],
    usages: Sequence[x509.ObjectIdentifier],
    server: bool,
    key_type: KeyType,
    days: int,
    key_password: PasswordLike | None,
    overwrite: bool,
    issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None,
) -> tuple[Path, Path]:
    """Check every argument and both paths, then generate a key, sign its leaf, write the pair.

    Without an ``issuer`` (CA certificate, CA key) the leaf signs itself.
    """
    cert_path, key_path = _distinct_paths(cert_file, key_file)
    _refuse_existing((key_path, cert_path), overwrite=overwrite)
    _check_key_type(key_type)
    _check_days(days)
    _password_bytes(key_password)  # fail on a bad password before generating anything
    subject = _name(common_name)
    key = generate_private_key(key_type)
    cert = _sign_leaf(
        subject=subject,
        public_key=key,
        sans=sans,
        usages=usages,
        server=server,
        days=days,
        issuer_key=key if issuer is None else issuer[1],
        issuer_cert=None if issuer is None else issuer[0],
    )
    return _write_pair(cert_path, cert, key_path, key, key_password, overwrite=overwrite)


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
        self,
        cert_file: StrPath,
        key_file: StrPath,
        password: PasswordLike | None = None,
        *,
        overwrite: bool = False,
    ) -> tuple[Path, Path]:
        """Write the CA certificate (``0644``) and private key (``0600``) atomically.

        Refuses (:class:`CertificateExistsError`, nothing written) when either file exists,
        unless ``overwrite`` is true: a replaced CA key orphans every certificate it issued.
        """
        cert_path, key_path = _distinct_paths(cert_file, key_file)
        return _write_pair(
            cert_path, self._cert, key_path, self._key, password, overwrite=overwrite
        )

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
        overwrite: bool = False,
    ) -> tuple[Path, Path]:
        """Issue a server certificate (EKU serverAuth) for ``hostnames``; return both paths.

        Existing files are refused (:class:`CertificateExistsError`) unless ``overwrite``.
        """
        sans = _san_entries(hostnames)
        return _issue_pair(
            cert_file,
            key_file,
            common_name=common_name or _default_common_name(sans, "ecdhe_async server"),
            sans=sans,
            usages=[ExtendedKeyUsageOID.SERVER_AUTH],
            server=True,
            key_type=key_type,
            days=days,
            key_password=key_password,
            overwrite=overwrite,
            issuer=(self._cert, self._key),
        )

    def issue_client_cert(
        self,
        cert_file: StrPath,
        key_file: StrPath,
        *,
        common_name: str = "ecdhe_async dev client",
        hostnames: Sequence[str] = (),
        key_type: KeyType = "ec-p256",
        days: int = 365,
        key_password: PasswordLike | None = None,
        overwrite: bool = False,
    ) -> tuple[Path, Path]:
        """Issue a client certificate (EKU clientAuth) named ``common_name``; return both paths.

        ``hostnames``, when given, become subject alternative names (DNSName or IPAddress) for
        servers that authorize clients by name; by default the certificate has no SAN.
        Existing files are refused (:class:`CertificateExistsError`) unless ``overwrite``.
        """
        return _issue_pair(
            cert_file,
            key_file,
            common_name=common_name,
            sans=_san_entries(hostnames, required=False),
            usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
            server=False,
            key_type=key_type,
            days=days,
            key_password=key_password,
            overwrite=overwrite,
            issuer=(self._cert, self._key),
        )

    def __repr__(self) -> str:
        """Subject and fingerprint only: never key material."""
        return (
            f"DevCA(subject={self._cert.subject.rfc4514_string()!r}, "
            f"fingerprint={self.fingerprint!r})"
        )
