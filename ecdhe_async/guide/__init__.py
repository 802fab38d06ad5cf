"""The seed guide's layer: ECDHE explained and shown live, on top of the framework.

Nothing in the core imports this package. ``ecdhe-async demo`` runs :func:`.demo.demo_main` and
``ecdhe-async explain`` runs :func:`.explain.explain_main`; the six functions below are the
guide's own names and parameters (also importable as ``ecdhe_async.NAME``).
"""

from ..certs import create_self_signed_cert as create_self_signed_cert
from .basic_ecdhe import demonstrate_basic_ecdhe as demonstrate_basic_ecdhe
from .explain import explain_ecdhe_in_tls as explain_ecdhe_in_tls
from .tls_demo import demonstrate_tls_with_ecdhe as demonstrate_tls_with_ecdhe
from .tls_demo import run_tls_client as run_tls_client
from .tls_demo import run_tls_server as run_tls_server

__all__ = [
    "create_self_signed_cert",
    "demonstrate_basic_ecdhe",
    "demonstrate_tls_with_ecdhe",
    "explain_ecdhe_in_tls",
    "run_tls_client",
    "run_tls_server",
]
