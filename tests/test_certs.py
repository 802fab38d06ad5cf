"""Tests for ecdhe_async.certs: real files in tmp_path and real TLS handshakes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import re
import shutil
import ssl
import stat
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from ecdhe_async.certs import (
    KEY_TYPES,
    CertificateExistsError,
    CertInfo,
    DevCA,
    KeyType,
    check_key_pair,
    create_self_signed_cert,
    default_cache_dir,
    describe_certificate,
    dev_certificate,
    files,
    fingerprint,
    generate_private_key,
    is_group_or_world_readable,
    is_world_readable,
    load_certificate,
    load_certificates,
    load_private_key,
    write_certificate,
    write_private_key,
)
from ecdhe_async.errors import CertificateError

OPENSSL = shutil.which("openssl")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _server_ctx(
    cert: Path, key: Path, *, password: str | None = None, client_ca: bytes | None = None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key, password=password)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca.decode("ascii"))
    return ctx


def _client_ctx(
    *,
    cafile: Path | None = None,
    cadata: bytes | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    strict_flags: bool = False,
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(
        cafile=cafile, cadata=None if cadata is None else cadata.decode("ascii")
    )
    if strict_flags:  # the defaults of Python >= 3.13
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def _handshake(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, server_hostname: str
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Drive a full TLS handshake between two SSLObjects over memory BIOs, then echo data."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    pending = {"client": True, "server": True}
    for _ in range(20):
        for name, obj, out, peer_in in (
            ("client", client, c_out, s_in),
            ("server", server, s_out, c_in),
        ):
            if pending[name]:
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                else:
                    pending[name] = False
            data = out.read()
            if data:
                peer_in.write(data)
        if not any(pending.values()):
            break
    assert not any(pending.values()), "handshake did not finish"
    # Application data both ways (also surfaces TLS 1.3 post-handshake client-cert alerts).
    client.write(b"ping")
    s_in.write(c_out.read())
    assert server.read(4) == b"ping"
    server.write(b"pong")
    c_in.write(s_out.read())
    assert client.read(4) == b"pong"
    return client, server


def _ext(
    cert: x509.Certificate, cls: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("self_signed")
    return create_self_signed_cert(directory / "server.crt", directory / "server.key")


@pytest.fixture(scope="module")
def dev_ca() -> DevCA:
    return DevCA.create()


# --------------------------------------------------------------------------------------------
# self-signed certificates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "description", "hash_name"),
    [
        ("ec-p256", "ECDSA P-256", "sha256"),
        ("ec-p384", "ECDSA P-384", "sha384"),
        ("rsa2048", "RSA 2048", "sha256"),
        ("rsa3072", "RSA 3072", "sha256"),
    ],
)
def test_self_signed_each_key_type(
    tmp_path: Path, key_type: KeyType, description: str, hash_name: str
) -> None:
    cert_path, key_path = create_self_signed_cert(
        tmp_path / "server.crt", tmp_path / "server.key", key_type=key_type
    )
    assert (cert_path, key_path) == (tmp_path / "server.crt", tmp_path / "server.key")
    cert = load_certificate(cert_path)
    key = load_private_key(key_path)
    is_rsa = key_type.startswith("rsa")
    assert isinstance(key, rsa.RSAPrivateKey if is_rsa else ec.EllipticCurvePrivateKey)
    assert describe_certificate(cert).key_type == description
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == hash_name
    check_key_pair(cert_path, key_path)

    basic = _ext(cert, x509.BasicConstraints)
    assert basic.critical
    assert isinstance(basic.value, x509.BasicConstraints)
    assert basic.value.ca is False
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert isinstance(usage.value, x509.KeyUsage)
    assert usage.value.digital_signature
    assert usage.value.key_encipherment is is_rsa
    assert not usage.value.key_cert_sign
    eku = _ext(cert, x509.ExtendedKeyUsage).value
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert ExtendedKeyUsageOID.SERVER_AUTH in list(eku)
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert isinstance(ski, x509.SubjectKeyIdentifier)
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest

    sans = _ext(cert, x509.SubjectAlternativeName).value
    assert isinstance(sans, x509.SubjectAlternativeName)
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    assert cert.issuer == cert.subject

    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(minutes=2) < cert.not_valid_before_utc < now
    assert cert.not_valid_after_utc - now > dt.timedelta(days=364)
    assert cert.serial_number > 0

    _handshake(_client_ctx(cafile=cert_path), _server_ctx(cert_path, key_path), "localhost")


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1"])
@pytest.mark.parametrize("strict_flags", [False, True], ids=["default-flags", "strict-partial"])
def test_self_signed_verifies_for_default_hostnames(
    self_signed: tuple[Path, Path], hostname: str, strict_flags: bool
) -> None:
    cert_path, key_path = self_signed
    client_ctx = _client_ctx(cafile=cert_path, strict_flags=strict_flags)
    assert client_ctx.check_hostname
    client, _ = _handshake(client_ctx, _server_ctx(cert_path, key_path), hostname)
    peer = client.getpeercert(binary_form=True)
    assert peer is not None
    assert fingerprint(x509.load_der_x509_certificate(peer)) == fingerprint(cert_path)


@pytest.mark.parametrize("hostname", ["example.com", "127.0.0.2", "::2", "localhost.localdomain"])
def test_self_signed_fails_for_other_hostname(
    self_signed: tuple[Path, Path], hostname: str
) -> None:
    cert_path, key_path = self_signed
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(_client_ctx(cafile=cert_path), _server_ctx(cert_path, key_path), hostname)


def test_self_signed_is_not_trusted_without_cafile(self_signed: tuple[Path, Path]) -> None:
    cert_path, key_path = self_signed
    other_dir = cert_path.parent / "other"
    other_dir.mkdir()
    other_cert, _ = create_self_signed_cert(other_dir / "c.pem", other_dir / "k.pem")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(_client_ctx(cafile=other_cert), _server_ctx(cert_path, key_path), "localhost")


@pytest.mark.asyncio
async def test_self_signed_over_loopback_socket(self_signed: tuple[Path, Path]) -> None:
    cert_path, key_path = self_signed

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=_server_ctx(cert_path, key_path))
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=_client_ctx(cafile=cert_path)
        )
        try:
            writer.write(b"hello\n")
            await writer.drain()
            assert await reader.readline() == b"hello\n"
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


def test_custom_hostnames_and_common_name(tmp_path: Path) -> None:
    cert_path, key_path = create_self_signed_cert(
        tmp_path / "c.pem",
        tmp_path / "k.pem",
        hostnames=["API.test", "10.0.0.1", "bücher.example", "[fe80::1]", "*.svc.test", "api.test"],
        common_name="my service",
        days=7,
    )
    info = describe_certificate(cert_path)
    assert info.sans == (
        "DNS:api.test",
        "IP:10.0.0.1",
        "DNS:xn--bcher-kva.example",
        "IP:fe80::1",
        "DNS:*.svc.test",
    )
    assert info.subject == "CN=my service"
    assert (
        dt.timedelta(days=6) < info.not_after - info.not_before <= dt.timedelta(days=7, minutes=1)
    )
    server_ctx = _server_ctx(cert_path, key_path)
    _handshake(_client_ctx(cafile=cert_path), server_ctx, "a.svc.test")
    _handshake(_client_ctx(cafile=cert_path), server_ctx, "10.0.0.1")


def test_single_string_hostname_is_one_name(tmp_path: Path) -> None:
    cert_path, _ = create_self_signed_cert(tmp_path / "c", tmp_path / "k", hostnames="svc.test")
    assert describe_certificate(cert_path).sans == ("DNS:svc.test",)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"hostnames": []}, "at least one hostname"),
        ({"hostnames": ["bad host"]}, "invalid hostname"),
        ({"hostnames": ["a..b"]}, "invalid hostname"),
        ({"key_type": "dsa1024"}, "unknown key type 'dsa1024'"),
        ({"days": 0}, "positive number of days"),
        ({"common_name": "x" * 65}, "common name"),
        ({"key_password": ""}, "password is empty"),
        ({"key_password": 1234}, "must be str, bytes"),
    ],
)
def test_create_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(CertificateError, match=fragment):
        create_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_create_rejects_same_file_for_cert_and_key(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="different files"):
        create_self_signed_cert(tmp_path / "both.pem", tmp_path / "both.pem")


def test_create_in_missing_directory_is_a_certificate_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="cannot write"):
        create_self_signed_cert(tmp_path / "nope" / "c.pem", tmp_path / "nope" / "k.pem")


# --------------------------------------------------------------------------------------------
# file modes and atomic writes
# --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("umask0")
def test_key_mode_is_0600_and_cert_0644_with_umask_0(tmp_path: Path) -> None:
    cert_path, key_path = create_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem")
    assert _mode(key_path) == 0o600
    assert _mode(cert_path) == 0o644
    assert not is_world_readable(key_path)
    assert not is_group_or_world_readable(key_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pem", "k.pem"]


def test_modes_are_exact_with_a_strict_umask(tmp_path: Path) -> None:
    old = os.umask(0o377)  # would even remove the owner's write bit
    try:
        cert_path, key_path = create_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem")
    finally:
        os.umask(old)
    assert _mode(key_path) == 0o600
    assert _mode(cert_path) == 0o644


@pytest.mark.usefixtures("umask0")
def test_key_file_never_has_other_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file is born via O_CREAT|O_EXCL with its final mode and renamed into place."""
    key_path = tmp_path / "k.pem"
    key_path.write_bytes(b"old world-readable junk")
    key_path.chmod(0o644)
    opened: list[tuple[str, int, int]] = []
    replaced: list[tuple[str, str, int]] = []
    real_open, real_replace = os.open, os.replace

    def spy_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777, **kw: int) -> int:
        opened.append((os.fspath(path), flags, mode))
        fd = real_open(path, flags, mode, **kw)
        if flags & os.O_CREAT:
            # Right after creation, before any byte is written.
            assert stat.S_IMODE(os.fstat(fd).st_mode) == mode
        return fd

    def spy_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        replaced.append((os.fspath(src), os.fspath(dst), _mode(Path(src))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "replace", spy_replace)
    create_self_signed_cert(tmp_path / "c.pem", key_path, overwrite=True)
    monkeypatch.undo()

    creates = [(p, f, m) for p, f, m in opened if f & os.O_CREAT]
    assert len(creates) == 2
    for path, flags, mode in creates:
        assert flags & os.O_EXCL
        assert Path(path).parent == tmp_path
        assert Path(path).name.startswith(".")
        assert path.endswith(".tmp")
        assert mode == (0o600 if ".k.pem." in path else 0o644)
    assert [(Path(dst).name, mode) for _, dst, mode in replaced] == [
        ("k.pem", 0o600),
        ("c.pem", 0o644),
    ]
    assert _mode(key_path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pem", "k.pem"]


def test_failed_write_leaves_old_files_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_path, key_path = create_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem")
    before = (cert_path.read_bytes(), key_path.read_bytes())

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CertificateError, match=r"cannot write .*No space left"):
        create_self_signed_cert(cert_path, key_path, overwrite=True)
    monkeypatch.undo()
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pem", "k.pem"]


def test_write_private_key_and_certificate_helpers(tmp_path: Path) -> None:
    key = generate_private_key("ec-p384")
    key_path = write_private_key(tmp_path / "key.pem", key, password=b"s3cret")
    assert key_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert _mode(key_path) == 0o600
    loaded = load_private_key(key_path, b"s3cret")
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()

    ca = DevCA.create()
    chain_path = write_certificate(tmp_path / "chain.pem", [ca.cert, ca.cert])
    assert _mode(chain_path) == 0o644
    assert len(load_certificates(chain_path)) == 2


def test_is_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    path.chmod(0o600)
    assert not is_world_readable(path)
    assert not is_group_or_world_readable(path)
    path.chmod(0o640)
    assert not is_world_readable(path)
    assert is_group_or_world_readable(path)
    path.chmod(0o604)
    assert is_world_readable(path)
    assert is_group_or_world_readable(path)
    with pytest.raises(CertificateError, match="not found"):
        is_world_readable(tmp_path / "missing")


# --------------------------------------------------------------------------------------------
# encrypted keys and loading errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["correct horse", b"correct horse", SecretStr("correct horse")], ids=type
)
def test_encrypted_key_round_trip(tmp_path: Path, password: str | bytes | SecretStr) -> None:
    cert_path, key_path = create_self_signed_cert(
        tmp_path / "c.pem", tmp_path / "k.pem", key_password=password
    )
    data = key_path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"correct horse" not in data
    key = load_private_key(key_path, password)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    check_key_pair(cert_path, key_path, password=password)
    # The standard library accepts the same file and password.
    server_ctx = _server_ctx(cert_path, key_path, password="correct horse")
    _handshake(_client_ctx(cafile=cert_path), server_ctx, "localhost")


def test_load_private_key_error_messages(tmp_path: Path) -> None:
    cert_path, plain_key = create_self_signed_cert(tmp_path / "c.pem", tmp_path / "plain.pem")
    _, enc_key = create_self_signed_cert(
        tmp_path / "c2.pem", tmp_path / "enc.pem", key_password="right"
    )
    missing = tmp_path / "missing.pem"
    with pytest.raises(CertificateError, match=re.escape(f"key file '{missing}' not found")):
        load_private_key(missing)
    with pytest.raises(
        CertificateError,
        match=re.escape(f"key file '{enc_key}' is encrypted: a password is required"),
    ):
        load_private_key(enc_key)
    with pytest.raises(
        CertificateError, match=re.escape(f"wrong password for key file '{enc_key}'")
    ) as info:
        load_private_key(enc_key, "wrong-one")
    assert "wrong-one" not in str(info.value)
    assert info.value.__cause__ is None  # no cryptography internals chained
    with pytest.raises(CertificateError, match="is not encrypted, but a password was given"):
        load_private_key(plain_key, "unneeded")
    with pytest.raises(
        CertificateError, match=r"does not contain a PEM private key \(found: CERTIFICATE\)"
    ):
        load_private_key(cert_path)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"hello world\n")
    with pytest.raises(
        CertificateError,
        match=re.escape(f"key file '{junk}' does not contain a PEM private key") + "$",
    ):
        load_private_key(junk)
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CertificateError, match="does not contain a valid private key"):
        load_private_key(corrupt)
    with pytest.raises(CertificateError, match="is a directory"):
        load_private_key(tmp_path)


def test_load_private_key_from_combined_file_and_traditional_format(tmp_path: Path) -> None:
    cert_path, key_path = create_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem")
    combined = tmp_path / "combined.pem"
    combined.write_bytes(cert_path.read_bytes() + key_path.read_bytes())
    check_key_pair(combined, combined)
    key = load_private_key(key_path)
    legacy = tmp_path / "legacy.pem"
    legacy.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(CertificateError, match="is encrypted: a password is required"):
        load_private_key(legacy)
    with pytest.raises(CertificateError, match="wrong password"):
        load_private_key(legacy, "nope")
    check_key_pair(cert_path, legacy, password="pw")


def test_unreadable_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, key_path = create_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem")
    if IS_ROOT or os.name == "nt":  # chmod 0 does not stop root: simulate EACCES instead

        def denied(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", denied)
    else:
        key_path.chmod(0)
    with pytest.raises(CertificateError, match="is not readable: permission denied"):
        load_private_key(key_path)


def test_check_key_pair_mismatch(tmp_path: Path) -> None:
    cert_a, key_a = create_self_signed_cert(tmp_path / "a.crt", tmp_path / "a.key")
    _, key_b = create_self_signed_cert(tmp_path / "b.crt", tmp_path / "b.key", key_type="rsa2048")
    check_key_pair(cert_a, key_a)
    with pytest.raises(
        CertificateError,
        match=re.escape(f"private key in '{key_b}' does not match the certificate in '{cert_a}'"),
    ):
        check_key_pair(cert_a, key_b)


def test_load_certificate_variants_and_errors(tmp_path: Path, dev_ca: DevCA) -> None:
    cert_path, key_path = dev_ca.issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(cert_path.read_bytes() + dev_ca.cert_pem)
    assert load_certificate(chain) == load_certificate(cert_path)
    assert [c.subject for c in load_certificates(chain)][1] == dev_ca.cert.subject
    der = tmp_path / "s.der"
    der.write_bytes(load_certificate(cert_path).public_bytes(serialization.Encoding.DER))
    assert load_certificate(der) == load_certificate(cert_path)
    with pytest.raises(CertificateError, match=r"certificate file '.*' not found"):
        load_certificate(tmp_path / "nope.crt")
    with pytest.raises(CertificateError, match="does not contain a valid certificate"):
        load_certificate(key_path)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01junk")
    with pytest.raises(CertificateError, match="does not contain a valid certificate"):
        load_certificate(junk)


# --------------------------------------------------------------------------------------------
# fingerprints and descriptions
# --------------------------------------------------------------------------------------------


def test_fingerprint_matches_openssl(self_signed: tuple[Path, Path]) -> None:
    cert_path, _ = self_signed
    assert OPENSSL is not None, "openssl binary is required (apt-get install -y openssl)"
    out = subprocess.run(
        [OPENSSL, "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # e.g. "SHA256 Fingerprint=AB:CD:..." (the prefix's case varies between versions)
    assert out.split("=", 1)[1] == fingerprint(cert_path)
    assert fingerprint(load_certificate(cert_path)) == fingerprint(cert_path)
    parts = fingerprint(cert_path).split(":")
    assert len(parts) == 32
    assert all(len(p) == 2 and p == p.upper() for p in parts)


def test_openssl_verifies_purposes_strictly(tmp_path: Path, dev_ca: DevCA) -> None:
    assert OPENSSL is not None, "openssl binary is required (apt-get install -y openssl)"
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(dev_ca.cert_pem)
    server_crt, _ = dev_ca.issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")
    client_crt, _ = dev_ca.issue_client_cert(tmp_path / "c.crt", tmp_path / "c.key")
    self_crt, _ = create_self_signed_cert(tmp_path / "ss.crt", tmp_path / "ss.key")

    def verify(ca: Path, cert: Path, purpose: str) -> subprocess.CompletedProcess[str]:
        cmd = [OPENSSL or "openssl", "verify", "-x509_strict", "-purpose", purpose]
        return subprocess.run(
            [*cmd, "-CAfile", str(ca), str(cert)], capture_output=True, text=True, check=False
        )

    assert verify(ca_file, server_crt, "sslserver").returncode == 0
    assert verify(ca_file, client_crt, "sslclient").returncode == 0
    assert verify(self_crt, self_crt, "sslserver").returncode == 0
    assert verify(ca_file, client_crt, "sslserver").returncode != 0
    assert verify(ca_file, server_crt, "sslclient").returncode != 0


def test_describe_certificate(tmp_path: Path, dev_ca: DevCA) -> None:
    cert_path, _ = dev_ca.issue_server_cert(
        tmp_path / "s.crt",
        tmp_path / "s.key",
        hostnames=["svc.test", "192.0.2.7"],
        key_type="rsa2048",
    )
    info = describe_certificate(cert_path)
    assert isinstance(info, CertInfo)
    assert info.subject == "CN=svc.test"
    assert info.issuer == "CN=ecdhe_async dev CA"
    assert info.sans == ("DNS:svc.test", "IP:192.0.2.7")
    assert info.key_type == "RSA 2048"
    assert info.fingerprint == fingerprint(cert_path)
    assert not info.is_ca
    assert not info.self_signed
    assert info.not_before.tzinfo is not None
    assert info.not_before < info.not_after
    ca_info = describe_certificate(dev_ca.cert)
    assert ca_info.is_ca
    assert ca_info.self_signed
    as_dict = info.as_dict()
    assert as_dict["sans"] == "DNS:svc.test, IP:192.0.2.7"
    assert as_dict["is_ca"] == "false"
    assert all(isinstance(v, str) for v in as_dict.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.subject = "CN=other"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# development CA and mutual TLS
# --------------------------------------------------------------------------------------------


def test_dev_ca_extensions(tmp_path: Path, dev_ca: DevCA) -> None:
    ca = dev_ca.cert
    basic = _ext(ca, x509.BasicConstraints)
    assert basic.critical
    assert isinstance(basic.value, x509.BasicConstraints)
    assert basic.value.ca is True
    assert basic.value.path_length == 0
    usage = _ext(ca, x509.KeyUsage)
    assert usage.critical
    assert isinstance(usage.value, x509.KeyUsage)
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    ca_ski = _ext(ca, x509.SubjectKeyIdentifier).value
    assert isinstance(ca_ski, x509.SubjectKeyIdentifier)

    client_crt, _ = dev_ca.issue_client_cert(
        tmp_path / "c.crt", tmp_path / "c.key", common_name="alice"
    )
    server_crt, _ = dev_ca.issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")
    for path, oid in (
        (client_crt, ExtendedKeyUsageOID.CLIENT_AUTH),
        (server_crt, ExtendedKeyUsageOID.SERVER_AUTH),
    ):
        leaf = load_certificate(path)
        eku = _ext(leaf, x509.ExtendedKeyUsage).value
        assert isinstance(eku, x509.ExtendedKeyUsage)
        assert list(eku) == [oid]
        akid = _ext(leaf, x509.AuthorityKeyIdentifier).value
        assert isinstance(akid, x509.AuthorityKeyIdentifier)
        assert akid.key_identifier == ca_ski.digest
        assert leaf.issuer == ca.subject
        leaf.verify_directly_issued_by(ca)
        assert leaf.not_valid_after_utc <= ca.not_valid_after_utc
    client = load_certificate(client_crt)
    assert client.subject.rfc4514_string() == "CN=alice"
    assert _mode(tmp_path / "c.key") == 0o600


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_dev_ca_mtls_handshake(tmp_path: Path, key_type: KeyType) -> None:
    ca = DevCA.create(key_type=key_type, days=30)
    server_crt, server_key = ca.issue_server_cert(
        tmp_path / "s.crt", tmp_path / "s.key", key_type=key_type
    )
    client_crt, client_key = ca.issue_client_cert(
        tmp_path / "c.crt", tmp_path / "c.key", common_name="client-1", key_type=key_type
    )
    server_ctx = _server_ctx(server_crt, server_key, client_ca=ca.cert_pem)
    client_ctx = _client_ctx(cadata=ca.cert_pem, cert=client_crt, key=client_key)
    for hostname in ("localhost", "127.0.0.1", "::1"):
        _, server = _handshake(client_ctx, server_ctx, hostname)
        peer = server.getpeercert()
        assert peer is not None
        assert peer["subject"] == ((("commonName", "client-1"),),)


def test_mtls_rejects_client_cert_from_another_ca(tmp_path: Path, dev_ca: DevCA) -> None:
    other = DevCA.create()  # same subject name, different key
    server_crt, server_key = dev_ca.issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")
    client_crt, client_key = other.issue_client_cert(tmp_path / "c.crt", tmp_path / "c.key")
    server_ctx = _server_ctx(server_crt, server_key, client_ca=dev_ca.cert_pem)
    client_ctx = _client_ctx(cadata=dev_ca.cert_pem, cert=client_crt, key=client_key)
    with pytest.raises(ssl.SSLError, match="certificate"):
        _handshake(client_ctx, server_ctx, "localhost")


def test_mtls_rejects_missing_client_cert(tmp_path: Path, dev_ca: DevCA) -> None:
    server_crt, server_key = dev_ca.issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")
    server_ctx = _server_ctx(server_crt, server_key, client_ca=dev_ca.cert_pem)
    with pytest.raises(ssl.SSLError, match="CERTIFICATE"):
        _handshake(_client_ctx(cadata=dev_ca.cert_pem), server_ctx, "localhost")


def test_client_rejects_server_cert_from_another_ca(tmp_path: Path, dev_ca: DevCA) -> None:
    other = DevCA.create()
    server_crt, server_key = other.issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(
            _client_ctx(cadata=dev_ca.cert_pem), _server_ctx(server_crt, server_key), "localhost"
        )


def test_client_cert_cannot_serve(tmp_path: Path, dev_ca: DevCA) -> None:
    client_crt, client_key = dev_ca.issue_client_cert(tmp_path / "c.crt", tmp_path / "c.key")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(
            _client_ctx(cadata=dev_ca.cert_pem), _server_ctx(client_crt, client_key), "localhost"
        )


def test_dev_ca_save_and_load(tmp_path: Path, dev_ca: DevCA) -> None:
    cert_path, key_path = dev_ca.save(tmp_path / "ca.crt", tmp_path / "ca.key", password="pw")
    assert _mode(key_path) == 0o600
    assert _mode(cert_path) == 0o644
    assert key_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = DevCA.load(cert_path, key_path, password=SecretStr("pw"))
    assert loaded.cert_pem == dev_ca.cert_pem
    assert loaded.fingerprint == dev_ca.fingerprint == fingerprint(cert_path)
    # A leaf issued by the reloaded CA verifies against the original.
    server_crt, server_key = loaded.issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")
    _handshake(
        _client_ctx(cadata=dev_ca.cert_pem), _server_ctx(server_crt, server_key), "localhost"
    )

    with pytest.raises(CertificateError, match="is encrypted: a password is required"):
        DevCA.load(cert_path, key_path)
    with pytest.raises(CertificateError, match="does not match the certificate"):
        DevCA.load(cert_path, server_key)
    with pytest.raises(CertificateError, match="is not a CA certificate"):
        DevCA.load(server_crt, server_key)


def test_dev_ca_repr_has_no_secrets(dev_ca: DevCA) -> None:
    text = repr(dev_ca)
    assert text.startswith("DevCA(subject='CN=ecdhe_async dev CA', fingerprint='")
    assert "PRIVATE" not in text
    assert not hasattr(dev_ca, "__dict__")


def test_dev_ca_rejects_expired_ca(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=10))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateError, match="expired"):
        DevCA(cert, key).issue_server_cert(tmp_path / "s.crt", tmp_path / "s.key")


# --------------------------------------------------------------------------------------------
# cached development certificate
# --------------------------------------------------------------------------------------------


def _write_expired_cert(cert_path: Path, key_path: Path) -> None:
    key = load_private_key(key_path)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    old = load_certificate(cert_path)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(
            old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, False
        )
        .sign(key, hashes.SHA256())
    )
    write_certificate(cert_path, cert, overwrite=True)


def test_dev_certificate_creates_then_reuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache" / "ecdhe_async"
    with caplog.at_level(logging.DEBUG, logger="ecdhe_async.certs"):
        cert_path, key_path, created = dev_certificate(cache)
    assert created
    assert (cert_path, key_path) == (cache / "dev-cert.pem", cache / "dev-key.pem")
    assert _mode(cache) == 0o700
    assert _mode(key_path) == 0o600
    check_key_pair(cert_path, key_path)
    first = fingerprint(cert_path)
    assert first in caplog.text
    assert "PRIVATE KEY" not in caplog.text

    again = dev_certificate(cache)
    assert again == (cert_path, key_path, False)
    assert fingerprint(cert_path) == first
    # A subset of the cached hostnames is still served by the same certificate.
    assert dev_certificate(cache, hostnames=["localhost"])[2] is False
    _handshake(_client_ctx(cafile=cert_path), _server_ctx(cert_path, key_path), "127.0.0.1")


def test_dev_certificate_default_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ecdhe_async"
    cert_path, _, created = dev_certificate()
    assert created
    assert cert_path.parent == tmp_path / "xdg" / "ecdhe_async"
    assert _mode(cert_path.parent) == 0o700

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ecdhe_async"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ecdhe_async"


@pytest.mark.parametrize(
    "damage",
    ["expired", "garbage-cert", "missing-key", "other-key", "readable-key", "new-hostname"],
)
def test_dev_certificate_regenerates(tmp_path: Path, damage: str) -> None:
    cert_path, key_path, created = dev_certificate(tmp_path)
    assert created
    first = fingerprint(cert_path)
    hostnames: list[str] = ["localhost", "127.0.0.1", "::1"]
    if damage == "expired":
        _write_expired_cert(cert_path, key_path)
    elif damage == "garbage-cert":
        cert_path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    elif damage == "missing-key":
        key_path.unlink()
    elif damage == "other-key":
        write_private_key(key_path, generate_private_key(), overwrite=True)
    elif damage == "readable-key":
        key_path.chmod(0o644)
    else:
        hostnames.append("dev.test")
    cert_path2, key_path2, created2 = dev_certificate(tmp_path, hostnames=hostnames)
    assert created2
    assert (cert_path2, key_path2) == (cert_path, key_path)
    assert fingerprint(cert_path) != first
    check_key_pair(cert_path, key_path)
    assert _mode(key_path) == 0o600
    assert dev_certificate(tmp_path, hostnames=hostnames)[2] is False
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == [".dev-cert.lock", "dev-cert.pem", "dev-key.pem"]


def test_dev_certificate_regenerates_when_validity_too_short(tmp_path: Path) -> None:
    cert_path, _, _ = dev_certificate(tmp_path, days=30)
    first = fingerprint(cert_path)
    assert dev_certificate(tmp_path, min_validity=dt.timedelta(days=29))[2] is False
    # Less than the required validity is left: regenerate (with the default 365 days).
    assert dev_certificate(tmp_path, min_validity=dt.timedelta(days=31))[2] is True
    assert fingerprint(cert_path) != first
    assert describe_certificate(cert_path).not_after > dt.datetime.now(dt.UTC) + dt.timedelta(
        days=364
    )
    assert dev_certificate(tmp_path)[2] is False


def test_dev_certificate_concurrent_callers_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: dev_certificate(tmp_path), range(8)))
    assert sum(created for _, _, created in results) == 1
    cert_path, key_path, _ = results[0]
    check_key_pair(cert_path, key_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".dev-cert.lock",
        "dev-cert.pem",
        "dev-key.pem",
    ]


def test_dev_certificate_rejects_a_file_as_cache_dir(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    with pytest.raises(CertificateError, match="is not a directory"):
        dev_certificate(not_a_dir)


# --------------------------------------------------------------------------------------------
# never overwrite without being asked (issue 11, point 4)
# --------------------------------------------------------------------------------------------


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("existing", ["cert", "key", "both"])
@pytest.mark.parametrize("writer", ["self-signed", "ca-save", "server", "client"])
def test_every_pair_writer_refuses_existing_files_and_writes_nothing(
    tmp_path: Path, dev_ca: DevCA, writer: str, existing: str
) -> None:
    cert_path, key_path = tmp_path / "x.crt", tmp_path / "x.key"
    if existing in ("cert", "both"):
        cert_path.write_bytes(b"precious certificate")
    if existing in ("key", "both"):
        key_path.write_bytes(b"precious key")
    before = _snapshot(tmp_path)
    first = key_path if existing != "cert" else cert_path  # the key is checked first
    writers: dict[str, Callable[[Path, Path], tuple[Path, Path]]] = {
        "self-signed": create_self_signed_cert,
        "ca-save": dev_ca.save,
        "server": dev_ca.issue_server_cert,
        "client": dev_ca.issue_client_cert,
    }
    with pytest.raises(CertificateExistsError) as info:
        writers[writer](cert_path, key_path)
    assert info.value.path == first
    assert str(first) in str(info.value)
    assert isinstance(info.value, CertificateError)
    # Nothing written, nothing half-written, no temporary file left behind.
    assert _snapshot(tmp_path) == before


def test_overwrite_true_replaces_a_pair(tmp_path: Path, dev_ca: DevCA) -> None:
    cert_path, key_path = dev_ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    other = DevCA.create("another CA")
    other.save(cert_path, key_path, overwrite=True)
    assert DevCA.load(cert_path, key_path).fingerprint == other.fingerprint
    assert _mode(key_path) == 0o600


def test_single_file_writers_refuse_existing_files(tmp_path: Path, dev_ca: DevCA) -> None:
    key_path, cert_path = tmp_path / "k.pem", tmp_path / "c.pem"
    write_private_key(key_path, generate_private_key())
    write_certificate(cert_path, dev_ca.cert)
    before = _snapshot(tmp_path)
    with pytest.raises(CertificateExistsError, match=r"k\.pem' already exists"):
        write_private_key(key_path, generate_private_key())
    with pytest.raises(CertificateExistsError, match=r"c\.pem' already exists"):
        write_certificate(cert_path, dev_ca.cert)
    assert _snapshot(tmp_path) == before
    write_certificate(cert_path, [dev_ca.cert, dev_ca.cert], overwrite=True)
    assert len(load_certificates(cert_path)) == 2


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_dangling_symlink_counts_as_existing(tmp_path: Path) -> None:
    """Writing would follow the link somewhere else: refuse it like a file."""
    (tmp_path / "k.pem").symlink_to(tmp_path / "elsewhere" / "k.pem")
    with pytest.raises(CertificateExistsError, match=r"k\.pem"):
        create_self_signed_cert(tmp_path / "c.pem", tmp_path / "k.pem")
    assert not (tmp_path / "c.pem").exists()


def test_a_file_created_during_the_write_is_kept_and_no_half_pair_remains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates the certificate after the check: the key placed first goes."""
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    real_stage = files._stage

    def stage_then_race(path: Path, data: bytes, mode: int) -> Path:
        tmp = real_stage(path, data, mode)
        if path == cert_path:
            cert_path.write_bytes(b"the other writer's certificate")
        return tmp

    monkeypatch.setattr(files, "_stage", stage_then_race)
    with pytest.raises(CertificateExistsError) as info:
        create_self_signed_cert(cert_path, key_path)
    assert info.value.path == cert_path
    assert _snapshot(tmp_path) == {"c.pem": b"the other writer's certificate"}


def test_dev_certificate_still_replaces_its_own_stale_pair(tmp_path: Path) -> None:
    cert_path, key_path, _ = dev_certificate(tmp_path, days=2)
    old = cert_path.read_bytes()
    cert_path2, _, created = dev_certificate(tmp_path, min_validity=dt.timedelta(days=3))
    assert created is True
    assert cert_path2 == cert_path
    assert cert_path.read_bytes() != old
    check_key_pair(cert_path, key_path)


# --------------------------------------------------------------------------------------------
# client certificates may name hosts (issue 11, point 7)
# --------------------------------------------------------------------------------------------


def test_client_cert_hostnames_become_sans(tmp_path: Path, dev_ca: DevCA) -> None:
    named, _ = dev_ca.issue_client_cert(
        tmp_path / "bob.crt", tmp_path / "bob.key", hostnames=["bob.example", "192.0.2.9"]
    )
    info = describe_certificate(named)
    assert info.sans == ("DNS:bob.example", "IP:192.0.2.9")
    eku = load_certificate(named).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    plain, _ = dev_ca.issue_client_cert(tmp_path / "c.crt", tmp_path / "c.key")
    assert describe_certificate(plain).sans == ()
    with pytest.raises(CertificateError, match="invalid hostname"):
        dev_ca.issue_client_cert(tmp_path / "x.crt", tmp_path / "x.key", hostnames=["bad name"])
