"""Process limits a server needs: enough file descriptors for ``max_connections``.

Every connection is a file descriptor. The default ``max_connections`` (10,000) is above the soft
``RLIMIT_NOFILE`` of many systems (1,024 on most Linux desktops and containers): past it,
``accept()`` fails with ``EMFILE``, the stdlib loop logs an ERROR every second and legitimate
clients time out while the server believes it has room. At start the server raises the soft limit
toward the hard limit (any process may do that, no privilege needed) and says in one line when
even the hard limit is too low, with the numbers to change.
"""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["FD_MARGIN", "ensure_fd_limit"]

log = logging.getLogger("ecdhe_async.server")

#: Descriptors besides connections: listening sockets, the loop's self-pipe and epoll, logs,
#: certificate reloads, a few libraries' own files.
FD_MARGIN: Final = 64


def ensure_fd_limit(max_connections: int, *, margin: int = FD_MARGIN) -> int | None:
    """Make the soft ``RLIMIT_NOFILE`` at least ``max_connections + margin`` where possible.

    Raises the soft limit toward the hard one when it is lower (INFO), warns in one line when it
    still is, and returns the soft limit now in force (``None`` where the platform has no
    ``resource`` module, e.g. Windows).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    needed = max_connections + margin
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # pragma: no cover - e.g. macOS OPEN_MAX
            log.debug("cannot raise RLIMIT_NOFILE to %d: %s", target, exc)
        else:
            log.info("raised the open-file limit (RLIMIT_NOFILE) from %d to %d", soft, target)
            soft = target
    if soft < needed:
        log.warning(
            "open-file limit %d (hard limit %d) is below max_connections %d + %d spare: "
            "connections beyond about %d will fail; raise the hard limit (ulimit -Hn, "
            "LimitNOFILE=) or lower max_connections",
            soft,
            hard,
            max_connections,
            margin,
            max(soft - margin, 0),
        )
    return soft
