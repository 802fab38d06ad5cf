"""Processes of a benchmark run: CPU-pinned servers and the load-generator agent.

Every process is started in its own session (process group) and registered; :func:`kill_all`
(called from ``run.py``'s ``finally``) ends every group that is still alive: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procstat

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PY = sys.executable

_started: list[subprocess.Popen[Any]] = []
_READY = re.compile(rb"listening on \[?([0-9a-fA-F.:]+?)\]?:(\d+)")
#: An environment value replaced by a free TCP port when the server starts (e.g. metrics_port).
FREE_PORT = "{free_port}"


def pinned(cpu: int | None) -> Callable[[], None] | None:
    """A preexec_fn pinning the child (and every thread it will start) to *cpu*."""
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def register(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    _started.append(proc)
    return proc


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM the process group, wait up to *grace*, then SIGKILL it. Never raises."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group too
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def kill_all() -> None:
    """Stop every process this run started (in reverse order)."""
    while _started:
        stop_process(_started.pop(), grace=3.0)


def raise_nofile() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Spec:
    """How to start one server under test."""

    key: str
    label: str
    kind: str  # ours | bare | node | openssl
    loop: str | None = None
    modes: tuple[str, ...] = ("handshakes", "throughput")
    env: dict[str, str] = field(default_factory=dict)
    tickets: str = ""
    extra_args: tuple[str, ...] = ()
    #: Working directory; for ``python -m`` it is also sys.path[0], so a candidate copy of the
    #: package must run from its own directory (the repo root would shadow it).
    cwd: Path = ROOT

    def argv(self, cert: Path, key: Path, port: int) -> list[str]:
        if self.kind == "ours":
            return [
                PY,
                "-m",
                "ecdhe_async",
                "serve",
                "--certfile",
                str(cert),
                "--keyfile",
                str(key),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                str(self.loop),
                "--groups",
                "X25519",
            ]
        if self.kind == "bare":
            return [
                PY,
                str(BENCH / "servers" / "bare_echo.py"),
                "--certfile",
                str(cert),
                "--keyfile",
                str(key),
                "--port",
                str(port),
                "--loop",
                str(self.loop),
                *self.extra_args,
            ]
        if self.kind == "node":
            return ["node", str(BENCH / "servers" / "node_echo.js"), str(cert), str(key), str(port)]
        if self.kind == "openssl":
            return [
                "openssl",
                "s_server",
                "-accept",
                f"127.0.0.1:{port}",
                "-cert",
                str(cert),
                "-key",
                str(key),
                "-no-CAfile",
                "-no-CApath",
                "-no-CAstore",
                "-rev",
                "-quiet",
            ]
        raise ValueError(self.kind)


class Server:
    """One running server process (pinned), its port, CPU and RSS."""

    def __init__(
        self, spec: Spec, workdir: Path, cert: Path, key: Path, cpu: int | None, tag: str = ""
    ) -> None:
        self.spec = spec
        self.log_path = workdir / f"server-{spec.key}{tag}.log"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
        env.pop("SSLKEYLOGFILE", None)
        env.update({k: str(free_port()) if v == FREE_PORT else v for k, v in spec.env.items()})
        self._log = self.log_path.open("wb")
        self.proc = register(
            subprocess.Popen(
                spec.argv(cert, key, port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if spec.kind == "openssl" else self._log,
                stderr=self._log,
                start_new_session=True,
                preexec_fn=pinned(cpu),
                env=env,
                cwd=spec.cwd,
            )
        )
        self.port = self._wait_ready(port)
        self.pids = procstat.tree(self.proc.pid)

    def _wait_ready(self, port: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.key} exited early: {self.log_tail()}")
            # The server's own "listening on" line, else (openssl, or a server whose log level
            # hides it) the port answering a TCP connect.
            match = _READY.search(self.log_path.read_bytes())
            if match:
                return int(match.group(2))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return port
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.spec.key} not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 600) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def refresh_pids(self) -> None:
        self.pids = procstat.tree(self.proc.pid)

    def cpu(self) -> float:
        return procstat.cpu_seconds(self.pids)

    def rss(self) -> int:
        return procstat.rss_bytes(self.pids)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


class AgentError(RuntimeError):
    pass


class Agent:
    """The load-generator process (benchmarks/agent.py), pinned to the client CPU."""

    def __init__(self, workdir: Path, cpu: int | None) -> None:
        self.log_path = workdir / "agent.log"
        self._log = self.log_path.open("wb")
        self.proc = register(
            subprocess.Popen(
                [PY, str(BENCH / "agent.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                text=True,
                bufsize=1,
                start_new_session=True,
                preexec_fn=pinned(cpu),
                cwd=ROOT,
            )
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float) -> tuple[str, dict[str, Any]]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AgentError(f"agent silent for {timeout:.0f}s") from None
        if line is None:
            tail = self.log_path.read_bytes()[-800:].decode(errors="replace")
            raise AgentError(f"agent exited: {tail}")
        kind, _, payload = line.strip().partition(" ")
        data: dict[str, Any] = json.loads(payload) if payload else {}
        if kind == "ERROR":
            raise AgentError(data.get("error", "?"))
        return kind, data

    def call(self, expect: str, timeout: float, **cmd: Any) -> dict[str, Any]:
        self.send(**cmd)
        kind, data = self.read(timeout)
        if kind != expect:
            raise AgentError(f"expected {expect}, got {kind} {data}")
        return data

    def cpu(self) -> float:
        return procstat.cpu_seconds([self.proc.pid])

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send(op="quit")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        stop_process(self.proc, grace=1.0)
        self._log.close()


def run_s_time(port: int, seconds: int, cpu: int | None) -> dict[str, Any]:
    """``openssl s_time -new`` for *seconds*: connections made, wall time, its own CPU seconds.

    Its CPU comes from RUSAGE_CHILDREN around the wait (no other child is reaped meanwhile).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = register(
        subprocess.Popen(
            [
                "openssl",
                "s_time",
                "-connect",
                f"127.0.0.1:{port}",
                "-new",
                "-tls1_3",
                "-time",
                str(seconds),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pinned(cpu),
        )
    )
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    finally:
        stop_process(proc, grace=1.0)
        with contextlib.suppress(ValueError):
            _started.remove(proc)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    text = out.decode(errors="replace")
    match = re.search(r"(\d+) connections in [\d.]+s", text)
    return {
        "connections": int(match.group(1)) if match else 0,
        "wall": wall,
        "client_cpu": client_cpu,
        "output": text[-400:],
    }
