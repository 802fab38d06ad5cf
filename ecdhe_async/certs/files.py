"""Atomic file writing: private keys born ``0600``, certificates ``0644``, never half-written.

Each file is staged in a temporary file created ``O_EXCL`` with its final mode in the same
directory, fsynced, then moved into place. A pair (key and certificate) is staged completely
before either is moved.

Nothing is overwritten unless the caller says ``overwrite=True``: every writer refuses an
existing destination with :class:`CertificateExistsError` (naming the file) before it stages
anything, and then moves each file with a hard link, which fails instead of replacing a file
that appeared meanwhile; a key already placed is removed again, so no half pair is left. With
``overwrite=True`` the move is :func:`os.replace`.
"""

from __future__ import annotations

__all__ = ["CertificateExistsError", "write_certificate", "write_private_key"]

import contextlib
import errno
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..errors import CertificateError
from ._util import PasswordLike, StrPath, _password_bytes

_CERT_MODE = 0o644
_KEY_MODE = 0o600


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


class CertificateExistsError(CertificateError):
    """A key or certificate file exists and the caller did not pass ``overwrite=True``.

    ``path`` names the file. Replacing a CA key silently would orphan every certificate it
    issued, so every writer refuses by default (``--force`` on the command line).
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"'{path}' already exists; refusing to overwrite it")
        self.path = path


def _refuse_existing(paths: Iterable[Path], *, overwrite: bool) -> None:
    """Unless ``overwrite``, raise :class:`CertificateExistsError` for the first existing path.

    Callers run it before generating anything, and the writers again before staging, so a pair
    is refused as a whole: nothing is written when either file exists.
    """
    if overwrite:
        return
    for path in paths:
        if os.path.lexists(path):  # a dangling symlink counts: writing would follow it
            raise CertificateExistsError(path)


def _place_new(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` only when ``path`` does not exist (FileExistsError otherwise).

    A hard link is the atomic "create, never replace" rename. Where the file system has no
    hard links, the existence check made before staging stands and a rename follows.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def _write_atomically(files: Sequence[tuple[Path, bytes, int]], *, overwrite: bool) -> None:
    """Stage every file first, then move them into place in order; no temp file survives.

    Without ``overwrite`` an existing destination is refused before anything is staged, and
    files this call already placed are removed again if a later one fails (no half pair).
    """
    _refuse_existing((path for path, _, _ in files), overwrite=overwrite)
    staged: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    current: Path | None = None
    try:
        for path, data, mode in files:
            current = path
            staged.append((_stage(path, data, mode), path))
        while staged:
            tmp, path = staged[0]
            current = path
            if overwrite:
                os.replace(tmp, path)
            else:
                _place_new(tmp, path)
                placed.append(path)
            staged.pop(0)
    except OSError as exc:
        for path in placed:
            with contextlib.suppress(OSError):
                path.unlink()
        if isinstance(exc, FileExistsError) and current is not None:
            raise CertificateExistsError(current) from None
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
    *,
    overwrite: bool,
) -> tuple[Path, Path]:
    _write_atomically(
        [
            (key_path, _private_key_pem(key, password), _KEY_MODE),
            (cert_path, _certs_pem(certs), _CERT_MODE),
        ],
        overwrite=overwrite,
    )
    return cert_path, key_path


def write_private_key(
    path: StrPath,
    key: PrivateKeyTypes,
    password: PasswordLike | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``key`` as PKCS#8 PEM to ``path``, atomically and with mode ``0600``.

    With a ``password`` the key is encrypted with ``BestAvailableEncryption``. The file is
    never readable by anyone but its owner, not even for a moment. An existing ``path`` raises
    :class:`CertificateExistsError` unless ``overwrite`` is true.
    """
    target = Path(path)
    _write_atomically([(target, _private_key_pem(key, password), _KEY_MODE)], overwrite=overwrite)
    return target


def write_certificate(
    path: StrPath,
    certs: x509.Certificate | Sequence[x509.Certificate],
    *,
    overwrite: bool = False,
) -> Path:
    """Write one certificate (or a chain, leaf first) as PEM to ``path``, atomically, mode 0644.

    An existing ``path`` raises :class:`CertificateExistsError` unless ``overwrite`` is true.
    """
    target = Path(path)
    _write_atomically([(target, _certs_pem(certs), _CERT_MODE)], overwrite=overwrite)
    return target
