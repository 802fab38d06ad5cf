"""The exchange's sans-IO codec (ecdhe_async.ecdhe.wire): byte fixtures and properties, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecdhe_async.ecdhe import (
    MAX_FRAME_BODY,
    Auth,
    Hello,
    LocalExchangeError,
    MessageDecoder,
    RemoteExchangeError,
    Role,
    encode_message,
)
from ecdhe_async.ecdhe.wire import Message
from ecdhe_async.errors import KeyExchangeError, LocalProtocolError, RemoteProtocolError
from tests.ecdheutil import AUTH, HELLO, INITIATOR, frame, hello


def decode(data: bytes, *, eof: bool = False) -> list[Message]:
    decoder = MessageDecoder()
    messages = decoder.feed(data)
    if eof:
        decoder.eof()
    return messages


# --- encoding -------------------------------------------------------------------------------------


def test_hello_wire_format() -> None:
    public = bytes(range(32))
    assert encode_message(Hello(Role.INITIATOR, "X25519", public)) == hello(
        "X25519", public, role=INITIATOR
    )
    assert encode_message(Hello(Role.RESPONDER, "P-256", b"\x04")) == (
        b"\x01\x00\x09" + bytes([1, 2, 5]) + b"P-256" + b"\x04"
    )
    assert decode(frame(HELLO, bytes([1, 2, 5]) + b"P-256" + b"\x04")) == [
        Hello(Role.RESPONDER, "P-256", b"\x04")
    ]


def test_auth_wire_format() -> None:
    assert encode_message(Auth(b"ab")) == b"\x02\x00\x02ab"
    assert encode_message(Auth()) == b"\x02\x00\x00"


def test_encoder_bounds_the_body() -> None:
    assert len(encode_message(Auth(bytes(MAX_FRAME_BODY)))) == 3 + MAX_FRAME_BODY
    with pytest.raises(LocalExchangeError, match="AUTH frame: its body of 1025 bytes exceeds"):
        encode_message(Auth(bytes(MAX_FRAME_BODY + 1)))
    with pytest.raises(LocalExchangeError, match="HELLO frame"):
        encode_message(Hello(Role.INITIATOR, "X25519", bytes(MAX_FRAME_BODY)))


@pytest.mark.parametrize(
    ("curve", "pattern"), [("X\u00e9", "not ASCII"), ("X" * 256, "too long \\(max 255\\)")]
)
def test_encoder_refuses_unsendable_curve_names(curve: str, pattern: str) -> None:
    with pytest.raises(LocalExchangeError, match=pattern):
        encode_message(Hello(Role.INITIATOR, curve, b"\x01"))


def test_errors_are_split_by_blame() -> None:
    assert issubclass(RemoteExchangeError, RemoteProtocolError)
    assert issubclass(LocalExchangeError, LocalProtocolError)
    for cls in (
        RemoteExchangeError,
        LocalExchangeError,
    ):  # old `except KeyExchangeError` still works
        assert issubclass(cls, KeyExchangeError)


# --- decoding: byte fixtures ----------------------------------------------------------------------

PUBLIC = bytes(range(1, 33))
VALID_HELLO = hello("X25519", PUBLIC)


def test_decodes_hello_then_auth_and_keeps_trailing_data() -> None:
    decoder = MessageDecoder()
    assert decoder.bytes_needed == 3
    assert decoder.feed(VALID_HELLO + frame(AUTH, b"sig") + b"app data") == [
        Hello(Role.RESPONDER, "X25519", PUBLIC),
        Auth(b"sig"),
    ]
    assert decoder.done
    assert decoder.bytes_needed == 0
    assert decoder.trailing_data == b"app data"
    assert decoder.feed(b" more") == []
    assert decoder.trailing_data == b"app data more"
    decoder.eof()  # fine once the exchange is complete


def test_bytes_needed_never_reaches_past_the_exchange() -> None:
    stream = VALID_HELLO + frame(AUTH, b"") + b"APP"
    decoder, offset, steps = MessageDecoder(), 0, []
    while not decoder.done:
        n = decoder.bytes_needed
        steps.append(n)
        decoder.feed(stream[offset : offset + n])
        offset += n
    assert steps == [3, len(VALID_HELLO) - 3, 3]  # header, body, header of an empty AUTH
    assert stream[offset:] == b"APP"
    assert decoder.trailing_data == b""


def test_hello_accepts_any_curve_name_and_key_length() -> None:
    """Structure only: the protocol, not the codec, compares the curve and validates the key."""
    assert decode(frame(HELLO, b"\x01\x01\x00")) == [Hello(Role.INITIATOR, "", b"")]


@pytest.mark.parametrize(
    ("script", "eof", "pattern"),
    [
        pytest.param(b"", True, r"truncated HELLO frame header: .* after 0 of 3 bytes", id="eof"),
        pytest.param(b"\x01\x00", True, r"truncated HELLO frame header", id="short-header"),
        pytest.param(
            frame(HELLO, b"\x01\x02")[:-1], True, r"truncated HELLO frame body", id="short-body"
        ),
        pytest.param(
            VALID_HELLO[:20], True, r"truncated HELLO frame body: .* 17 of 41", id="half-hello"
        ),
        pytest.param(b"\x01\xff\xff", False, r"oversized HELLO frame: 65535 bytes", id="oversized"),
        pytest.param(
            b"\x01" + (MAX_FRAME_BODY + 1).to_bytes(2, "big"),
            False,
            r"oversized HELLO frame: 1025 bytes exceeds the maximum of 1024",
            id="just-oversized",
        ),
        pytest.param(
            frame(0x07, b""),
            False,
            r"expected a HELLO frame, got message type 0x07",
            id="unknown-type",
        ),
        pytest.param(
            frame(AUTH, b""),
            False,
            r"expected a HELLO frame, got message type 0x02",
            id="auth-first",
        ),
        pytest.param(
            frame(HELLO, b"\x01"), False, r"malformed HELLO: 1 bytes is too short", id="tiny-hello"
        ),
        pytest.param(
            hello("X25519", b"\x09" * 32, version=2),
            False,
            r"unsupported protocol version 2",
            id="version",
        ),
        pytest.param(
            hello("X25519", b"\x09" * 32, role=0x09), False, r"unknown role 0x09", id="role"
        ),
        pytest.param(
            frame(HELLO, b"\x01\x02\x10X25519"),
            False,
            r"curve name runs past the end",
            id="name-overrun",
        ),
        pytest.param(
            frame(HELLO, b"\x01\x02\x02\xff\xfe"),
            False,
            r"curve name is not ASCII",
            id="name-not-ascii",
        ),
        pytest.param(VALID_HELLO, True, r"truncated AUTH frame header", id="no-auth"),
        pytest.param(
            VALID_HELLO + frame(AUTH, b"signature")[:-3],
            True,
            r"truncated AUTH frame body: .* 6 of 9 bytes",
            id="short-auth",
        ),
        pytest.param(
            VALID_HELLO + b"\x02\xff\xff", False, r"oversized AUTH frame", id="oversized-auth"
        ),
        pytest.param(
            VALID_HELLO + frame(HELLO, b""),
            False,
            r"expected a AUTH frame, got message type 0x01",
            id="second-hello",
        ),
    ],
)
def test_framing_errors(script: bytes, eof: bool, pattern: str) -> None:
    with pytest.raises(RemoteExchangeError, match=pattern):
        decode(script, eof=eof)


def test_oversized_frame_is_refused_before_its_body_arrives() -> None:
    decoder = MessageDecoder()
    with pytest.raises(RemoteExchangeError, match="oversized"):
        decoder.feed(b"\x01\x04\x01")  # 1025 declared, nothing of it sent


def test_decoder_stays_failed() -> None:
    decoder = MessageDecoder()
    with pytest.raises(RemoteExchangeError, match="expected a HELLO"):
        decoder.feed(frame(AUTH, b""))
    assert decoder.bytes_needed == 0
    assert decoder.expected is None
    for call in (lambda: decoder.feed(VALID_HELLO), decoder.eof):
        with pytest.raises(RemoteExchangeError, match="already failed: expected a HELLO"):
            call()


# --- properties -----------------------------------------------------------------------------------

roles = st.sampled_from(list(Role))
curve_names = st.text(alphabet=st.characters(max_codepoint=127), max_size=20)
hellos = st.builds(Hello, roles, curve_names, st.binary(max_size=MAX_FRAME_BODY - 3 - 20))
auths = st.builds(Auth, st.binary(max_size=MAX_FRAME_BODY))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(first=hellos, second=auths, trailing=st.binary(max_size=50))
def test_round_trip(first: Hello, second: Auth, trailing: bytes) -> None:
    decoder = MessageDecoder()
    assert decoder.feed(encode_message(first) + encode_message(second) + trailing) == [
        first,
        second,
    ]
    assert decoder.trailing_data == trailing
    decoder.eof()


@settings(max_examples=300, deadline=None)
@given(
    first=hellos,
    second=auths,
    trailing=st.binary(max_size=50),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
)
def test_arbitrary_chunking_gives_the_same_messages(
    first: Hello, second: Auth, trailing: bytes, cuts: list[int]
) -> None:
    stream = encode_message(first) + encode_message(second) + trailing
    decoder = MessageDecoder()
    messages = [m for chunk in split(stream, cuts) for m in decoder.feed(chunk)]
    assert messages == [first, second]
    assert decoder.trailing_data == trailing


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.sampled_from([b"", VALID_HELLO, b"\x01", b"\x01\x00"]),
    data=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    eof=st.booleans(),
)
def test_random_bytes_raise_only_our_protocol_error(
    prefix: bytes, data: bytes, cuts: list[int], eof: bool
) -> None:
    decoder = MessageDecoder()
    try:
        for chunk in split(prefix + data, cuts):
            decoder.feed(chunk)
        if eof:
            decoder.eof()
    except RemoteExchangeError:
        assert decoder.bytes_needed == 0  # a failed decoder wants nothing more
        with pytest.raises(RemoteExchangeError, match="already failed"):
            decoder.feed(b"")
    else:
        assert decoder.done or not eof


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=80))
def test_random_hello_bodies_decode_or_raise_our_protocol_error(body: bytes) -> None:
    try:
        (message,) = decode(frame(HELLO, body))
    except RemoteExchangeError:
        return
    assert isinstance(message, Hello)
    assert encode_message(message) == frame(HELLO, body)  # what decodes, re-encodes identically
