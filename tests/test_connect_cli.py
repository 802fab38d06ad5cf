"""``ecdhe-async connect`` as a user runs it (a real subprocess): refusals and errors are one line.

The server runs in the test process (both loops); the CLI runs on both loops too.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from .conftest import PKI, run_peer, running_server, server_settings

ROOT = Path(__file__).resolve().parent.parent
CONNECT = [sys.executable, "-m", "ecdhe_async", "connect"]
HINT = "the server requires a client certificate: pass --certfile and --keyfile"


@pytest.mark.parametrize("cli_loop", ["asyncio", "uvloop"])
@pytest.mark.asyncio
async def test_connect_without_client_cert_to_mtls_server_fails_every_time(
    pki: PKI, cli_loop: str
) -> None:
    settings = server_settings(pki, tls={"ca_file": pki.ca, "client_auth": "required"})
    async with running_server(settings) as server:
        argv = [*CONNECT, "127.0.0.1", str(server.port), "--ca-file", str(pki.ca)]
        argv += ["--server-hostname", "localhost", "--loop", cli_loop]
        for _ in range(3):
            res = await run_peer(*argv)
            assert res.returncode == 1, res.output
            lines = res.output.strip().splitlines()
            assert len(lines) == 1, res.output
            assert lines[0].startswith("ecdhe-async: the server refused"), res.output
            assert lines[0].endswith(HINT), res.output
            assert "Traceback" not in res.output
        # With the client certificate it connects (and says so).
        ok = await run_peer(
            *argv, "--certfile", str(pki.client_cert), "--keyfile", str(pki.client_key)
        )
        assert ok.returncode == 0, ok.output
        assert "connected to" in ok.output


@pytest.mark.asyncio
async def test_connect_network_errors_name_the_target() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    res = await run_peer(*CONNECT, "127.0.0.1", str(port))
    assert res.returncode == 1
    assert (
        res.output.strip() == f"ecdhe-async: cannot connect to 127.0.0.1:{port}: connection refused"
    )
    res = await run_peer(*CONNECT, "localhost", "70000")
    assert res.returncode == 2
    assert res.output.strip() == "ecdhe-async: port 70000 is out of range (1-65535)"
