"""Smoke tests of the load generator (``ecdhe_async.bench`` / ``ecdhe-async bench``).

Small and bounded: a few dozen handshakes or blocks against a local server; the numbers are
checked for sanity (counted, positive, no errors), never for speed.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import get_args

import pytest

from ecdhe_async import bench, cli
from ecdhe_async.errors import ConfigError

from .conftest import PKI, running_server, server_settings


@pytest.mark.asyncio
async def test_run_load_handshakes(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        ctx = bench.bench_context(ca_file=str(pki.ca), groups="X25519")
        cfg = bench.LoadConfig(
            "handshakes",
            "127.0.0.1",
            server.port,
            concurrency=4,
            warmup=0.0,
            duration=10.0,
            count=24,
            timeout=5.0,
            server_hostname="localhost",
        )
        marks: list[str] = []
        result = await bench.run_load(cfg, ctx, lambda kind, snap: marks.append(kind))
    summary = result.as_dict()
    assert marks == ["start", "end"]
    assert result.errors == 0, result.last_error
    assert result.ops >= 24
    assert result.bytes == result.ops * len(bench.PAYLOAD)
    assert summary["ops_per_s"] > 0
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    assert result.seconds < 10.0  # the count ended the window


@pytest.mark.asyncio
async def test_run_load_throughput(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        ctx = bench.bench_context(ca_file=str(pki.ca))
        cfg = bench.LoadConfig(
            "throughput",
            "127.0.0.1",
            server.port,
            concurrency=2,
            warmup=0.0,
            duration=10.0,
            count=32,
            block_size=16 * 1024,
            window=2,
            timeout=5.0,
            server_hostname="localhost",
        )
        result = await bench.run_load(cfg, ctx)
    assert result.errors == 0, result.last_error
    assert result.ops >= 32
    assert result.bytes >= 32 * 16 * 1024
    assert result.as_dict()["mb_per_s"] > 0


@pytest.mark.asyncio
async def test_probe_reports_the_negotiation(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        ctx = bench.bench_context(ca_file=str(pki.ca), groups="X25519")
        info = await bench.probe("127.0.0.1", server.port, ctx, "localhost", 5.0)
    assert info["version"] == "TLSv1.3"
    assert info["group"] == "X25519"
    assert info["session_ticket"] == "no"  # tickets are off by default


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError):
        bench.LoadConfig("handshakes", "127.0.0.1", 1, concurrency=0)
    with pytest.raises(ConfigError):
        bench.LoadConfig("throughput", "127.0.0.1", 1, count=0)
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert bench.percentile([], 99) is None


@pytest.fixture
def serve_process(pki: PKI) -> Iterator[int]:
    """``ecdhe-async serve`` in a subprocess on a free port; yields the port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    argv = [sys.executable, "-m", "ecdhe_async", "serve", "--certfile", str(pki.server_cert)]
    argv += ["--keyfile", str(pki.server_key), "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))
            if "listening on" in lines[-1]:
                found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 15
        while not found.wait(0.1) and time.monotonic() < deadline and proc.poll() is None:
            pass
        match = re.search(r"listening on [\d.]+:(\d+)", "".join(lines))
        assert match, f"server did not start: {''.join(lines)[-800:]}"
        yield int(match.group(1))
    finally:
        proc.kill()
        proc.wait(10)
        reader.join(5)
        if proc.stderr is not None:
            proc.stderr.close()


def test_cli_bench_json(pki: PKI, serve_process: int, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "handshakes", "127.0.0.1", str(serve_process), "--ca-file", str(pki.ca)]
    argv += ["--server-hostname", "localhost", "-c", "4", "-n", "30", "-d", "10"]
    argv += ["--warmup", "0", "--loop", "asyncio", "--json"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["server"]["group"] == "X25519"
    assert report["ops"] >= 30
    assert report["errors"] == 0
    assert report["ops_per_s"] > 0
    assert report["client_cpu_s"] > 0


def test_cli_bench_refuses_bad_usage(pki: PKI) -> None:
    assert cli.main(["bench", "handshakes", "127.0.0.1", "1", "--insecure", "-c", "0"]) == 2


def test_cli_bench_modes_are_the_load_generators() -> None:
    assert cli.BENCH_MODES == get_args(bench.Mode)


def _run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip()


def test_cli_parser_loads_no_bench_code() -> None:
    code = "import sys\nfrom ecdhe_async import cli\ncli.build_parser()\n"
    code += "print(sorted(m for m in sys.modules if m.startswith('ecdhe_async.bench')))"
    assert _run_python(code) == "[]"


def test_bench_imports_without_resource_module() -> None:
    """Windows has no ``resource``: the package still imports, the limit is left alone."""
    code = "import sys\nsys.modules['resource'] = None\nfrom ecdhe_async import bench\n"
    code += "print(bench.raise_nofile_limit())"
    assert _run_python(code) == "None"
    assert bench.raise_nofile_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
