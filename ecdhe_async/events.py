"""Typed events of a server: the one source for access logs, metrics and tests.

A :class:`~ecdhe_async.server.TLSServer` emits one frozen dataclass per fact worth recording:

- :class:`HandshakeCompleted`: version, cipher, key-exchange group, SNI, ALPN, client subject,
  handshake duration;
- :class:`HandshakeFailed`: a *normalised* reason (:data:`FailureReason`, a small closed set, never
  free text from a peer), the phase, whether a TLS alert went back, OpenSSL's own reason code;
- :class:`ConnectionClosed`: the connection's facts plus duration, bytes each way and the cause;
- :class:`ConnectionRefused`: a limit turned a connection away before its handshake finished;
- :class:`CertificateReloaded`: a certificate reload, kept or refused, and what is now served.

Subscribers are plain synchronous callables (``server.subscribe(callback)`` returns the function
that unsubscribes). They run inline, on the loop thread, in the order they subscribed: keep them
cheap (count, format, enqueue). An exception in a subscriber is logged (rate-limited) and
swallowed: observing a connection never breaks it.

Label safety: every field a metric uses as a label is drawn from a bounded set (the reasons
below, the limits, the causes; versions, ciphers and groups are what *our* context negotiated).
Peer-controlled strings (SNI, ALPN, subjects) are carried as data, never as labels.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from .policy import NotForwardSecretError

if TYPE_CHECKING:
    from .certs import CertInfo
    from .connection import Connection

__all__ = [
    "CertificateFacts",
    "CertificateReloaded",
    "CloseCause",
    "ConnectionClosed",
    "ConnectionRefused",
    "Event",
    "EventBus",
    "FailureReason",
    "HandshakeCompleted",
    "HandshakeFailed",
    "Phase",
    "RateLimit",
    "RefusalLimit",
    "classify_failure",
]

log = logging.getLogger("ecdhe_async.events")

#: Why a handshake failed, normalised. A closed set, so it is safe as a metric label.
FailureReason: TypeAlias = Literal[
    "no_shared_group",  # e.g. an ffdhe-only TLS 1.3 client: no key share we accept
    "no_shared_cipher",  # e.g. an RSA key-transport or CBC-only TLS 1.2 client
    "not_forward_secret",  # a finished handshake failed our own check (policy.check_forward_secret)
    "protocol_version",  # TLS 1.1 and older, or TLS 1.2 against the modern profile
    "certificate_required",  # client_auth=required and the client sent no certificate
    "bad_certificate",  # the client's certificate failed verification
    "peer_alert",  # the client aborted with an alert (e.g. it rejected our certificate)
    "not_tls",  # plain HTTP, garbage, an oversized record
    "timeout",  # handshake_timeout passed
    "eof",  # the client closed the connection mid-handshake
    "reset",  # the client reset the connection mid-handshake
    "other",
]
#: Where a handshake failed: before the ClientHello's first byte, or during the TLS handshake.
#: (``proxy_header`` is for the PROXY-protocol reader.)
Phase: TypeAlias = Literal["waiting", "proxy_header", "handshake"]
#: Why an established connection ended.
CloseCause: TypeAlias = Literal["peer_close", "idle", "limit", "stop", "error"]
#: Which limit turned a connection away.
RefusalLimit: TypeAlias = Literal[
    "max_connections", "max_pending_handshakes", "buffer_budget", "proxy_header"
]

FAILURE_REASONS: Final[tuple[str, ...]] = FailureReason.__args__  # type: ignore[attr-defined]
REFUSAL_LIMITS: Final[tuple[str, ...]] = RefusalLimit.__args__  # type: ignore[attr-defined]
CLOSE_CAUSES: Final[tuple[str, ...]] = CloseCause.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _TLSFacts:
    """What a connection's handshake negotiated (shared by the completed and closed events)."""

    peer: tuple[Any, ...] | None
    version: str | None
    cipher: str | None
    group: str | None
    sni: str | None
    alpn: str | None
    client_subject: str | None


def _facts(conn: Connection) -> dict[str, Any]:
    t = conn.tls
    return {
        "peer": conn.peer,
        "version": t.version,
        "cipher": t.cipher,
        "group": t.group,
        "sni": t.server_name,
        "alpn": t.alpn,
        "client_subject": t.peer_subject,
    }


@dataclass(frozen=True, slots=True)
class HandshakeCompleted(_TLSFacts):
    """A TLS handshake succeeded; ``duration`` is seconds from the first byte to its end."""

    duration: float

    @classmethod
    def of(cls, conn: Connection) -> HandshakeCompleted:
        """The event for a connection whose handshake just completed."""
        return cls(**_facts(conn), duration=conn.handshake_duration)


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """A TLS handshake failed. ``reason`` is normalised; ``detail`` is OpenSSL's reason code
    (``NO_SHARED_CIPHER``) or the exception's class, never text the peer chose."""

    peer: tuple[Any, ...] | None
    phase: Phase
    reason: FailureReason
    alert_sent: bool
    detail: str
    duration: float
    #: The first bytes the client sent (its ClientHello), to say what it offered; not logged as is.
    client_hello: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ConnectionClosed(_TLSFacts):
    """An established connection ended. ``duration`` counts from the end of the handshake."""

    handshake_duration: float
    duration: float
    bytes_in: int
    bytes_out: int
    cause: CloseCause

    @classmethod
    def of(cls, conn: Connection, duration: float, cause: CloseCause) -> ConnectionClosed:
        """The event for a connection that just closed after *duration* seconds."""
        return cls(
            **_facts(conn),
            handshake_duration=conn.handshake_duration,
            duration=duration,
            bytes_in=conn.bytes_in,
            bytes_out=conn.bytes_out,
            cause=cause,
        )


@dataclass(frozen=True, slots=True)
class ConnectionRefused:
    """A connection was turned away (or dropped before its handshake) by *limit*."""

    peer: tuple[Any, ...] | None
    limit: RefusalLimit


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What a served certificate says: the name it is served for, serial, expiry (UTC)."""

    server_name: str
    serial: str
    not_after: datetime

    @classmethod
    def from_info(cls, names: tuple[str, ...], info: CertInfo) -> CertificateFacts:
        """From a served certificate's summary: its first configured SNI name, else its first
        DNS name, else its subject."""
        dns = [san.removeprefix("DNS:") for san in info.sans if san.startswith("DNS:")]
        name = names[0] if names else (dns[0] if dns else info.subject)
        return cls(server_name=name, serial=info.serial_number, not_after=info.not_after)


@dataclass(frozen=True, slots=True)
class CertificateReloaded:
    """A certificate reload: ``ok`` (now serving *certificates*) or ``error`` (kept the last
    good ones; *error* says why)."""

    result: Literal["ok", "error"]
    certificates: tuple[CertificateFacts, ...] = ()
    error: str | None = None


Event: TypeAlias = (
    HandshakeCompleted
    | HandshakeFailed
    | ConnectionClosed
    | ConnectionRefused
    | CertificateReloaded
)
Subscriber: TypeAlias = Callable[[Event], object]
EVENT_TYPES: Final[tuple[type, ...]] = (
    HandshakeCompleted,
    HandshakeFailed,
    ConnectionClosed,
    ConnectionRefused,
    CertificateReloaded,
)

# OpenSSL reason codes (ssl.SSLError.reason) → normalised reason. Checked against real peers in
# tests/test_events.py (ffdhe-only, RSA key transport, TLS 1.1, no client certificate, ...).
_SSL_REASONS: Final[dict[str, FailureReason]] = {
    "NO_SUITABLE_KEY_SHARE": "no_shared_group",
    "NO_SHARED_GROUPS": "no_shared_group",
    "NO_SUITABLE_GROUPS": "no_shared_group",
    "NO_SHARED_CIPHER": "no_shared_cipher",
    "NO_CIPHERS_AVAILABLE": "no_shared_cipher",
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "WRONG_SSL_VERSION": "protocol_version",
    "VERSION_TOO_LOW": "protocol_version",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "certificate_required",
    "CERTIFICATE_VERIFY_FAILED": "bad_certificate",
    "HTTP_REQUEST": "not_tls",
    "HTTPS_PROXY_REQUEST": "not_tls",
    "WRONG_VERSION_NUMBER": "not_tls",
    "PACKET_LENGTH_TOO_LONG": "not_tls",
    "RECORD_LENGTH_MISMATCH": "not_tls",
}
# Local failures after which OpenSSL queues no alert (the input was not TLS at all).
_NO_ALERT: Final = frozenset({"HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "WRONG_VERSION_NUMBER"})


def classify_failure(exc: BaseException | None) -> tuple[FailureReason, bool, str]:
    """``(reason, alert_sent, detail)`` for the exception a failed server handshake raised.

    *alert_sent* is true when OpenSSL failed the handshake itself and queued a fatal alert (our
    TLS layer sends it before closing); false for a peer's own alert, a timeout, a closed or reset
    connection, and for input that was not TLS at all. *detail* is OpenSSL's reason code or the
    exception's class name: bounded, never peer text.
    """
    if exc is None:
        return "eof", False, "closed"
    if isinstance(exc, NotForwardSecretError):  # the pump sent OpenSSL's fatal alert
        return "not_forward_secret", True, "NOT_FORWARD_SECRET"
    if isinstance(exc, ssl.SSLError):
        code = str(getattr(exc, "reason", None) or type(exc).__name__)
        if code.startswith(("TLSV1_ALERT_", "SSLV3_ALERT_", "TLSV13_ALERT_")):
            return "peer_alert", False, code
        if isinstance(exc, ssl.SSLCertVerificationError):
            return "bad_certificate", True, code
        if isinstance(exc, ssl.SSLEOFError) or code == "UNEXPECTED_EOF_WHILE_READING":
            return "eof", False, code
        return _SSL_REASONS.get(code, "other"), code not in _NO_ALERT, code
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timeout", False, name
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset", False, name
    if isinstance(exc, ConnectionError | EOFError):
        return "eof", False, name
    return "other", False, name


class RateLimit:
    """At most *burst* events per *window* seconds; :meth:`allow` also returns how many were
    suppressed since the last allowed one (for an "… and N more" note)."""

    __slots__ = ("_count", "_start", "_suppressed", "burst", "window")

    def __init__(self, burst: int = 10, window: float = 10.0) -> None:
        self.burst = burst
        self.window = window
        self._start = -window
        self._count = 0
        self._suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """``(allowed, suppressed_before)``: whether to log this one, and how many were not."""
        now = time.monotonic()
        if now - self._start >= self.window:
            self._start, self._count = now, 0
        self._count += 1
        if self._count > self.burst:
            self._suppressed += 1
            return False, 0
        suppressed, self._suppressed = self._suppressed, 0
        return True, suppressed


class EventBus:
    """Synchronous fan-out of events to subscribers; a failing subscriber never hurts the caller.

    A subscriber may ask for some event types only (``kinds``); :meth:`wants` tells an emitter
    whether anybody listens for a type, so that it can skip building the event (and any work for
    it) when nobody does. ``bool(bus)`` is false while nobody listens at all.
    """

    __slots__ = ("_by_kind", "_errors", "_subscribers")

    def __init__(self) -> None:
        self._subscribers: tuple[tuple[Subscriber, frozenset[type] | None], ...] = ()
        self._by_kind: dict[type, tuple[Subscriber, ...]] = {}
        self._errors = RateLimit(burst=5, window=60.0)

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def wants(self, kind: type) -> bool:
        """True if a subscriber listens for events of type *kind*."""
        return kind in self._by_kind

    def subscribe(
        self, callback: Subscriber, kinds: tuple[type, ...] | None = None
    ) -> Callable[[], None]:
        """Call *callback(event)* for every event (of *kinds*, if given) from now on; returns the
        unsubscribe function."""
        entry = (callback, frozenset(kinds) if kinds is not None else None)
        self._subscribers = (*self._subscribers, entry)
        self._index()

        def unsubscribe() -> None:
            self._subscribers = tuple(e for e in self._subscribers if e is not entry)
            self._index()

        return unsubscribe

    def _index(self) -> None:
        by_kind: dict[type, tuple[Subscriber, ...]] = {}
        for kind in EVENT_TYPES:
            callbacks = tuple(cb for cb, ks in self._subscribers if ks is None or kind in ks)
            if callbacks:
                by_kind[kind] = callbacks
        self._by_kind = by_kind

    def emit(self, event: Event) -> None:
        """Deliver *event* to its subscribers (exceptions are logged, rate-limited, dropped)."""
        for callback in self._by_kind.get(type(event), ()):
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not reach the connection
                allowed, suppressed = self._errors.allow()
                if allowed:
                    more = f" ({suppressed} more since the last report)" if suppressed else ""
                    log.exception(
                        "event subscriber %r failed on %s%s",
                        getattr(callback, "__qualname__", callback),
                        type(event).__name__,
                        more,
                    )
