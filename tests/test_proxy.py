"""Tests for the sans-IO PROXY protocol parser in :mod:`ecdhe_async.proxy` (pure bytes)."""

from __future__ import annotations

import ipaddress
import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecdhe_async.errors import LocalProtocolError, RemoteProtocolError
from ecdhe_async.proxy import (
    DEFAULT_MAX_V2_LENGTH,
    V1_MAX_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderReader,
    ProxyProtocolError,
    encode_v1,
    encode_v2,
    is_trusted,
)

HELLO = b"\x16\x03\x01\x00\xc8\x01"  # the start of a TLS ClientHello


def read_all(data: bytes, mode: str = "auto") -> tuple[ProxyHeader, bytes]:
    header, rest = ProxyHeaderReader(mode).feed(data)  # type: ignore[arg-type]
    assert header is not None
    return header, rest


# -- v1 ---------------------------------------------------------------------------------------


def test_v1_tcp4() -> None:
    header, rest = read_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n" + HELLO)
    assert header == ProxyHeader(1, "PROXY", "TCP4", ("203.0.113.7", 51234), ("192.0.2.1", 443))
    assert rest == HELLO
    assert not header.local


def test_v1_tcp6_and_unknown() -> None:
    header, _ = read_all(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", "v1")
    assert header.source == ("2001:db8::1", 1)
    assert header.destination == ("::1", 65535)
    for line in (b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n"):
        header, rest = read_all(line + b"x")
        assert header.family == "UNKNOWN"
        assert header.source is None
        assert rest == b"x"


def test_v1_longest_valid_header_is_107_bytes() -> None:
    ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    line = f"PROXY UNKNOWN {ip} {ip} 65535 65535\r\n".encode()
    assert len(line) == V1_MAX_LENGTH
    assert read_all(line)[0].family == "UNKNOWN"
    with pytest.raises(ProxyProtocolError, match="without CRLF"):
        ProxyHeaderReader().feed(line[:-2] + b"0\r\n")


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  # LF only
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",  # a port missing
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",  # port out of range
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",  # leading zero
        b"PROXY TCP4 ::1 ::1 1 2\r\n",  # family mismatch
        b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",  # ambiguous octal
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
    ],
)
def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        ProxyHeaderReader("v1").feed(line)


# -- v2 ---------------------------------------------------------------------------------------


def test_v2_tcp4_with_tlvs() -> None:
    h = ProxyHeader(
        2, "PROXY", "TCP4", ("10.0.0.1", 1000), ("10.0.0.2", 443), ((0xEA, b"\x01vpce-1"),)
    )
    header, rest = read_all(encode_v2(h) + HELLO, "v2")
    assert header == h
    assert rest == HELLO


def test_v2_local_health_check() -> None:
    raw = V2_SIGNATURE + b"\x20\x00\x00\x00"
    header, rest = read_all(raw)
    assert header.local
    assert header.command == "LOCAL"
    assert header.source is None
    assert rest == b""
    # LOCAL with addresses: the addresses are ignored, as the specification says
    local = encode_v2(ProxyHeader(2, "PROXY", "TCP4", ("1.1.1.1", 1), ("2.2.2.2", 2)))
    local = local[:12] + b"\x20" + local[13:]
    assert read_all(local)[0] == ProxyHeader(2, "LOCAL", "TCP4")


def test_v2_unix_family_has_no_address() -> None:
    header, _ = read_all(encode_v2(ProxyHeader(2, "PROXY", "UNIX")))
    assert header.family == "UNIX"
    assert header.source is None


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x11\x11\x00\x0c" + bytes(12), "version 1"),
        (b"\x22\x11\x00\x0c" + bytes(12), "unknown command"),
        (b"\x21\x12\x00\x0c" + bytes(12), "UDP"),
        (b"\x21\x41\x00\x00", "unknown address family"),
        (b"\x21\x11\x00\x08" + bytes(8), "fewer than its addresses"),
        (b"\x21\x00\x00\x00", "UNSPEC"),
        (b"\x21\x11\x00\x0e" + bytes(12) + b"\x01\x00", "truncated TLV"),
        (b"\x21\x11\x00\x0f" + bytes(12) + b"\x01\x00\x09", "overruns"),
        (b"\x21\x11" + struct.pack("!H", DEFAULT_MAX_V2_LENGTH), "exceeds"),
    ],
)
def test_v2_malformed(tail: bytes, reason: str) -> None:
    with pytest.raises(ProxyProtocolError, match=reason):
        ProxyHeaderReader().feed(V2_SIGNATURE + tail)


def test_oversized_v2_rejected_before_its_body() -> None:
    reader = ProxyHeaderReader(max_v2_length=600)
    with pytest.raises(ProxyProtocolError, match="600-byte limit"):
        reader.feed(V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 600))


# -- detection and reader state ---------------------------------------------------------------


def test_missing_header_fails_on_first_byte() -> None:
    for mode in ("v1", "v2", "auto"):
        with pytest.raises(ProxyProtocolError, match="starts with a TLS record"):
            ProxyHeaderReader(mode).feed(HELLO[:1])
    with pytest.raises(ProxyProtocolError, match="no PROXY v2 header"):
        ProxyHeaderReader("v2").feed(b"PROXY TCP4")
    with pytest.raises(ProxyProtocolError, match="no PROXY v1 header"):
        ProxyHeaderReader("v1").feed(V2_SIGNATURE[:3])


def test_reader_stays_failed_and_refuses_after_header() -> None:
    reader = ProxyHeaderReader()
    with pytest.raises(ProxyProtocolError):
        reader.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(ProxyProtocolError):
        reader.feed(b"PROXY UNKNOWN\r\n")
    ok = ProxyHeaderReader()
    ok.feed(b"PROXY UNKNOWN\r\n")
    with pytest.raises(LocalProtocolError):
        ok.feed(b"more")


def test_buffered_counts_an_incomplete_header() -> None:
    reader = ProxyHeaderReader()
    assert reader.buffered == 0
    reader.feed(b"PROXY TCP4 ")
    assert reader.buffered == 11
    reader.feed(b"1.2.3.4 5.6.7.8 1 2\r\n")
    assert reader.buffered == 0


def test_errors_are_remote_protocol_errors() -> None:
    assert issubclass(ProxyProtocolError, RemoteProtocolError)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        ProxyHeaderReader("off")
    with pytest.raises(ValueError, match="max_v2_length"):
        ProxyHeaderReader(max_v2_length=10)
    with pytest.raises(LocalProtocolError):
        encode_v2(ProxyHeader(2, "PROXY", "TCP4"))


def test_is_trusted() -> None:
    nets = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert is_trusted(("127.0.0.5", 1), nets)
    assert is_trusted(("::1", 1, 0, 0), nets)
    assert is_trusted(("::ffff:127.0.0.1", 1, 0, 0), nets)
    assert not is_trusted(("10.0.0.1", 1), nets)
    assert not is_trusted(("::2", 1, 0, 0), nets)
    assert not is_trusted(None, nets)
    assert not is_trusted(("not-an-ip", 1), nets)


# -- properties -------------------------------------------------------------------------------

ports = st.integers(0, 65535)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
tlvs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=5).map(tuple)


@st.composite
def headers(draw: st.DrawFn, version: int) -> ProxyHeader:
    family = draw(st.sampled_from(["TCP4", "TCP6"]))
    ip = ipv4 if family == "TCP4" else ipv6
    return ProxyHeader(
        version,  # type: ignore[arg-type]
        "PROXY",
        family,
        (draw(ip), draw(ports)),
        (draw(ip), draw(ports)),
        draw(tlvs) if version == 2 else (),
    )


def encode(header: ProxyHeader) -> bytes:
    return encode_v1(header) if header.version == 1 else encode_v2(header)


any_header = st.one_of(headers(1), headers(2))


@given(any_header, st.binary(max_size=20), st.lists(st.integers(0, 200), max_size=6))
def test_round_trip_in_any_chunking(header: ProxyHeader, rest: bytes, cuts: list[int]) -> None:
    data = encode(header) + rest
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    reader = ProxyHeaderReader("auto")
    got: ProxyHeader | None = None
    tail = b""
    for a, b in itertools.pairwise(bounds):
        if got is None:
            got, tail = reader.feed(data[a:b])
        else:
            tail += data[a:b]
    assert got == header
    assert tail == rest


@given(any_header)
def test_every_truncation_is_incomplete_not_an_error(header: ProxyHeader) -> None:
    data = encode(header)
    for n in range(len(data)):
        assert ProxyHeaderReader().feed(data[:n]) == (None, b"")


@given(st.binary(max_size=300), st.sampled_from(["v1", "v2", "auto"]))
@settings(max_examples=500)
def test_random_bytes_raise_only_our_error(data: bytes, mode: str) -> None:
    reader = ProxyHeaderReader(mode)  # type: ignore[arg-type]
    try:
        reader.feed(data)
    except ProxyProtocolError:
        pass


@given(any_header, st.binary(min_size=1, max_size=8), st.integers(0, 200))
def test_corrupted_headers_raise_only_our_error(header: ProxyHeader, junk: bytes, at: int) -> None:
    data = bytearray(encode(header))
    pos = at % len(data)
    data[pos : pos + len(junk)] = junk
    try:
        ProxyHeaderReader().feed(bytes(data))
    except ProxyProtocolError:
        pass
