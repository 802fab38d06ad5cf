"""Worker processes, for real: a supervisor subprocess, its workers, signals, restarts.

The supervisor runs as ``python -m ecdhe_async serve --workers 2`` (SO_REUSEPORT) or through
``run_workers(share="inherit")``; the tests read its log lines on stderr as events (port, worker
ready, worker died) and talk TLS to the workers. The workers run on the same loop kind as the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecdhe_async.certs import DevCA, describe_certificate
from ecdhe_async.client import connect
from ecdhe_async.connection import Connection

from .conftest import PKI, client_settings
from .netutil import LiveEcho

ROOT = Path(__file__).resolve().parent.parent
INHERIT = (
    "import logging, sys\n"
    "from ecdhe_async.settings import ServerSettings\n"
    "from ecdhe_async.workers import run_workers\n"
    "logging.basicConfig(level=logging.INFO, format='[%(process)d] %(name)s: %(message)s')\n"
    "sys.exit(run_workers(ServerSettings.load(), share='inherit'))\n"
)


class Supervised:
    """A running supervisor process whose stderr lines can be awaited."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip())
            self._changed.set()
        self._changed.set()

    def matches(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in self.lines if (m := re.search(pattern, line))]

    async def wait(self, pattern: str, count: int = 1, deadline: float = 20) -> list[re.Match[str]]:
        """Wait until *count* stderr lines match *pattern* (regex); return the matches."""
        try:
            async with asyncio.timeout(deadline):
                while len(found := self.matches(pattern)) < count:
                    if self._reader.done():
                        raise AssertionError(f"supervisor exited; waiting for {pattern!r}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"no {count}x {pattern!r} within {deadline}s:\n" + "\n".join(self.lines[-30:])
            ) from None
        return found

    async def exit_code(self, deadline: float = 30) -> int:
        code = await asyncio.wait_for(self.proc.wait(), deadline)
        await asyncio.wait_for(self._reader, 5)
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def worker_env(pki: PKI, **extra: str) -> dict[str, str]:
    loop = "uvloop" if "uvloop" in type(asyncio.get_running_loop()).__module__ else "asyncio"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    env.update(
        ECDHE_ASYNC_PORT="0",
        ECDHE_ASYNC_HOST="127.0.0.1",
        ECDHE_ASYNC_LOOP=loop,
        ECDHE_ASYNC_WORKERS="2",
        ECDHE_ASYNC_HANDLER="tests.workerapp:pid_echo",
        ECDHE_ASYNC_TLS__CERTFILE=str(pki.server_cert),
        ECDHE_ASYNC_TLS__KEYFILE=str(pki.server_key),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def supervisor(
    env: dict[str, str], *, share: str = "reuseport", args: tuple[str, ...] = ()
) -> AsyncIterator[Supervised]:
    argv = (
        [sys.executable, "-m", "ecdhe_async", "serve", *args]
        if share == "reuseport"
        else [sys.executable, "-c", INHERIT]
    )
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    sup = Supervised(proc)
    try:
        yield sup
    finally:
        if proc.returncode is None:
            proc.kill()  # the supervisor; its workers see their lifeline close and stop
            await asyncio.wait_for(proc.wait(), 10)
        await asyncio.wait_for(sup._reader, 10)


async def started(sup: Supervised, workers: int = 2) -> tuple[int, set[int]]:
    (m,) = await sup.wait(r"supervisor \d+: \d+ workers on 127\.0\.0\.1:(\d+)")
    ready = await sup.wait(r"worker (\d+) ready", count=workers)
    return int(m.group(1)), {int(r.group(1)) for r in ready}


async def hello(port: int, pki: PKI) -> tuple[Connection, int]:
    conn = await connect("127.0.0.1", port, client_settings(pki))
    line = await asyncio.wait_for(conn.readexactly(4), 5)
    assert line == b"pid "
    rest = b""
    while not rest.endswith(b"\n"):
        rest += await asyncio.wait_for(conn.readexactly(1), 5)
    return conn, int(rest)


async def pid_of_next(port: int, pki: PKI) -> int:
    conn, pid = await hello(port, pki)
    await conn.send(b"x")
    assert await asyncio.wait_for(conn.readexactly(1), 5) == b"x"
    await conn.close()
    return pid


async def until_seen(port: int, pki: PKI, wanted: set[int], tries: int = 300) -> set[int]:
    seen: set[int] = set()
    for _ in range(tries):  # bounded: the kernel hash spreads fresh source ports
        seen.add(await pid_of_next(port, pki))
        if wanted <= seen:
            return seen
    raise AssertionError(f"saw only pids {seen} of {wanted} in {tries} connections")


@pytest.mark.asyncio
@pytest.mark.parametrize("share", ["reuseport", "inherit"])
async def test_two_workers_share_the_port_and_get_replaced(pki: PKI, share: str) -> None:
    # the CLI flag (over ECDHE_ASYNC_WORKERS=1) for SO_REUSEPORT; the API for the inherited socket
    env = worker_env(pki, ECDHE_ASYNC_WORKERS="1" if share == "reuseport" else "2")
    async with supervisor(env, share=share, args=("--workers", "2")) as sup:
        port, pids = await started(sup)
        assert len(pids) == 2
        assert await until_seen(port, pki, pids) == pids  # connections land on both workers
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        await sup.wait(rf"worker {victim} died \(killed by SIGKILL\)")
        for _ in range(10):  # new connections still succeed, on the survivor or the new one
            assert await pid_of_next(port, pki) != victim
        ready = await sup.wait(r"worker (\d+) ready", count=3)
        replacement = int(ready[-1].group(1))
        assert replacement not in pids
        await until_seen(port, pki, {replacement, max(pids)})
        sup.proc.send_signal(signal.SIGTERM)
        assert await sup.exit_code() == 0
    assert "all workers stopped" in sup.text
    assert "Traceback" not in sup.text


async def exited(pid: int, deadline: float = 20) -> None:
    """Wait for a process that is not our child to exit (pidfd: readable once it has)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, deadline)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


@pytest.mark.asyncio
async def test_workers_stop_when_the_supervisor_dies(pki: PKI) -> None:
    async with supervisor(worker_env(pki)) as sup:
        _, pids = await started(sup)
        sup.proc.kill()
        assert await sup.exit_code() == -signal.SIGKILL
        for pid in pids:  # each saw its lifeline close and stopped gracefully
            await exited(pid)
    assert len(sup.matches("received SIGTERM: stopping gracefully")) == 2


@pytest.mark.asyncio
async def test_sigterm_lets_in_flight_echoes_finish(pki: PKI) -> None:
    async with supervisor(worker_env(pki, ECDHE_ASYNC_GRACE="20")) as sup:
        port, _ = await started(sup)
        conns = [await hello(port, pki) for _ in range(6)]
        echoes = [LiveEcho(conn) for conn, _ in conns]
        try:
            for live in echoes:
                await live.started()
            sup.proc.send_signal(signal.SIGTERM)
            await sup.wait(r"received SIGTERM: stopping gracefully", count=2)
            verified = [await live.finish() for live in echoes]  # every byte came back
        finally:
            for live in echoes:
                live.cancel()
        for i, (conn, _) in enumerate(conns):  # and they still echo while the workers stop
            for n in range(3):
                await conn.send(b"after SIGTERM %d.%d;" % (i, n) * 100)
                reply = await asyncio.wait_for(
                    conn.readexactly(len(b"after SIGTERM 0.0;") * 100), 5
                )
                assert reply == b"after SIGTERM %d.%d;" % (i, n) * 100
            await conn.close()
        assert await sup.exit_code(deadline=30) == 0
    assert all(v > 0 for v in verified)
    assert len(sup.matches(r"worker \d+ stopped \(exit status 0\)")) == 2
    assert "killing" not in sup.text


async def rotate(pki: PKI, cert: Path, key: Path) -> int:
    ca = DevCA.load(pki.ca, pki.dir / "ca-key.pem")
    await asyncio.to_thread(ca.issue_server_cert, cert, key, overwrite=True)
    return int(describe_certificate(cert).serial_number, 16)


async def served_serial(port: int, pki: PKI) -> int:
    async with connect("127.0.0.1", port, client_settings(pki)) as conn:
        assert conn.tls.peer_cert is not None
        return int(str(conn.tls.peer_cert["serialNumber"]), 16)


@pytest.mark.asyncio
async def test_sighup_reloads_a_single_process_server(pki: PKI, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    env = worker_env(
        pki,
        ECDHE_ASYNC_WORKERS="1",
        ECDHE_ASYNC_TLS__CERTFILE=str(cert),
        ECDHE_ASYNC_TLS__KEYFILE=str(key),
    )
    async with supervisor(env) as sup:
        (m,) = await sup.wait(r"listening on 127\.0\.0\.1:(\d+)")
        port = int(m.group(1))
        before = await served_serial(port, pki)
        kept = await connect("127.0.0.1", port, client_settings(pki))
        serial = await rotate(pki, cert, key)
        sup.proc.send_signal(signal.SIGHUP)
        await sup.wait(f"certificate reloaded.*serial {serial:X}")
        assert await served_serial(port, pki) == serial != before
        assert await asyncio.wait_for(kept.readexactly(4), 5) == b"pid "  # still served
        await kept.close()
        sup.proc.send_signal(signal.SIGTERM)
        assert await sup.exit_code() == 0
    assert not sup.matches("supervisor")


@pytest.mark.asyncio
async def test_second_sigterm_forces(pki: PKI) -> None:
    async with supervisor(worker_env(pki, ECDHE_ASYNC_GRACE="60")) as sup:
        port, _ = await started(sup)
        busy, _ = await hello(port, pki)  # echo runs until the peer closes: holds the grace
        sup.proc.send_signal(signal.SIGTERM)
        await sup.wait(r"received SIGTERM: stopping gracefully", count=2)
        sup.proc.send_signal(signal.SIGTERM)
        assert await sup.exit_code(deadline=15) == 1  # far sooner than the 60 s grace
        busy.abort()
    assert sup.matches(r"second SIGTERM: killing the workers")
    assert sup.matches(r"all workers stopped \(forced\)")


@pytest.mark.asyncio
async def test_sighup_reloads_every_worker(pki: PKI, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    env = worker_env(pki, ECDHE_ASYNC_TLS__CERTFILE=str(cert), ECDHE_ASYNC_TLS__KEYFILE=str(key))
    async with supervisor(env) as sup:
        port, pids = await started(sup)
        serial = await rotate(pki, cert, key)
        sup.proc.send_signal(signal.SIGHUP)
        done = await sup.wait(rf"\[(\d+)\] ecdhe_async.certs: certificate reloaded.*{serial:X}", 2)
        assert {int(m.group(1)) for m in done} == pids
        for _ in range(6):
            assert await served_serial(port, pki) == serial
        sup.proc.send_signal(signal.SIGTERM)
        assert await sup.exit_code() == 0


@pytest.mark.asyncio
async def test_bad_certificate_is_one_line_before_any_worker(pki: PKI) -> None:
    bad = f'[{{"certfile": "{pki.rsa_cert}", "keyfile": "{pki.server_key}", "server_names": ["a.example.com"]}}]'  # noqa: E501
    async with supervisor(worker_env(pki, ECDHE_ASYNC_TLS__CERTIFICATES=bad)) as sup:
        assert await sup.exit_code() == 2
    errors = [line for line in sup.lines if line.startswith("ecdhe-async:")]
    assert len(errors) == 1, sup.text
    assert "tls.certificates[0]" in errors[0]
    assert "does not match" in errors[0]
    assert "Traceback" not in sup.text
    assert not sup.matches("worker")


@pytest.mark.asyncio
async def test_workers_dying_at_start_stop_the_supervisor(pki: PKI) -> None:
    env = worker_env(pki, ECDHE_ASYNC_HANDLER="tests.workerapp:DiesAtStart")
    async with supervisor(env) as sup:
        assert await sup.exit_code() == 1
    assert sup.matches(r"workers keep dying at start \(3 in a row; last: exit status 3\)")
    assert "Traceback" not in sup.text
    assert len(sup.matches(r"died \(exit status 3\)")) == 3


@pytest.mark.asyncio
async def test_config_error_in_a_worker_stops_everything(pki: PKI) -> None:
    env = worker_env(pki, ECDHE_ASYNC_HANDLER="tests.workerapp:no_such_handler")
    async with supervisor(env) as sup:
        assert await sup.exit_code() == 2
    assert len(sup.matches(r"worker failed: .*no_such_handler")) == 1
    assert "Traceback" not in sup.text


def free_port() -> int:
    """A port the OS just handed out (the supervisor binds it for metrics right after)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.asyncio
async def test_one_scrape_sums_both_workers_and_readyz_drains(pki: PKI) -> None:
    from .test_metrics import get, scrape, value

    metrics_port = free_port()
    env = worker_env(pki, ECDHE_ASYNC_METRICS_PORT=str(metrics_port), ECDHE_ASYNC_GRACE="20")
    async with supervisor(env) as sup:
        port, pids = await started(sup)
        (m,) = await sup.wait(r"metrics on (http://127\.0\.0\.1:\d+)/metrics")
        base = m.group(1)
        assert await get(base + "/readyz") == (200, "ready\n")
        per_pid: dict[int, int] = dict.fromkeys(pids, 0)
        for _ in range(300):  # bounded: the kernel hash spreads fresh source ports
            per_pid[await pid_of_next(port, pki)] += 1
            if all(per_pid.values()):
                break
        assert all(per_pid.values()), per_pid
        total = sum(per_pid.values())
        samples = await scrape(base)  # one scrape, the sum over both worker processes
        name = "ecdhe_async_handshakes_total"
        got = sum(v for (n, _), v in samples.items() if n == name)
        assert got == total, (got, per_pid)
        assert value(samples, name, group="X25519") == total
        # a worker killed and restarted: its counts stay in the sum
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)
        await sup.wait(r"restarting worker slot")
        await sup.wait(r"worker (\d+) ready", count=3)
        samples = await scrape(base)
        assert sum(v for (n, _), v in samples.items() if n == name) == total
        # draining (SIGTERM, a connection still open): /readyz says 503, /healthz 200
        conn, _ = await hello(port, pki)
        sup.proc.send_signal(signal.SIGTERM)
        await sup.wait(r"received SIGTERM: stopping gracefully", count=2)
        assert await get(base + "/readyz") == (503, "draining\n")
        assert (await get(base + "/healthz"))[0] == 200
        await conn.close()
        assert await sup.exit_code(deadline=30) == 0


@pytest.mark.asyncio
async def test_json_logs_with_workers_carry_the_pid(pki: PKI) -> None:
    import json

    async with supervisor(worker_env(pki), args=("--log-format", "json")) as sup:
        port, pids = await started(sup)
        await pid_of_next(port, pki)
        await sup.wait(r'"event": "connection_closed"')
        sup.proc.send_signal(signal.SIGTERM)
        assert await sup.exit_code() == 0
    records = [json.loads(line) for line in sup.lines]  # every line is one JSON object
    closed = [r for r in records if r.get("event") == "connection_closed"]
    assert len(closed) == 1
    assert closed[0]["pid"] in pids
    assert {r["pid"] for r in records} >= {sup.proc.pid, *pids}
