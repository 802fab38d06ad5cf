"""Sans-IO PROXY protocol v1 and v2 parser: who the client really is, behind a load balancer.

An L4 load balancer (HAProxy, Envoy, AWS NLB) that forwards a TCP connection hides the client's
address: the server sees the balancer's. With the PROXY protocol
(https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt) the balancer sends one header first,
before any TLS byte, naming the original source and destination. Version 1 is one text line,
``PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\\r\\n``; version 2 is binary (a 12-byte signature,
command, family, length, addresses, then type-length-value extensions such as AWS's VPC endpoint
id, which :class:`ProxyHeader` keeps raw in ``tlvs``).

Like :mod:`ecdhe_async.handlers.framing`, :class:`ProxyHeaderReader` is a pure state machine:
:meth:`~ProxyHeaderReader.feed` it whatever arrived and it returns ``(header, rest)`` once the
header is complete (``rest`` are the bytes after it: the start of the TLS ClientHello), or
``(None, b"")`` while more is needed. It never reads, writes or sleeps. A peer that sends anything
but a valid header gets a :class:`ProxyProtocolError` (a
:class:`~ecdhe_async.errors.RemoteProtocolError`) as early as the bytes prove it: a TLS
ClientHello instead of a header fails on its first byte. A reader that raised stays failed.

Whom to believe is the caller's job: a header is only trustworthy from the balancer itself, so the
server checks the connection's source against ``proxy_trusted`` (:func:`is_trusted`) before it
reads a byte.

Limits
------
* v1: :data:`V1_MAX_LENGTH` = **107** bytes, the specification's own worst case
  (``PROXY UNKNOWN`` with two full IPv6 addresses and ports, CRLF included).
* v2: :data:`DEFAULT_MAX_V2_LENGTH` = **4096** bytes for the whole header. The format allows
  16 + 65535; real balancers send far less (HAProxy's TLVs: ALPN, authority, a unique id of at
  most 128 bytes, an SSL sub-TLV; AWS: a VPC endpoint id of ~30 bytes). 4 KiB fits all of them
  and caps what one unauthenticated connection can make us buffer before its TLS handshake. The
  declared length is checked as soon as the 16-byte fixed part has arrived.

v2 ``LOCAL`` (health checks from the balancer itself) and v1 ``UNKNOWN`` are accepted: the
header then carries no client address (``source is None``) and the connection's own address
stands. UDP families are refused (this is a TCP server); ``AF_UNIX`` is accepted with
``source is None``.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_V2_LENGTH",
    "V1_MAX_LENGTH",
    "V2_SIGNATURE",
    "ProxyHeader",
    "ProxyHeaderReader",
    "ProxyMode",
    "ProxyProtocolError",
    "encode_v1",
    "encode_v2",
    "is_trusted",
]

ProxyMode = Literal["off", "v1", "v2", "auto"]
Address = tuple[str, int]

V1_MAX_LENGTH: Final = 107
"""The longest valid v1 header, CRLF included (the specification's figure)."""

DEFAULT_MAX_V2_LENGTH: Final = 4096
"""Default cap on a whole v2 header (16-byte fixed part + addresses + TLVs)."""

V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX: Final = b"PROXY "
_V2_FIXED: Final = 16
_PORT = r"(?:0|[1-9][0-9]{0,4})"
_V1_LINE: Final = re.compile(
    rb"PROXY (?:UNKNOWN(?: [^\r\n]*)?|(TCP4|TCP6) ([0-9a-fA-F.:]+) ([0-9a-fA-F.:]+) "
    + _PORT.encode()
    + b" "
    + _PORT.encode()
    + rb")\r\n\Z"
)
_V1_PORTS: Final = re.compile(rb" ([0-9]+) ([0-9]+)\r\n\Z")

# v2 family byte (high nibble address family, low nibble transport) -> (name, address bytes)
_V2_FAMILIES: Final = {
    0x00: ("UNSPEC", 0),
    0x11: ("TCP4", 12),
    0x21: ("TCP6", 36),
    0x31: ("UNIX", 216),
}
_V2_UDP: Final = frozenset({0x12, 0x22, 0x32})
_V2_FAMILY_BYTE: Final = {name: byte for byte, (name, _) in _V2_FAMILIES.items()}


class ProxyProtocolError(RemoteProtocolError):
    """The peer sent no valid PROXY header (missing, malformed, oversized or truncated)."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One decoded PROXY header.

    ``command`` is ``"PROXY"`` (a relayed connection) or ``"LOCAL"`` (the balancer's own, e.g. a
    health check). ``family`` is ``"TCP4"``, ``"TCP6"``, ``"UNIX"`` or ``"UNKNOWN"``/``"UNSPEC"``.
    ``source`` / ``destination`` are ``(ip, port)`` of the original client and of the address it
    connected to, or ``None`` when the header carries none. ``tlvs`` are v2's extensions, raw
    ``(type, value)`` pairs in the order received.
    """

    version: Literal[1, 2]
    command: Literal["PROXY", "LOCAL"] = "PROXY"
    family: str = "UNKNOWN"
    source: Address | None = None
    destination: Address | None = None
    tlvs: tuple[tuple[int, bytes], ...] = field(default_factory=tuple)

    @property
    def local(self) -> bool:
        """True for a v2 ``LOCAL`` command (the balancer speaking for itself)."""
        return self.command == "LOCAL"


class ProxyHeaderReader:
    """Incremental reader of one PROXY header at the start of a connection.

    :param mode: ``"v1"``, ``"v2"`` or ``"auto"`` (either, told apart by the first byte).
    :param max_v2_length: cap on a whole v2 header, see :data:`DEFAULT_MAX_V2_LENGTH`.
    """

    __slots__ = ("_buf", "_error", "_max_v2", "_mode", "header")

    def __init__(
        self, mode: ProxyMode = "auto", *, max_v2_length: int = DEFAULT_MAX_V2_LENGTH
    ) -> None:
        if mode not in ("v1", "v2", "auto"):
            raise ValueError(f"mode must be 'v1', 'v2' or 'auto', got {mode!r}")
        if max_v2_length < _V2_FIXED + 36:
            raise ValueError(f"max_v2_length must be at least {_V2_FIXED + 36}")
        self._mode = mode
        self._max_v2 = max_v2_length
        self._buf = bytearray()
        self._error: ProxyProtocolError | None = None
        self.header: ProxyHeader | None = None

    @property
    def buffered(self) -> int:
        """Bytes received of a header not yet complete (0 before the first byte and after)."""
        return len(self._buf)

    def feed(self, data: bytes) -> tuple[ProxyHeader | None, bytes]:
        """Add *data*; return ``(header, rest)`` once complete, else ``(None, b"")``.

        Raises :class:`ProxyProtocolError` as soon as the bytes cannot start a valid header, and
        again on every later call. After the header, ``feed`` must not be called again.
        """
        if self._error is not None:
            raise self._error
        if self.header is not None:
            raise LocalProtocolError("the PROXY header was already read")
        self._buf += data
        try:
            result = self._parse()
        except ProxyProtocolError as exc:
            self._buf = bytearray()
            self._error = exc
            raise
        if result is None:
            return None, b""
        self.header, used = result
        rest = bytes(self._buf[used:])
        self._buf = bytearray()
        return self.header, rest

    def _parse(self) -> tuple[ProxyHeader, int] | None:
        buf = self._buf
        n = min(len(buf), len(V2_SIGNATURE))
        if self._mode != "v1" and buf[:n] == V2_SIGNATURE[:n]:
            return _parse_v2(buf, self._max_v2) if n == len(V2_SIGNATURE) else None
        n = min(len(buf), len(_V1_PREFIX))
        if self._mode != "v2" and buf[:n] == _V1_PREFIX[:n]:
            return _parse_v1(buf) if n == len(_V1_PREFIX) else None
        what = "a TLS record" if buf[:1] == b"\x16" else "something else"
        want = {"v1": "v1", "v2": "v2", "auto": "v1 or v2"}[self._mode]
        raise ProxyProtocolError(f"no PROXY {want} header: the connection starts with {what}")


def _parse_v1(buf: bytearray) -> tuple[ProxyHeader, int] | None:
    end = buf.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end < 0:
        if len(buf) >= V1_MAX_LENGTH or b"\n" in buf:
            raise ProxyProtocolError(f"PROXY v1 header without CRLF in {V1_MAX_LENGTH} bytes")
        return None
    line = bytes(buf[: end + 2])
    match = _V1_LINE.match(line)
    if match is None:
        raise ProxyProtocolError(f"malformed PROXY v1 header {_show(line)}")
    family = match.group(1)
    if family is None:
        return ProxyHeader(version=1, family="UNKNOWN"), end + 2
    ports = _V1_PORTS.search(line)
    assert ports is not None  # the line matched the full pattern
    src = _ip(match.group(2), family)
    dst = _ip(match.group(3), family)
    sport, dport = int(ports.group(1)), int(ports.group(2))
    if sport > 0xFFFF or dport > 0xFFFF:
        raise ProxyProtocolError(f"port out of range in PROXY v1 header {_show(line)}")
    name = family.decode()
    return ProxyHeader(1, "PROXY", name, (src, sport), (dst, dport)), end + 2


def _ip(text: bytes, family: bytes) -> str:
    try:
        addr = ipaddress.ip_address(text.decode("ascii"))
    except ValueError:
        raise ProxyProtocolError(f"invalid address {_show(text)} in PROXY v1 header") from None
    if addr.version != (4 if family == b"TCP4" else 6):
        raise ProxyProtocolError(f"address {addr} does not match family {family.decode()}")
    return str(addr)


def _parse_v2(buf: bytearray, limit: int) -> tuple[ProxyHeader, int] | None:
    if len(buf) < _V2_FIXED:
        return None
    ver_cmd, fam, length = struct.unpack_from("!BBH", buf, 12)
    total = _V2_FIXED + length
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 header with version {ver_cmd >> 4}")
    command = ver_cmd & 0x0F
    if command > 1:
        raise ProxyProtocolError(f"PROXY v2 header with unknown command {command:#x}")
    if total > limit:
        raise ProxyProtocolError(f"PROXY v2 header of {total} bytes exceeds the {limit}-byte limit")
    if fam in _V2_UDP:
        raise ProxyProtocolError("PROXY v2 header for a UDP connection on a TCP server")
    if fam not in _V2_FAMILIES:
        raise ProxyProtocolError(f"PROXY v2 header with unknown address family {fam:#04x}")
    family, addr_len = _V2_FAMILIES[fam]
    if length < addr_len:
        raise ProxyProtocolError(
            f"PROXY v2 {family} header declares {length} bytes, fewer than its addresses"
        )
    if len(buf) < total:
        return None
    body = bytes(buf[_V2_FIXED:total])
    tlvs = _parse_tlvs(body[addr_len:])
    source = destination = None
    if family == "TCP4":
        src, dst, sport, dport = struct.unpack_from("!4s4sHH", body)
        source = (str(ipaddress.IPv4Address(src)), sport)
        destination = (str(ipaddress.IPv4Address(dst)), dport)
    elif family == "TCP6":
        src, dst, sport, dport = struct.unpack_from("!16s16sHH", body)
        source = (str(ipaddress.IPv6Address(src)), sport)
        destination = (str(ipaddress.IPv6Address(dst)), dport)
    if command == 0:  # LOCAL: the addresses, if any, are to be ignored
        return ProxyHeader(2, "LOCAL", family, None, None, tlvs), total
    if family == "UNSPEC":
        raise ProxyProtocolError("PROXY v2 PROXY command with family UNSPEC")
    return ProxyHeader(2, "PROXY", family, source, destination, tlvs), total


def _parse_tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            raise ProxyProtocolError("PROXY v2 header with a truncated TLV")
        kind, size = struct.unpack_from("!BH", data, pos)
        pos += 3
        if len(data) - pos < size:
            raise ProxyProtocolError(f"PROXY v2 TLV {kind:#04x} overruns the header")
        out.append((kind, data[pos : pos + size]))
        pos += size
    return tuple(out)


def _show(data: bytes) -> str:
    """A short, printable rendering of peer bytes for one log line."""
    return repr(data[:64])[1:] + ("..." if len(data) > 64 else "")


# -- encoding (for tests, clients and tools; the server only reads) --------------------------


def encode_v1(header: ProxyHeader) -> bytes:
    """The v1 text form of *header* (``UNKNOWN`` when it has no TCP4/TCP6 addresses)."""
    if header.family not in ("TCP4", "TCP6") or header.source is None or header.destination is None:
        return b"PROXY UNKNOWN\r\n"
    (src, sport), (dst, dport) = header.source, header.destination
    return f"PROXY {header.family} {src} {dst} {sport} {dport}\r\n".encode("ascii")


def encode_v2(header: ProxyHeader) -> bytes:
    """The v2 binary form of *header*, TLVs included."""
    family = header.family if header.family in _V2_FAMILY_BYTE else "UNSPEC"
    body = b""
    if family in ("TCP4", "TCP6"):
        if header.source is None or header.destination is None:
            raise LocalProtocolError(f"a {family} header needs source and destination")
        size = 4 if family == "TCP4" else 16
        body = (
            ipaddress.ip_address(header.source[0]).packed.rjust(size, b"\0")
            + ipaddress.ip_address(header.destination[0]).packed.rjust(size, b"\0")
            + struct.pack("!HH", header.source[1], header.destination[1])
        )
    elif family == "UNIX":
        body = bytes(216)
    for kind, value in header.tlvs:
        body += struct.pack("!BH", kind, len(value)) + value
    if len(body) > 0xFFFF:
        raise LocalProtocolError("PROXY v2 header too long")
    ver_cmd = 0x20 | (0 if header.local else 1)
    return V2_SIGNATURE + struct.pack("!BBH", ver_cmd, _V2_FAMILY_BYTE[family], len(body)) + body


# -- trust -----------------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(peer: Sequence[Any] | None, networks: Iterable[Network]) -> bool:
    """True if the connection's source address *peer* lies in one of *networks*.

    IPv4-mapped IPv6 sources (``::ffff:127.0.0.1`` on a dual-stack socket) count as IPv4.
    """
    if not peer:
        return False
    try:
        addr = ipaddress.ip_address(str(peer[0]).partition("%")[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in networks)
