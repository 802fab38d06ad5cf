#!/usr/bin/env python3
"""Profile one server under load with py-spy: where does its CPU go?

Starts the server (pinned like in ``run.py``) and the load-generator agent, records the server
with ``py-spy record --format raw`` (optionally ``--native`` for OpenSSL's C frames) while the
agent runs the chosen mode, then prints the top frames by self time and by inclusive time, and
the share of samples spent in ecdhe_async's own code.

    .venv/bin/pip install py-spy
    python benchmarks/profile_server.py ours-uvloop handshakes --seconds 8 --native
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import run
from harness import Agent, Server


def parse_raw(path: Path) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """Self and inclusive sample counts per frame from py-spy's raw (collapsed) output."""
    self_c: collections.Counter[str] = collections.Counter()
    incl_c: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        # drop the process/thread label py-spy puts first
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        self_c[frames[-1]] += n
        for f in set(frames):
            incl_c[f] += n
    return self_c, incl_c, total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    keys = [s.key for s in run.CPU_SERVERS]
    p.add_argument("server", choices=keys)
    p.add_argument("mode", choices=["handshakes", "throughput"])
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--native", action="store_true", help="include C frames (OpenSSL, uvloop)")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    p.add_argument("--raw-out", type=Path, help="keep py-spy's raw output here")
    args = p.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        sys.exit("py-spy not found: .venv/bin/pip install py-spy")
    spec = next(s for s in run.CPU_SERVERS if s.key == args.server)
    if args.env:
        spec = harness.Spec(**{**spec.__dict__, "env": dict(e.split("=", 1) for e in args.env)})
    workdir = Path(tempfile.mkdtemp(prefix="ecdhe-profile-"))
    raw = args.raw_out or workdir / "raw.txt"
    try:
        harness.raise_nofile()
        cert, key = run.make_cert(workdir)
        agent = Agent(workdir, 1)
        server = Server(spec, workdir, cert, key, 0)
        agent.call("PROBE", 30, op="probe", port=server.port)
        cfg = {
            "concurrency": 16 if args.mode == "handshakes" else 4,
            "warmup": 1.0,
            "duration": args.seconds + 2.0,
            "window": 4,
            "timeout": 10.0,
        }
        agent.send(op="load", mode=args.mode, port=server.port, **cfg)
        time.sleep(1.5)
        cmd = [pyspy, "record", "--pid", str(server.proc.pid), "--duration", str(int(args.seconds))]
        cmd += ["--rate", str(args.rate), "--format", "raw", "--output", str(raw), "--nolineno"]
        if args.native:
            cmd.append("--native")
        subprocess.run(cmd, check=True, capture_output=True, timeout=args.seconds + 60)
        while True:
            kind, _ = agent.read(60)
            if kind == "RESULT":
                break
        agent.stop()
    finally:
        harness.kill_all()
    self_c, incl_c, total = parse_raw(raw)
    ours = sum(n for f, n in self_c.items() if "ecdhe_async" in f)
    print(
        f"{args.server} {args.mode}: {total} samples; "
        f"self time in ecdhe_async code {ours / total:.1%}"
    )
    by_file: collections.Counter[str] = collections.Counter()
    for frame, n in self_c.items():
        match = re.search(r"\(([^()]*)\)$", frame)
        name = match.group(1) if match else frame
        if frame.startswith(("SSLObject.", "SSLContext.")):
            name = "OpenSSL via ssl.py (" + frame.split(" ")[0] + ")"
        elif frame.startswith("Runner.run"):
            name = "event loop internals in C (uvloop) / not attributed"
        by_file[name] += n
    print("\nSelf time by component (file, or OpenSSL call):")
    for name, n in by_file.most_common(args.top):
        print(f"  {n / total:6.1%}  {name}")
    print(f"\nTop {args.top} by self time:")
    for frame, n in self_c.most_common(args.top):
        print(f"  {n / total:6.1%}  {frame}")
    print(f"\nTop {args.top} by inclusive time:")
    for frame, n in incl_c.most_common(args.top):
        print(f"  {n / total:6.1%}  {frame}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
