"""ecdhe_async: forward-secret (ECDHE-only) TLS servers and clients for asyncio.

Every TLS session an ``ecdhe_async`` server or client completes uses an ephemeral elliptic-curve
Diffie-Hellman exchange on a group the operator allowed: never RSA key transport, never
finite-field DHE (not even in TLS 1.3), no session tickets unless asked for.

This module re-exports the library core only. The guide's functions (``demonstrate_basic_ecdhe``
and friends) are still reachable as ``ecdhe_async.NAME``, but are imported on first use, so that
``import ecdhe_async`` loads no guide, benchmark or CLI code.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from .certs import DevCA as DevCA
from .client import connect as connect
from .connection import Connection as Connection
from .connection import TLSInfo as TLSInfo
from .errors import CertificateError as CertificateError
from .errors import ConfigError as ConfigError
from .errors import ECDHEAsyncError as ECDHEAsyncError
from .errors import HandshakeError as HandshakeError
from .errors import KeyExchangeError as KeyExchangeError
from .errors import LocalProtocolError as LocalProtocolError
from .errors import ProtocolError as ProtocolError
from .errors import RemoteProtocolError as RemoteProtocolError
from .handlers import Handler as Handler
from .handlers import HandlerSpec as HandlerSpec
from .server import ServerStats as ServerStats
from .server import TLSServer as TLSServer
from .settings import ClientSettings as ClientSettings
from .settings import ServerSettings as ServerSettings
from .settings import TLSSettings as TLSSettings
from .tls import client_context as client_context
from .tls import describe_context as describe_context
from .tls import server_context as server_context

__version__ = "0.1.0"

__all__ = [
    "AuditReport",
    "CertificateError",
    "ClientSettings",
    "ConfigError",
    "Connection",
    "DevCA",
    "ECDHEAsyncError",
    "Handler",
    "HandlerSpec",
    "HandshakeError",
    "KeyExchangeError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerSettings",
    "ServerStats",
    "TLSInfo",
    "TLSServer",
    "TLSSettings",
    "__version__",
    "audit",
    "client_context",
    "connect",
    "create_self_signed_cert",
    "demonstrate_basic_ecdhe",
    "demonstrate_tls_with_ecdhe",
    "describe_context",
    "explain_ecdhe_in_tls",
    "run_tls_client",
    "run_tls_server",
    "server_context",
]

#: Names imported on first use, with the module that holds them: the seed guide's functions and
#: the audit (``await ecdhe_async.audit(host, port)``), so that ``import ecdhe_async`` stays core.
_LAZY: Final = {
    "create_self_signed_cert": ".guide",
    "demonstrate_basic_ecdhe": ".guide",
    "demonstrate_tls_with_ecdhe": ".guide",
    "explain_ecdhe_in_tls": ".guide",
    "run_tls_client": ".guide",
    "run_tls_server": ".guide",
    "audit": ".auditor",
    "AuditReport": ".auditor",
}


def __getattr__(name: str) -> Any:
    """Import a guide function or the audit the first time it is used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
