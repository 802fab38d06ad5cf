#!/usr/bin/env python3
"""Side by side: CPU per TLS handshake, CPU per GB echoed and memory per connection.

Method (issue 5):

- Every server is started ONCE and pinned to the server CPU; one load-generator process
  (``benchmarks/agent.py`` over :mod:`ecdhe_async.bench`, uvloop) is pinned to the client CPU.
- Rounds alternate the servers (A B C …, order rotated every round). In each measurement the
  agent warms up, then marks the window's start and end while the load keeps running; at each
  mark the harness reads utime+stime of the server's process tree and of the agent from
  /proc/PID/stat. The comparison metrics are **server CPU µs per handshake** and **server CPU
  seconds per GB echoed**, and the same divided by the client's CPU for the same work
  (``server/client``), which cancels the machine's speed drift; ratios to the bare baselines are
  paired per round. Medians of the rounds with min-max.
- The same server twice (A/A: a second ecdhe_async/uvloop process) shows the noise floor.
- ``openssl s_time -new`` (a C client, one connection at a time) is a second client.
- Memory: fresh server processes; RSS of the server tree after a 50-connection warm-up, then with
  N idle established TLS connections (each did a 16-byte echo), or with N TCP connections that
  never send a ClientHello.

Writes ``benchmarks/results/latest.{md,json}`` and ``latest.png`` (with matplotlib).

    python benchmarks/run.py            # full run, about 5-6 minutes on the 2-core machine
    python benchmarks/run.py --quick    # about 80 s: shorter windows, 500 connections
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import procstat
import report
from harness import Agent, Server, Spec

RESULTS = harness.BENCH / "results"

CPU_SERVERS = [
    Spec("ours-uvloop", "ecdhe_async serve, uvloop", "ours", "uvloop", tickets="0"),
    Spec("ours-asyncio", "ecdhe_async serve, stdlib loop", "ours", "asyncio", tickets="0"),
    Spec("bare-asyncio", "bare asyncio.start_server + ssl", "bare", "asyncio", tickets="2"),
    Spec("bare-uvloop", "bare uvloop start_server + ssl", "bare", "uvloop", tickets="2"),
    Spec(
        "bare-uvloop-t0",
        "bare uvloop + ssl, num_tickets=0",
        "bare",
        "uvloop",
        tickets="0",
        extra_args=("--num-tickets", "0"),
    ),
    Spec("node", "node tls echo", "node", tickets="1"),
    Spec("openssl", "openssl s_server -rev (C)", "openssl", modes=("handshakes",), tickets="2"),
    Spec("ours-uvloop-aa", "A/A: ecdhe_async serve, uvloop #2", "ours", "uvloop", tickets="0"),
    # Observability cost (issue 13): metrics on (a live endpoint) with the access log off, and
    # the access log off alone, each paired with ours-uvloop (metrics off, access log on).
    Spec(
        "ours-uvloop-metrics",
        "ecdhe_async serve, uvloop, metrics on + access log off",
        "ours",
        "uvloop",
        env={"ECDHE_ASYNC_METRICS_PORT": harness.FREE_PORT, "ECDHE_ASYNC_ACCESS_LOG": "false"},
        tickets="0",
    ),
    Spec(
        "ours-uvloop-nolog",
        "ecdhe_async serve, uvloop, access log off",
        "ours",
        "uvloop",
        env={"ECDHE_ASYNC_ACCESS_LOG": "false"},
        tickets="0",
    ),
]
_S = {s.key: s for s in CPU_SERVERS}
_RAISED = {"ECDHE_ASYNC_MAX_PENDING_HANDSHAKES": "4096"}
MEMORY_TESTS: list[tuple[Spec, str, str]] = [
    # (server, "tls" | "silent", note)
    (_S["ours-uvloop"], "tls", "defaults"),
    (_S["ours-asyncio"], "tls", "defaults"),
    (_S["bare-asyncio"], "tls", ""),
    (_S["bare-uvloop"], "tls", ""),
    (_S["node"], "tls", ""),
    (_S["ours-uvloop"], "silent", "defaults (max_pending_handshakes=512)"),
    (
        Spec("ours-uvloop", "ecdhe_async serve, uvloop", "ours", "uvloop", env=_RAISED),
        "silent",
        "max_pending_handshakes=4096",
    ),
    (_S["ours-asyncio"], "silent", "defaults (max_pending_handshakes=512)"),
    (
        Spec("ours-asyncio", "ecdhe_async serve, stdlib loop", "ours", "asyncio", env=_RAISED),
        "silent",
        "max_pending_handshakes=4096",
    ),
    (_S["bare-asyncio"], "silent", ""),
    (_S["bare-uvloop"], "silent", ""),
    (_S["node"], "silent", ""),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short run (~1 min): smoke-level numbers")
    p.add_argument("--rounds", type=int, help="rounds per mode (5; --quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of load before each window (0.5)")
    p.add_argument("--hs-seconds", type=float, help="handshake window per server (2.0)")
    p.add_argument("--tp-seconds", type=float, help="throughput window per server (2.5)")
    p.add_argument("--concurrency", type=int, default=16, help="handshake workers")
    p.add_argument("--connections", type=int, default=4, help="throughput connections")
    p.add_argument("--window", type=int, default=4, help="64 KiB blocks in flight per conn")
    p.add_argument("--mem-conns", type=int, help="connections per memory test (2000)")
    p.add_argument("--s-time-seconds", type=int, help="openssl s_time per server (2; 0 = off)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory tests")
    p.add_argument(
        "--max-other-load",
        type=float,
        default=0.3,
        help="CPUs used by other processes during a window above which it is re-measured",
    )
    p.add_argument("--retries", type=int, help="re-measurements of a disturbed window (1)")
    p.add_argument("--s-time-rounds", type=int, help="rounds of openssl s_time (3)")
    p.add_argument(
        "--servers",
        help="comma-separated subset of: " + ",".join(s.key for s in CPU_SERVERS),
    )
    p.add_argument(
        "--candidate",
        type=Path,
        help="directory holding a modified ecdhe_async package (put first on PYTHONPATH):\n"
        "also measured as candidate-uvloop / candidate-asyncio, paired with ours",
    )
    p.add_argument(
        "--candidate-patch",
        type=Path,
        help="a patch (-p1, paths a/ecdhe_async/...) applied to a copy of ecdhe_async,\n"
        "measured as the candidate (e.g. benchmarks/patches/*.patch)",
    )
    p.add_argument(
        "--candidate-loops", default="uvloop", help="loops for the candidate (uvloop,asyncio)"
    )
    p.add_argument(
        "--candidate-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the candidate (repeatable); alone, the candidate is this\n"
        "checkout with that environment, e.g. ECDHE_ASYNC_LOG_LEVEL=warning",
    )
    p.add_argument("--server-cpu", type=int, default=0, help="CPU for the servers")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU for the load generator")
    p.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    p.add_argument("--name", default="latest", help="output file stem")
    p.add_argument("--keep-logs", action="store_true", help="keep the server/agent logs")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "rounds": 3 if quick else 5,
        "warmup": 0.3 if quick else 0.5,
        "hs_seconds": 0.8 if quick else 2.0,
        "tp_seconds": 0.6 if quick else 2.5,
        "mem_conns": 500 if quick else 2000,
        "s_time_seconds": 0 if quick else 2,
        "s_time_rounds": 3,
        "retries": 0 if quick else 1,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return args


def candidate_specs(args: argparse.Namespace, workdir: Path, log: Any) -> list[Spec]:
    """Servers running a modified copy of ecdhe_async (``--candidate`` / ``--candidate-patch``)."""
    path: Path | None = args.candidate
    if args.candidate_patch is not None:
        path = workdir / "candidate"
        shutil.copytree(
            harness.ROOT / "ecdhe_async",
            path / "ecdhe_async",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        with args.candidate_patch.open("rb") as fh:
            subprocess.run(["patch", "-p1", "-s", "-d", str(path)], stdin=fh, check=True)
        log(f"candidate: {args.candidate_patch} applied to a copy of ecdhe_async in {path}")
    extra = dict(item.split("=", 1) for item in args.candidate_env)
    if path is None:
        if not extra:
            return []
        return [
            Spec(
                f"candidate-{loop}",
                f"candidate ({', '.join(args.candidate_env)}), {loop}",
                "ours",
                loop,
                env=extra,
                tickets="0",
            )
            for loop in args.candidate_loops.split(",")
            if loop in ("uvloop", "asyncio")
        ]
    if not (path / "ecdhe_async" / "__init__.py").is_file():
        raise SystemExit(f"--candidate {path}: no ecdhe_async package there")
    env = {"PYTHONPATH": str(path.resolve()), **extra}
    where = subprocess.run(
        [harness.PY, "-c", "import ecdhe_async; print(ecdhe_async.__file__)"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=path,
        timeout=60,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(path.resolve()):
        raise SystemExit(f"candidate: ecdhe_async resolves to {where}, not under {path}")
    return [
        Spec(
            f"candidate-{loop}",
            f"candidate ecdhe_async serve, {loop}",
            "ours",
            loop,
            env=env,
            tickets="0",
            cwd=path.resolve(),
        )
        for loop in args.candidate_loops.split(",")
        if loop in ("uvloop", "asyncio")
    ]


def machine_info(server_cpu: int | None, client_cpu: int | None) -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(argv: list[str]) -> str | None:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None

    try:
        import uvloop

        uv: str | None = getattr(uvloop, "__version__", None)
    except ImportError:
        uv = None
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_openssl": ssl.OPENSSL_VERSION,
        "openssl_cli": version(["openssl", "version"]),
        "uvloop": uv,
        "node": version(["node", "--version"]),
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def make_cert(workdir: Path) -> tuple[Path, Path]:
    from ecdhe_async.certs import create_self_signed_cert

    cert, key = create_self_signed_cert(
        workdir / "cert.pem", workdir / "key.pem", key_type="ec-p256", common_name="localhost"
    )
    return Path(cert), Path(key)


def measure(agent: Agent, server: Server, mode: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """One window of load against *server*, with server and client CPU sampled at its edges."""
    agent.send(op="load", mode=mode, port=server.port, **cfg)
    marks: dict[str, tuple[float, float, float, float, float, float]] = {}
    limit = cfg["warmup"] + cfg["duration"] + cfg["timeout"] + 20
    while True:
        kind, data = agent.read(limit)
        if kind == "MARK":
            now = time.monotonic()
            user, system = procstat.cpu_split(server.pids)
            busy, steal = procstat.machine_busy()
            marks[data["kind"]] = (now, user + system, agent.cpu(), system, busy, steal)
        elif kind == "RESULT":
            result = data
            break
    (t0, s0, c0, sys0, b0, st0), (t1, s1, c1, sys1, b1, st1) = marks["start"], marks["end"]
    server_cpu, client_cpu, wall = s1 - s0, c1 - c0, t1 - t0
    row: dict[str, Any] = {
        "mode": mode,
        "server": server.spec.key,
        "ops": result["ops"],
        "bytes": result["bytes"],
        "seconds": result["seconds"],
        "errors": result["errors"],
        "last_error": result["last_error"],
        "ops_per_s": result["ops_per_s"],
        "mb_per_s": result["mb_per_s"],
        "p50_ms": result["latency_ms"]["p50"],
        "p99_ms": result["latency_ms"]["p99"],
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "server_util": server_cpu / wall if wall > 0 else None,
        "client_util": client_cpu / wall if wall > 0 else None,
        "server_over_client": server_cpu / client_cpu if client_cpu > 0 else None,
        "server_sys_share": (sys1 - sys0) / server_cpu if server_cpu > 0 else None,
        # CPU used by everything else on the machine meanwhile (other users' jobs), in CPUs.
        "other_load": max(0.0, (b1 - b0) - server_cpu - client_cpu) / wall if wall > 0 else None,
        "steal": (st1 - st0) / wall if wall > 0 else None,
    }
    if mode == "handshakes":
        ops = result["ops"]
        row["server_us_per_op"] = server_cpu / ops * 1e6 if ops else None
        row["client_us_per_op"] = client_cpu / ops * 1e6 if ops else None
    else:
        gb = result["bytes"] / 1e9
        row["server_s_per_gb"] = server_cpu / gb if gb else None
        row["client_s_per_gb"] = client_cpu / gb if gb else None
    return row


def cpu_rounds(
    args: argparse.Namespace, agent: Agent, servers: list[Server], log: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for mode, seconds, conc in (
        ("handshakes", args.hs_seconds, args.concurrency),
        ("throughput", args.tp_seconds, args.connections),
    ):
        group = [s for s in servers if mode in s.spec.modes]
        cfg = {
            "concurrency": conc,
            "warmup": args.warmup,
            "duration": seconds,
            "window": args.window,
            "timeout": 10.0,
        }
        for rnd in range(args.rounds):
            shift = rnd % len(group)
            for server in group[shift:] + group[:shift]:
                if not server.alive():
                    raise RuntimeError(f"{server.spec.key} died: {server.log_tail()}")
                server.refresh_pids()
                row = measure(agent, server, mode, cfg)
                for _ in range(args.retries):
                    # Other jobs on this shared machine took CPU meanwhile: measure again and
                    # keep the least disturbed window.
                    if (row["other_load"] or 0.0) <= args.max_other_load:
                        break
                    log(f"  ({server.spec.key}: other load {row['other_load']:.2f} CPUs, again)")
                    again = measure(agent, server, mode, cfg)
                    again["attempts"] = row.get("attempts", 1) + 1
                    if (again["other_load"] or 0.0) < (row["other_load"] or 0.0):
                        row = again
                    else:
                        row["attempts"] = again["attempts"]
                row["round"] = rnd
                rows.append(row)
                log(
                    f"  {mode:<10} r{rnd} {server.spec.key:<15} "
                    + (
                        f"{row['ops_per_s']:7.0f} hs/s  srv {row['server_us_per_op'] or 0:6.0f} "
                        f"us/hs  cli {row['client_us_per_op'] or 0:6.0f} us/hs"
                        if mode == "handshakes"
                        else f"{row['mb_per_s']:7.1f} MB/s  srv {row['server_s_per_gb'] or 0:5.2f}"
                        f" s/GB  cli {row['client_s_per_gb'] or 0:5.2f} s/GB"
                    )
                    + f"  srv/cli {row['server_over_client'] or 0:.2f}"
                    + f"  util {row['server_util'] or 0:.0%}/{row['client_util'] or 0:.0%}"
                    + f"  other {row['other_load'] or 0:.2f}"
                    + (f"  errors {row['errors']} ({row['last_error']})" if row["errors"] else "")
                )
    s_time_rows: list[dict[str, Any]] = []
    if args.s_time_seconds > 0 and shutil.which("openssl"):
        group = [s for s in servers if "handshakes" in s.spec.modes]
        for rnd in range(args.s_time_rounds):
            shift = rnd % len(group)
            for server in group[shift:] + group[:shift]:
                server.refresh_pids()
                before = server.cpu()
                res = harness.run_s_time(server.port, args.s_time_seconds, args.client_cpu)
                server_cpu = server.cpu() - before
                n = res["connections"]
                row = {
                    "round": rnd,
                    "server": server.spec.key,
                    "connections": n,
                    "seconds": res["wall"],
                    "ops_per_s": n / res["wall"],
                    "server_cpu_s": server_cpu,
                    "client_cpu_s": res["client_cpu"],
                    "server_us_per_op": server_cpu / n * 1e6 if n else None,
                    "client_us_per_op": res["client_cpu"] / n * 1e6 if n else None,
                    "server_over_client": server_cpu / res["client_cpu"]
                    if res["client_cpu"] > 0
                    else None,
                }
                s_time_rows.append(row)
                log(
                    f"  s_time     r{rnd} {server.spec.key:<15} {row['ops_per_s']:7.0f} hs/s  "
                    f"srv {row['server_us_per_op'] or 0:6.0f} us/hs  "
                    f"cli {row['client_us_per_op'] or 0:6.0f} us/hs"
                )
    return rows, s_time_rows


def wait_rss_stable(server: Server, timeout: float = 4.0) -> int:
    """RSS once two readings 0.25 s apart agree within 0.5 % (or after *timeout*)."""
    deadline = time.monotonic() + timeout
    last = server.rss()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = server.rss()
        if abs(now - last) <= 0.005 * max(last, 1):
            return now
        last = now
    return last


def memory_tests(
    args: argparse.Namespace,
    agent: Agent,
    workdir: Path,
    cert: Path,
    key: Path,
    log: Any,
    candidates: list[Spec],
) -> list[dict[str, Any]]:
    rows = []
    n = args.mem_conns
    wanted = set(args.servers.split(",")) if args.servers else None
    tests = list(MEMORY_TESTS)
    for spec in candidates:
        tests.append((spec, "tls", "defaults"))
        raised = Spec(**{**spec.__dict__, "env": {**spec.env, **_RAISED}})
        tests.append((raised, "silent", "max_pending_handshakes=4096"))
    if wanted is not None:
        wanted |= {s.key for s in candidates}
    for i, (spec, kind, note) in enumerate(tests):
        if wanted is not None and spec.key not in wanted:
            continue
        if "max_pending_handshakes=4096" in note and n <= 512 and not spec.key.startswith("cand"):
            continue  # below the default cap the raised-cap run measures the same thing
        server = Server(spec, workdir, cert, key, args.server_cpu, tag=f"-mem{i}")
        try:
            agent.call("HELD", 60, op="hold_tls", port=server.port, n=50)
            agent.call("RELEASED", 30, op="release")
            time.sleep(0.5)
            server.refresh_pids()
            rss0 = wait_rss_stable(server)
            op = "hold_tls" if kind == "tls" else "hold_tcp"
            held = agent.call("HELD", 120, op=op, port=server.port, n=n, concurrency=32)
            time.sleep(0.5)
            rss1 = wait_rss_stable(server)
            status = agent.call("HELD", 30, op="status")
            agent.call("RELEASED", 60, op="release")
            time.sleep(0.5)
            rss2 = wait_rss_stable(server, timeout=2.0)
        finally:
            server.stop()
        growth = rss1 - rss0
        alive = status["alive"]
        row = {
            "server": spec.key,
            "kind": kind,
            "note": note,
            "connections": n,
            "established": held["alive"],
            "alive_at_measure": alive,
            "errors": held["errors"],
            "rss_before": rss0,
            "rss_with": rss1,
            "rss_after_close": rss2,
            "kib_per_conn": growth / n / 1024,
            "kib_per_alive_conn": growth / alive / 1024 if alive else None,
        }
        rows.append(row)
        log(
            f"  memory     {kind:<6} {spec.key:<13} {note:<38} {row['kib_per_conn']:7.1f} KiB/conn"
            f"  ({alive}/{n} alive, rss {rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} MiB,"
            f" {rss2 / 2**20:.0f} after close)"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()

    def log(msg: str) -> None:
        sys.stderr.write(f"[{time.monotonic() - started:6.1f}s] {msg}\n")
        sys.stderr.flush()

    cpus = os.sched_getaffinity(0)
    server_cpu: int | None = args.server_cpu
    client_cpu: int | None = args.client_cpu
    if server_cpu not in cpus or client_cpu not in cpus or server_cpu == client_cpu:
        log(f"WARNING: cannot pin server to CPU {server_cpu} and client to {client_cpu}")
        server_cpu = client_cpu = None
    args.server_cpu, args.client_cpu = server_cpu, client_cpu
    soft, hard = harness.raise_nofile()
    log(f"RLIMIT_NOFILE {soft}/{hard}")
    if soft < args.mem_conns * 2 + 100:
        args.mem_conns = max(100, (soft - 100) // 2)
        log(f"WARNING: fd limit: memory tests use {args.mem_conns} connections")

    workdir = Path(tempfile.mkdtemp(prefix="ecdhe-bench-"))
    candidates = candidate_specs(args, workdir, log)
    specs = CPU_SERVERS + candidates
    if args.servers:
        wanted = set(args.servers.split(",")) | {s.key for s in candidates}
        specs = [s for s in specs if s.key in wanted]
    if not shutil.which("node"):
        log("node not found: skipping the node server")
        specs = [s for s in specs if s.kind != "node"]
    if not shutil.which("openssl"):
        log("openssl not found: skipping s_server and s_time")
        specs = [s for s in specs if s.kind != "openssl"]
        args.s_time_seconds = 0

    # Ctrl-C / SIGTERM: unwind through the finally below (kills everything we started).
    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    machine = machine_info(server_cpu, client_cpu)
    log(f"machine: {machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}")
    result: dict[str, Any] = {}
    try:
        cert, key = make_cert(workdir)
        agent = Agent(workdir, client_cpu)
        servers: list[Server] = []
        for spec in specs:
            servers.append(Server(spec, workdir, cert, key, server_cpu))
        probes = {}
        for server in servers:
            probes[server.spec.key] = agent.call("PROBE", 30, op="probe", port=server.port)
            log(f"started {server.spec.key:<15} port {server.port}: {probes[server.spec.key]}")
        log(f"CPU rounds: {args.rounds} x ({len(servers)} servers)")
        rows, s_time_rows = cpu_rounds(args, agent, servers, log)
        for server in servers:
            server.stop()
        mem_rows: list[dict[str, Any]] = []
        if not args.no_memory:
            log(f"memory: {args.mem_conns} connections per test")
            mem_rows = memory_tests(args, agent, workdir, cert, key, log, candidates)
        agent.stop()
        elapsed = time.monotonic() - started
        result = {
            "machine": machine,
            "config": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k not in ("out", "name")
            },
            "servers": {
                s.key: {"label": s.label, "tickets": s.tickets, "probe": probes.get(s.key)}
                for s in specs
            },
            "rounds": rows,
            "s_time": s_time_rows,
            "memory": mem_rows,
            "elapsed_s": elapsed,
        }
        result["summary"] = report.summarize(result)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        harness.kill_all()
        if args.keep_logs:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{args.name}.json"
    md_path = args.out / f"{args.name}.md"
    png_path = args.out / f"{args.name}.png"
    json_path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    png = report.chart(result, png_path)
    md_path.write_text(report.markdown(result, png_path.name if png else None))
    log(f"wrote {md_path}, {json_path}" + (f", {png_path}" if png else " (no matplotlib: no PNG)"))
    sys.stdout.write(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
