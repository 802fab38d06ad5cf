"""One server-wide budget for buffered input, so that many slow senders cannot exhaust memory.

Every per-connection limit can hold while the server as a whole runs out of memory: with the
defaults, 10,000 connections x a 16 MiB frame each is 160 GiB, and 40 clients that each send a
16 MiB frame one byte short took a server from 51 to 804 MiB. So buffered input is also charged to
one :class:`MemoryBudget` per server (``max_buffered_bytes``): what a connection's stream holds
unread, plus what its handler declares it holds (a partial line or frame,
:meth:`~ecdhe_async.connection.Connection.hold`). A connection whose next charge would exceed the
budget is closed — only that one — and the others keep their share.

Pure bookkeeping: no I/O, no asyncio. All calls happen on the event loop's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ._logfmt import fmt_addr
from .errors import RemoteProtocolError

__all__ = ["Account", "BudgetExceeded", "MemoryBudget"]

log = logging.getLogger("ecdhe_async.server")


class BudgetExceeded(RemoteProtocolError):
    """The server's memory budget cannot take this connection's next bytes: it is closed."""


class MemoryBudget:
    """Bytes of buffered input the whole server may hold; :meth:`reserve` fails past it."""

    __slots__ = ("limit", "on_exceeded", "refusals", "used")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a memory budget needs a positive limit, got {limit}")
        self.limit = limit
        self.used = 0
        self.refusals = 0
        #: Told the peer of each connection closed for the budget (the server's event).
        self.on_exceeded: Callable[[tuple[Any, ...] | None], None] | None = None

    def reserve(self, nbytes: int) -> bool:
        """Take *nbytes* from the budget; ``False`` (and nothing taken) if that would exceed it."""
        if self.used + nbytes > self.limit:
            self.refusals += 1
            return False
        self.used += nbytes
        return True

    def release(self, nbytes: int) -> None:
        """Give back *nbytes* taken earlier."""
        self.used -= nbytes
        if self.used < 0:  # pragma: no cover - a bookkeeping bug, never the peer's doing
            raise RuntimeError(f"memory budget released more than reserved ({self.used})")

    def account(self, peer: tuple[Any, ...] | None = None) -> Account:
        """A new per-connection :class:`Account` drawing on this budget (*peer*: for the log)."""
        return Account(self, peer)


class Account:
    """One connection's share: bytes its stream buffers plus bytes its handler holds."""

    __slots__ = ("_budget", "held", "peer", "stream")

    def __init__(self, budget: MemoryBudget, peer: tuple[Any, ...] | None = None) -> None:
        self._budget = budget
        self.peer = peer
        self.stream = 0
        self.held = 0

    def charge(self, nbytes: int) -> bool:
        """The stream buffered *nbytes* more; ``False`` if the budget cannot take them."""
        if not self._budget.reserve(nbytes):
            return False
        self.stream += nbytes
        return True

    def refund(self, nbytes: int) -> None:
        """The reader took *nbytes* out of the stream's buffer."""
        self.stream -= nbytes
        self._budget.release(nbytes)

    def hold(self, nbytes: int) -> bool:
        """The handler now holds *nbytes* of input (replacing its last figure); ``False`` if the
        budget cannot take the increase (the figure is then unchanged)."""
        delta = nbytes - self.held
        if delta > 0 and not self._budget.reserve(delta):
            return False
        if delta < 0:
            self._budget.release(-delta)
        self.held = nbytes
        return True

    def close(self) -> None:
        """The connection is gone: give everything back (idempotent)."""
        self._budget.release(self.stream + self.held)
        self.stream = self.held = 0

    def exceeded(self) -> BudgetExceeded:
        """Log the refusal once (WARNING, one line) and return the error for the reader."""
        budget = self._budget
        message = (
            f"server memory budget exhausted (max_buffered_bytes={budget.limit}, "
            f"{budget.used} in use; this connection holds {self.stream + self.held}): closing it"
        )
        log.warning("%s: %s", fmt_addr(self.peer) if self.peer else "?", message)
        if budget.on_exceeded is not None:
            budget.on_exceeded(self.peer)
        return BudgetExceeded(message)
