"""The ClientHello parser: what a client offered (versions, groups, key shares, suites). Pure.

The server reads a refused client's offer from here (for a log line that says what it offered
against what we allow), and the guide builds its wire walkthrough on the same cursor and parser
(:mod:`ecdhe_async.guide.wire`). Bytes in, a frozen dataclass out; malformed input raises
:class:`WireFormatError` naming the message and the field, never ``IndexError``. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from . import groups

__all__ = [
    "CLIENT_HELLO",
    "EXT_KEY_SHARE",
    "EXT_SUPPORTED_GROUPS",
    "EXT_SUPPORTED_VERSIONS",
    "HANDSHAKE",
    "ClientHelloInfo",
    "Cursor",
    "KeyShare",
    "WireFormatError",
    "group_name",
    "handshake_body",
    "is_grease",
    "key_share_entry",
    "parse_client_hello",
    "u16_list",
]

HANDSHAKE: Final = 22  # TLS record content type
CLIENT_HELLO: Final = 1

EXT_SUPPORTED_GROUPS: Final = 10
EXT_SUPPORTED_VERSIONS: Final = 43
EXT_KEY_SHARE: Final = 51


def is_grease(code: int) -> bool:
    """A GREASE value (RFC 8701: ``0x0A0A``, ``0x1A1A``, ... ``0xFAFA``), not a real code."""
    return code & 0x0F0F == 0x0A0A and code >> 8 == code & 0xFF


def group_name(code: int) -> str:
    """IANA named group code -> our name (``0x001d`` -> ``"X25519"``), else GREASE or hex.

    Read from the one group registry, :mod:`ecdhe_async.groups`.
    """
    group = groups.by_iana(code)
    if group is not None:
        return group.name
    return "GREASE" if is_grease(code) else f"0x{code:04x}"


class WireFormatError(ValueError):
    """A handshake message is truncated or malformed (names the message and the field)."""


class Cursor:
    """Bounds-checked big-endian reads over one message; every overrun is a WireFormatError."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def take(self, n: int, field: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise WireFormatError(
                f"{self._what}: truncated {field} (needs {n} bytes, "
                f"{len(self._data) - self._pos} left)"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "big")

    def vector(self, length_size: int, field: str) -> bytes:
        return self.take(self.uint(length_size, f"{field} length"), field)

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def end(self, field: str) -> None:
        if self.remaining:
            raise WireFormatError(f"{self._what}: {self.remaining} unexpected bytes after {field}")


def handshake_body(msg: bytes, msg_type: int, what: str) -> bytes:
    """Check the 4-byte handshake header (type, 24-bit length) and return the body."""
    msg = bytes(msg)
    if len(msg) < 4:
        raise WireFormatError(f"{what}: {len(msg)} bytes is shorter than a handshake header")
    if msg[0] != msg_type:
        raise WireFormatError(f"{what}: handshake type {msg[0]}, expected {msg_type}")
    length = int.from_bytes(msg[1:4], "big")
    if length != len(msg) - 4:
        raise WireFormatError(f"{what}: header says {length} bytes, body has {len(msg) - 4}")
    return msg[4:]


def u16_list(data: bytes, what: str, field: str) -> tuple[int, ...]:
    if len(data) % 2:
        raise WireFormatError(f"{what}: {field} has an odd length ({len(data)})")
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def extensions(cur: Cursor, what: str) -> dict[int, bytes]:
    """The extensions block (absent in a bare TLS 1.2 hello) as {type: data}; no duplicates."""
    if cur.remaining == 0:
        return {}
    block = Cursor(cur.vector(2, "extensions"), what)
    cur.end("extensions")
    found: dict[int, bytes] = {}
    while block.remaining:
        ext_type = block.uint(2, "extension type")
        data = block.vector(2, f"extension {ext_type}")
        if ext_type in found:
            raise WireFormatError(f"{what}: duplicate extension {ext_type}")
        found[ext_type] = data
    return found


@dataclass(frozen=True, slots=True)
class KeyShare:
    """One key_share entry: the group and the size of its public key (the bytes are public)."""

    group: int
    size: int

    @property
    def group_name(self) -> str:
        """The group's name, e.g. ``"X25519"``."""
        return group_name(self.group)

    def __str__(self) -> str:
        return f"{self.group_name} ({self.size} bytes)"


def key_share_entry(cur: Cursor) -> KeyShare:
    group = cur.uint(2, "key share group")
    key = cur.vector(2, "key share key_exchange")
    return KeyShare(group, len(key))


@dataclass(frozen=True, slots=True)
class ClientHelloInfo:
    """What a ClientHello offered."""

    legacy_version: int
    cipher_suites: tuple[int, ...]
    supported_groups: tuple[int, ...]
    key_shares: tuple[KeyShare, ...]
    supported_versions: tuple[int, ...]
    extensions: tuple[int, ...]


def parse_client_hello(msg: bytes) -> ClientHelloInfo:
    """Parse a ClientHello handshake message (with its 4-byte header).

    Reads supported_groups (extension 10), key_share (51) and supported_versions (43); every
    other extension is listed by number only.
    """
    what = "ClientHello"
    cur = Cursor(handshake_body(msg, CLIENT_HELLO, what), what)
    legacy_version = cur.uint(2, "legacy_version")
    cur.take(32, "random")
    session_id = cur.vector(1, "legacy_session_id")
    if len(session_id) > 32:
        raise WireFormatError(f"{what}: session id of {len(session_id)} bytes (max 32)")
    suites = u16_list(cur.vector(2, "cipher_suites"), what, "cipher_suites")
    cur.vector(1, "compression_methods")
    exts = extensions(cur, what)

    groups: tuple[int, ...] = ()
    if EXT_SUPPORTED_GROUPS in exts:
        g = Cursor(exts[EXT_SUPPORTED_GROUPS], f"{what} supported_groups")
        groups = u16_list(g.vector(2, "named_group_list"), what, "supported_groups")
        g.end("named_group_list")
    shares: list[KeyShare] = []
    if EXT_KEY_SHARE in exts:
        k = Cursor(exts[EXT_KEY_SHARE], f"{what} key_share")
        entries = Cursor(k.vector(2, "client_shares"), f"{what} key_share")
        k.end("client_shares")
        while entries.remaining:
            shares.append(key_share_entry(entries))
    versions: tuple[int, ...] = ()
    if EXT_SUPPORTED_VERSIONS in exts:
        v = Cursor(exts[EXT_SUPPORTED_VERSIONS], f"{what} supported_versions")
        versions = u16_list(v.vector(1, "versions"), what, "supported_versions")
        v.end("versions")
    return ClientHelloInfo(
        legacy_version=legacy_version,
        cipher_suites=suites,
        supported_groups=groups,
        key_shares=tuple(shares),
        supported_versions=versions,
        extensions=tuple(exts),
    )
