"""Event-loop selection: ``auto`` (uvloop when importable), ``asyncio`` or ``uvloop``."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LoopName", "loop_factory", "resolve_loop", "run"]

LoopName = Literal["auto", "asyncio", "uvloop"]
T = TypeVar("T")


def resolve_loop(name: LoopName = "auto") -> Literal["asyncio", "uvloop"]:
    """The concrete loop *name* stands for; ``uvloop`` raises ``RuntimeError`` if missing."""
    available = importlib.util.find_spec("uvloop") is not None
    if name == "uvloop" and not available:
        raise RuntimeError("loop='uvloop' but uvloop is not installed (pip install uvloop)")
    if name == "auto":
        return "uvloop" if available else "asyncio"
    return name


def loop_factory(name: LoopName = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """A zero-argument factory for a new event loop of the chosen kind."""
    if resolve_loop(name) == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], *, loop: LoopName = "auto", debug: bool | None = None) -> T:
    """Run *main* to completion on a fresh loop of the chosen kind (``asyncio.Runner``)."""
    with asyncio.Runner(loop_factory=loop_factory(loop), debug=debug) as runner:
        return runner.run(main)
