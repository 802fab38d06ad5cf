"""Tests for the sans-IO framing cores in :mod:`ecdhe_async.handlers.framing` (pure bytes)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecdhe_async.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ecdhe_async.handlers.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    FrameDecoder,
    LineDecoder,
    encode_frame,
    encode_line,
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, duplicates allowed -> empty chunks)."""
    points = sorted(min(max(c, 0), len(data)) for c in cuts)
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_all(decoder: LineDecoder | FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_defaults() -> None:
    assert DEFAULT_MAX_LINE_LENGTH == 64 * 1024
    assert DEFAULT_MAX_FRAME_SIZE == 16 * 1024 * 1024
    assert LineDecoder().max_line_length == DEFAULT_MAX_LINE_LENGTH
    assert LineDecoder().delimiter == b"\n"
    assert FrameDecoder().max_frame_size == DEFAULT_MAX_FRAME_SIZE
    assert FrameDecoder().header == 4


# ---------------------------------------------------------------------------------------------
# LineDecoder
# ---------------------------------------------------------------------------------------------


def test_lines_basic_and_partial_remainder() -> None:
    dec = LineDecoder()
    assert dec.feed(b"hello\nwor") == [b"hello"]
    assert dec.buffered == 3
    assert dec.feed(b"ld\n") == [b"world"]
    assert dec.buffered == 0
    assert dec.feed(b"") == []
    dec.eof()


def test_lines_byte_by_byte() -> None:
    dec = LineDecoder()
    data = b"a\nbc\n\ndef\n"
    assert feed_all(dec, [data[i : i + 1] for i in range(len(data))]) == [
        b"a",
        b"bc",
        b"",
        b"def",
    ]


def test_lines_crlf_stripped() -> None:
    dec = LineDecoder()
    assert dec.feed(b"one\r\ntwo\nthree\r") == [b"one", b"two"]
    assert dec.feed(b"\n") == [b"three"]


def test_lines_only_one_cr_stripped() -> None:
    assert LineDecoder().feed(b"x\r\r\n\r\n\r") == [b"x\r", b""]


def test_lines_cr_split_from_lf() -> None:
    dec = LineDecoder()
    assert dec.feed(b"abc\r") == []
    assert dec.feed(b"\n") == [b"abc"]


def test_lines_empty_lines() -> None:
    assert LineDecoder().feed(b"\n\n\r\n\n") == [b"", b"", b"", b""]


def test_lines_custom_delimiter_verbatim() -> None:
    dec = LineDecoder(delimiter=b"\r\n")
    assert dec.feed(b"a\nb\r\nc\r") == [b"a\nb"]
    assert dec.feed(b"\n\r\r\n") == [b"c", b"\r"]
    dec0 = LineDecoder(delimiter=b"\0")
    assert dec0.feed(b"x\r\0y\0") == [b"x\r", b"y"]


def test_lines_exact_limit_ok_and_limit_plus_one_fails() -> None:
    dec = LineDecoder(10)
    assert dec.feed(b"x" * 10 + b"\n") == [b"x" * 10]
    with pytest.raises(RemoteProtocolError, match="max_line_length=10"):
        LineDecoder(10).feed(b"x" * 11 + b"\n")


def test_lines_limit_counts_cr() -> None:
    assert LineDecoder(10).feed(b"x" * 9 + b"\r\n") == [b"x" * 9]
    with pytest.raises(RemoteProtocolError):
        LineDecoder(10).feed(b"x" * 10 + b"\r\n")


def test_lines_default_limit() -> None:
    dec = LineDecoder()
    line = b"a" * DEFAULT_MAX_LINE_LENGTH
    assert dec.feed(line[:1000]) == []
    assert dec.feed(line[1000:] + b"\n") == [line]
    with pytest.raises(RemoteProtocolError, match=str(DEFAULT_MAX_LINE_LENGTH)):
        dec.feed(line + b"a")


def test_lines_incomplete_partial_at_limit_is_kept() -> None:
    dec = LineDecoder(10)
    assert dec.feed(b"x" * 10) == []
    assert dec.buffered == 10
    assert dec.feed(b"\n") == [b"x" * 10]


def test_lines_incomplete_over_limit_fails_early() -> None:
    dec = LineDecoder(10)
    assert dec.feed(b"x" * 6) == []
    with pytest.raises(RemoteProtocolError, match="max_line_length=10"):
        dec.feed(b"x" * 5)  # no delimiter yet, but already 11 bytes
    assert dec.buffered == 0  # memory released


def test_lines_huge_chunk_without_delimiter_fails_in_one_feed() -> None:
    with pytest.raises(RemoteProtocolError, match="incomplete line"):
        LineDecoder(1024).feed(b"z" * 1_000_000)


def test_lines_over_limit_after_good_lines_in_same_chunk() -> None:
    with pytest.raises(RemoteProtocolError):
        LineDecoder(4).feed(b"ok\nfine\ntoolong\n")


def test_lines_multibyte_delimiter_prefix_not_counted_early() -> None:
    dec = LineDecoder(4, delimiter=b"\r\n")
    # 4 content bytes + a '\r' that may start the delimiter: not over the limit yet.
    assert dec.feed(b"abcd\r") == []
    assert dec.feed(b"\n") == [b"abcd"]
    dec2 = LineDecoder(4, delimiter=b"\r\n")
    with pytest.raises(RemoteProtocolError):
        dec2.feed(b"abcde")
    dec3 = LineDecoder(4, delimiter=b"\r\n")
    assert dec3.feed(b"abcd\r") == []
    with pytest.raises(RemoteProtocolError):
        dec3.feed(b"x")  # the '\r' was content after all: 6 bytes


def test_lines_delimiter_split_across_feeds() -> None:
    dec = LineDecoder(delimiter=b"<END>")
    assert feed_all(dec, [b"ab<E", b"N", b"D><", b"END>c"]) == [b"ab", b""]
    assert dec.buffered == 1


def test_lines_unusable_after_error() -> None:
    dec = LineDecoder(3)
    with pytest.raises(RemoteProtocolError):
        dec.feed(b"abcd")
    with pytest.raises(RemoteProtocolError, match="already failed"):
        dec.feed(b"\n")
    with pytest.raises(RemoteProtocolError):
        dec.eof()


def test_lines_eof_clean_and_partial() -> None:
    dec = LineDecoder()
    dec.feed(b"done\n")
    dec.eof()
    dec2 = LineDecoder()
    dec2.feed(b"done\npart")
    with pytest.raises(RemoteProtocolError, match="middle of a line"):
        dec2.eof()


def test_lines_eof_with_only_cr_buffered() -> None:
    dec = LineDecoder()
    dec.feed(b"\r")
    with pytest.raises(RemoteProtocolError, match="middle of a line"):
        dec.eof()


def test_lines_invalid_config() -> None:
    with pytest.raises(ValueError, match="max_line_length"):
        LineDecoder(-1)
    with pytest.raises(ValueError, match="delimiter"):
        LineDecoder(delimiter=b"")
    with pytest.raises(ValueError, match="delimiter"):
        encode_line(b"x", b"")


def test_encode_line() -> None:
    assert encode_line(b"hi") == b"hi\n"
    assert encode_line(b"") == b"\n"
    assert encode_line(b"a\nb", b"\0") == b"a\nb\0"
    assert encode_line(b"x\r", b"\r\n") == b"x\r\r\n"


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [
        (b"a\nb", b"\n"),
        (b"\n", b"\n"),
        (b"a\r", b"\n"),  # would be read back as CRLF
        (b"a\r\nb", b"\r\n"),
        (b"xa", b"aa"),  # b"xa" + b"aa" frames as b"x" + b"a"
    ],
)
def test_encode_line_rejects_unframeable(line: bytes, delimiter: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        encode_line(line, delimiter)


def test_errors_are_protocol_errors() -> None:
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(LocalProtocolError, ProtocolError)


@settings(database=None)
@given(
    lines=st.lists(
        st.binary(max_size=40).filter(lambda b: b"\n" not in b and not b.endswith(b"\r")),
        max_size=20,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=30),
)
def test_lines_any_chunking_roundtrips(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_line(line) for line in lines)
    dec = LineDecoder(40)
    assert feed_all(dec, split_at(stream, cuts)) == lines
    assert dec.buffered == 0
    dec.eof()


@settings(database=None)
@given(
    lines=st.lists(st.binary(max_size=30), max_size=15),
    delimiter=st.sampled_from([b"\r\n", b"\0", b"<END>", b"aa"]),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=30),
)
def test_lines_any_chunking_roundtrips_custom_delimiter(
    lines: list[bytes], delimiter: bytes, cuts: list[int]
) -> None:
    encodable = []
    for line in lines:
        try:
            encodable.append(encode_line(line, delimiter))
        except LocalProtocolError:
            continue
        else:
            assert encodable[-1] == line + delimiter
    expected = [e[: -len(delimiter)] for e in encodable]
    dec = LineDecoder(30, delimiter=delimiter)
    assert feed_all(dec, split_at(b"".join(encodable), cuts)) == expected
    dec.eof()


@settings(database=None)
@given(
    data=st.binary(max_size=200),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=20),
)
def test_lines_chunking_never_changes_result_or_error(data: bytes, cuts: list[int]) -> None:
    """Any bytes, any chunking: same lines or the same failure as a single feed."""

    def run(chunks: list[bytes]) -> list[bytes] | None:
        dec = LineDecoder(8)
        try:
            out = feed_all(dec, chunks)
        except RemoteProtocolError:
            return None
        assert dec.buffered <= 8
        return out

    assert run(split_at(data, cuts)) == run([data])


# ---------------------------------------------------------------------------------------------
# FrameDecoder
# ---------------------------------------------------------------------------------------------


def test_frames_basic() -> None:
    dec = FrameDecoder()
    stream = encode_frame(b"hello") + encode_frame(b"") + encode_frame(b"world")
    assert stream[:4] == b"\x00\x00\x00\x05"
    assert dec.feed(stream[:7]) == []
    assert dec.buffered == 7
    assert dec.feed(stream[7:]) == [b"hello", b"", b"world"]
    assert dec.buffered == 0
    dec.eof()


def test_frames_header_2() -> None:
    dec = FrameDecoder(header=2)
    frame = encode_frame(b"abc", header=2)
    assert frame == b"\x00\x03abc"
    assert feed_all(dec, [frame[:1], frame[1:3], frame[3:]]) == [b"abc"]


def test_frames_zero_length() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"\x00\x00\x00\x00" * 3) == [b"", b"", b""]
    assert encode_frame(b"") == b"\x00\x00\x00\x00"
    assert FrameDecoder(0).feed(encode_frame(b"", max_frame_size=0)) == [b""]


def test_frames_exact_limit_ok_and_limit_plus_one_fails() -> None:
    assert FrameDecoder(5).feed(encode_frame(b"12345")) == [b"12345"]
    with pytest.raises(RemoteProtocolError, match="max_frame_size=5"):
        FrameDecoder(5).feed(encode_frame(b"123456"))


def test_frames_oversized_header_fails_before_body() -> None:
    dec = FrameDecoder(1024)
    assert dec.feed(b"\x00\x00") == []
    with pytest.raises(RemoteProtocolError, match="max_frame_size=1024"):
        dec.feed(b"\x04\x01")  # declares 1025 bytes; no body sent at all
    assert dec.buffered == 0
    with pytest.raises(RemoteProtocolError, match="already failed"):
        dec.feed(b"")
    with pytest.raises(RemoteProtocolError):
        dec.eof()


def test_frames_max_declared_length_rejected_by_default() -> None:
    with pytest.raises(RemoteProtocolError, match=str(DEFAULT_MAX_FRAME_SIZE)):
        FrameDecoder().feed(b"\xff\xff\xff\xff")


def test_frames_eof_partial_header_and_body() -> None:
    dec = FrameDecoder()
    dec.feed(b"\x00\x00")
    with pytest.raises(RemoteProtocolError, match="middle of a frame header"):
        dec.eof()
    dec2 = FrameDecoder()
    dec2.feed(b"\x00\x00\x00\x05ab")
    assert dec2.buffered == 6
    with pytest.raises(RemoteProtocolError, match=r"middle of a frame body \(2 of 5"):
        dec2.eof()
    dec3 = FrameDecoder()
    dec3.feed(b"\x00\x00\x00\x05")  # header only: still a partial frame
    assert dec3.buffered == 4
    with pytest.raises(RemoteProtocolError, match="frame body"):
        dec3.eof()


def test_frames_16mib_in_64kib_chunks() -> None:
    payload = bytes(range(256)) * (DEFAULT_MAX_FRAME_SIZE // 256)
    assert len(payload) == DEFAULT_MAX_FRAME_SIZE
    stream = encode_frame(payload) + encode_frame(b"tail")
    dec = FrameDecoder()
    chunk = 64 * 1024
    out = feed_all(dec, [stream[i : i + chunk] for i in range(0, len(stream), chunk)])
    assert len(out) == 2
    assert out[0] == payload
    assert out[1] == b"tail"
    assert dec.buffered == 0


def test_frames_many_tiny_frames_in_one_feed() -> None:
    payloads = [(i % 65536).to_bytes(2, "big")[: i % 3] for i in range(100_000)]
    stream = b"".join(encode_frame(p, header=2) for p in payloads)
    dec = FrameDecoder(header=2)
    assert dec.feed(stream) == payloads
    assert dec.buffered == 0


def test_frames_many_tiny_lines_in_one_feed() -> None:
    lines = [str(i).encode() for i in range(100_000)]
    assert LineDecoder().feed(b"".join(encode_line(line) for line in lines)) == lines


@pytest.mark.parametrize("header", [0, 1, 3, 8, True])
def test_frames_invalid_header(header: int) -> None:
    with pytest.raises(ValueError, match="header"):
        FrameDecoder(header=header)
    with pytest.raises(ValueError, match="header"):
        encode_frame(b"", header=header)


def test_frames_invalid_limit() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(-1)


def test_encode_frame_too_large() -> None:
    with pytest.raises(LocalProtocolError, match="max_frame_size=3"):
        encode_frame(b"1234", max_frame_size=3)
    assert encode_frame(b"123", max_frame_size=3) == b"\x00\x00\x00\x03123"
    assert len(encode_frame(b"x" * 65535, header=2)) == 65537
    with pytest.raises(LocalProtocolError, match="65535"):
        encode_frame(b"x" * 65536, header=2)


@settings(database=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    header=st.sampled_from([2, 4]),
    cuts=st.lists(st.integers(min_value=0, max_value=7000), max_size=30),
)
def test_frames_any_chunking_roundtrips(
    payloads: list[bytes], header: int, cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(p, header=header, max_frame_size=300) for p in payloads)
    dec = FrameDecoder(300, header=header)
    assert feed_all(dec, split_at(stream, cuts)) == payloads
    assert dec.buffered == 0
    dec.eof()


@settings(database=None)
@given(
    payloads=st.lists(st.binary(max_size=50), min_size=1, max_size=10),
    drop=st.integers(min_value=1, max_value=53),
)
def test_frames_truncated_stream_fails_at_eof(payloads: list[bytes], drop: int) -> None:
    """Cutting anywhere inside the last frame (header or body) leaves a partial frame."""
    last = encode_frame(payloads[-1])
    stream = b"".join(encode_frame(p) for p in payloads)
    drop = min(drop, len(last) - 1)
    dec = FrameDecoder()
    dec.feed(stream[:-drop])
    with pytest.raises(RemoteProtocolError, match="connection closed in the middle of a frame"):
        dec.eof()
