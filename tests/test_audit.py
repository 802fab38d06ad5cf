"""``ecdhe-async audit`` against real servers started here: ours, openssl s_server, plain asyncio.

Every server binds an OS-chosen port and is stopped when its test ends; ``openssl s_server`` is
ready when it prints ``ACCEPT host:port`` (readiness from the peer, not a sleep), and its output
is drained in the background so that it can never block on a full pipe. The command line runs as
a subprocess, exactly as a user runs it; the Python API runs in-process on both loops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ecdhe_async.auditor import AuditReport, ProbeResult, audit
from ecdhe_async.auditor.command import parse_target
from ecdhe_async.auditor.render import Progress, render_json, render_table, use_colour
from ecdhe_async.errors import ConfigError

from .conftest import OPENSSL, PKI, running_server, server_settings
from .test_cli import ROOT, SERVE, server_process

# A stock `openssl s_server` hands out tickets, caches sessions and speaks FFDHE and DHE.
FS_ONLY_S_SERVER = (
    "-groups",
    "X25519",
    "-cipher",
    "ECDHE+AESGCM",
    "-no_ticket",
    "-num_tickets",
    "0",
)


@dataclass
class Ran:
    """What the ``audit`` command printed and returned."""

    code: int
    out: str
    err: str

    @property
    def verdict(self) -> str:
        return self.out.rstrip("\n").rsplit("\n", 1)[-1]


async def run_cli(*args: str, deadline: float = 60) -> Ran:
    """``python -m ecdhe_async audit ARGS`` as a subprocess (stdout is a pipe: no colour).

    The subprocess runs on the same kind of loop as the test (``--loop``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    env["PYTHONPATH"] = str(ROOT)
    uvloop = type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ecdhe_async",
        "audit",
        "--loop",
        "uvloop" if uvloop else "asyncio",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), deadline)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


def run_cli_sync(*args: str) -> Ran:
    """:func:`run_cli` for tests without a server: no event loop, so it runs once, not per loop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "ecdhe_async", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


@contextlib.asynccontextmanager
async def s_server(pki: PKI, *args: str) -> AsyncIterator[int]:
    """``openssl s_server`` (RSA certificate) on an OS-chosen port, serving until the block ends.

    stdin stays an open pipe: s_server quits on EOF of its stdin.
    """
    assert OPENSSL, "openssl binary is required (apt-get install -y openssl)"
    argv = ["-accept", "127.0.0.1:0", "-cert", str(pki.rsa_cert), "-key", str(pki.rsa_key)]
    proc = await asyncio.create_subprocess_exec(
        OPENSSL,
        "s_server",
        *argv,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        port, seen = 0, list[bytes]()
        async with asyncio.timeout(10):
            while not port:
                raw = await proc.stdout.readline()
                if not raw:
                    pytest.fail("s_server exited: " + b"".join(seen).decode(errors="replace"))
                seen.append(raw)
                if raw.startswith(b"ACCEPT"):
                    port = int(raw.rsplit(b":", 1)[1])
        drain = asyncio.create_task(proc.stdout.read())  # until it exits: never a full pipe
        yield port
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), 10)
        if drain is not None:
            await asyncio.wait_for(drain, 10)


@contextlib.asynccontextmanager
async def listener(handler: Any, ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A plain ``asyncio.start_server`` on 127.0.0.1, port from the OS; closed afterwards."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):  # a probe still mid-handshake (cpython#104344)
            await asyncio.wait_for(server.wait_closed(), 5)


@contextlib.asynccontextmanager
async def listener_in_thread(handler: Any, ssl_ctx: ssl.SSLContext) -> AsyncIterator[int]:
    """:func:`listener` on its own loop in a thread (not in debug mode: it is the peer).

    The stdlib's TLS server computes its FFDHE and DHE shares on its loop; audited from the same
    loop, that CPU time would count against the auditor's (the code under test) callbacks.
    """
    Ready = tuple[int, asyncio.AbstractEventLoop, asyncio.Event]
    ready: concurrent.futures.Future[Ready] = concurrent.futures.Future()

    async def serve() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_ctx)
        stop = asyncio.Event()
        ready.set_result((server.sockets[0].getsockname()[1], asyncio.get_running_loop(), stop))
        await stop.wait()
        server.close()
        with contextlib.suppress(TimeoutError):  # a probe still mid-handshake (cpython#104344)
            await asyncio.wait_for(server.wait_closed(), 5)

    def run() -> None:
        try:
            asyncio.run(serve(), debug=False)
        except BaseException as exc:  # handed to the test through *ready*
            if not ready.done():
                ready.set_exception(exc)
            raise

    thread = threading.Thread(target=run, name="peer-listener", daemon=True)
    thread.start()
    port, loop, stop = await asyncio.wait_for(asyncio.wrap_future(ready), 10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()


async def read_to_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Handler: read until the client closes, then close (answers a close_notify)."""
    with contextlib.suppress(OSError, ssl.SSLError):
        async with asyncio.timeout(10):
            while await reader.read(65536):
                pass
    writer.close()


def row(report: AuditReport, key: str) -> ProbeResult:
    return next(p for p in report.probes if p.key == key)


def closed_port() -> int:
    """A port nobody listens on: bound by the OS, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- our own server: forward-secret only --------------------------------------------------------


@pytest.mark.parametrize("profile", ["intermediate", "modern"])
@pytest.mark.parametrize("cert", ["ecdsa", "rsa"])
@pytest.mark.asyncio
async def test_own_server_is_forward_secret_only(pki: PKI, cert: str, profile: str) -> None:
    files = (pki.server_cert, pki.server_key) if cert == "ecdsa" else (pki.rsa_cert, pki.rsa_key)
    tls = {"certfile": files[0], "keyfile": files[1], "profile": profile}
    seen: list[tuple[int, int]] = []
    async with running_server(server_settings(pki, tls=tls)) as server:
        report = await asyncio.wait_for(
            audit(
                "127.0.0.1",
                server.port,
                servername="localhost",
                ca_file=pki.ca,
                progress=lambda done, total: seen.append((done, total)),
            ),
            60,
        )
    assert report.exit_code == 0, report.verdict
    assert report.verdict == "forward-secret only"
    assert report.forward_secret_only is True
    assert report.defaults is not None
    assert report.defaults.group == "X25519"
    assert report.certificate is not None
    assert report.certificate.verified is True
    assert report.certificate.key == ("ECDSA P-256" if cert == "ecdsa" else "RSA 2048")
    for group in ("ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192"):
        assert row(report, f"tls13.group.{group}").outcome == "refused"
    for key in ("tls12.dhe", "tls12.rsa", "tls12.ecdhe_cbc", "legacy.TLS 1.0", "legacy.TLS 1.1"):
        assert row(report, key).outcome == "refused"
    assert row(report, "tls13.group.X25519").outcome == "accepted"
    assert row(report, "tls13.order.ffdhe2048.X25519").negotiated.group == "X25519"  # type: ignore[union-attr]
    tls12 = row(report, "tls12.ecdhe_aead").outcome
    assert tls12 == ("accepted" if profile == "intermediate" else "refused")
    assert row(report, "resumption.tls12.session_ID").outcome != "accepted"
    assert row(report, "resumption.tls13.tickets").detail == "no ticket issued"
    # X25519MLKEM768 and friends are "not tested" where OpenSSL lacks them: never a pass.
    for probe in report.not_tested:
        assert probe.outcome in ("not_tested", "error")
    assert seen[-1][0] == seen[-1][1]  # the progress callback reached the end
    assert report.duration < 15


@pytest.mark.asyncio
async def test_cli_over_ipv6_loopback(pki: PKI) -> None:
    async with running_server(server_settings(pki, host="::1")) as server:
        port = server.port
        ran = await run_cli(f"[::1]:{port}", "--ca-file", str(pki.ca))
    assert ran.code == 0, ran.out + ran.err
    assert ran.out.startswith(f"audit of [::1]:{port}\n")
    assert "✓ trust" in ran.out  # the certificate's IP:::1 SAN matched


@pytest.mark.asyncio
async def test_cli_against_our_serve_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT)
    async with server_process([*SERVE, "--host", "127.0.0.1", "--loop", "asyncio"], env) as srv:
        ran = await run_cli(f"127.0.0.1:{srv.port}", "--servername", "localhost", "--insecure")
    assert ran.code == 0, ran.out + ran.err
    assert ran.verdict == "forward-secret only"
    assert "✓ ffdhe2048 alone" in ran.out
    assert "\x1b[" not in ran.out  # not a terminal: no colour
    assert ran.err == ""


# -- other servers: the holes the audit exists to find -----------------------------------------


@pytest.mark.asyncio
async def test_openssl_defaults_with_rsa_are_not_forward_secret_only(pki: PKI) -> None:
    async with s_server(pki) as port:
        ran = await run_cli(
            f"127.0.0.1:{port}", "--servername", "localhost", "--ca-file", str(pki.ca)
        )
        as_json = await run_cli(f"127.0.0.1:{port}", "--insecure", "--json")
    assert ran.code == 1, ran.out + ran.err
    assert ran.verdict.startswith("NOT forward-secret only: ")
    assert "accepts FFDHE in TLS 1.3 (ffdhe2048" in ran.verdict
    assert "accepts DHE in TLS 1.2" in ran.verdict
    assert "accepts RSA key transport in TLS 1.2" in ran.verdict
    assert "resumes TLS 1.2 sessions without a new key exchange (session ID, ticket)" in ran.verdict
    assert "✗ ffdhe2048 alone" in ran.out
    data = json.loads(as_json.out)
    assert as_json.code == data["exit_code"] == 1
    assert data["forward_secret_only"] is False
    assert data["verdict"] == ran.verdict
    by_key = {p["key"]: p for p in data["probes"]}
    assert by_key["tls12.rsa"]["finding"] == "fail"
    assert by_key["tls12.rsa"]["negotiated"]["group"] is None
    assert by_key["tls13.group.ffdhe8192"]["negotiated"]["group"] == "ffdhe8192"
    assert by_key["resumption.tls13.tickets"]["detail"].startswith("2 tickets, lifetime hint ")
    assert data["certificate"]["key"] == "RSA 2048"


@pytest.mark.asyncio
async def test_plain_asyncio_server_is_not_forward_secret_only(pki: PKI) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    async with listener_in_thread(read_to_eof, ctx) as port:
        report = await asyncio.wait_for(audit("127.0.0.1", port, insecure=True), 60)
    assert report.exit_code == 1
    assert "accepts FFDHE in TLS 1.3" in report.verdict
    assert row(report, "resumption.tls13.tickets").outcome == "accepted"  # it issues tickets
    assert "resumes TLS 1.2 sessions without a new key exchange" in report.verdict
    assert row(report, "tls12.rsa").outcome == "refused"  # the stdlib's cipher list is fine
    assert row(report, "certificate.trust").detail == "not verified (--insecure)"
    table = render_table(report)
    assert table.rstrip().endswith(report.verdict)
    assert "\x1b[31m✗\x1b[0m" in render_table(report, colour=True)
    assert json.loads(render_json(report))["exit_code"] == 1


@pytest.mark.asyncio
async def test_openssl_forward_secret_only_and_its_session_cache(pki: PKI) -> None:
    async with s_server(pki, *FS_ONLY_S_SERVER, "-no_cache") as port:
        fs_only = await run_cli(f"127.0.0.1:{port}", "--insecure")
    assert fs_only.code == 0, fs_only.out + fs_only.err
    assert fs_only.verdict == "forward-secret only"
    # Without -no_cache it still resumes TLS 1.2 sessions by ID: no fresh key exchange.
    async with s_server(pki, *FS_ONLY_S_SERVER) as port:
        cached = await run_cli(f"127.0.0.1:{port}", "--insecure")
    assert cached.code == 1, cached.out + cached.err
    assert cached.verdict == (
        "NOT forward-secret only: resumes TLS 1.2 sessions without a new key exchange (session ID)"
    )


@pytest.mark.asyncio
async def test_server_preferring_ffdhe_is_warned_about(pki: PKI) -> None:
    # Only ffdhe2048: a client offering X25519 first is sent a HelloRetryRequest for FFDHE.
    async with s_server(pki, "-groups", "ffdhe2048") as port:
        report = await asyncio.wait_for(audit("127.0.0.1", port, insecure=True), 60)
    assert report.exit_code == 1
    order = row(report, "tls13.order.X25519.ffdhe2048")
    assert order.finding == "warn"
    assert order.problem is not None
    assert order.problem.text == "prefers FFDHE over ECDHE when a client offers both"
    assert row(report, "tls13.group.X25519").outcome == "refused"


@pytest.mark.asyncio
async def test_legacy_tls10_is_really_offered(pki: PKI) -> None:
    """TLS 1.0 needs @SECLEVEL=0 client side on OpenSSL 3: prove the probe gets through."""
    async with s_server(pki, "-tls1", "-cipher", "kRSA:@SECLEVEL=0") as port:
        report = await asyncio.wait_for(audit("127.0.0.1", port, insecure=True), 60)
    legacy = row(report, "legacy.TLS 1.0")
    assert legacy.outcome == "accepted", legacy.detail
    assert legacy.negotiated is not None
    assert legacy.negotiated.version == "TLSv1"
    assert legacy.finding == "fail"
    assert "accepts non-ECDHE key exchange in legacy TLS (TLS 1.0)" in report.verdict
    # The stock client (TLS 1.2+) was refused, yet the audit went on and judged the server.
    assert row(report, "defaults").outcome == "refused"
    assert report.exit_code == 1


# -- nothing to judge: exit code 2 with a one-line reason ---------------------------------------


def test_closed_port_exits_2() -> None:
    ran = run_cli_sync(f"127.0.0.1:{closed_port()}")
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err.count("\n") == 1
    assert "cannot connect: connection refused" in ran.err
    as_json = run_cli_sync(f"127.0.0.1:{closed_port()}", "--json")
    data = json.loads(as_json.out)
    assert as_json.code == data["exit_code"] == 2
    assert data["forward_secret_only"] is None
    assert data["error"] == "cannot connect: connection refused"


@pytest.mark.asyncio
async def test_non_tls_listener_exits_2() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    async with listener(http) as port:
        ran = await run_cli(f"127.0.0.1:{port}")
    assert ran.code == 2
    assert ran.err.count("\n") == 1
    assert "does not speak TLS" in ran.err
    assert "HTTP/1.1" in ran.err


@pytest.mark.asyncio
async def test_listener_that_closes_at_once_exits_2() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with listener(hang_up) as port:
        report = await asyncio.wait_for(audit("127.0.0.1", port, timeout=5), 60)
    assert report.exit_code == 2
    assert report.error is not None
    assert report.error.startswith("no TLS handshake succeeded")
    assert report.forward_secret_only is None


@pytest.mark.asyncio
async def test_silent_listener_is_bounded_by_timeout() -> None:
    gate = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gate.wait(), 30)
        writer.close()

    async with listener(silent) as port:
        report = await asyncio.wait_for(audit("127.0.0.1", port, timeout=0.5), 10)
        gate.set()
    assert report.exit_code == 2
    assert report.error == "no answer within 0.5 s"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["127.0.0.1:99999"], "port must be 1-65535"),
        (["[::1"], "expected [IPv6]:PORT"),
        (["127.0.0.1:1", "--timeout", "0"], "--timeout=0.0: must be > 0"),
        (["127.0.0.1:1", "--ca-file", "/nonexistent/ca.pem"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    ran = run_cli_sync(*argv)
    assert ran.code == 2
    assert message in ran.err
    assert ran.err.count("\n") == 1
    assert "Traceback" not in ran.err


def test_parse_target() -> None:
    assert parse_target("example.org") == ("example.org", 443)
    assert parse_target("example.org:8443") == ("example.org", 8443)
    assert parse_target("[::1]:8443") == ("::1", 8443)
    assert parse_target("::1") == ("::1", 443)
    with pytest.raises(ConfigError, match="no host"):
        parse_target(":443")


def test_probe_contexts_stay_out_of_our_server_and_client() -> None:
    """The probe context builder is the audit's alone: the core never even imports it."""
    code = (
        "import sys, ecdhe_async, ecdhe_async.server, ecdhe_async.client, ecdhe_async.tls, "
        "ecdhe_async.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('ecdhe_async.auditor')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.asyncio
async def test_probes_without_answer_give_no_all_clear(pki: PKI) -> None:
    """Fail closed: if probes time out, "forward-secret only" is not claimed (exit code 2)."""
    gate = asyncio.Event()
    accepted = 0

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    async def first_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        if accepted > 1:  # every probe after the first: silence
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gate.wait(), 30)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        async with asyncio.timeout(30):
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async with running_server(server_settings(pki)) as server, listener(first_only) as port:
        upstream = server.port
        report = await asyncio.wait_for(audit("127.0.0.1", port, timeout=0.5), 30)
        gate.set()
    assert report.defaults is not None  # the first probe went through to our server
    assert report.exit_code == 2
    assert report.error is not None
    assert report.error.startswith("incomplete: ")
    assert report.verdict.startswith(f"cannot audit 127.0.0.1:{port}: incomplete")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_and_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty, pipe = _Terminal(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress(stream)
        progress(3, 30)
        progress.clear()
    assert "[3/30]" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[K")
    assert pipe.getvalue() == ""
    assert use_colour(tty)
    assert not use_colour(pipe)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(tty)
