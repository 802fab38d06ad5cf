"""Built-in handlers: ``echo`` (bytes), ``lines`` (newline-delimited), ``frames`` (length-prefixed).

The framed handlers drive the sans-IO decoders of :mod:`ecdhe_async.handlers.framing`; an over-long
line or frame raises :class:`~ecdhe_async.errors.RemoteProtocolError`, which closes only that
connection. On graceful shutdown they stop at a message boundary: one idle between messages ends
at once (close_notify), one in the middle of a message answers it first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from .framing import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    FrameDecoder,
    LineDecoder,
    encode_frame,
    encode_line,
)

if TYPE_CHECKING:
    from ..connection import Connection
    from ..settings import ServerSettings

__all__ = ["EchoHandler", "FrameEchoHandler", "LineEchoHandler"]


class EchoHandler:
    """Send every received byte back, until the peer closes."""

    async def __call__(self, conn: Connection) -> None:
        while data := await conn.read():
            conn.write(data)
            await conn.drain()


class _MessageEcho:
    """Shared loop of the framed echo handlers: decode, echo each message, stop at a boundary."""

    def _decoder(self) -> LineDecoder | FrameDecoder:
        raise NotImplementedError

    def _encode(self, message: bytes) -> bytes:
        raise NotImplementedError

    async def __call__(self, conn: Connection) -> None:
        decoder = self._decoder()
        while not (conn.stop_requested and decoder.buffered == 0):
            # At a message boundary a graceful stop ends the wait at once (read_next: b"").
            data = await (conn.read_next() if decoder.buffered == 0 else conn.read())
            if not data:
                if conn.stop_requested and decoder.buffered == 0:
                    return
                decoder.eof()
                return
            for message in decoder.feed(data):
                conn.write(self._encode(message))
            conn.hold(decoder.committed)  # a partial message counts against the server's budget
            await conn.drain()


class LineEchoHandler(_MessageEcho):
    """Echo each newline-terminated line; lines over ``max_line_length`` bytes are refused."""

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        self.max_line_length = max_line_length

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Self:
        """Build from :class:`~ecdhe_async.settings.ServerSettings` (``max_line_length``)."""
        return cls(settings.max_line_length)

    def _decoder(self) -> LineDecoder:
        return LineDecoder(self.max_line_length)

    def _encode(self, message: bytes) -> bytes:
        return encode_line(message)


class FrameEchoHandler(_MessageEcho):
    """Echo each length-prefixed frame (4-byte big-endian length); oversized frames are refused."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Self:
        """Build from :class:`~ecdhe_async.settings.ServerSettings` (``max_frame_size``)."""
        return cls(settings.max_frame_size)

    def _decoder(self) -> FrameDecoder:
        return FrameDecoder(self.max_frame_size)

    def _encode(self, message: bytes) -> bytes:
        return encode_frame(message, max_frame_size=self.max_frame_size)
