"""Wire helpers for the ECDHE exchange tests, written independently of the module under test so
that they also pin the wire format: ``type (1) || length (2, big endian) || body``; a HELLO body is
``version || role || len(curve) || curve || public key``."""

from __future__ import annotations

HELLO, AUTH = 0x01, 0x02
INITIATOR, RESPONDER = 0x01, 0x02


def frame(msg_type: int, body: bytes) -> bytes:
    """One frame of the exchange."""
    return bytes([msg_type]) + len(body).to_bytes(2, "big") + body


def hello(curve: str, public: bytes, *, role: int = RESPONDER, version: int = 1) -> bytes:
    """A HELLO frame (from a responder unless told otherwise)."""
    name = curve.encode()
    return frame(HELLO, bytes([version, role, len(name)]) + name + public)
