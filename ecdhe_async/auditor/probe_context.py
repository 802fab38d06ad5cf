"""Client contexts for the audit's probes — deliberately able to make offers ours never make.

Theory of operation
-------------------
To learn whether a server *accepts* finite-field DH, RSA key transport, TLS 1.0 or a ``psk_ke``
resumption, a client has to offer exactly that and nothing else. The contexts built here do: one
group alone, one TLS 1.2 key-exchange class alone, a legacy version at ``@SECLEVEL=0`` (OpenSSL 3
refuses TLS < 1.2 and SHA-1 signatures at its default level 1 and above, client side too).

That makes this module the opposite of :mod:`ecdhe_async.tls`, and it must stay separate: the
server and the client never import it, and nothing here is reachable from their settings (a test
checks both). Probe contexts never verify the peer — the audit tests key exchange, not trust —
except the one built by :func:`verify_context`, which only checks the certificate.

Where this OpenSSL (or this Python) cannot make an offer — a group it does not know, a version
it has compiled out — the builder raises :class:`NotTestable`, and the probe is reported as "not
tested", never as a pass.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .. import _openssl
from ..groups import Group

__all__ = ["NotTestable", "Offer", "TicketCounter", "probe_context", "verify_context"]

# SSL_OP_ALLOW_NO_DHE_KEX: let a TLS 1.3 client offer psk_ke (resumption without (EC)DHE). The ssl
# module does not name it; the bit is stable across OpenSSL 1.1.1 to 3.x.
OP_ALLOW_NO_DHE_KEX: Final = 1 << 10
# TLS handshake message type of NewSessionTicket (RFC 8446 §4), as the message callback sees it.
_NEW_SESSION_TICKET: Final = 4


class NotTestable(Exception):
    """This OpenSSL/Python cannot make the offer a probe needs; the reason is the message."""


@dataclass(frozen=True, slots=True)
class Offer:
    """What a probe's ClientHello offers."""

    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    #: OpenSSL cipher string for TLS ≤ 1.2 (``None``: OpenSSL's default list).
    ciphers: str | None = None
    #: Groups, in order (``None``: OpenSSL's default list).
    groups: tuple[Group, ...] | None = None
    #: Offer session tickets (TLS 1.2 ``session_ticket`` extension).
    tickets: bool = True
    #: Also offer ``psk_ke`` (TLS 1.3 resumption without (EC)DHE).
    allow_no_dhe_kex: bool = False


class TicketCounter:
    """Counts the NewSessionTicket messages a connection on a probe context receives.

    Python has no public hook for it; CPython's ``SSLContext._msg_callback`` (a debugging hook
    over ``SSL_CTX_set_msg_callback``) is used where it exists. ``count`` is ``None`` without it.
    """

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.count: int | None = None
        if hasattr(ctx, "_msg_callback"):
            self.count = 0
            ctx._msg_callback = self._seen

    def _seen(self, _conn: Any, direction: str, _v: Any, _ct: Any, msg_type: Any, _d: Any) -> None:
        if direction == "read" and msg_type == _NEW_SESSION_TICKET and self.count is not None:
            self.count += 1


def _unverified_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the audit tests key exchange; verify_context checks trust
    return ctx


def _set_groups(ctx: ssl.SSLContext, groups: tuple[Group, ...]) -> None:
    names = [g.openssl_name for g in groups]
    native: Callable[[str], None] | None = getattr(ctx, "set_groups", None)
    try:
        if native is not None:  # Python 3.15+
            native(":".join(names))
            return
        shim = _openssl._openssl  # the ctypes shim; None where its self-check failed
        if shim is None:
            raise NotTestable("this Python cannot set a TLS group list (OpenSSL shim unavailable)")
        shim.set_groups(ctx, names)
    except ssl.SSLError as exc:
        raise NotTestable(f"this OpenSSL ({ssl.OPENSSL_VERSION}) has no {':'.join(names)}") from exc


def probe_context(offer: Offer) -> tuple[ssl.SSLContext, TicketCounter]:
    """A fresh client context making exactly *offer* (never verifying the peer).

    Raises :class:`NotTestable` where this OpenSSL cannot make the offer.
    """
    ctx = _unverified_client()
    try:
        with warnings.catch_warnings():
            # TLSVersion.TLSv1/TLSv1_1 are deprecated; offering them is the point of the probe.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = offer.minimum
            ctx.maximum_version = offer.maximum
        if offer.ciphers is not None:
            ctx.set_ciphers(offer.ciphers)
    except (ssl.SSLError, ValueError) as exc:
        raise NotTestable(f"this OpenSSL cannot offer that: {exc}") from exc
    if offer.groups is not None:
        _set_groups(ctx, offer.groups)
    if not offer.tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if offer.allow_no_dhe_kex:
        ctx.options |= OP_ALLOW_NO_DHE_KEX
        if not ctx.options & OP_ALLOW_NO_DHE_KEX:
            raise NotTestable("this OpenSSL does not let a client offer psk_ke")
    return ctx, TicketCounter(ctx)


def verify_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """A client context that verifies chain and host name (trusting *ca_file*, or the system)."""
    ctx = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
