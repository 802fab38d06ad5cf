"""Logs for people and for machines, written from the server's events.

- :class:`AccessLog` subscribes to a server's ``ConnectionClosed`` events: one INFO line per closed
  connection (the access log; ``access_log = false`` does not subscribe it at all). Refused
  handshakes are logged, rate-limited, by :class:`~ecdhe_async._refusals.RefusalLog`, another
  subscriber, either way. Every line carries its fields as ``LogRecord`` attributes too.
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
from datetime import UTC, datetime
from typing import Any, Final, Literal

from ._logfmt import fmt_addr
from .events import ConnectionClosed

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
    "offer",
    "suppressed",
)
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


class AccessLog:
    """Event subscriber (``ConnectionClosed`` only) writing the access log: one INFO line per
    closed connection. The server subscribes it only when ``access_log`` is on; refused handshakes
    are :class:`~ecdhe_async._refusals.RefusalLog`'s lines, with or without it."""

    def __call__(self, event: ConnectionClosed) -> None:
        if log.isEnabledFor(logging.INFO):
            self._closed(event)

    def _closed(self, e: ConnectionClosed) -> None:
        peer = fmt_addr(e.peer) if e.peer else "?"
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


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``msg``,
    the event fields present on the record (:data:`FIELDS`), and ``exc`` with a traceback."""

    def __init__(self, *, pid: bool = False) -> None:
        super().__init__()
        self.pid = pid

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.pid:
            out["pid"] = record.process
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


def configure_logging(
    level: str | None = "info", fmt: LogFormat = "text", *, pid: bool = False
) -> None:
    """Root logging to stderr, as text (the default) or JSON lines (``log_format = "json"``).

    *pid* (worker processes) adds the process id (a ``pid`` field in JSON). Called again, it
    re-formats the handlers already set up (the CLI sets up text logging before reading settings).
    """
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JSONFormatter(pid=pid)
    else:
        pid_part = "[%(process)d] " if pid else ""
        formatter = logging.Formatter(
            f"%(asctime)s %(levelname)-7s {pid_part}%(name)s: %(message)s"
        )
    # Not in the format: not collected per record either (os.getpid() is a syscall per line).
    logging.logThreads = logging.logMultiprocessing = False
    logging.logProcesses = pid
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    logging.basicConfig(level=getattr(logging, (level or "info").upper()), handlers=[handler])
    for existing in logging.getLogger().handlers:
        existing.setFormatter(formatter)
