"""A real HAProxy in front of a TLSServer, running examples/deploy/haproxy.cfg itself.

The client connects to HAProxy from 127.0.0.5; HAProxy (TCP mode) connects to us from 127.0.0.1
and sends a PROXY v1 or v2 header; the handler must see 127.0.0.5. HAProxy's listening socket is
bound here on port 0 and handed over as ``fd@N``, so the port comes from the OS and the socket
accepts (queues) connections before HAProxy is even up: no readiness poll is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecdhe_async.tls import client_context

from .conftest import PKI, client_settings, running_server, s_client, server_settings
from .test_proxy_server import who

HAPROXY = shutil.which("haproxy") or next(
    (p for p in ("/usr/sbin/haproxy", "/sbin/haproxy") if os.access(p, os.X_OK)), None
)
CONFIG = Path(__file__).resolve().parent.parent / "examples" / "deploy" / "haproxy.cfg"


@contextlib.contextmanager
def haproxy(backend_port: int, send_proxy: str, log: Path) -> Iterator[int]:
    """Run HAProxy on examples/deploy/haproxy.cfg; yield its frontend port; stop it after."""
    assert HAPROXY, "haproxy is required (apt-get install -y haproxy; .ci/run installs it)"
    front = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    front.bind(("127.0.0.1", 0))
    front.listen(64)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ECDHE_FRONTEND": f"fd@{front.fileno()}",
        "ECDHE_BACKEND": f"127.0.0.1:{backend_port}",
        "ECDHE_SEND_PROXY": send_proxy,
    }
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(CONFIG)],
            env=env,
            pass_fds=[front.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )
    try:
        yield front.getsockname()[1]
    finally:
        front.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.asyncio
@pytest.mark.parametrize(("send_proxy", "mode"), [("send-proxy-v2", "v2"), ("send-proxy", "v1")])
async def test_client_address_through_haproxy(
    pki: PKI, tmp_path: Path, send_proxy: str, mode: str
) -> None:
    settings = server_settings(pki, proxy_protocol=mode)
    ctx = client_context(client_settings(pki).tls)
    async with running_server(settings, who) as server:
        with haproxy(server.port, send_proxy, tmp_path / "haproxy.log") as front:
            for i in range(3):  # several connections, each from 127.0.0.5
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(
                            "127.0.0.1",
                            front,
                            ssl=ctx,
                            server_hostname="localhost",
                            local_addr=("127.0.0.5", 0),
                        ),
                        15,
                    )
                except (OSError, TimeoutError) as exc:
                    log = (tmp_path / "haproxy.log").read_text(errors="replace")
                    raise AssertionError(f"through HAProxy failed: {exc!r}\n{log}") from exc
                local_port = writer.get_extra_info("sockname")[1]
                try:
                    line = (await asyncio.wait_for(reader.readline(), 10)).decode()
                    writer.write(b"echo %d" % i)
                    await writer.drain()
                    assert await asyncio.wait_for(reader.readexactly(6), 10) == b"echo %d" % i
                finally:
                    writer.close()
                    with contextlib.suppress(OSError, TimeoutError):
                        await asyncio.wait_for(writer.wait_closed(), 5)
                peer, proxy, version, command, _ = line.split()
                assert peer == f"127.0.0.5:{local_port}"
                assert proxy.startswith("127.0.0.1:")
                assert (version, command) == (f"{mode}", "PROXY")
        assert server.stats.proxy_errors == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(("send_proxy", "mode"), [("send-proxy-v2", "v2"), ("send-proxy", "auto")])
async def test_ffdhe_only_client_through_haproxy_gets_the_alert(
    pki: PKI, tmp_path: Path, send_proxy: str, mode: str
) -> None:
    """The PROXY stage changes nothing about refusals: openssl still reads our fatal alert."""
    async with running_server(server_settings(pki, proxy_protocol=mode), who) as server:
        with haproxy(server.port, send_proxy, tmp_path / "haproxy.log") as front:
            result = await s_client(front, "-tls1_3", "-groups", "ffdhe2048")
        assert "alert handshake failure" in result.output, result.output
        assert "unexpected eof" not in result.output.lower(), result.output
        assert result.returncode != 0
        assert server.stats.handshake_failures == 1
        assert server.stats.handshakes == 0
        assert server.stats.proxy_errors == 0
