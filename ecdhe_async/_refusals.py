"""Refused handshakes, visible but bounded: one line each with what the client offered.

A refused handshake (an ffdhe-only or RSA-suite client, TLS 1.1, a missing client certificate) is
what the operator of a forward-secret server wants to see, so it is logged at INFO with the peer,
OpenSSL's reason and what the client offered against what we allow. A flood cannot fill the disk:
at most :attr:`RefusalLog.burst` lines per window, then one summary line
"… and N more handshake failures in the last 10 s" when the window ends.

The server subscribes one :class:`RefusalLog` to its events (:mod:`ecdhe_async.events`,
``HandshakeFailed`` only), with or without the access log: it is the one line per refusal. A
client that went away (timeout, close, reset) is a DEBUG line, not rate-limited; a handshake that
failed the forward-secrecy check was logged at ERROR by :mod:`ecdhe_async.policy` already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

from ._hello import WireFormatError, group_name, parse_client_hello
from ._logfmt import fmt_addr
from .events import HandshakeFailed

__all__ = ["RefusalLog", "describe_offer"]

_HANDSHAKE_RECORD: Final = 22
# The client went away rather than our policy refusing it.
_CLIENT_GONE: Final = frozenset({"timeout", "eof", "reset"})


def describe_offer(hello: bytes | None) -> str:
    """What a ClientHello offered (versions, groups, suites), or ``""`` if it cannot be read."""
    if not hello or len(hello) < 9 or hello[0] != _HANDSHAKE_RECORD:
        return ""
    length = int.from_bytes(hello[6:9], "big")
    message = hello[5 : 9 + length]
    try:
        info = parse_client_hello(message)
    except (WireFormatError, ValueError, IndexError):
        return ""
    versions = info.supported_versions or (info.legacy_version,)
    version_names = [_version(v) for v in versions if (v & 0x0F0F) != 0x0A0A]
    groups = [group_name(g) for g in info.supported_groups if (g & 0x0F0F) != 0x0A0A]
    parts = [f"versions {','.join(version_names) or '?'}"]
    parts.append(f"groups {','.join(groups) if groups else 'none'}")
    parts.append(f"{len(info.cipher_suites)} cipher suites")
    return "; ".join(parts)


def _version(code: int) -> str:
    return {0x0304: "TLSv1.3", 0x0303: "TLSv1.2", 0x0302: "TLSv1.1", 0x0301: "TLSv1"}.get(
        code, f"0x{code:04x}"
    )


class RefusalLog:
    """Rate-limited INFO lines for refused handshakes (one instance per server)."""

    burst = 10
    window = 10.0

    def __init__(self, logger: logging.Logger, allowed: str) -> None:
        self._log = logger
        self._allowed = allowed
        self._window_start = 0.0
        self._count = 0
        self._suppressed = 0
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: HandshakeFailed) -> None:
        """The event subscriber: one line for a refused handshake (DEBUG for a client gone)."""
        if event.reason == "not_forward_secret":
            return  # policy.log_refusal wrote its ERROR line
        peer = fmt_addr(event.peer) if event.peer else "?"
        fields: dict[str, Any] = {
            "event": "handshake_failed",
            "peer": peer,
            "reason": event.reason,
            "phase": event.phase,
            "alert_sent": event.alert_sent,
            "detail": event.detail,
            "duration_ms": round(event.duration * 1e3, 3),
        }
        if event.reason in _CLIENT_GONE:
            if self._log.isEnabledFor(logging.DEBUG):
                self._log.debug(
                    "handshake failed from %s: %s (%s, %s)",
                    peer,
                    event.reason,
                    event.detail,
                    event.phase,
                    extra=fields,
                )
            return
        self.refused(peer, f"{event.reason}: {event.detail}", event.client_hello, fields)

    def refused(
        self, peer: str, reason: str, hello: bytes | None, fields: dict[str, Any] | None = None
    ) -> None:
        """Log one refused handshake (or count it, past the burst); *fields* go on the record."""
        if not self._log.isEnabledFor(logging.INFO):
            return
        now = time.monotonic()
        if now - self._window_start >= self.window:
            self._flush()
            self._window_start = now
            self._count = 0
        self._count += 1
        if self._count > self.burst:
            self._suppressed += 1
            if self._timer is None:
                delay = self._window_start + self.window - now
                self._timer = asyncio.get_running_loop().call_later(delay, self._flush)
            return
        offer = describe_offer(hello)
        self._log.info(
            "handshake failed from %s: %s (offered: %s; allowed: %s)",
            peer,
            reason,
            offer or "unknown",
            self._allowed,
            extra={**(fields or {}), "offer": offer or None},
        )

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._suppressed:
            self._log.info(
                "… and %d more handshake failures in the last %g s",
                self._suppressed,
                self.window,
                extra={"event": "handshake_failed", "suppressed": self._suppressed},
            )
            self._suppressed = 0

    def close(self) -> None:
        """Emit a pending summary now and cancel the timer (server stop)."""
        self._flush()
