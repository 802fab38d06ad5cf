"""Prometheus metrics and health endpoints over real HTTP, with real TLS peers.

Every scrape is a real ``GET`` on the endpoint's OS-chosen port, parsed with
``prometheus_client.parser.text_string_to_metric_families``. Handshakes come from
``openssl s_client`` (X25519, P-384; ffdhe-only, RSA key transport and TLS 1.1 clients refused);
two worker processes in multiprocess mode are scraped through one endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ecdhe_async import connect
from ecdhe_async.certs import DevCA, load_certificate
from ecdhe_async.connection import Connection
from ecdhe_async.events import (
    CertificateReloaded,
    ConnectionClosed,
    HandshakeCompleted,
    HandshakeFailed,
)
from ecdhe_async.metrics import (
    MAX_SERIES,
    ServerMetrics,
    serve_metrics,
    serve_multiprocess,
    worker_exited,
)
from ecdhe_async.server import TLSServer

from .conftest import PKI, client_settings, running_server, s_client, s_client_echo, server_settings
from .eventwatch import EventWatch
from .test_events import REFUSED_CLIENTS

ROOT = Path(__file__).resolve().parent.parent
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def get(url: str) -> tuple[int, str]:
    """A real HTTP GET, off the event loop (the endpoint's thread answers it)."""
    return await asyncio.wait_for(asyncio.to_thread(_get, url), 15)


async def scrape(base: str) -> Samples:
    status, text = await get(base + "/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample *name* whose labels include *labels* (exactly one must match)."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, (name, labels, [k for k in samples if k[0] == name])
    return found[0]


@contextlib.asynccontextmanager
async def metrics_for(server: TLSServer) -> AsyncIterator[str]:
    attached = serve_metrics(server)
    assert attached.endpoint is not None
    try:
        yield attached.endpoint.url
    finally:
        attached.close()


@pytest.mark.asyncio
async def test_scrape_counts_real_handshakes_and_refusals(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server, metrics_for(server) as url:
        watch = EventWatch(server)
        for group in ("X25519", "P-384"):
            res = await s_client_echo(server.port, "-groups", group, send=b"hi\n", expect=b"hi")
            assert f"Server Temp Key: {group.replace('P-384', 'ECDH, secp384r1')}" in res.output
        for _reason, args, _alert in REFUSED_CLIENTS:
            await s_client(server.port, *args)
        await watch.wait(ConnectionClosed, count=2)
        await watch.wait(HandshakeFailed, count=3)
        m = await scrape(url)
        # A connection held open shows in the gauge.
        async with connect("127.0.0.1", server.port, client_settings(pki)):
            await watch.wait(HandshakeCompleted, count=3)
            held = await scrape(url)

    hs = "ecdhe_async_handshakes_total"
    assert value(m, hs, group="X25519", version="TLSv1.3") == 1
    assert value(m, hs, group="P-384", version="TLSv1.3") == 1
    failures = "ecdhe_async_handshake_failures_total"
    for reason, _args, _alert in REFUSED_CLIENTS:
        assert value(m, failures, reason=reason) == 1
    assert value(m, failures, reason="timeout") == 0  # every reason exists from the start
    assert value(m, "ecdhe_async_handshake_duration_seconds_count") == 2
    assert 0 < value(m, "ecdhe_async_handshake_duration_seconds_sum") < 10
    assert value(m, "ecdhe_async_received_bytes_total") == 6
    assert value(m, "ecdhe_async_sent_bytes_total") == 6
    assert value(m, "ecdhe_async_connections_active") == 0
    assert value(held, "ecdhe_async_connections_active") == 1
    assert value(m, "ecdhe_async_handshakes_pending") == 0
    assert value(m, "ecdhe_async_connections_rejected_total", limit="max_connections") == 0
    assert value(m, "ecdhe_async_certificate_reloads_total", result="error") == 0
    expiry = load_certificate(pki.server_cert).not_valid_after_utc.timestamp()
    name = "ecdhe_async_certificate_expiry_timestamp_seconds"
    assert value(m, name, server_name="localhost") == expiry
    assert value(m, "process_cpu_seconds_total") > 0
    assert any(n == "python_info" for n, _ in m)


@pytest.mark.asyncio
async def test_readyz_flips_to_503_while_draining(pki: PKI) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def busy(conn: Connection) -> None:
        started.set()
        await release.wait()

    server = TLSServer(server_settings(pki), busy)
    await asyncio.wait_for(server.start(), 10)
    attached = serve_metrics(server)
    assert attached.endpoint is not None
    url = attached.endpoint.url
    closing: asyncio.Task[None] | None = None
    try:
        assert await get(url + "/healthz") == (200, "ok\n")
        assert await get(url + "/readyz") == (200, "ready\n")
        async with connect("127.0.0.1", server.port, client_settings(pki)):
            await asyncio.wait_for(started.wait(), 10)
            closing = asyncio.create_task(server.aclose(grace=10))
            for _ in range(100):  # bounded: aclose stops accepting on its first step
                if not server.accepting:
                    break
                await asyncio.sleep(0)
            assert not server.accepting
            assert await get(url + "/readyz") == (503, "draining\n")
            assert await get(url + "/healthz") == (200, "ok\n")
            assert (await get(url + "/metrics"))[0] == 200
            assert (await get(url + "/nope"))[0] == 404
            release.set()
            await asyncio.wait_for(closing, 15)
    finally:
        release.set()
        attached.close()
        if closing is not None and not closing.done():
            closing.cancel()
        await asyncio.wait_for(server.aclose(grace=0), 15)
    with pytest.raises(urllib.error.URLError):  # closed with the server
        await asyncio.to_thread(_get, url + "/healthz")


def test_label_values_stay_bounded() -> None:
    metrics = ServerMetrics()
    for i in range(3 * MAX_SERIES):  # e.g. a bug feeding free text as a cipher name
        metrics(
            HandshakeCompleted(None, "TLSv1.3", f"CIPHER-{i}", "X25519", None, None, None, 0.01)
        )
    series = [
        s
        for family in metrics.registry.collect()
        if family.name == "ecdhe_async_handshakes"
        for s in family.samples
        if s.name.endswith("_total")
    ]
    assert len(series) == MAX_SERIES + 1
    other = [s for s in series if s.labels["cipher"] == "other"]
    assert other[0].value == 2 * MAX_SERIES


def test_metrics_without_the_extra_is_one_clear_line(pki: PKI, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'prometheus_client':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from ecdhe_async.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["serve", "--port", "0", "--metrics-port", "9464"]
    argv += ["--certfile", str(pki.server_cert), "--keyfile", str(pki.server_key)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    # The certificate is loaded (INFO) before the server starts; then one line, no traceback.
    lines = [x for x in proc.stderr.strip().splitlines() if " INFO " not in x]
    assert lines == [
        "ecdhe-async: metrics need the optional extra: pip install 'ecdhe-async[metrics]' "
        "(prometheus-client)"
    ]


WORKER = """
import asyncio, sys
from ecdhe_async import ServerSettings, TLSServer

async def main() -> None:
    tls = {"certfile": sys.argv[1], "keyfile": sys.argv[2]}
    # metrics_port is set, but in multiprocess mode a worker records and does not bind it.
    server = TLSServer(ServerSettings.load(port=0, metrics_port=9, tls=tls))
    await server.start()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await server.aclose(grace=1)

asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_two_worker_processes_one_scrape_sums_them(pki: PKI, tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    env.update(PYTHONPATH=str(ROOT), PROMETHEUS_MULTIPROC_DIR=str(directory))
    workers = []
    endpoint = serve_multiprocess(directory)
    try:
        for _ in range(2):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                WORKER,
                str(pki.server_cert),
                str(pki.server_key),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            workers.append(proc)
        ports = []
        for proc in workers:
            assert proc.stdout is not None
            ports.append(int(await asyncio.wait_for(proc.stdout.readline(), 30)))
        plan = [(ports[0], "X25519"), (ports[1], "P-384"), (ports[1], "P-384")]
        for port, group in plan:
            await s_client_echo(port, "-groups", group, send=b"hi\n", expect=b"hi")
        live = await scrape(endpoint.url)  # both workers alive: one scrape, the sum
        hs = "ecdhe_async_handshakes_total"
        assert value(live, hs, group="X25519") == 1
        assert value(live, hs, group="P-384") == 2
        assert value(live, "ecdhe_async_handshake_duration_seconds_count") == 3
        now = datetime.now(UTC).timestamp()
        assert value(live, "ecdhe_async_certificate_expiry_timestamp_seconds") > now
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.close()
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            worker_exited(proc.pid, directory)
        done = await scrape(endpoint.url)
        assert value(done, "ecdhe_async_received_bytes_total") == 9
        assert value(done, "ecdhe_async_sent_bytes_total") == 9
        assert value(done, hs, group="P-384") == 2  # counters outlive their workers
        # Live gauges of dead workers are gone (livesum / livemin).
        assert not [n for n, _ in done if n == "ecdhe_async_certificate_expiry_timestamp_seconds"]
        pids = {p.name.rsplit("_", 1)[1].split(".")[0] for p in directory.glob("counter_*.db")}
        assert pids == {str(proc.pid) for proc in workers}
    finally:
        endpoint.close()
        for proc in workers:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_prepare_multiprocess_in_a_supervisor(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"stale")
    code = (
        "import os, sys\n"
        "from ecdhe_async import metrics\n"
        "metrics.prepare_multiprocess(sys.argv[1])\n"
        "assert os.environ['PROMETHEUS_MULTIPROC_DIR'] == sys.argv[1]\n"
        "m = metrics.ServerMetrics()\n"
        "m.failures.labels('timeout').inc()\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(directory)],
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    files = sorted(p.name for p in directory.iterdir())
    assert "counter_1.db" not in files  # the previous run's file is gone
    assert any(name.startswith("counter_") for name in files)  # written through the mmap


@pytest.mark.asyncio
async def test_metrics_port_from_settings_busy_is_an_error_and_no_listener_left(pki: PKI) -> None:
    import socket

    with socket.socket() as busy:  # hold a port: metrics_port cannot bind it
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = TLSServer(server_settings(pki, metrics_port=port))
        with pytest.raises(OSError, match="in use"):
            await asyncio.wait_for(server.start(), 10)
        assert server.addresses == []  # the TLS listener was closed again
        assert not server.accepting
        await asyncio.wait_for(server.aclose(), 10)


@pytest.mark.asyncio
async def test_certificate_reloads_are_counted_with_every_expiry(pki: PKI, tmp_path: Path) -> None:
    """A real store (default + one SNI certificate), real reloads from a thread (as SIGHUP and
    the file watch do): reload counter by result, an expiry gauge per certificate, and events."""
    ca = DevCA.load(pki.ca, pki.dir / "ca-key.pem")
    cert, key = tmp_path / "live.pem", tmp_path / "live-key.pem"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    os.chmod(key, 0o600)
    api_cert, api_key = ca.issue_server_cert(
        tmp_path / "api.pem", tmp_path / "api-key.pem", hostnames=["api.example.com"], days=30
    )
    tls = {
        "certfile": cert,
        "keyfile": key,
        "certificates": [
            {"certfile": api_cert, "keyfile": api_key, "server_names": ["api.example.com"]}
        ],
    }
    async with running_server(server_settings(pki, tls=tls)) as server:
        watch = EventWatch(server)
        async with metrics_for(server) as url:
            first = await scrape(url)
            api_expiry = load_certificate(api_cert).not_valid_after_utc.timestamp()
            expiry = "ecdhe_async_certificate_expiry_timestamp_seconds"
            assert value(first, expiry, server_name="api.example.com") == api_expiry
            own = load_certificate(pki.server_cert).not_valid_after_utc.timestamp()
            assert value(first, expiry, server_name="localhost") == own
            assert await asyncio.to_thread(server.reload)
            (ok,) = await watch.wait(CertificateReloaded)
            assert ok.result == "ok"
            assert {c.server_name for c in ok.certificates} == {"localhost", "api.example.com"}
            cert.write_bytes(cert.read_bytes()[:100])  # half-written: keep the last good ones
            assert not await asyncio.to_thread(server.reload)
            (_, bad) = await watch.wait(CertificateReloaded, count=2)
            assert bad.result == "error"
            assert bad.error is not None
            assert str(cert) in bad.error
            after = await scrape(url)
    reloads = "ecdhe_async_certificate_reloads_total"
    assert value(after, reloads, result="ok") == 1
    assert value(after, reloads, result="error") == 1
    assert value(after, expiry, server_name="localhost") == own
