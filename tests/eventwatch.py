"""Await a server's events in tests: subscribe, collect, wait (bounded) for a predicate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from ecdhe_async.events import Event
from ecdhe_async.server import TLSServer

E = TypeVar("E")


class EventWatch:
    """Collects every event of a server; :meth:`wait` awaits the *count*-th event of a type."""

    def __init__(self, server: TLSServer) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self.unsubscribe = server.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[E], pred: Callable[[E], bool] = lambda e: True) -> list[E]:
        """Events of type *kind* (matching *pred*) so far."""
        return [e for e in self.events if isinstance(e, kind) and pred(e)]

    async def wait(
        self,
        kind: type[E],
        count: int = 1,
        pred: Callable[[E], bool] = lambda e: True,
        deadline: float = 10.0,
    ) -> list[E]:
        """Wait until at least *count* events of *kind* (matching *pred*) arrived; return them."""
        try:
            async with asyncio.timeout(deadline):
                while len(found := self.of(kind, pred)) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"no {count} {kind.__name__} event(s) within {deadline}s; got {self.events!r}"
            ) from None
        return found
