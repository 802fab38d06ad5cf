"""The cached development certificate that ``serve`` uses when none is configured.

One self-signed pair per user in ``$XDG_CACHE_HOME/ecdhe_async`` (directory ``0700``), reused
while it is valid, private and covers the requested hostnames; regenerated under a lock file
otherwise. This is the one writer allowed to replace its own files without being asked.
"""

from __future__ import annotations

__all__ = ["default_cache_dir", "dev_certificate"]

import contextlib
import datetime as dt
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import CertificateError
from ._util import (
    _CLOCK_SKEW,
    DEFAULT_HOSTNAMES,
    KeyType,
    StrPath,
    _host_key,
    _now,
    _san_entries,
)
from .files import _KEY_MODE
from .issue import create_self_signed_cert
from .loading import (
    _sans,
    check_key_pair,
    fingerprint,
    is_group_or_world_readable,
    load_certificate,
)

if sys.platform != "win32":
    import fcntl

_log = logging.getLogger(__name__)

_DIR_MODE = 0o700
_DEV_CERT_NAME = "dev-cert.pem"
_DEV_KEY_NAME = "dev-key.pem"
_DEV_LOCK_NAME = ".dev-cert.lock"
_DEV_COMMON_NAME = "ecdhe_async development certificate"


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
            overwrite=True,  # the pair failed the reuse check above: replacing it is the point
        )
        _log.info(
            "development certificate %s (SHA-256 %s); trust it with cafile=%s",
            cert_path,
            fingerprint(cert_path),
            cert_path,
        )
    return cert_path, key_path, True
