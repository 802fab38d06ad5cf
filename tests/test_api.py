"""The public surface: ``__all__`` pinned, and ``import ecdhe_async`` loads the core only."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import ecdhe_async
from ecdhe_async import LocalProtocolError, ProtocolError, RemoteProtocolError

CORE = [
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
    "client_context",
    "connect",
    "describe_context",
    "server_context",
]
#: The seed guide's functions with today's parameter names; imported on first use.
GUIDE = {
    "create_self_signed_cert": [
        "cert_file",
        "key_file",
        "hostnames",
        "common_name",
        "key_type",
        "days",
        "key_password",
        "overwrite",  # added after today's parameters (issue 11: never overwrite silently)
    ],
    "demonstrate_basic_ecdhe": ["curve"],
    "demonstrate_tls_with_ecdhe": ["message"],
    "explain_ecdhe_in_tls": [],
    "run_tls_client": ["host", "port", "message", "ca_file", "server_hostname"],
    "run_tls_server": ["host", "port", "cert_file", "key_file", "handler", "ready"],
}


def test_all_is_the_intended_api() -> None:
    assert sorted(ecdhe_async.__all__) == sorted([*CORE, *GUIDE, *AUDIT])
    assert len(set(ecdhe_async.__all__)) == len(ecdhe_async.__all__)


def _loaded_after(code: str) -> list[str]:
    """``ecdhe_async*`` modules in ``sys.modules`` after *code* ran in a fresh interpreter."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ecdhe_async'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


# Guide, tools and CLI modules, before and after their move into packages.
NOT_CORE = (
    "guide",
    "demo",
    "explain",
    "ecdhe",
    "bench",
    "cli",
    "audit",
    "auditor",
    "runner",
    "__main__",
)


def _not_core(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[1:2] and m.split(".")[1] in NOT_CORE]


def test_import_loads_no_guide_bench_or_cli_module() -> None:
    loaded = _loaded_after("import ecdhe_async")
    assert "ecdhe_async.server" in loaded  # the probe does see the core
    assert _not_core(loaded) == []


def test_guide_functions_are_imported_on_first_use() -> None:
    loaded = _loaded_after("import ecdhe_async\necdhe_async.run_tls_server")
    assert _not_core(loaded) != []
    for name, params in GUIDE.items():
        function = getattr(ecdhe_async, name)
        assert callable(function)
        assert list(inspect.signature(function).parameters) == params


#: The audit of other servers, ``await ecdhe_async.audit(host, port)``; imported on first use.
AUDIT = ["audit", "AuditReport"]


def test_audit_is_imported_on_first_use() -> None:
    assert _not_core(_loaded_after("import ecdhe_async")) == []
    loaded = _loaded_after("import ecdhe_async\necdhe_async.audit")
    assert "ecdhe_async.auditor" in loaded
    assert inspect.iscoroutinefunction(ecdhe_async.audit)
    assert list(inspect.signature(ecdhe_async.audit).parameters)[:2] == ["host", "port"]
    assert ecdhe_async.AuditReport.__name__ == "AuditReport"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'describe'"):
        ecdhe_async.describe  # noqa: B018 - the old name is gone, not silently aliased


def test_protocol_errors_share_a_base() -> None:
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(ProtocolError, ecdhe_async.ECDHEAsyncError)
