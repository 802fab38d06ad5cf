"""The open-file limit at server start (issue 10.10): raised toward the hard limit, else a warning.

Each case runs a real server in a subprocess whose limits were lowered first (setrlimit applies
to the whole process, so the test process keeps its own), on both loops.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from .conftest import PKI

SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    from ecdhe_async import ServerSettings, TLSServer
    from ecdhe_async.loops import run

    soft, hard, max_conn, cert, key, loop = sys.argv[1:]
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(soft), int(hard)))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    async def main() -> None:
        settings = ServerSettings.load(
            port=0, max_connections=int(max_conn), tls={"certfile": cert, "keyfile": key}
        )
        async with TLSServer(settings):
            print("SOFT", resource.getrlimit(resource.RLIMIT_NOFILE)[0], flush=True)

    run(main(), loop=loop)
    """
)


def run_server(pki: PKI, soft: int, hard: int, max_connections: int, loop: str) -> str:
    args = [str(soft), str(hard), str(max_connections), str(pki.server_cert), str(pki.server_key)]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args, loop],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_soft_limit_raised_toward_hard(pki: PKI, loop: str) -> None:
    out = run_server(pki, 128, 4096, 1000, loop)
    assert "SOFT 1064" in out, out  # max_connections + 64 spare
    assert "raised the open-file limit (RLIMIT_NOFILE) from 128 to 1064" in out, out
    assert "WARNING" not in out, out


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_hard_limit_too_low_warns_once_with_numbers(pki: PKI, loop: str) -> None:
    out = run_server(pki, 100, 256, 1000, loop)
    assert "SOFT 256" in out, out
    warnings = [line for line in out.splitlines() if line.startswith("WARNING")]
    assert warnings == [
        "WARNING open-file limit 256 (hard limit 256) is below max_connections 1000 + 64 spare: "
        "connections beyond about 192 will fail; raise the hard limit (ulimit -Hn, "
        "LimitNOFILE=) or lower max_connections"
    ], out


def test_enough_already_is_left_alone(pki: PKI) -> None:
    out = run_server(pki, 2048, 4096, 1000, "asyncio")
    assert "SOFT 2048" in out, out
    assert "RLIMIT_NOFILE" not in out, out
    assert "WARNING" not in out, out
