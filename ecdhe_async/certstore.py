"""Server certificates by SNI name, reloaded in place with keep-last-good.

Theory of operation
-------------------
The server wraps every connection with ONE context, :attr:`CertStore.context`. With more than
one certificate (or ``tls.sni_strict``, or after a reload) its ``sni_callback`` runs at each
ClientHello and sets ``ssl_object.context`` to the context that
holds the certificate for the name the client asked for: an exact name first, then a wildcard
``*.example.com`` (one label, as in RFC 6125), then the default (``tls.certfile``). With
``tls.sni_strict`` a name that nothing covers gets an ``unrecognized_name`` alert instead; a
client that sends no name always gets the default. Every context comes from
:func:`ecdhe_async.tls.server_context`, so each carries the same ECDHE-only policy; the swap
changes the certificate, never the policy (OpenSSL's ``SSL_set_SSL_CTX`` keeps the connection's
options, groups and ciphers).

Several key types for one name: ``[[tls.certificates]]`` entries with the *same* list of
``server_names`` are loaded into one context (``load_cert_chain`` once per entry). OpenSSL then
holds one chain per key type and serves ECDSA to clients that offer ECDSA signature algorithms,
RSA to the others. Two entries of the same key type for the same names, or a name in two
different lists, are configuration errors.

Reload: :meth:`CertStore.reload` (``TLSServer.reload()``, SIGHUP) rebuilds every context from the
files. The new set is used only if all of it loads: each certificate parses, each key matches its
certificate (a half-written file fails one or the other). Otherwise the running set stays and one
ERROR line names the file and the reason. Because the callback picks a context per handshake, new
handshakes use the new certificates and established connections never notice. :meth:`watch`
checks the files every ``cert_check_interval`` seconds: resolved path (Kubernetes mounts a secret
as ``tls.crt -> ..data/tls.crt`` and swaps the ``..data`` symlink atomically), inode, size and
mtime, and, when those moved, a SHA-256 of the contents, so a re-projected identical secret does
not reload. A broken set is reported once; the next change is tried again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from .certs import CertInfo, check_key_pair, describe_certificate
from .errors import CertificateError, ConfigError
from .settings import CertificateSettings, TLSSettings
from .tls import apply_policy, server_context

__all__ = ["CertStore", "server_certificates"]

log = logging.getLogger("ecdhe_async.certs")

_Stamp = tuple[str, int, int, int] | None  # (resolved path, inode, size, mtime_ns) or missing


@dataclass(frozen=True, slots=True)
class _Entry:
    """One certificate/key pair as configured (the default one has no names)."""

    where: str  # the setting's name, for messages: "tls" or "tls.certificates[2]"
    certfile: Path
    keyfile: Path
    password: str | None
    names: tuple[str, ...] = ()


@dataclass(slots=True)
class _State:
    """One complete, loaded set: swapped in as a whole."""

    default: ssl.SSLContext
    exact: dict[str, ssl.SSLContext] = field(default_factory=dict)
    wildcard: dict[str, ssl.SSLContext] = field(default_factory=dict)
    infos: list[tuple[_Entry, CertInfo]] = field(default_factory=list)


class CertStore:
    """The server's certificates: SNI selection and keep-last-good reload.

    Raises :class:`~ecdhe_async.errors.ConfigError` at construction if any certificate cannot be
    used (missing, unparsable, key mismatch, conflicting names).
    """

    def __init__(self, tls: TLSSettings) -> None:
        if tls.certfile is None:
            raise ConfigError("invalid setting tls.certfile=None: a server needs a certificate")
        self._tls = tls
        self._entries = list(_entries(tls))
        self._stamps = self._stat()
        self._hashes = self._hash()
        # The context every connection starts with: the default pair's first one (its errors
        # name the setting at fault), whose callback then picks from the current set; a reload
        # swaps the set, never this object.
        self.context = server_context(tls)
        try:
            self._state = self._build(self.context)
        except CertificateError as exc:
            raise ConfigError(f"invalid setting {exc}") from None
        self._log_loaded("loaded")
        self._install_callback()
        self._watch: asyncio.Task[None] | None = None
        #: Told of every reload: ``None`` (switched) or why it failed (possibly from a thread).
        self.on_reload: Callable[[str | None], None] | None = None

    # -- selection (runs inside OpenSSL's ClientHello processing) --------------------------------
    def _install_callback(self) -> None:
        # A Python callback on every ClientHello costs ~3 µs: only when there is a choice to make
        # (other certificates, sni_strict) or the default was reloaded into a new context.
        state = self._state
        choice = state.exact or state.wildcard or self._tls.sni_strict
        if choice or state.default is not self.context:
            self.context.sni_callback = self._pick

    def _pick(
        self, ssl_object: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        ctx = self.lookup(server_name)
        if ctx is None:
            log.debug("SNI %r: no certificate for this name (sni_strict)", server_name)
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ssl_object.context = ctx
        return None

    def lookup(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context a handshake for *server_name* would use (``None``: refused, strict)."""
        state = self._state  # one read: a concurrent reload swaps the whole set
        if server_name is None:
            return state.default
        name = server_name.lower().rstrip(".")
        found = state.exact.get(name) or state.wildcard.get(name.partition(".")[2])
        return found or (None if self._tls.sni_strict else state.default)

    @property
    def certificates(self) -> list[CertInfo]:
        """What is in force now: one :class:`~ecdhe_async.certs.CertInfo` per certificate."""
        return [info for _, info in self._state.infos]

    def served(self) -> list[tuple[tuple[str, ...], CertInfo]]:
        """Like :attr:`certificates`, each with the SNI names it is served for (``()``: default)."""
        return [(entry.names, info) for entry, info in self._state.infos]

    # -- reload ----------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read every certificate; switch to the new set only if all of it is good.

        Returns True on success. On failure logs one ERROR line (file and reason) and keeps
        serving the last good set. Safe to call from a worker thread.
        """
        self._stamps = self._stat()
        self._hashes = self._hash()
        return self._swap()

    def _swap(self) -> bool:
        try:
            state = self._build()
        except CertificateError as exc:
            log.error("certificate reload failed, keeping the current certificates: %s", exc)
            if self.on_reload is not None:
                self.on_reload(str(exc))
            return False
        self._state = state
        self._install_callback()
        self._log_loaded("reloaded")
        if self.on_reload is not None:
            self.on_reload(None)
        return True

    def changed(self) -> bool:
        """True if a certificate or key file changed since the last load or check."""
        stamps = self._stat()
        if stamps == self._stamps:
            return False
        self._stamps = stamps
        hashes = self._hash()
        if hashes == self._hashes:
            log.debug("certificate files re-linked or touched, contents unchanged: no reload")
            return False
        self._hashes = hashes
        return True

    async def watch(self, interval: float) -> None:
        """Check the files every *interval* seconds and reload on a change (runs until cancelled).

        File reads and context builds run in a worker thread, off the event loop.
        """
        while True:
            await asyncio.sleep(interval)
            try:
                if await asyncio.to_thread(self.changed):
                    log.info("certificate files changed: reloading")
                    await asyncio.to_thread(self._swap)
                else:
                    log.debug("certificate check: no change")
            except Exception:  # a bug: loud, and the watch goes on with the current set
                log.exception("internal error in the certificate file check")

    def start_watch(self, interval: float) -> None:
        """Run :meth:`watch` in a task on the running loop (not for *interval* 0)."""
        if interval > 0 and self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self.watch(interval))

    def stop_watch(self) -> None:
        """Cancel the :meth:`start_watch` task, if any."""
        task, self._watch = self._watch, None
        if task is not None:
            task.cancel()

    # -- building --------------------------------------------------------------------------------
    def _build(self, default: ssl.SSLContext | None = None) -> _State:
        infos = [(entry, _check(entry)) for entry in self._entries]
        state = _State(default=default or self._context(self._entries[:1]))
        groups: dict[tuple[str, ...], list[_Entry]] = {}
        for entry in self._entries[1:]:
            groups.setdefault(entry.names, []).append(entry)
        for names, members in groups.items():
            _check_key_types(members, infos)
            ctx = self._context(members)
            for name in names:
                table = state.wildcard if name.startswith("*.") else state.exact
                table[name.removeprefix("*.")] = ctx
        state.infos = infos
        return state

    def _context(self, members: list[_Entry]) -> ssl.SSLContext:
        first = members[0]
        try:
            ctx = server_context(_with_pair(self._tls, first))
            for extra in members[1:]:
                ctx.load_cert_chain(extra.certfile, extra.keyfile, password=extra.password)
        except (ConfigError, ssl.SSLError, OSError) as exc:
            raise CertificateError(f"{first.where}: {exc}") from None
        return ctx

    def _log_loaded(self, verb: str) -> None:
        now = datetime.now(UTC)
        for entry, info in self._state.infos:
            if info.not_after <= now:
                log.warning("certificate %s has EXPIRED (%s)", entry.certfile, info.not_after)
            log.info(
                "certificate %s (%s): subject %s, serial %s, %s, expires %s%s",
                verb,
                ", ".join(entry.names) or "default",
                info.subject,
                info.serial_number,
                info.key_type,
                info.not_after.strftime("%Y-%m-%d %H:%M UTC"),
                f" ({entry.certfile})",
            )

    def _paths(self) -> Iterator[Path]:
        for entry in self._entries:
            yield entry.certfile
            if entry.keyfile != entry.certfile:
                yield entry.keyfile

    def _stat(self) -> list[_Stamp]:
        return [_stamp(path) for path in self._paths()]

    def _hash(self) -> list[str | None]:
        return [_digest(path) for path in self._paths()]


def server_certificates(
    tls: TLSSettings, ssl_context: ssl.SSLContext | None
) -> tuple[CertStore | None, ssl.SSLContext]:
    """A server's certificates: a :class:`CertStore` (SNI, reload) and its context, or none and
    the caller's own *ssl_context*, restricted in place by :func:`~ecdhe_async.tls.apply_policy`.
    """
    if ssl_context is not None:
        return None, apply_policy(ssl_context, tls, server_side=True)
    store = CertStore(tls)
    return store, store.context


def _with_pair(tls: TLSSettings, entry: _Entry) -> TLSSettings:
    password = SecretStr(entry.password) if entry.password is not None else None
    return tls.model_copy(
        update={"certfile": entry.certfile, "keyfile": entry.keyfile, "key_password": password}
    )


def _entries(tls: TLSSettings) -> Iterator[_Entry]:
    assert tls.certfile is not None
    password = tls.key_password.get_secret_value() if tls.key_password is not None else None
    yield _Entry("tls", tls.certfile, tls.keyfile or tls.certfile, password)
    owner: dict[str, tuple[int, tuple[str, ...]]] = {}
    for i, cert in enumerate(tls.certificates):
        names = tuple(cert.server_names)
        for name in names:
            seen = owner.setdefault(name, (i, names))
            if seen[1] != names:
                raise ConfigError(
                    f"invalid setting tls.certificates[{i}].server_names: {name!r} is also in "
                    f"tls.certificates[{seen[0]}] with other names; certificates that share a "
                    "name must list the same names (they are served from one context)"
                )
        yield _entry(i, cert)


def _entry(i: int, cert: CertificateSettings) -> _Entry:
    password = cert.key_password.get_secret_value() if cert.key_password is not None else None
    certfile = cert.certfile.expanduser()
    keyfile = (cert.keyfile or cert.certfile).expanduser()
    return _Entry(f"tls.certificates[{i}]", certfile, keyfile, password, tuple(cert.server_names))


def _check(entry: _Entry) -> CertInfo:
    """Parse the certificate and check the key matches: the reasons OpenSSL would not give."""
    try:
        check_key_pair(entry.certfile, entry.keyfile, entry.password)
        info = describe_certificate(entry.certfile)
    except CertificateError as exc:
        raise CertificateError(f"{entry.where}: {exc}") from None
    return info


def _check_key_types(members: list[_Entry], infos: list[tuple[_Entry, CertInfo]]) -> None:
    kinds: dict[str, str] = {}
    by_entry = {id(e): info for e, info in infos}
    for entry in members:
        kind = by_entry[id(entry)].key_type.split()[0]
        if kind in kinds:
            raise CertificateError(
                f"{entry.where}: a second {kind} certificate for the names of {kinds[kind]}; "
                "one context holds one certificate per key type (e.g. one ECDSA + one RSA)"
            )
        kinds[kind] = entry.where


def _stamp(path: Path) -> _Stamp:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return real, st.st_ino, st.st_size, st.st_mtime_ns


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
