"""What a server wires to its event bus: the access log always, metrics when asked for.

:class:`~ecdhe_async.server.TLSServer` holds one :class:`Observers`; the server only emits events
(``self._emit(...)``) and calls :meth:`Observers.starting` / :meth:`Observers.started` /
:meth:`Observers.stopped` around its lifecycle. Everything else (log wording, metrics, the HTTP
endpoint) lives in :mod:`ecdhe_async.logs` and :mod:`ecdhe_async.metrics`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .events import EventBus
from .logs import AccessLog

if TYPE_CHECKING:
    from .server import TLSServer

__all__ = ["Observers"]

log = logging.getLogger("ecdhe_async.server")


class Observers:
    """The event bus of one server, with the access log subscribed (and metrics once started)."""

    def __init__(self, server: TLSServer) -> None:
        self.server = server
        self.bus = EventBus()
        self.bus.subscribe(AccessLog(access_log=server.settings.access_log))
        self.metrics: Any = None

    def starting(self) -> None:
        """Before binding: fail early (one clear line) if metrics lack their extra."""
        if self.server.settings.metrics_port:
            from . import metrics  # noqa: F401 - raises ConfigError naming the extra

    def started(self) -> None:
        """After binding: start the metrics endpoint (``metrics_port``), if any."""
        s = self.server.settings
        if s.metrics_port and self.metrics is None:
            from .metrics import serve_metrics

            self.metrics = serve_metrics(self.server, s.metrics_host, s.metrics_port)
            if self.metrics.endpoint is not None:
                log.info("metrics on %s/metrics (and /healthz, /readyz)", self.metrics.endpoint.url)

    def stopped(self) -> None:
        """After the server stopped: close the metrics endpoint."""
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
