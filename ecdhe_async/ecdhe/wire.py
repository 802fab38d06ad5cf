"""Sans-IO codec of the framed ECDHE exchange: bytes in, messages out, no I/O.

In the style of :mod:`ecdhe_async.handlers.framing` (and h11): :class:`MessageDecoder` is a pure
state machine. You :meth:`~MessageDecoder.feed` it whatever bytes arrived and it returns the
messages they completed; :func:`encode_message` turns a message into the bytes to send. Nothing
here reads, writes, sleeps or imports :mod:`asyncio`; the exchange's state machine is
:class:`ecdhe_async.ecdhe.protocol.KeyExchange`, the asyncio pump
:func:`ecdhe_async.ecdhe.exchange`.

Wire format
-----------
Each side sends exactly two messages, each in a frame
``type (1 byte) || length (2 bytes, big endian) || body``:

1. ``HELLO`` (type ``0x01``): ``version (1) || role (1) || len(curve) (1) || curve || public key``,
   the curve name in ASCII and the public key encoded as :mod:`ecdhe_async.ecdhe.agreement` says;
2. ``AUTH`` (type ``0x02``): a signature over the transcript, or empty when the side has no
   identity key.

Whatever follows the peer's ``AUTH`` is not ours: it belongs to the application and is kept in
:attr:`MessageDecoder.trailing_data`. :attr:`MessageDecoder.bytes_needed` says how many more bytes
complete the current header or body, so a stream-based driver can read exactly that much and
never consume the application's bytes in the first place.

Limits
------
:data:`MAX_FRAME_BODY` = **1024 bytes** per frame body, although the length field could say
65535. The largest legitimate body is a P-521 ``HELLO`` (3 + 5 + 133 = 141 bytes); the largest
signature, ECDSA P-384 in DER, is at most 104 bytes, Ed25519's 64. The declared length is checked
as soon as the 3-byte header arrives, before any body is buffered, so one exchange can make us hold
at most 1027 bytes, whatever the peer declares.

Errors by blame
---------------
A peer that breaks the format (unknown or out-of-order message type, oversized frame, malformed
``HELLO``, unsupported version, connection closed mid-frame) gets a :class:`RemoteExchangeError`;
trying to *send* something the format cannot carry raises :class:`LocalExchangeError`. Both are
:class:`~ecdhe_async.errors.KeyExchangeError` as well, so code catching that keeps working. A
decoder that raised is dead: its buffer is released and every later call raises again, because a
stream whose framing broke cannot be resynchronised.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final, NoReturn, TypeAlias

from ecdhe_async.errors import KeyExchangeError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "FRAME_HEADER_SIZE",
    "MAX_FRAME_BODY",
    "PROTOCOL_VERSION",
    "Auth",
    "Hello",
    "LocalExchangeError",
    "Message",
    "MessageDecoder",
    "MessageType",
    "RemoteExchangeError",
    "Role",
    "encode_message",
]

PROTOCOL_VERSION: Final = 1
"""Version byte carried in every HELLO message."""

MAX_FRAME_BODY: Final = 1024
"""Largest accepted frame body in bytes (a P-521 HELLO is 141, a P-384 ECDSA signature <= 104)."""

FRAME_HEADER_SIZE: Final = 3
"""Frame header: one type byte and a 2-byte big-endian body length."""

_HELLO_FIXED: Final = 3  # version, role, length of the curve name


class RemoteExchangeError(KeyExchangeError, RemoteProtocolError):
    """The peer broke the exchange: bad framing, an invalid key or signature, a mismatch."""


class LocalExchangeError(KeyExchangeError, LocalProtocolError):
    """We (or the application) used the exchange wrongly: an unsendable message, a wrong call."""


class MessageType(IntEnum):
    """The frame type byte."""

    HELLO = 0x01
    AUTH = 0x02


class Role(IntEnum):
    """Who speaks: exactly one side of an exchange is the initiator."""

    INITIATOR = 0x01
    RESPONDER = 0x02

    @property
    def label(self) -> bytes:
        """The role's name as it enters the signed transcript (``b"initiator"``)."""
        return self.name.lower().encode("ascii")

    @property
    def peer(self) -> Role:
        """The role the other side must have."""
        return Role.RESPONDER if self is Role.INITIATOR else Role.INITIATOR


@dataclass(frozen=True, slots=True)
class Hello:
    """First message of each side: its role, its curve and its ephemeral public key.

    ``curve`` is the name as received; the decoder checks only that it is ASCII, the protocol
    compares it with its own curve.
    """

    role: Role
    curve: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Auth:
    """Second message: a signature over the transcript, or ``b""`` without an identity key."""

    signature: bytes = b""


Message: TypeAlias = Hello | Auth
"""A decoded message of the exchange."""

_SEQUENCE: Final = (MessageType.HELLO, MessageType.AUTH)


def encode_message(message: Message) -> bytes:
    """Return the frame carrying ``message``, ready to send.

    Raises :class:`LocalExchangeError` if the message cannot be framed: a body larger than
    :data:`MAX_FRAME_BODY`, a curve name that is not ASCII or longer than 255 bytes.
    """
    if isinstance(message, Hello):
        msg_type = MessageType.HELLO
        try:
            name = message.curve.encode("ascii")
        except UnicodeEncodeError as exc:
            raise LocalExchangeError(f"curve name {message.curve!r} is not ASCII") from exc
        if len(name) > 0xFF:
            raise LocalExchangeError(f"curve name of {len(name)} bytes is too long (max 255)")
        header = bytes([PROTOCOL_VERSION, Role(message.role), len(name)])
        body = b"".join((header, name, message.public_key))
    else:
        msg_type, body = MessageType.AUTH, message.signature
    if len(body) > MAX_FRAME_BODY:
        raise LocalExchangeError(
            f"cannot send a {msg_type.name} frame: its body of {len(body)} bytes exceeds "
            f"MAX_FRAME_BODY={MAX_FRAME_BODY}"
        )
    return b"".join((bytes([msg_type]), len(body).to_bytes(2, "big"), body))


def _parse_hello(body: bytes) -> Hello:
    if len(body) < _HELLO_FIXED:
        raise RemoteExchangeError(f"malformed HELLO: {len(body)} bytes is too short")
    version, role, name_len = body[0], body[1], body[2]
    if version != PROTOCOL_VERSION:
        raise RemoteExchangeError(
            f"unsupported protocol version {version} in HELLO (we speak {PROTOCOL_VERSION})"
        )
    if role not in tuple(Role):
        raise RemoteExchangeError(f"malformed HELLO: unknown role 0x{role:02x}")
    end = _HELLO_FIXED + name_len
    if len(body) < end:
        raise RemoteExchangeError("malformed HELLO: curve name runs past the end of the message")
    try:
        name = body[_HELLO_FIXED:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise RemoteExchangeError("malformed HELLO: curve name is not ASCII") from exc
    return Hello(Role(role), name, body[end:])


class MessageDecoder:
    """Incremental decoder of the peer's side of one exchange: one HELLO, then one AUTH.

    Feed it bytes as they arrive; it returns each message once complete and raises
    :class:`RemoteExchangeError` as soon as the bytes cannot be part of a valid exchange (an
    unexpected type or an oversized length right after the 3-byte header, a malformed HELLO once
    its body is complete). After a failure every call raises again.
    """

    __slots__ = ("_buf", "_error", "_length", "_received", "_trailing")

    def __init__(self) -> None:
        """Start expecting the peer's HELLO."""
        self._buf = bytearray()
        self._length: int | None = None  # body length of the current frame once its header is read
        self._received = 0  # how many messages of _SEQUENCE were decoded
        self._trailing = bytearray()
        self._error: RemoteExchangeError | None = None

    @property
    def expected(self) -> MessageType | None:
        """The next message type, or ``None`` once the AUTH was decoded (or after a failure)."""
        if self._error is not None or self._received >= len(_SEQUENCE):
            return None
        return _SEQUENCE[self._received]

    @property
    def done(self) -> bool:
        """Whether both messages were decoded."""
        return self._received >= len(_SEQUENCE)

    @property
    def bytes_needed(self) -> int:
        """How many more bytes complete the current frame header or body (0 when done or failed).

        Reading exactly this many bytes at a time never consumes bytes after the exchange.
        """
        if self.expected is None:
            return 0
        if self._length is None:
            return FRAME_HEADER_SIZE - len(self._buf)
        return self._length - len(self._buf)

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the peer's AUTH: the application's, not the exchange's."""
        return bytes(self._trailing)

    def feed(self, data: bytes) -> list[Message]:
        """Add ``data`` and return the messages it completed, in order.

        An empty list means more bytes are needed. Raises :class:`RemoteExchangeError` if the
        peer broke the format (messages completed earlier in the same ``data`` are discarded: the
        exchange is over anyway); the decoder is then unusable.
        """
        self._raise_if_failed()
        if self.done:
            self._trailing += data
            return []
        buf = self._buf
        buf += data
        messages: list[Message] = []
        while (expected := self.expected) is not None:
            if self._length is None:
                if len(buf) < FRAME_HEADER_SIZE:
                    break
                self._length = self._check_header(expected, buf[0], bytes(buf[1:FRAME_HEADER_SIZE]))
                del buf[:FRAME_HEADER_SIZE]
            if len(buf) < self._length:
                break
            body = bytes(buf[: self._length])
            del buf[: self._length]
            self._length = None
            if expected is MessageType.HELLO:
                try:
                    messages.append(_parse_hello(body))
                except RemoteExchangeError as exc:
                    self._record(exc)
                    raise
            else:
                messages.append(Auth(body))
            self._received += 1
        if self.done:
            self._trailing += buf
            buf.clear()
        return messages

    def eof(self) -> None:
        """Signal that the peer closed the connection.

        Fine once the AUTH was decoded; raises :class:`RemoteExchangeError` if the exchange was
        cut short (naming the frame part and how many of its bytes arrived).
        """
        self._raise_if_failed()
        expected = self.expected
        if expected is None:
            return
        if self._length is None:
            part, size = "header", FRAME_HEADER_SIZE
        else:
            part, size = "body", self._length
        self._fail(
            f"truncated {expected.name} frame {part}: connection closed after "
            f"{len(self._buf)} of {size} bytes"
        )

    def _check_header(self, expected: MessageType, msg_type: int, length_bytes: bytes) -> int:
        if msg_type != expected:
            self._fail(f"expected a {expected.name} frame, got message type 0x{msg_type:02x}")
        length = int.from_bytes(length_bytes, "big")
        if length > MAX_FRAME_BODY:
            self._fail(
                f"oversized {expected.name} frame: {length} bytes exceeds the maximum of "
                f"{MAX_FRAME_BODY}"
            )
        return length

    def _fail(self, message: str) -> NoReturn:
        exc = RemoteExchangeError(message)
        self._record(exc)
        raise exc

    def _record(self, exc: RemoteExchangeError) -> None:
        self._error = exc
        self._buf = bytearray()
        self._length = None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RemoteExchangeError(f"key exchange decoder already failed: {self._error}")
