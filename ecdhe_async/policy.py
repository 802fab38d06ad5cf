"""The forward-secrecy check that every established connection passes before its handler runs.

The context factories (:mod:`ecdhe_async.tls`) make a non-forward-secret handshake impossible to
*negotiate*; this module makes one impossible to *use*. Whatever built the context (ours, a
caller's ``ssl_context`` restricted by :func:`ecdhe_async.tls.apply_policy`, a context swapped in
by an SNI callback, an OpenSSL whose defaults changed), :func:`check_forward_secret` reads what the
finished handshake really negotiated and names the problem, if any:

- a protocol below TLS 1.2;
- a cipher suite that is not AEAD, or (TLS 1.2) whose key exchange is not ECDHE — RSA key
  transport, finite-field DHE, PSK;
- a key-exchange group that is not elliptic-curve, or not one the settings allow (in TLS 1.3 the
  suite says nothing about the key exchange: only the group does).

What a suite is comes from the linked OpenSSL itself (``SSLContext.get_ciphers()`` reports ``kea``
and ``aead`` for each suite), not from a table of our own. The group comes from
:mod:`ecdhe_async._openssl`; where it cannot be read (no shim) it is known only when the context
allows exactly one group, since OpenSSL cannot negotiate a group outside the context's list.
Anything unknown is a problem: the check fails closed.

The caller closes a refused connection at once, with a fatal alert: OpenSSL has no API to send
an alert once the handshake is complete, so :func:`fatal_alert` hands our own ``SSLObject`` a
record it must reject (a plaintext handshake record where only protected records may come) and
OpenSSL queues the fatal alert it chose, properly protected: ``unexpected_message`` in TLS 1.3,
``internal_error`` in TLS 1.2. The peer sees a failed session, never a clean close_notify that would
look like a normal end; our log says the real reason.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Collection

from . import _openssl
from .errors import HandshakeError
from .groups import lookup

__all__ = ["NotForwardSecretError", "check_forward_secret", "fatal_alert", "log_refusal"]

log = logging.getLogger("ecdhe_async.tls")

_VERSIONS = frozenset({"TLSv1.2", "TLSv1.3"})
# A plaintext handshake record (empty HelloRequest): never valid once records are protected.
_FORGED_RECORD = bytes([0x16, 0x03, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00])


class NotForwardSecretError(HandshakeError):
    """A completed handshake failed :func:`check_forward_secret`; ``problem`` says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"not forward secret: {problem}", reason="not forward secret")
        self.problem = problem


@functools.cache
def _suites() -> dict[str, tuple[str, bool]]:
    """``{suite name: (kea, aead)}`` for every suite the linked OpenSSL knows."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return {c["name"]: (str(c.get("kea", "")), bool(c.get("aead"))) for c in ctx.get_ciphers()}


def _group(ssl_object: ssl.SSLObject | ssl.SSLSocket, group: str | None) -> str | None:
    if group is not None:
        return group
    configured = _openssl.configured_groups(ssl_object.context)
    return configured[0] if configured is not None and len(configured) == 1 else None


def check_forward_secret(
    ssl_object: ssl.SSLObject | ssl.SSLSocket,
    allowed_groups: Collection[str],
    *,
    facts: tuple[str | None, str | None] | None = None,
) -> str | None:
    """Why the finished handshake of *ssl_object* is not forward secret, or ``None`` if it is.

    *allowed_groups* are canonical group names (``settings.tls.groups``). A problem is one
    short phrase, e.g. ``"key exchange ffdhe2048 is not ECDHE"``. *facts* is what
    :func:`ecdhe_async._openssl.handshake_facts` returned for this object, if the caller has it
    (read once per connection).
    """
    version = ssl_object.version()
    if version not in _VERSIONS:
        return f"protocol {version} is below TLS 1.2"
    cipher = ssl_object.cipher()
    name = cipher[0] if cipher else None
    suite = _suites().get(name or "")
    if suite is None:
        return f"cipher suite {name} is unknown to this OpenSSL"
    kea, aead = suite
    if not aead:
        return f"cipher suite {name} is not AEAD"
    if version == "TLSv1.2" and kea != "kx-ecdhe":
        return f"cipher suite {name} has no ECDHE key exchange ({kea or 'unknown'})"
    if facts is None:
        facts = _openssl.handshake_facts(ssl_object)
    group_name = _group(ssl_object, facts[0])
    if group_name is None:
        return "the key-exchange group cannot be determined"
    group = lookup(group_name)
    if group is None or not group.is_ecdhe:
        return f"key exchange {group_name} is not ECDHE"
    if not group.allowed or group.name not in allowed_groups:
        return f"key-exchange group {group.name} is not allowed ({', '.join(allowed_groups)})"
    return None


def log_refusal(problem: str, peer: str) -> str:
    """Log a refused connection at ERROR (once, one line) and return the message."""
    message = f"refused {peer}: not forward secret: {problem}; the connection is closed"
    log.error("%s", message)
    return message


def fatal_alert(
    ssl_object: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
) -> bytes:
    """Make OpenSSL fail *ssl_object* now and return the bytes of its fatal alert to send.

    *incoming* / *outgoing* are the object's memory BIOs. Whatever the peer sent meanwhile and
    OpenSSL had not read is discarded with the session. Returns ``b""`` if OpenSSL queued nothing.
    """
    incoming.write(_FORGED_RECORD)
    try:
        while ssl_object.read(16384):  # bytes the peer sent before ours are dropped
            pass
    except ssl.SSLError:
        pass  # the point: OpenSSL rejected the record and queued its alert
    return outgoing.read()
