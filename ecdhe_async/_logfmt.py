"""How the server's log lines name peers, handlers and failure reasons (one wording everywhere)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["fmt_addr", "fmt_peer", "handler_name", "peer", "reason"]


class _HasPeer(Protocol):
    @property
    def peer(self) -> tuple[Any, ...] | None: ...


def reason(exc: BaseException | None) -> str:
    """OpenSSL's short reason of *exc*, else its class and message."""
    if exc is None:
        return "closed"
    why = getattr(exc, "reason", None)
    if why:
        return str(why)
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def peer(transport: asyncio.BaseTransport | None) -> str:
    """The transport's peer as ``host:port`` (``[v6]:port``), ``"?"`` if unknown."""
    name = transport.get_extra_info("peername") if transport is not None else None
    return fmt_addr(name) if name else "?"


def fmt_peer(conn: _HasPeer) -> str:
    """A connection's peer as ``host:port``, ``"?"`` if unknown."""
    return fmt_addr(conn.peer) if conn.peer else "?"


def fmt_addr(addr: Iterable[Any]) -> str:
    """``(host, port, ...)`` as ``host:port``, IPv6 hosts in brackets."""
    host, port = tuple(addr)[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def handler_name(handler: Any) -> str:
    """A handler's qualified name (of its class for an instance)."""
    return getattr(handler, "__qualname__", None) or type(handler).__qualname__
