"""Sans-IO framing: turn a byte stream into messages and back, without touching any I/O.

In the style of `h11 <https://h11.readthedocs.io/>`_, the classes here are pure state machines:
you :meth:`~LineDecoder.feed` them whatever bytes arrived from the network and they return the
complete messages found so far, buffering any incomplete remainder. They never read, write,
sleep or import :mod:`asyncio`, so they are trivially testable with byte fixtures and reusable
from any event loop (the server's ``lines`` and ``frames`` handlers drive them from asyncio).

Two framings are provided:

* **Lines** (:class:`LineDecoder`, :func:`encode_line`): messages separated by a delimiter,
  ``b"\\n"`` by default. With the default delimiter one trailing ``b"\\r"`` is also stripped, so
  ``CRLF``-terminated input (telnet, SMTP-style clients) decodes to the same lines as ``LF``.
* **Length-prefixed frames** (:class:`FrameDecoder`, :func:`encode_frame`): each payload is
  preceded by its length as a big-endian unsigned integer of 2 or 4 bytes.

Errors are split by blame (see :mod:`ecdhe_async.errors`): a peer that breaks the framing
(over-long line, oversized frame, connection closed mid-message) gets a
:class:`~ecdhe_async.errors.RemoteProtocolError`; trying to *send* something that cannot be
framed raises :class:`~ecdhe_async.errors.LocalProtocolError`. A decoder that raised a
:class:`~ecdhe_async.errors.RemoteProtocolError` is dead: its buffer is released and every
later call raises again, because the stream can no longer be resynchronised.

Default limits
--------------

Every decoder has a hard size limit, because an unbounded buffer lets a single peer exhaust the
server's memory simply by never sending a delimiter (or by declaring a huge frame). Like h11's
16 KiB header limit, the defaults are generous for legitimate traffic and cheap enough to
hold per connection:

* :data:`DEFAULT_MAX_LINE_LENGTH` = **64 KiB**. This equals :mod:`asyncio`'s own
  ``StreamReader`` limit (``readline()`` fails beyond 64 KiB) and Redis's limit for inline
  commands (``PROTO_INLINE_MAX_SIZE``). Classic line protocols are much stricter (SMTP allows
  1000 octets per line, RFC 5321 §4.5.3.1.6; IRC 512 bytes), so 64 KiB comfortably fits
  JSON-lines or chat-style protocols while capping a malicious partial line at 64 KiB per
  connection. Lower it for protocols with short lines.
* :data:`DEFAULT_MAX_FRAME_SIZE` = **16 MiB**. This matches the largest frame HTTP/2 can
  express (``SETTINGS_MAX_FRAME_SIZE`` tops out at 2**24 - 1) and is well above common
  message-size defaults (gRPC 4 MiB, the ``websockets`` library 1 MiB), so binary payloads
  such as small files fit in one frame. It bounds the memory one connection can pin to about
  16 MiB; a server expecting thousands of concurrent peers should lower it accordingly.
  The declared length is checked as soon as the header arrives, so an oversized frame is
  rejected before any of its body is buffered.

Memory and time are linear in the input: decoders keep one :class:`bytearray` plus a read
offset, never rescan bytes already searched, and compact the buffer at most once per
:meth:`feed`, so many small messages in one chunk or one huge message in many chunks both
cost O(n).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_LINE_LENGTH",
    "FrameDecoder",
    "LineDecoder",
    "encode_frame",
    "encode_line",
]

from typing import NoReturn

from ecdhe_async.errors import LocalProtocolError, RemoteProtocolError

DEFAULT_MAX_LINE_LENGTH = 64 * 1024
"""Default :class:`LineDecoder` limit: 64 KiB (asyncio's ``StreamReader`` and Redis inline)."""

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
"""Default :class:`FrameDecoder` limit: 16 MiB (HTTP/2's largest frame; bounded memory)."""

_SUPPORTED_HEADERS = (2, 4)


def _check_limit(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _check_header(header: int) -> None:
    if isinstance(header, bool) or header not in _SUPPORTED_HEADERS:
        raise ValueError(f"header must be 2 or 4 (bytes of length prefix), got {header!r}")


def _check_delimiter(delimiter: bytes) -> None:
    if not isinstance(delimiter, bytes | bytearray) or not delimiter:
        raise ValueError(f"delimiter must be non-empty bytes, got {delimiter!r}")


# ---------------------------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------------------------


class LineDecoder:
    """Incremental decoder for delimiter-separated lines.

    :param max_line_length: the largest accepted line, in bytes, counting every byte before the
        delimiter (so with CRLF input the ``\\r`` counts). A longer line raises
        :class:`~ecdhe_async.errors.RemoteProtocolError` as soon as it is certain to be too
        long, even if its delimiter has not arrived yet, so at most about
        ``max_line_length`` bytes stay buffered between calls.
    :param delimiter: the line terminator, ``b"\\n"`` by default. Only with the default
        delimiter is one trailing ``b"\\r"`` stripped from each line (CRLF support); any other
        delimiter, e.g. ``b"\\r\\n"`` or ``b"\\0"``, returns lines verbatim.
    """

    def __init__(
        self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH, *, delimiter: bytes = b"\n"
    ) -> None:
        _check_limit("max_line_length", max_line_length)
        _check_delimiter(delimiter)
        self._max = max_line_length
        self._delim = bytes(delimiter)
        self._strip_cr = self._delim == b"\n"
        self._buf = bytearray()
        self._start = 0  # offset of the first unconsumed byte in _buf
        self._scan = 0  # offset from which to search for the delimiter (never rescan)
        self._error: RemoteProtocolError | None = None

    @property
    def max_line_length(self) -> int:
        """The configured limit in bytes (excluding the delimiter)."""
        return self._max

    @property
    def delimiter(self) -> bytes:
        """The configured line delimiter."""
        return self._delim

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as part of a complete line."""
        return len(self._buf) - self._start

    @property
    def committed(self) -> int:
        """Bytes this decoder will hold before its next line is out: what is buffered."""
        return self.buffered

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return the lines it completed, without delimiters, in order.

        An empty list means more bytes are needed. Raises
        :class:`~ecdhe_async.errors.RemoteProtocolError` if a line exceeds
        :attr:`max_line_length` (lines completed earlier in the same ``data`` are discarded:
        the connection is to be closed anyway); the decoder is then unusable.
        """
        self._raise_if_failed()
        buf = self._buf
        buf += data
        delim = self._delim
        dlen = len(delim)
        lines: list[bytes] = []
        too_long: int | None = None
        with memoryview(buf) as view:
            while (idx := buf.find(delim, self._scan)) >= 0:
                length = idx - self._start
                if length > self._max:
                    too_long = length
                    break  # raised below, once the memoryview is released
                end = idx - 1 if self._strip_cr and length and buf[idx - 1] == 0x0D else idx
                lines.append(view[self._start : end].tobytes())
                self._start = self._scan = idx + dlen
        if too_long is not None:
            self._fail(f"line of {too_long} bytes")
        # No delimiter in the unconsumed bytes, except possibly a prefix of it at the very end:
        # the next search only needs to look at those last few bytes plus new data.
        self._scan = max(self._start, len(buf) - dlen + 1)
        pending = self._min_pending_line_length()
        if pending > self._max:
            self._fail(f"incomplete line of at least {pending} bytes")
        if self._start:
            del buf[: self._start]
            self._scan -= self._start
            self._start = 0
        return lines

    def eof(self) -> None:
        """Signal that the peer closed the connection.

        Fine if nothing is buffered; raises :class:`~ecdhe_async.errors.RemoteProtocolError`
        if a partial line (bytes without a final delimiter) would be lost.
        """
        self._raise_if_failed()
        if self.buffered:
            self._error = RemoteProtocolError(
                f"connection closed in the middle of a line ({self.buffered} bytes buffered "
                f"without a terminating {self._delim!r})"
            )
            self._release()
            raise self._error

    def _min_pending_line_length(self) -> int:
        """Smallest possible length of the pending line, given no full delimiter is buffered.

        The buffer may end with a proper prefix of a multi-byte delimiter; those bytes might
        not belong to the line, every other pending byte does.
        """
        pending = len(self._buf) - self._start
        for k in range(min(len(self._delim) - 1, pending), 0, -1):
            if self._buf.endswith(self._delim[:k]):
                return pending - k
        return pending

    def _fail(self, what: str) -> NoReturn:
        self._error = RemoteProtocolError(
            f"{what} exceeds max_line_length={self._max} bytes; closing the connection"
        )
        self._release()
        raise self._error

    def _release(self) -> None:
        self._buf = bytearray()
        self._start = self._scan = 0

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RemoteProtocolError(f"line decoder already failed: {self._error}")


def encode_line(line: bytes, delimiter: bytes = b"\n") -> bytes:
    """Return ``line`` followed by ``delimiter``, ready to send.

    Raises :class:`~ecdhe_async.errors.LocalProtocolError` if the result would not decode back
    to exactly ``line``: when ``line`` contains the delimiter (or ends with a prefix of a
    multi-byte delimiter that would complete it early), or, with the default ``b"\\n"``
    delimiter, when it ends with ``b"\\r"`` (a :class:`LineDecoder` strips that as CRLF).
    """
    _check_delimiter(delimiter)
    delimiter = bytes(delimiter)
    encoded = b"".join((line, delimiter))
    if encoded.find(delimiter) != len(line):
        raise LocalProtocolError(f"cannot send a line containing the delimiter {delimiter!r}")
    if delimiter == b"\n" and line.endswith(b"\r"):
        raise LocalProtocolError(
            "cannot send a line ending with b'\\r' before b'\\n': it would be read as CRLF"
        )
    return encoded


# ---------------------------------------------------------------------------------------------
# Length-prefixed frames
# ---------------------------------------------------------------------------------------------


class FrameDecoder:
    """Incremental decoder for length-prefixed frames.

    Each frame is a ``header``-byte big-endian unsigned length followed by that many payload
    bytes. Zero-length frames are valid and decode to ``b""``.

    :param max_frame_size: the largest accepted payload, in bytes (the header not counted).
        A larger declared length raises :class:`~ecdhe_async.errors.RemoteProtocolError` as
        soon as the header is read, before any of the body is buffered. With ``header=2`` the
        prefix itself cannot express more than 65535 bytes.
    :param header: size of the length prefix in bytes: 2 or 4 (default).
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, *, header: int = 4) -> None:
        _check_limit("max_frame_size", max_frame_size)
        _check_header(header)
        self._max = max_frame_size
        self._header = header
        self._buf = bytearray()
        self._start = 0  # offset of the first unconsumed byte in _buf
        self._length: int | None = None  # body length of the current frame once its header is read
        self._error: RemoteProtocolError | None = None

    @property
    def max_frame_size(self) -> int:
        """The configured payload limit in bytes."""
        return self._max

    @property
    def header(self) -> int:
        """Size of the length prefix in bytes (2 or 4)."""
        return self._header

    @property
    def buffered(self) -> int:
        """Number of received bytes (header included) not yet returned as part of a frame."""
        pending = len(self._buf) - self._start
        return pending + self._header if self._length is not None else pending

    @property
    def committed(self) -> int:
        """Bytes this decoder will hold before its next frame is out: once a header is read, the
        whole declared frame (what a memory budget must be able to take), else what is buffered.
        """
        return self._header + self._length if self._length is not None else self.buffered

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return the payloads of the frames it completed, in order.

        An empty list means more bytes are needed. Raises
        :class:`~ecdhe_async.errors.RemoteProtocolError` as soon as a header declares a frame
        larger than :attr:`max_frame_size` (frames completed earlier in the same ``data`` are
        discarded: the connection is to be closed anyway); the decoder is then unusable.
        """
        self._raise_if_failed()
        buf = self._buf
        buf += data
        hlen = self._header
        frames: list[bytes] = []
        oversized: int | None = None
        with memoryview(buf) as view:
            while True:
                available = len(buf) - self._start
                if self._length is None:
                    if available < hlen:
                        break
                    length = int.from_bytes(view[self._start : self._start + hlen], "big")
                    if length > self._max:
                        oversized = length
                        break
                    self._start += hlen
                    self._length = length
                    available -= hlen
                if available < self._length:
                    break
                end = self._start + self._length
                frames.append(view[self._start : end].tobytes())
                self._start = end
                self._length = None
        if oversized is not None:
            self._error = RemoteProtocolError(
                f"peer declared a frame of {oversized} bytes, exceeding "
                f"max_frame_size={self._max} bytes; closing the connection"
            )
            self._release()
            raise self._error
        if self._start:
            del buf[: self._start]
            self._start = 0
        return frames

    def eof(self) -> None:
        """Signal that the peer closed the connection.

        Fine if nothing is buffered; raises :class:`~ecdhe_async.errors.RemoteProtocolError`
        if a partial header or frame body would be lost.
        """
        self._raise_if_failed()
        if self._length is not None:
            got = len(self._buf) - self._start
            what = f"frame body ({got} of {self._length} bytes received)"
        elif self.buffered:
            what = f"frame header ({self.buffered} of {self._header} bytes received)"
        else:
            return
        self._error = RemoteProtocolError(f"connection closed in the middle of a {what}")
        self._release()
        raise self._error

    def _release(self) -> None:
        self._buf = bytearray()
        self._start = 0
        self._length = None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RemoteProtocolError(f"frame decoder already failed: {self._error}")


def encode_frame(
    payload: bytes, *, header: int = 4, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
) -> bytes:
    """Return ``payload`` preceded by its ``header``-byte big-endian length, ready to send.

    Raises :class:`~ecdhe_async.errors.LocalProtocolError` if the payload is larger than
    ``max_frame_size`` (the peer would reject it) or than the prefix can express (65535 bytes
    for ``header=2``), and :class:`ValueError` for an unsupported ``header``.
    """
    _check_header(header)
    _check_limit("max_frame_size", max_frame_size)
    size = len(payload)
    limit = min(max_frame_size, (1 << (8 * header)) - 1)
    if size > limit:
        raise LocalProtocolError(
            f"cannot send a frame of {size} bytes: the limit is {limit} bytes "
            f"(max_frame_size={max_frame_size}, header={header})"
        )
    return b"".join((size.to_bytes(header, "big"), payload))
