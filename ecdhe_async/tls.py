"""Pure factories for ECDHE-only TLS contexts, and ``describe_context()`` to show their policy.

Theory of operation
-------------------
Forward secrecy needs an *ephemeral* key exchange. Each knob below closes one way to lose it:

- TLS 1.2: ``set_ciphers`` allows only the six ECDHE suites with AEAD ciphers (AES-GCM,
  ChaCha20-Poly1305), so no RSA key transport (``AES128-GCM-SHA256``), no finite-field DHE, no CBC.
  Nothing below TLS 1.2 is ever enabled.
- TLS 1.3: every suite is AEAD, but ``set_ciphers`` does not govern the key exchange there. It is
  chosen from the *supported groups*, whose OpenSSL 3 default includes ffdhe2048…8192. We set
  the group list on server and client contexts alike (names from :mod:`ecdhe_async.groups`, set
  through :mod:`ecdhe_async._openssl`), so FFDHE is impossible in every configuration.
- Resumption: a TLS 1.2 session ticket is encrypted under a long-lived ticket key (steal that key,
  decrypt every session that used it); TLS 1.3 tickets are resumed with ``psk_dhe_ke`` only
  (OpenSSL refuses ``psk_ke`` without ``OP_ALLOW_NO_DHE_KEX``, which we never set), but issuing
  them still keeps state around. So tickets are off (``OP_NO_TICKET``, ``num_tickets = 0``) unless
  ``session_tickets = true``, which logs a warning. The server's session-ID cache goes too: a
  TLS 1.2 client presenting a cached session ID would otherwise resume on the old master secret,
  with no fresh ECDHE exchange at all.
- Key logging writes every session secret to a file: off unless configured, and loud when on.
  ``SSLKEYLOGFILE`` is honoured only with ``allow_keylog = true`` (the stdlib's
  ``create_default_context`` would honour it silently, so we build contexts ourselves).

Settings are pure data; the files they name are checked here, where they are used. OpenSSL
loads the certificate chain and key once; only when that fails are they read again (with
:mod:`cryptography`) to say which setting is at fault, in the one-line ``invalid setting
tls.FIELD=VALUE: why`` form of every settings error. An encrypted key without a configured
password fails instead of letting OpenSSL prompt on the terminal.

Server contexts load no system CA store unless client certificates are requested, so a server
without client auth does no CA directory work at all. Client contexts keep ``check_hostname`` and
``CERT_REQUIRED`` unless ``insecure_skip_verify = true`` is set in so many words.
"""

from __future__ import annotations

import _ssl
import errno
import logging
import os
import ssl
import stat
from pathlib import Path
from typing import Any, Final

from . import _openssl
from ._setting_errors import key_password_hint
from .certs import is_group_or_world_readable, load_certificate, load_private_key
from .errors import CertificateError, ConfigError
from .policy import check_forward_secret
from .settings import TLSSettings

__all__ = [
    "TLS12_CIPHERS",
    "apply_policy",
    "check_forward_secret",
    "client_context",
    "describe_context",
    "open_keylog",
    "server_context",
]

log = logging.getLogger("ecdhe_async.tls")

#: Mozilla "intermediate" (server-side TLS 6.0) TLS 1.2 suites: ECDHE + AEAD only.
TLS12_CIPHERS: Final = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)

# Protocol floors are set with minimum_version (the OP_NO_TLSv1* flags are deprecated).
_HARDENING: Final = ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_ECDH_USE
_NO_DHE_KEX: Final = getattr(ssl, "OP_ALLOW_NO_DHE_KEX", 0)

# ALPN lists are write-only in the ssl module; remember them for describe_context().
_ALPN_ATTR: Final = "_ecdhe_async_alpn"
# The key log's path as configured (ctx.keylog_filename may name /proc/self/fd/N instead).
_KEYLOG_ATTR: Final = "_ecdhe_async_keylog"


def _stdlib_context_class() -> type[ssl.SSLContext]:
    """The stdlib's ``ssl.SSLContext`` class, even where a library replaced the module's name."""
    for cls in ssl.SSLContext.__mro__:
        if cls.__module__ == "ssl" and cls.__qualname__ == "SSLContext":
            return cls
    return ssl.SSLContext  # pragma: no cover


def _c_property(name: str, wrap: Any) -> Any:
    c_attr = getattr(_ssl._SSLContext, name)
    return property(
        lambda self: wrap(c_attr.__get__(self)), lambda self, v: c_attr.__set__(self, v)
    )


class _Context(_stdlib_context_class()):  # type: ignore[misc]
    """The stdlib context, with its property setters bound to the C type.

    ``truststore.inject_into_ssl()`` replaces ``ssl.SSLContext`` with a class that wraps a second
    context: restrictions put on the outer object's ``SSL_CTX`` would not reach the one it uses,
    so our contexts are always built from the stdlib class. Its Python setters, though, look the
    module's ``SSLContext`` name up again (``super(SSLContext, SSLContext)``) and recurse once the
    name is replaced; these go to the C descriptors directly.
    """

    options = _c_property("options", ssl.Options)
    minimum_version = _c_property("minimum_version", ssl.TLSVersion)
    maximum_version = _c_property("maximum_version", ssl.TLSVersion)
    verify_mode = _c_property("verify_mode", ssl.VerifyMode)
    verify_flags = _c_property("verify_flags", ssl.VerifyFlags)


def _base_context(purpose: int, tls: TLSSettings) -> ssl.SSLContext:
    ctx: ssl.SSLContext = _Context(purpose)
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    return _restrict(ctx, tls)


def _restrict(ctx: ssl.SSLContext, tls: TLSSettings) -> ssl.SSLContext:
    ctx.options |= _HARDENING
    ctx.options &= ~_NO_DHE_KEX
    floor = ssl.TLSVersion.TLSv1_3 if tls.profile == "modern" else ssl.TLSVersion.TLSv1_2
    if ctx.minimum_version != ssl.TLSVersion.MAXIMUM_SUPPORTED:  # (that one means TLS 1.3 only)
        ctx.minimum_version = max(ctx.minimum_version, floor)  # tighten a caller's, never lower
    ctx.set_ciphers(TLS12_CIPHERS)
    _openssl.apply_groups(ctx, tls.groups)
    if tls.session_tickets:
        log.warning(
            "TLS session tickets are ON: resumed sessions depend on a long-lived ticket key, "
            "which weakens forward secrecy"
        )
    else:
        ctx.options |= ssl.OP_NO_TICKET
    if tls.alpn:
        ctx.set_alpn_protocols(tls.alpn)
        setattr(ctx, _ALPN_ATTR, tuple(tls.alpn))
    _setup_keylog(ctx, tls)
    return ctx


def _server_resumption(ctx: ssl.SSLContext, tls: TLSSettings) -> None:
    """No tickets and no session-ID cache on a server unless opted in; fail closed if we can't."""
    if tls.session_tickets:
        ctx.num_tickets = 2  # the OpenSSL default, explicitly
        return
    ctx.num_tickets = 0
    problem = _openssl.session_cache_off(ctx)
    if problem is None or ctx.minimum_version >= ssl.TLSVersion.TLSv1_3:
        return  # TLS 1.3 resumes only with tickets, which are off
    if tls.allow_tls12_session_resumption:
        log.warning(
            "TLS 1.2 SESSION-ID RESUMPTION IS ON (allow_tls12_session_resumption = true): the "
            "session cache cannot be switched off here (%s); a resumed TLS 1.2 session reuses "
            "an old master secret with no fresh ECDHE exchange",
            problem,
        )
        return
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    log.warning(
        "TLS 1.2 is refused: the server's session-ID cache cannot be switched off here (%s), "
        "and a resumed TLS 1.2 session would skip the ECDHE exchange. Set "
        "tls.allow_tls12_session_resumption = true to accept that risk and allow TLS 1.2.",
        problem,
    )


def apply_policy(ctx: ssl.SSLContext, tls: TLSSettings, *, server_side: bool) -> ssl.SSLContext:
    """Restrict a caller's own *ctx* in place to the policy of *tls*, and return it.

    What :func:`server_context` / :func:`client_context` would enforce is put on *ctx*: the
    groups, the TLS 1.2 suites, the protocol floor (raised, never lowered), no compression or
    renegotiation, no tickets and (server) no session-ID cache unless ``session_tickets``, and key
    logging only as the settings allow. Certificates, CAs and verification stay the caller's.
    A context that cannot be restricted raises :class:`ConfigError` saying why: one for the
    other side, one whose maximum version is below TLS 1.2, or one that wraps another context
    (``truststore.SSLContext``), whose restrictions would not reach the context it really uses.
    """
    side, want = (
        ("server", ssl.PROTOCOL_TLS_SERVER) if server_side else ("client", ssl.PROTOCOL_TLS_CLIENT)
    )
    where = f"ssl_context ({type(ctx).__module__}.{type(ctx).__qualname__})"
    stdlib = _stdlib_context_class()
    if not isinstance(ctx, stdlib) or any(
        getattr(type(ctx), name) is not getattr(stdlib, name)
        for name in ("wrap_bio", "wrap_socket")
    ):
        raise ConfigError(
            f"{where} cannot be restricted to ECDHE: it wraps another context, which our group "
            "and session settings would not reach; pass an ssl.SSLContext (or none)"
        )
    if ctx.protocol != want:
        raise ConfigError(f"{where}: a {side} needs a {want.name} context, got {ctx.protocol.name}")
    top = ctx.maximum_version
    if top != ssl.TLSVersion.MAXIMUM_SUPPORTED and top < ssl.TLSVersion.TLSv1_2:
        raise ConfigError(f"{where}: maximum_version {top.name} is below TLS 1.2")
    _restrict(ctx, tls)
    if server_side:
        _server_resumption(ctx, tls)
    return ctx


def _setup_keylog(ctx: ssl.SSLContext, tls: TLSSettings) -> None:
    path = tls.keylog_file
    if path is None and tls.allow_keylog:
        env = os.environ.get("SSLKEYLOGFILE")
        path = Path(env) if env else None
    if path is None:
        if ctx.keylog_filename and not tls.allow_keylog:  # a caller's context (SSLKEYLOGFILE)
            log.warning(
                "key logging to '%s' turned off: tls.keylog_file / allow_keylog do not ask for it",
                ctx.keylog_filename,
            )
            ctx.keylog_filename = None  # type: ignore[assignment]
        elif ctx.keylog_filename:
            log.warning("TLS KEY LOGGING IS ON (the caller's context): '%s'", ctx.keylog_filename)
        return
    fd = open_keylog(path)
    try:
        # Let the ssl module reopen *the file we checked*, not whatever the path names by now.
        proc_fd = f"/proc/self/fd/{fd}"
        ctx.keylog_filename = proc_fd if os.path.exists(proc_fd) else os.fspath(path)
    finally:
        os.close(fd)
    setattr(ctx, _KEYLOG_ATTR, os.fspath(path))
    log.warning(
        "TLS KEY LOGGING IS ON: every session secret is written to '%s'; anyone with that file "
        "can decrypt recorded traffic. Never enable this in production.",
        path,
    )


def open_keylog(path: Path) -> int:
    """Open the key log *path* for appending, private to its owner; return the descriptor.

    The file holds every session secret. A symbolic link at *path* is refused (``O_NOFOLLOW``:
    whoever can write the directory must not redirect the secrets), so is anything but a regular
    file; a new file is created ``0600`` whatever the umask; an existing file that others can read
    is made ``0600`` (said in a warning), or refused when it belongs to another user.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
    flags |= getattr(os, "O_NOFOLLOW", 0)

    def refuse(why: str) -> ConfigError:
        return ConfigError(f"invalid setting tls.keylog_file='{path}': {why}")

    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENXIO and path.is_symlink()):
            raise refuse("it is a symbolic link; refused (give the real file)") from None
        raise refuse(f"cannot open it for appending ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse("not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            if st.st_uid != os.geteuid():
                raise refuse(f"readable by others (mode {mode:04o}) and owned by another user")
            os.fchmod(fd, 0o600)
            log.warning(
                "key log file '%s' was readable by others (mode %04o): changed to 0600", path, mode
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


# -- the files: loaded once by OpenSSL; diagnosed only when that fails ------------------------
class _NoPasswordError(Exception):
    """OpenSSL asked for a key password that is not configured (instead of prompting a tty)."""


def _no_password() -> str:
    raise _NoPasswordError


def _setting_error(field: str, value: object, message: str) -> ConfigError:
    """``invalid setting tls.FIELD=VALUE: message``, the wording of settings errors."""
    if value is None:
        shown = "None"
    elif field == "key_password":
        shown = "'**********'"  # never the secret
    else:
        shown = repr(str(value))
    return ConfigError(f"invalid setting tls.{field}={shown}: {message}")


def _check_readable(tls: TLSSettings, *fields: str) -> None:
    """One ``ConfigError`` line per configured file that is missing or unreadable."""
    lines = []
    for field in fields:
        path: Path | None = getattr(tls, field)
        if path is None:
            continue
        if not path.is_file():
            problem = f"file '{path}' does not exist or is not a regular file"
        elif not os.access(path, os.R_OK):
            problem = f"file '{path}' is not readable by this user"
        else:
            continue
        lines.append(str(_setting_error(field, path, problem)))
    if lines:
        raise ConfigError("\n".join(lines))


def _chain_error(tls: TLSSettings, certfile: Path, exc: BaseException) -> ConfigError:
    """Why OpenSSL could not load the certificate and key, naming the setting at fault."""
    _check_readable(tls, "certfile", "keyfile")
    keyfile = tls.keyfile or certfile
    key_field = "keyfile" if tls.keyfile is not None else "certfile"
    try:
        cert = load_certificate(certfile)
    except CertificateError as err:
        return _setting_error("certfile", certfile, str(err))
    try:
        key = load_private_key(keyfile, tls.key_password)
    except CertificateError as err:
        text = str(err)
        if "password" in text.replace(str(keyfile), ""):
            if tls.key_password is None:
                text = f"{text}: {key_password_hint()}"
            return _setting_error("key_password", tls.key_password, text)
        if key_field == "certfile" and "does not contain a PEM private key" in text:
            text += " (give the key file with --keyfile or tls.keyfile)"
        return _setting_error(key_field, keyfile, text)
    if cert.public_key() != key.public_key():
        return _setting_error(
            key_field, keyfile, f"the private key does not match the certificate in '{certfile}'"
        )
    reason = getattr(exc, "reason", None) or exc
    return _setting_error(
        "certfile",
        certfile,
        f"cannot load the certificate and key ({exc.__class__.__name__}: {reason})",
    )


def _load_chain(ctx: ssl.SSLContext, tls: TLSSettings) -> None:
    certfile = tls.certfile
    if certfile is None:
        return
    # A callable, so that an encrypted key without a password fails instead of OpenSSL's prompt.
    password = tls.key_password.get_secret_value() if tls.key_password is not None else _no_password
    try:
        ctx.load_cert_chain(certfile, tls.keyfile, password=password)
    except (ssl.SSLError, OSError, _NoPasswordError) as exc:
        raise _chain_error(tls, certfile, exc) from None
    keyfile = tls.keyfile or certfile
    if is_group_or_world_readable(keyfile):
        log.warning("private key file '%s' is readable by other users: chmod 600 it", keyfile)


def _load_cas(ctx: ssl.SSLContext, tls: TLSSettings) -> None:
    if tls.ca_file is None:
        return
    try:
        ctx.load_verify_locations(cafile=tls.ca_file)
    except (ssl.SSLError, OSError) as exc:
        _check_readable(tls, "ca_file")
        raise _setting_error(
            "ca_file",
            tls.ca_file,
            "cannot load CA certificates from it "
            f"({exc.__class__.__name__}: {getattr(exc, 'reason', None) or exc})",
        ) from None


def server_context(tls: TLSSettings) -> ssl.SSLContext:
    """Build a server-side context that can only negotiate ECDHE (see the module docstring).

    Requires ``tls.certfile``. ``client_auth`` selects ``none`` / ``optional`` / ``required``
    client certificates, verified against ``tls.ca_file``.
    """
    if tls.certfile is None:
        raise ConfigError("invalid setting tls.certfile=None: a server needs a certificate")
    ctx = _base_context(ssl.PROTOCOL_TLS_SERVER, tls)
    _server_resumption(ctx, tls)
    _load_chain(ctx, tls)
    if tls.client_auth != "none":
        ctx.verify_mode = ssl.CERT_REQUIRED if tls.client_auth == "required" else ssl.CERT_OPTIONAL
        _load_cas(ctx, tls)
    return ctx


def client_context(tls: TLSSettings) -> ssl.SSLContext:
    """Build a client-side context: ECDHE only, chain and hostname verified by default.

    Trusts ``tls.ca_file`` if set, else the system store. ``tls.certfile``/``keyfile`` present a
    client certificate (mTLS). ``tls.insecure_skip_verify`` disables verification, loudly.
    """
    ctx = _base_context(ssl.PROTOCOL_TLS_CLIENT, tls)
    if tls.ca_file is not None:
        _load_cas(ctx, tls)
    elif not tls.insecure_skip_verify:  # nothing is verified then: skip parsing the whole store
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    _load_chain(ctx, tls)
    if tls.insecure_skip_verify:
        log.warning(
            "certificate verification is OFF (insecure_skip_verify): any server, including a "
            "man in the middle, will be accepted"
        )
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


_VERSION_NAMES: Final = {
    ssl.TLSVersion.TLSv1_2: "TLSv1.2",
    ssl.TLSVersion.TLSv1_3: "TLSv1.3",
    ssl.TLSVersion.MAXIMUM_SUPPORTED: "TLSv1.3",
}


def describe_context(ctx: ssl.SSLContext) -> dict[str, Any]:
    """The effective policy of *ctx*: versions, TLS 1.2 and 1.3 suites, groups, tickets, verify.

    ``groups`` is ``None`` when the context was not built by this module (OpenSSL's defaults,
    FFDHE included, are then in force).
    """
    ciphers = ctx.get_ciphers()
    return {
        "minimum_version": _VERSION_NAMES.get(ctx.minimum_version, ctx.minimum_version.name),
        "maximum_version": _VERSION_NAMES.get(ctx.maximum_version, ctx.maximum_version.name),
        "tls12_ciphers": [
            c["name"]
            for c in ciphers
            if c["protocol"] == "TLSv1.2" and ctx.minimum_version <= ssl.TLSVersion.TLSv1_2
        ],
        "tls13_ciphers": [c["name"] for c in ciphers if c["protocol"] == "TLSv1.3"],
        "groups": list(g) if (g := _openssl.configured_groups(ctx)) is not None else None,
        "session_tickets": not (ctx.options & ssl.OP_NO_TICKET),
        "verify_mode": ctx.verify_mode.name,
        "check_hostname": ctx.check_hostname,
        "alpn": list(getattr(ctx, _ALPN_ATTR, ())),
        "keylog_file": getattr(ctx, _KEYLOG_ATTR, None) or ctx.keylog_filename,
    }
