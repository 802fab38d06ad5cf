"""How the server's log lines name peers, failure reasons, handlers and counters.

Shared by :mod:`ecdhe_async.server` and the stages around it (:mod:`ecdhe_async._proxy_stage`);
formatting only, called after a ``log.isEnabledFor`` check where it runs per connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .connection import Connection


class _Counters(Protocol):
    def as_dict(self) -> Mapping[str, int]: ...


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason)
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return _fmt_addr(peer) if peer else "?"


def _fmt_peer(conn: Connection) -> str:
    return _fmt_addr(conn.peer) if conn.peer else "?"


def _fmt_addr(addr: Iterable[Any]) -> str:
    host, port = tuple(addr)[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _handler_name(handler: Any) -> str:
    return getattr(handler, "__qualname__", None) or type(handler).__qualname__


def _fmt_stats(stats: _Counters) -> str:
    return " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if v) or "no connections"
