"""How a :class:`~ecdhe_async.server.TLSServer` listens: bind ``host``/``port`` or adopt a socket
already bound (:mod:`ecdhe_async.workers` shares one between processes), then the real backlog.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from .settings import ServerSettings

__all__ = ["listen"]


async def listen(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], asyncio.BaseProtocol],
    settings: ServerSettings,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Start accepting with *factory*'s protocols on *sock*, else on the settings' address."""
    # backlog=1, then the real backlog on the sockets: the stdlib's accept loop calls
    # accept() `backlog` times per readiness event and, out of file descriptors (EMFILE),
    # does not stop: `backlog` ERROR tracebacks and `backlog` retry timers per event
    # (gh-151615, Python < 3.15), a storm that starves every live connection for as long as
    # the process is out of fds. One accept per event (the listener stays readable, so the
    # next loop iteration takes the next connection) turns that into one log line and one
    # retry per second. uvloop accepts in libuv (no such loop) and is unaffected either way.
    s = settings
    where: dict[str, Any] = (
        {"sock": sock}
        if sock is not None
        else {"host": s.host, "port": s.port, "reuse_port": s.reuse_port or None}
    )
    server = await loop.create_server(factory, **where, backlog=1, start_serving=True)
    for listening in server.sockets:
        with socket.fromfd(listening.fileno(), listening.family, listening.type) as listener:
            listener.listen(s.backlog)
    return server
