"""The PROXY protocol stage of a server connection: the header before the first TLS byte.

Wiring between :class:`~ecdhe_async.server.TLSServer`, the pump and the sans-IO reader
(:mod:`ecdhe_async.proxy`). The server builds one :class:`ProxyStage` only when
``proxy_protocol`` is not ``"off"``; then, at accept, the source is checked against
``proxy_trusted`` and the pump gets a :class:`~ecdhe_async._pump.Preface` that reads the header.
The bytes after it go to OpenSSL in the same ``buffer_updated`` call, so there is no extra Task
and no copy of the ClientHello. The handshake timer is armed at accept: the header counts against
``handshake_timeout``. Every way to fail (untrusted source, no or a malformed header, a header
cut short by a timeout or a close) closes that connection with one WARNING line and counts
``stats.proxy_errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._logfmt import peer
from .proxy import ProxyHeaderReader, ProxyProtocolError, is_trusted
from .settings import ServerSettings

if TYPE_CHECKING:
    from ._pump import TLSPump
    from .connection import Connection
    from .server import ServerStats

__all__ = ["ProxyStage"]

log = logging.getLogger("ecdhe_async.server")


class ProxyStage:
    """The server's PROXY protocol policy: who is trusted, which versions, what failing costs."""

    __slots__ = ("_forget", "_settings", "_stats", "on_refused")

    def __init__(
        self, settings: ServerSettings, stats: ServerStats, forget: Callable[[TLSPump], None]
    ) -> None:
        self._settings = settings
        self._stats = stats
        self._forget = forget  # the server's: no longer a pending handshake
        #: Told of each connection closed for a PROXY protocol problem (the server's event).
        self.on_refused: Callable[[TLSPump], None] | None = None

    def accept(self, pump: TLSPump) -> None:
        """A new connection: close it if its source may not send a header, else read one."""
        source = pump.transport.get_extra_info("peername")
        if source is None:  # already reset by the peer (e.g. a balancer's connect-only check)
            self._forget(pump)
            pump.abort()
        elif not is_trusted(source, self._settings.proxy_trusted):
            self.fail(pump, "source not in proxy_trusted")
        else:
            pump.preface = _HeaderRead(self, ProxyHeaderReader(self._settings.proxy_protocol))

    def cut_short(self, pump: TLSPump, why: str) -> bool:
        """A pending connection ends (timeout, close): True, logged, if inside its header."""
        preface = pump.preface
        if isinstance(preface, _HeaderRead) and preface.reader.buffered:
            self.fail(pump, why)
            return True
        return False

    def apply(self, pump: TLSPump, conn: Connection) -> None:
        """The handshake is done: tell *conn* who the client is (when a header was read)."""
        preface, pump.preface = pump.preface, None
        if isinstance(preface, _HeaderRead) and preface.reader.header is not None:
            conn.set_proxy_header(preface.reader.header)

    def fail(self, pump: TLSPump, reason: str) -> None:
        """Close *pump* for a PROXY protocol problem: counted, one WARNING line."""
        self._stats.proxy_errors += 1
        log.warning("PROXY protocol: closing %s: %s", peer(pump.transport), reason)
        if self.on_refused is not None:
            self.on_refused(pump)
        self._forget(pump)
        pump.abort()


class _HeaderRead:
    """The :class:`~ecdhe_async._pump.Preface` of one connection: its header reader."""

    __slots__ = ("reader", "stage")

    def __init__(self, stage: ProxyStage, reader: ProxyHeaderReader) -> None:
        self.stage = stage
        self.reader = reader

    def feed(self, pump: TLSPump, data: memoryview) -> memoryview | bytes | None:
        reader = self.reader
        if reader.header is not None:  # the header came alone: these are the first TLS bytes
            return data
        try:
            header, rest = reader.feed(bytes(data))
        except ProxyProtocolError as exc:
            self.stage.fail(pump, str(exc))
            return None
        return rest if header is not None else None
