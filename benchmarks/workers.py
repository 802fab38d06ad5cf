#!/usr/bin/env python3
"""Handshakes per second with 1 and 2 worker processes (``ecdhe-async serve --workers N``).

For each N: start the server (echo handler, log level warning, one ECDSA P-256 certificate),
run ``--clients`` load-generator processes (``ecdhe-async bench handshakes``, TLS 1.3, X25519,
16 concurrent handshakes each) at the same time, and add up their handshakes/s. The server's CPU
(its whole process tree, /proc) over the clients' run gives CPU per handshake, and from it the
capacity of one core.

Caveat: nothing is pinned here. On a 2-core machine the load generators compete with the workers
for the same two cores, so the 2-worker figure is bounded by the machine, not by the server; the
per-core projection (benchmarks/README.md) is the number to plan with.

    python benchmarks/workers.py                 # ~30 s; writes results/workers.{md,json}
    python benchmarks/workers.py --seconds 3 --out /tmp
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procstat

from ecdhe_async.certs import create_self_signed_cert

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    # A benchmark convenience (the tests never do this): the server CLI needs a number up front.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, server: subprocess.Popen[bytes], deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while True:  # readiness poll, bounded by the deadline
        if server.poll() is not None:
            raise RuntimeError(f"server exited with status {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"server on port {port} not ready within {deadline}s") from None
            time.sleep(0.05)


def run_clients(port: int, cert: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    argv = [
        sys.executable, "-m", "ecdhe_async", "bench", "handshakes", "127.0.0.1", str(port),
        "--ca-file", str(cert), "--server-hostname", "localhost", "-c", "16",
        "-d", str(args.seconds), "--warmup", str(args.warmup), "--json",
    ]  # fmt: skip

    def one(_: int) -> dict[str, Any]:
        out = subprocess.run(
            argv, capture_output=True, check=True, timeout=args.seconds + args.warmup + 60
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    with ThreadPoolExecutor(args.clients) as pool:
        return list(pool.map(one, range(args.clients)))


def measure(workers: int, cert: Path, key: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    argv = [
        sys.executable, "-m", "ecdhe_async", "--log-level", "warning", "serve",
        "--workers", str(workers), "--port", str(port), "--certfile", str(cert),
        "--keyfile", str(key),
    ]  # fmt: skip
    server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_listening(port, server)
        pids = procstat.tree(server.pid)
        cpu0, t0 = procstat.cpu_seconds(pids), time.monotonic()
        clients = run_clients(port, cert, args)
        cpu1, t1 = procstat.cpu_seconds(procstat.tree(server.pid)), time.monotonic()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    rate = sum(c["ops_per_s"] for c in clients)
    errors = sum(c["errors"] for c in clients)
    # Server CPU was read over the clients' whole run (warm-up included): spread it over the
    # handshakes of that whole run at the measured rate.
    server_cpu_us = (cpu1 - cpu0) / (rate * (t1 - t0)) * 1e6 if rate else None
    client_cpu_us = sum(c["client_cpu_s"] for c in clients) / sum(c["ops"] for c in clients) * 1e6
    return {
        "workers": workers,
        "clients": args.clients,
        "handshakes_per_s": rate,
        "errors": errors,
        "server_cpu_us_per_handshake": server_cpu_us,
        "client_cpu_us_per_handshake": client_cpu_us,
        "one_core_capacity_per_s": 1e6 / server_cpu_us if server_cpu_us else None,
    }


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workers | handshakes/s (sum of clients) | errors | server CPU µs/handshake | "
        "client CPU µs/handshake | one core's capacity |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['handshakes_per_s']:.0f} | {r['errors']} | "
            f"{r['server_cpu_us_per_handshake']:.0f} | {r['client_cpu_us_per_handshake']:.0f} | "
            f"{r['one_core_capacity_per_s']:.0f}/s |"
        )
    one = rows[0]
    lines += [
        "",
        f"{os.cpu_count()} CPUs, {rows[0]['clients']} load-generator processes on the same CPUs "
        "(nothing pinned): the 2-worker row is bounded by the machine. Load average at the end: "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + " (above the CPU count: other work shared the machine).",
        f"Projection: N dedicated cores ~ N x {one['one_core_capacity_per_s']:.0f} handshakes/s "
        "(one core's capacity measured with 1 worker), minus shared kernel/network costs.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=6.0, help="measurement window per client")
    p.add_argument("--warmup", type=float, default=1.5, help="client warm-up (workers start)")
    p.add_argument("--clients", type=int, default=2, help="load-generator processes")
    p.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = create_self_signed_cert(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
        rows = [measure(n, cert, key, args) for n in (1, 2)]
    text = report(rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workers.md").write_text(text)
    (args.out / "workers.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
