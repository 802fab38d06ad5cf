"""Exception hierarchy shared by every ecdhe_async module.

Errors are split by blame, as in h11: :class:`RemoteProtocolError` means the peer misbehaved
(the connection is closed, the server keeps serving); :class:`LocalProtocolError` means our own
code or the application used the API wrongly.
"""

from __future__ import annotations

import ssl
from typing import Final

__all__ = [
    "CertificateError",
    "ConfigError",
    "ECDHEAsyncError",
    "HandshakeError",
    "KeyExchangeError",
    "LocalProtocolError",
    "ProtocolError",
    "RejectedByPeerError",
    "RemoteProtocolError",
    "rejection",
]


class ECDHEAsyncError(Exception):
    """Base class of every error raised by ecdhe_async."""


class ConfigError(ECDHEAsyncError, ValueError):
    """A setting is invalid. ``str(err)`` is one line per bad field, naming it."""


class CertificateError(ECDHEAsyncError, ValueError):
    """A certificate or private key cannot be created, read or used."""


class KeyExchangeError(ECDHEAsyncError, ValueError):
    """A raw ECDHE exchange failed (invalid peer key, bad framing, bad signature)."""


class HandshakeError(ECDHEAsyncError, ConnectionError):
    """A TLS handshake failed; ``reason`` is OpenSSL's short reason when known."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class ProtocolError(ECDHEAsyncError):
    """Base class of framing errors."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol (over-long line, oversized frame, truncated frame...)."""


class LocalProtocolError(ProtocolError):
    """We (or the application) tried to send something the protocol does not allow."""


class RejectedByPeerError(HandshakeError, ssl.SSLError):  # type: ignore[misc]
    """The server refused us after our side of a TLS 1.3 handshake was done (client certificate).

    In TLS 1.3 the client finishes first; the server checks the client's certificate after that
    and answers with an alert, so the refusal shows on the first read. Also an ``ssl.SSLError``.
    """

    def __str__(self) -> str:  # SSLError's own would print the args tuple
        return str(self.args[0]) if self.args else ""


NEED_CERT_HINT: Final = "the server requires a client certificate: pass --certfile and --keyfile"


def rejection(exc: ssl.SSLError) -> BaseException:
    """A post-handshake alert about our certificate, as a clear :class:`HandshakeError`."""
    reason = str(getattr(exc, "reason", "") or "")
    if "ALERT" not in reason or not ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason):
        return exc
    if "CERTIFICATE_REQUIRED" in reason:
        message = f"the server refused the handshake ({exc}): {NEED_CERT_HINT}"
    else:
        message = f"the server refused our client certificate ({exc})"
    err = RejectedByPeerError(message, reason=reason)
    err.__cause__ = exc
    return err
