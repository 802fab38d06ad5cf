"""Exception hierarchy shared by every ecdhe_async module.

Errors are split by blame, as in h11: :class:`RemoteProtocolError` means the peer misbehaved
(the connection is closed, the server keeps serving); :class:`LocalProtocolError` means our own
code or the application used the API wrongly.
"""

from __future__ import annotations

__all__ = [
    "CertificateError",
    "ConfigError",
    "ECDHEAsyncError",
    "HandshakeError",
    "KeyExchangeError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
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
