"""ecdhe_async: forward-secret (ECDHE-only) TLS servers and clients for asyncio.

Every TLS session an ``ecdhe_async`` server or client completes uses an ephemeral elliptic-curve
Diffie-Hellman exchange on a group the operator allowed: never RSA key transport, never
finite-field DHE (not even in TLS 1.3), no session tickets unless asked for.
"""

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
from .errors import RemoteProtocolError as RemoteProtocolError
from .guide import create_self_signed_cert as create_self_signed_cert
from .guide import demonstrate_basic_ecdhe as demonstrate_basic_ecdhe
from .guide import demonstrate_tls_with_ecdhe as demonstrate_tls_with_ecdhe
from .guide import explain_ecdhe_in_tls as explain_ecdhe_in_tls
from .guide import run_tls_client as run_tls_client
from .guide import run_tls_server as run_tls_server
from .handlers import Handler as Handler
from .server import ServerStats as ServerStats
from .server import TLSServer as TLSServer
from .settings import ClientSettings as ClientSettings
from .settings import ServerSettings as ServerSettings
from .settings import TLSSettings as TLSSettings
from .tls import client_context as client_context
from .tls import describe as describe
from .tls import server_context as server_context

__version__ = "0.1.0"

__all__ = [
    "CertificateError",
    "ClientSettings",
    "ConfigError",
    "Connection",
    "DevCA",
    "ECDHEAsyncError",
    "Handler",
    "HandshakeError",
    "KeyExchangeError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ServerSettings",
    "ServerStats",
    "TLSInfo",
    "TLSServer",
    "TLSSettings",
    "__version__",
    "client_context",
    "connect",
    "create_self_signed_cert",
    "demonstrate_basic_ecdhe",
    "demonstrate_tls_with_ecdhe",
    "describe",
    "explain_ecdhe_in_tls",
    "run_tls_client",
    "run_tls_server",
    "server_context",
]
