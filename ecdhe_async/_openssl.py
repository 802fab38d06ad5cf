"""The one place that talks to OpenSSL directly: key-exchange groups, negotiated group, SNI.

Theory of operation
-------------------
``SSLContext.set_ciphers()`` only governs TLS 1.2. In TLS 1.3 the key exchange is chosen from the
*supported groups* list, and OpenSSL 3's default list includes the finite-field groups
ffdhe2048…ffdhe8192: a stock context happily answers an ffdhe-only client with a non-elliptic
Diffie-Hellman exchange. Closing that hole means setting the group list ourselves, on server and
client contexts alike.

Python 3.15 adds ``SSLContext.set_groups()`` and ``SSLObject.group()`` (cpython#136306); we use them
when present. Before that, the stdlib only offers ``set_ecdh_curve()``, which takes ONE curve. So on
older Pythons we call OpenSSL's ``SSL_CTX_set1_groups_list`` (a macro over ``SSL_CTX_ctrl`` with
``SSL_CTRL_SET_GROUPS_LIST``) and ``SSL_get_negotiated_group`` (``SSL_ctrl`` with
``SSL_CTRL_GET_NEGOTIATED_GROUP``) through :mod:`ctypes`, resolving the symbols through the
``_ssl`` extension module so that we reach the very libssl the interpreter uses.

The ``SSL_CTX*``/``SSL*`` pointers sit right after the object header of CPython's ``_ssl`` objects.
Reading them that way is only trusted after a self-check: the pointer's ``SSL_CTX_get_options``
must equal ``SSLContext.options`` (and, for a connection, ``SSL_get_SSL_CTX`` must be the context's
pointer). If any check fails, the shim is disabled and :func:`apply_groups` falls back to
``set_ecdh_curve`` with the first configured group — still elliptic-curve only, never a silent
fallback to OpenSSL's defaults.

The shim stays in use where ``set_groups`` exists (3.15+): the stdlib still has no switch for the
server's session-ID cache, nor for reading the SNI name. Where the shim cannot be used,
:func:`session_cache_off` says why and :mod:`ecdhe_async.tls` fails closed (TLS 1.2 refused).

Risk, and how it is bounded: the self-check itself calls OpenSSL (``SSL_CTX_get_options``,
``SSL_get_SSL_CTX``) on a *candidate* pointer read from the object's memory before anything proves
it valid. On an interpreter whose ``_ssl`` structs are laid out differently, that word could be
anything and the call could crash the process instead of failing the check. So before reading it
we require CPython and an instance of the C types themselves (``_ssl._SSLContext`` /
``_ssl._SSLSocket``, whose first fields are the pointers on every CPython from 3.11 to 3.15), and
a non-NULL, pointer-aligned value. A subclass that *wraps* another context (``truststore``) passes
those tests but fails the options comparison: its own ``SSL_CTX`` is not the one it uses. Every
failure is a :class:`ShimError` with a one-line reason, turned into a fallback or a clear
:class:`~ecdhe_async.errors.ConfigError` by the callers, never a bare traceback.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import ssl
import sys
import weakref
from collections.abc import Sequence
from typing import Any, Final

from . import groups as _registry

__all__ = [
    "ALLOWED_GROUPS",
    "DEFAULT_GROUPS",
    "apply_groups",
    "configured_groups",
    "disable_session_cache",
    "group_available",
    "handshake_facts",
    "negotiated_group",
    "normalize_group",
    "session_cache_off",
    "shim_problem",
    "sni_server_name",
]

log = logging.getLogger("ecdhe_async.tls")

#: Re-exported from :mod:`ecdhe_async.groups` (the one registry) for older imports.
ALLOWED_GROUPS: Final = _registry.ALLOWED
DEFAULT_GROUPS: Final = _registry.DEFAULT

_SSL_CTRL_SET_GROUPS_LIST: Final = 92
_SSL_CTRL_GET_NEGOTIATED_GROUP: Final = 134
_SSL_CTRL_SET_SESS_CACHE_MODE: Final = 44
_SSL_SESS_CACHE_OFF: Final = 0

# Remember what was applied to each context (OpenSSL 3.0 cannot read a context's list back).
_applied: weakref.WeakKeyDictionary[ssl.SSLContext, tuple[str, ...]] = weakref.WeakKeyDictionary()


def normalize_group(name: str) -> str:
    """Return the canonical name of an allowed group, or raise ``ValueError`` naming the choices.

    The same as :func:`ecdhe_async.groups.canonical`.
    """
    return _registry.canonical(name)


class ShimError(RuntimeError):
    """The ctypes shim cannot be used (for this context or at all); ``str()`` says why."""


class _OpenSSL:
    """ctypes bindings to the libssl that ``_ssl`` is linked against (Python < 3.15)."""

    def __init__(self) -> None:
        import _ssl  # the extension module: its handle resolves libssl's symbols too

        lib = ctypes.CDLL(_ssl.__file__)
        vp, c_int, c_long = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
        self.ctx_ctrl = lib.SSL_CTX_ctrl
        self.ctx_ctrl.argtypes = [vp, c_int, c_long, vp]
        self.ctx_ctrl.restype = c_long
        self.ctx_get_options = lib.SSL_CTX_get_options
        self.ctx_get_options.argtypes = [vp]
        self.ctx_get_options.restype = ctypes.c_uint64
        self.ssl_ctrl = lib.SSL_ctrl
        self.ssl_ctrl.argtypes = [vp, c_int, c_long, vp]
        self.ssl_ctrl.restype = c_long
        self.ssl_get_ctx = lib.SSL_get_SSL_CTX
        self.ssl_get_ctx.argtypes = [vp]
        self.ssl_get_ctx.restype = vp
        self.servername = lib.SSL_get_servername
        self.servername.argtypes = [vp, c_int]
        self.servername.restype = ctypes.c_char_p
        self.nid2sn = lib.OBJ_nid2sn
        self.nid2sn.argtypes = [c_int]
        self.nid2sn.restype = ctypes.c_char_p
        self.err_clear = lib.ERR_clear_error
        self.err_clear.argtypes = []
        self.err_clear.restype = None
        self.head = object.__basicsize__
        self._names: dict[int, str | None] = {}
        self.ctx_type: type = _ssl._SSLContext
        self.ssl_type: type = getattr(_ssl, "_SSLSocket")  # noqa: B009 - not in typeshed
        if sys.implementation.name != "cpython":
            raise ShimError(f"not CPython ({sys.implementation.name}): struct layout unknown")
        # Probe the C type itself, not ssl.SSLContext (which truststore may have replaced).
        probe = self.ctx_type(ssl.PROTOCOL_TLS_CLIENT)
        if self.ctx_get_options(self.ctx_pointer(probe)) != int(probe.options):
            raise ShimError("SSL_CTX pointer self-check failed on a stock context")

    def _candidate(self, obj: object, kind: type, offset: int, what: str) -> int:
        # Only read memory that is laid out as the C type says: an instance of it (or of a
        # subclass, which appends its fields after the C struct).
        if not isinstance(obj, kind):
            raise ShimError(f"{type(obj).__qualname__} is not a {kind.__qualname__}")
        ptr = ctypes.c_void_p.from_address(id(obj) + self.head + offset).value
        if not ptr or ptr % ctypes.sizeof(ctypes.c_void_p):
            raise ShimError(f"{what} pointer is NULL or misaligned")
        return ptr

    def ctx_pointer(self, ctx: object) -> int:
        # PySSLContext: PyObject_HEAD; SSL_CTX *ctx; ...
        return self._candidate(ctx, self.ctx_type, 0, "SSL_CTX")

    def ssl_pointer(self, sslobj: Any, ctx: ssl.SSLContext) -> int:
        # PySSLSocket: PyObject_HEAD; PyObject *Socket; SSL *ssl; ...
        ptr = self._candidate(sslobj, self.ssl_type, ctypes.sizeof(ctypes.c_void_p), "SSL")
        if self.ssl_get_ctx(ptr) != self.ctx_pointer(ctx):
            raise ShimError("SSL pointer self-check failed")
        return ptr

    def checked_ctx_pointer(self, ctx: ssl.SSLContext) -> int:
        ptr = self.ctx_pointer(ctx)
        if self.ctx_get_options(ptr) != int(ctx.options):
            raise ShimError(
                f"SSL_CTX pointer self-check failed for {type(ctx).__module__}."
                f"{type(ctx).__qualname__} (a context that wraps another one?)"
            )
        return ptr

    def disable_session_cache(self, ctx: ssl.SSLContext) -> None:
        ptr = self.checked_ctx_pointer(ctx)
        self.ctx_ctrl(ptr, _SSL_CTRL_SET_SESS_CACHE_MODE, _SSL_SESS_CACHE_OFF, None)

    def set_groups(self, ctx: ssl.SSLContext, groups: Sequence[str]) -> None:
        ptr = self.checked_ctx_pointer(ctx)
        names = ":".join(groups).encode("ascii")
        if self.ctx_ctrl(ptr, _SSL_CTRL_SET_GROUPS_LIST, 0, names) != 1:
            self.err_clear()  # leave no stale error behind for the next ssl call to report
            raise ssl.SSLError(f"OpenSSL rejected the group list {':'.join(groups)!r}")

    def negotiated(self, ptr: int) -> str | None:
        nid = self.ssl_ctrl(ptr, _SSL_CTRL_GET_NEGOTIATED_GROUP, 0, None)
        if nid <= 0:
            return None
        try:
            return self._names[nid]  # a handful of groups: name each NID once per process
        except KeyError:
            pass
        short: bytes | None = self.nid2sn(int(nid))
        name = None
        if short is not None:
            name = _registry.by_openssl_name(short.decode("ascii", "replace"))
        self._names[nid] = name
        return name

    def server_name(self, ptr: int) -> str | None:
        name: bytes | None = self.servername(ptr, 0)  # TLSEXT_NAMETYPE_host_name
        return None if name is None else name.decode("ascii", "replace")


_openssl: _OpenSSL | None
_shim_error: str | None = None
try:
    # Loaded even where set_groups exists: the session cache and SNI still need it.
    _openssl = _OpenSSL()
except (OSError, AttributeError, RuntimeError) as exc:  # pragma: no cover - platform specific
    _shim_error = str(exc) or exc.__class__.__name__
    log.warning("OpenSSL shim unavailable (%s): single key-exchange group, no TLS 1.2", exc)
    _openssl = None


def shim_problem() -> str | None:
    """Why the ctypes shim is unavailable in this process, or ``None`` when it is in use."""
    if _openssl is None:
        return _shim_error or "the OpenSSL shim is disabled"
    return None


def apply_groups(ctx: ssl.SSLContext, groups: Sequence[str]) -> tuple[str, ...]:
    """Restrict *ctx* to exactly *groups* (canonical names, in preference order).

    Returns the groups actually in force: the full list normally, or only the first group when
    neither ``SSLContext.set_groups`` nor the ctypes shim is available.
    """
    wanted = tuple(normalize_group(g) for g in groups)
    if not wanted:
        raise ValueError("at least one key-exchange group is required")
    try:
        _set_group_list(ctx, wanted)
        applied = wanted if _can_set_lists() else wanted[:1]
        why = "no way to set a list"
    except ShimError as exc:  # this context is out of the shim's reach: one curve, still EC only
        ctx.set_ecdh_curve(_openssl_name(wanted[0]))
        applied, why = wanted[:1], str(exc)
    if len(applied) < len(wanted):
        log.warning("only %s is in force (%s); %s dropped", applied[0], why, ", ".join(wanted[1:]))
    _applied[ctx] = applied
    return applied


def _can_set_lists() -> bool:
    return hasattr(ssl.SSLContext, "set_groups") or _openssl is not None


def _set_group_list(ctx: ssl.SSLContext, groups: Sequence[str]) -> None:
    """Put *groups* (canonical names) on *ctx*; ``ssl.SSLError`` if OpenSSL refuses the list."""
    names = [_openssl_name(g) for g in groups]
    native = getattr(ctx, "set_groups", None)
    if native is not None:  # Python 3.15+
        native(":".join(names))
    elif _openssl is not None:
        _openssl.set_groups(ctx, names)
    else:  # pragma: no cover - exercised only where the shim's self-check fails
        ctx.set_ecdh_curve(names[0])


def _openssl_name(name: str) -> str:
    group = _registry.lookup(name)
    return group.openssl_name if group is not None else name


@functools.cache
def group_available(name: str) -> bool:
    """Whether the linked OpenSSL can negotiate group *name* (any spelling the registry knows).

    Asked once per group by putting it alone on a throw-away context (cached). ``False`` for a
    name the registry does not list. Where only ``set_ecdh_curve`` is reachable, finite-field
    and hybrid groups report ``False`` (we could not set them anyway).
    """
    group = _registry.lookup(name)
    if group is None:
        return False
    if not _can_set_lists() and not group.is_ecdhe:  # pragma: no cover
        return False
    try:
        _set_group_list(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), [group.name])
    except (ssl.SSLError, ValueError, ShimError):
        return False
    return True


def disable_session_cache(ctx: ssl.SSLContext) -> bool:
    """Turn off the server's session-ID cache (TLS 1.2 resumption without a new ECDHE).

    ``OP_NO_TICKET`` stops tickets, but OpenSSL still caches sessions by ID on the server, and a
    TLS 1.2 client that presents the ID resumes with the old master secret: no fresh key
    exchange. The ssl module has no switch for it. Returns ``False`` where the shim is
    unavailable (:func:`session_cache_off` says why).
    """
    return session_cache_off(ctx) is None


def session_cache_off(ctx: ssl.SSLContext) -> str | None:
    """Turn the server's session-ID cache off; ``None`` when done, else why it could not be."""
    try:
        if _openssl is None:
            raise ShimError(shim_problem() or "no shim")
        _openssl.disable_session_cache(ctx)
    except ShimError as exc:
        return str(exc)
    return None


def configured_groups(ctx: ssl.SSLContext) -> tuple[str, ...] | None:
    """The groups :func:`apply_groups` put on *ctx*, or ``None`` if it never did."""
    return _applied.get(ctx)


def _ssl_handle(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> tuple[_OpenSSL, int] | None:
    """The shim and the checked ``SSL*`` of a connection, or ``None`` where it cannot reach it."""
    inner = getattr(ssl_object, "_sslobj", None)
    if _openssl is None or inner is None:
        return None
    try:
        return _openssl, _openssl.ssl_pointer(inner, ssl_object.context)
    except RuntimeError:  # pragma: no cover - self-check failed
        return None


_NATIVE_GROUP: Final = hasattr(ssl.SSLObject, "group")  # Python 3.15+


def handshake_facts(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> tuple[str | None, str | None]:
    """``(negotiated_group, sni_server_name)`` of a completed handshake, finding ``SSL*`` once."""
    handle = None
    if _NATIVE_GROUP:
        name: str | None = ssl_object.group()  # type: ignore[union-attr,unused-ignore]
        group = None if name is None else _registry.by_openssl_name(name)
    else:
        handle = _ssl_handle(ssl_object)
        group = handle[0].negotiated(handle[1]) if handle is not None else None
    if not ssl_object.server_side:
        return group, ssl_object.server_hostname
    handle = handle or _ssl_handle(ssl_object)
    return group, handle[0].server_name(handle[1]) if handle is not None else None


def negotiated_group(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    """The key-exchange group of a completed handshake, e.g. ``"X25519"`` or ``"P-256"``.

    Finite-field groups come back under OpenSSL's names (``"ffdhe2048"``). ``None`` before the
    handshake, for a TLS 1.2 non-ECDHE suite, or where no way to ask OpenSSL exists.
    """
    return handshake_facts(ssl_object)[0]


def sni_server_name(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    """The SNI host name a client sent (server side), or the one we sent (client side)."""
    return handshake_facts(ssl_object)[1]
