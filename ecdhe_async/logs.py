"""Logs for people and for machines, written from the server's events.

- :class:`AccessLog` subscribes to a server's events: one INFO line per closed connection (the
  access log, ``access_log = false`` turns it off), refused handshakes at INFO rate-limited (always
  on: an ffdhe-only or TLS 1.1 client is what an operator of a forward-secret server wants to see),
  certificate reloads. Every line carries its fields as ``LogRecord`` attributes too.
- :class:`JSONFormatter` writes one JSON object per line: ``ts``, ``level``, ``logger``, ``msg``
  and, for connection events, ``peer``, ``version``, ``cipher``, ``group``, ``sni``,
  ``duration_ms``, ``bytes_in``, ``bytes_out``, ``reason`` ... as fields. The stdlib ``json``
  module does the encoding (quotes, control characters, non-ASCII), so no library is needed.
- :func:`escape` makes a peer-controlled string (SNI, ALPN, certificate subject) safe for a text
  log: non-printable, non-ASCII, space, quote and backslash characters become ``\\xNN`` escapes
  (a client cannot forge a field or a line) and the length is bounded.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, Literal

from .events import (
    CertificateReloaded,
    ConnectionClosed,
    ConnectionRefused,
    Event,
    HandshakeFailed,
    RateLimit,
)

__all__ = ["FIELDS", "AccessLog", "JSONFormatter", "LogFormat", "configure_logging", "escape"]

LogFormat = Literal["text", "json"]

log = logging.getLogger("ecdhe_async.access")

#: Longest peer-controlled string a log line carries (an SNI host name is at most 253 bytes).
MAX_PEER_TEXT: Final = 256
#: ``LogRecord`` attributes that :class:`JSONFormatter` writes as fields, in this order.
FIELDS: Final = (
    "event",
    "peer",
    "version",
    "cipher",
    "group",
    "sni",
    "alpn",
    "client_subject",
    "duration_ms",
    "handshake_ms",
    "bytes_in",
    "bytes_out",
    "cause",
    "reason",
    "phase",
    "alert_sent",
    "detail",
    "limit",
    "suppressed",
)
# Failures that are the client going away rather than our policy refusing it: DEBUG only.
_QUIET_REASONS: Final = frozenset({"timeout", "eof", "reset"})
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-_:/@*+=,;!~#$%&()\[\]{}<>?^|'`]")


def escape(text: str | None, limit: int = MAX_PEER_TEXT) -> str:
    """*text* made safe for a text log line: escaped, at most *limit* characters (+ ``...``)."""
    if text is None:
        return "-"
    cut = text[:limit]
    safe = _UNSAFE.sub(_escape_char, cut)
    return safe + "..." if len(text) > limit else safe


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _bounded(text: str | None) -> str | None:
    return None if text is None else text[:MAX_PEER_TEXT]


def fmt_peer(peer: Iterable[Any] | None) -> str:
    """``host:port`` (``[v6]:port``) of a peer address tuple, ``?`` when unknown."""
    if not peer:
        return "?"
    host, port = tuple(peer)[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class AccessLog:
    """Event subscriber writing the access log and the refused-handshake lines.

    *access_log* controls the per-connection INFO line only; refused handshakes are always logged,
    at most *burst* lines per *window* seconds, then one note of how many were left out.
    """

    def __init__(self, *, access_log: bool = True, burst: int = 10, window: float = 10.0) -> None:
        self.access_log = access_log
        self._refusals = RateLimit(burst, window)

    def __call__(self, event: Event) -> None:
        if isinstance(event, ConnectionClosed):
            if self.access_log and log.isEnabledFor(logging.INFO):
                self._closed(event)
        elif isinstance(event, HandshakeFailed):
            self._failed(event)
        elif isinstance(event, ConnectionRefused):
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "refused %s: %s",
                    fmt_peer(event.peer),
                    event.limit,
                    extra={
                        "event": "connection_refused",
                        "peer": fmt_peer(event.peer),
                        "limit": event.limit,
                    },
                )
        elif isinstance(event, CertificateReloaded):
            self._reloaded(event)

    def _closed(self, e: ConnectionClosed) -> None:
        peer = fmt_peer(e.peer)
        log.info(
            "closed %s %s %s group=%s handshake=%.1fms in=%d out=%d sni=%s cause=%s",
            peer,
            e.version,
            e.cipher,
            e.group,
            e.handshake_duration * 1e3,
            e.bytes_in,
            e.bytes_out,
            escape(e.sni),
            e.cause,
            extra={
                "event": "connection_closed",
                "peer": peer,
                "version": e.version,
                "cipher": e.cipher,
                "group": e.group,
                "sni": _bounded(e.sni),
                "alpn": _bounded(e.alpn),
                "client_subject": _bounded(e.client_subject),
                "handshake_ms": round(e.handshake_duration * 1e3, 3),
                "duration_ms": round(e.duration * 1e3, 3),
                "bytes_in": e.bytes_in,
                "bytes_out": e.bytes_out,
                "cause": e.cause,
            },
        )

    def _failed(self, e: HandshakeFailed) -> None:
        quiet = e.reason in _QUIET_REASONS
        level = logging.DEBUG if quiet else logging.INFO
        if not log.isEnabledFor(level):
            return
        suppressed = 0
        if not quiet:
            allowed, suppressed = self._refusals.allow()
            if not allowed:
                return
        peer = fmt_peer(e.peer)
        more = f" ({suppressed} more refused since the last line)" if suppressed else ""
        log.log(
            level,
            "handshake refused from %s: %s (%s, %s%s)%s",
            peer,
            e.reason,
            e.detail,
            "alert sent, " if e.alert_sent else "",
            e.phase,
            more,
            extra={
                "event": "handshake_failed",
                "peer": peer,
                "reason": e.reason,
                "phase": e.phase,
                "alert_sent": e.alert_sent,
                "detail": e.detail,
                "duration_ms": round(e.duration * 1e3, 3),
                "suppressed": suppressed,
            },
        )

    def _reloaded(self, e: CertificateReloaded) -> None:
        if e.result == "ok":
            log.info(
                "certificates reloaded: %s",
                ", ".join(
                    f"{escape(c.server_name)} serial {c.serial} until {c.not_after:%Y-%m-%d}"
                    for c in e.certificates
                ),
                extra={"event": "certificate_reloaded", "reason": "ok"},
            )
        else:
            log.warning(
                "certificate reload failed, still serving the last good ones: %s",
                e.error,
                extra={"event": "certificate_reloaded", "reason": "error"},
            )


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``msg``,
    the event fields present on the record (:data:`FIELDS`), and ``exc`` with a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        attrs = record.__dict__
        for name in FIELDS:
            value = attrs.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        # ensure_ascii: control and non-ASCII characters become \\u escapes; default=str for
        # anything exotic an application logs. One line per record, always.
        return json.dumps(out, ensure_ascii=True, default=str)


_TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | None = "info", fmt: LogFormat = "text") -> None:
    """Root logging to stderr, as text (the default) or JSON lines (``log_format = "json"``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, (level or "info").upper()), handlers=[handler])
