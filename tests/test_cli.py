"""The command line and the examples, as a newcomer runs them: real subprocesses, real peers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ecdhe_async.cli import main

from .conftest import PKI, Result, run_peer, s_client_echo

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on (\S+):(\d+)")
# `ecdhe-async serve` on an OS-chosen port, as a subprocess.
SERVE = [sys.executable, "-m", "ecdhe_async", "serve", "--port", "0"]


@dataclass
class Proc:
    """A running server subprocess and the log lines it has printed so far."""

    proc: asyncio.subprocess.Process
    port: int
    lines: list[str] = field(default_factory=list)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send *sig*, collect the rest of the log, return the exit code."""
        self.proc.send_signal(sig)
        assert self.proc.stderr is not None
        rest = await asyncio.wait_for(self.proc.stderr.read(), 20)
        self.lines += rest.decode(errors="replace").splitlines()
        return await asyncio.wait_for(self.proc.wait(), 20)


async def spawn(
    argv: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    *,
    stdout: int = asyncio.subprocess.PIPE,
    stderr: int = asyncio.subprocess.PIPE,
) -> asyncio.subprocess.Process:
    """Start *argv* in *cwd* with *env* and no stdin."""
    return await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env, cwd=cwd
    )


@asynccontextmanager
async def server_process(
    argv: Sequence[str], env: dict[str, str], *, cwd: Path = ROOT
) -> AsyncIterator[Proc]:
    """Start a server subprocess and wait (bounded) for its `listening on` line."""
    proc = await spawn(argv, env, cwd, stdout=asyncio.subprocess.DEVNULL)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        port = 0
        while not port:
            raw = await asyncio.wait_for(proc.stderr.readline(), 30)
            if not raw:
                pytest.fail("server exited before listening:\n" + "\n".join(lines))
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if m := LISTENING.search(line):
                port = int(m.group(2))
        yield Proc(proc, port, lines)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment without ECDHE_ASYNC_* and with a private cache dir (dev certificate)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    clean["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    clean["PYTHONPATH"] = str(ROOT)
    return clean


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment with a private cache dir (for the dev certificate)."""
    return clean_env(tmp_path)


async def run_program(
    argv: Sequence[str], env: dict[str, str], *, cwd: Path = ROOT, deadline: float = 30
) -> Result:
    """Run a program to its end (bounded) in *cwd*; stdout and stderr merged."""
    proc = await spawn(argv, env, cwd, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), deadline)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"))


@pytest.mark.asyncio
async def test_serve_subprocess_serves_openssl_and_exits_0_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    argv = [*SERVE, "--loop", "asyncio"]
    async with server_process(argv, env) as srv:
        dev_cert = tmp_path / "cache" / "ecdhe_async" / "dev-cert.pem"
        assert dev_cert.exists()
        assert any("development certificate" in line for line in srv.lines)
        res = await s_client_echo(
            srv.port,
            "-CAfile",
            str(dev_cert),
            "-verify_return_error",
            send=b"hello\n",
            expect=b"hello",
        )
        assert "Verify return code: 0 (ok)" in res.output
        assert "Server Temp Key: X25519" in res.output
        assert "hello" in res.output.split("---")[-1]
        code = await srv.stop()
    assert code == 0
    assert sum("listening on" in line for line in srv.lines) == 1
    assert any("stopping gracefully" in line for line in srv.lines)


@pytest.mark.asyncio
async def test_serve_reuses_dev_certificate(env: dict[str, str]) -> None:
    argv = SERVE
    for expected in ("created now", "reused"):
        async with server_process(argv, env) as srv:
            assert any(expected in line for line in srv.lines), srv.lines
            assert await srv.stop() == 0


@pytest.mark.asyncio
async def test_serve_env_and_flags(env: dict[str, str], pki: PKI) -> None:
    """Env configures the certificate and groups; a flag beats the env for the port."""
    env = dict(env)
    env["ECDHE_ASYNC_PORT"] = "1"  # overridden by --port 0 below
    env["ECDHE_ASYNC_TLS__CERTFILE"] = str(pki.server_cert)
    env["ECDHE_ASYNC_TLS__KEYFILE"] = str(pki.server_key)
    env["ECDHE_ASYNC_TLS__GROUPS"] = "P-384"
    argv = [*SERVE, "--handler", "lines"]
    async with server_process(argv, env) as srv:
        res = await s_client_echo(
            srv.port, "-CAfile", str(pki.ca), send=b"one line\n", expect=b"one line\n"
        )
        assert "Server Temp Key: ECDH, secp384r1" in res.output
        assert "one line" in res.output.split("---")[-1]
        assert await srv.stop() == 0


@pytest.mark.asyncio
async def test_connect_cli_prints_negotiated_facts(env: dict[str, str], pki: PKI) -> None:
    argv = [
        *SERVE,
        "--certfile",
        str(pki.server_cert),
        "--keyfile",
        str(pki.server_key),
    ]
    async with server_process(argv, env) as srv:
        cli = [sys.executable, "-m", "ecdhe_async", "connect", "localhost", str(srv.port)]
        ok = await run_peer(*cli, "--ca-file", str(pki.ca), "--message", "hi there")
        assert ok.returncode == 0, ok.output
        assert re.search(r"key exchange\s+ECDHE X25519", ok.output)
        assert re.search(r"protocol\s+TLSv1.3", ok.output)
        assert re.search(r"reply\s+hi there", ok.output)
        # Verified by default: the system store does not know our dev CA.
        bad = await run_peer(*cli)
        assert bad.returncode == 1
        assert "certificate verify failed" in bad.output
        groups = await run_peer(*cli, "--ca-file", str(pki.ca), "--groups", "P-256")
        assert re.search(r"key exchange\s+ECDHE P-256", groups.output), groups.output
        assert await srv.stop() == 0


def test_bad_setting_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "port=70000" in err
    assert "65535" in err


def test_bad_group_in_env_names_the_field(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECDHE_ASYNC_TLS__GROUPS", "X25519,ffdhe2048")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "tls.groups" in err
    assert "ffdhe2048" in err
    assert "allowed: X25519, X448, P-256, P-384, P-521" in err


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "default: 8443" in out
    assert "default: 127.0.0.1" in out
    assert "X25519,P-256,P-384" in out


def test_cert_cli_writes_private_key_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crt, key = tmp_path / "s.crt", tmp_path / "s.key"
    assert main(["cert", "self-signed", "--out", str(crt), "--key-out", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    ca, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    assert main(["cert", "ca", "--out", str(ca), "--key-out", str(ca_key)]) == 0
    leaf, leaf_key = tmp_path / "c.crt", tmp_path / "c.key"
    args = [
        "--ca",
        str(ca),
        "--ca-key",
        str(ca_key),
        "--out",
        str(leaf),
        "--key-out",
        str(leaf_key),
    ]
    assert main(["cert", "client", *args, "--common-name", "bob"]) == 0
    out = capsys.readouterr().out
    assert "bob" in out
    assert "PRIVATE KEY" not in out


@pytest.mark.asyncio
async def test_echo_server_example_with_env_port_and_echo_client(env: dict[str, str]) -> None:
    env = dict(env)
    env["ECDHE_ASYNC_PORT"] = "0"
    argv = [sys.executable, str(ROOT / "examples" / "echo_server.py")]
    async with server_process(argv, env) as srv:
        res = await run_peer(
            sys.executable,
            str(ROOT / "examples" / "echo_client.py"),
            "127.0.0.1",
            str(srv.port),
            "--ca-file",
            env["XDG_CACHE_HOME"] + "/ecdhe_async/dev-cert.pem",
            "--message",
            "ping 123",
        )
        assert res.returncode == 0, res.output
        assert "reply: ping 123" in res.output
        assert "ECDHE X25519" in res.output
        assert await srv.stop(signal.SIGINT) == 0


@pytest.mark.asyncio
async def test_echo_server_example_rejects_bad_config(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 8443\nprot = 1\n")
    res = await run_peer(
        sys.executable, str(ROOT / "examples" / "echo_server.py"), "--config", str(bad)
    )
    assert res.returncode == 2
    assert "prot" in res.output
    assert "unknown setting" in res.output


@pytest.mark.asyncio
async def test_custom_handler_example_via_cli_import_path(env: dict[str, str]) -> None:
    argv = [
        *SERVE,
        "--handler",
        "examples.custom_handler:KeyValueHandler",
    ]
    async with server_process(argv, env) as srv:
        cert = env["XDG_CACHE_HOME"] + "/ecdhe_async/dev-cert.pem"
        res = await s_client_echo(
            srv.port,
            "-CAfile",
            cert,
            send=b"SET a 1\nGET a\nDEL a\nGET a\nQUIT\n",
            expect=b"BYE",
        )
        session = res.output.rpartition("---")[2].split()
        replies = [w for w in session if w not in {"DONE", "closed"}]
        assert replies == ["OK", "1", "1", "NIL", "BYE"], res.output
        assert await srv.stop() == 0


@pytest.mark.asyncio
async def test_second_sigint_stops_at_once(env: dict[str, str], pki: PKI) -> None:
    """SIGINT starts a graceful stop that waits for a busy client; a second SIGINT ends it."""
    env = dict(env)
    env["ECDHE_ASYNC_GRACE"] = "60"  # the graceful stop alone would wait a minute
    argv = SERVE
    async with server_process(argv, env) as srv:
        cert = env["XDG_CACHE_HOME"] + "/ecdhe_async/dev-cert.pem"
        ctx = ssl.create_default_context(cafile=cert)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", srv.port, ssl=ctx, server_hostname="localhost"),
            10,
        )
        try:
            writer.write(b"busy")
            assert await asyncio.wait_for(reader.readexactly(4), 10) == b"busy"
            assert srv.proc.stderr is not None
            srv.proc.send_signal(signal.SIGINT)
            while not any("stopping gracefully" in line for line in srv.lines):
                raw = await asyncio.wait_for(srv.proc.stderr.readline(), 10)
                assert raw, "server exited on the first SIGINT despite a busy connection"
                srv.lines.append(raw.decode(errors="replace"))
            assert srv.proc.returncode is None
            started = asyncio.get_running_loop().time()
            code = await srv.stop(signal.SIGINT)
            elapsed = asyncio.get_running_loop().time() - started
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 5)
    assert code == 0
    assert elapsed < 10
    assert any("second SIGINT" in line for line in srv.lines)


def test_cert_cli_encrypted_ca_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CA_PASSWORD", "correct horse")
    ca, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    out = ["--out", str(ca), "--key-out", str(ca_key), "--key-password-env", "CA_PASSWORD"]
    assert main(["cert", "ca", *out]) == 0
    assert ca_key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    leaf = ["--ca", str(ca), "--ca-key", str(ca_key), "--out", str(tmp_path / "s.crt")]
    leaf += ["--key-out", str(tmp_path / "s.key")]
    assert main(["cert", "server", *leaf]) == 1
    assert "a password is required" in capsys.readouterr().err
    assert main(["cert", "server", *leaf, "--ca-password-env", "CA_PASSWORD"]) == 0
    assert "correct horse" not in capsys.readouterr().out


@pytest.mark.asyncio
async def test_custom_handler_example_runs_as_is(env: dict[str, str]) -> None:
    env = dict(env)
    env["ECDHE_ASYNC_PORT"] = "0"
    argv = [sys.executable, str(ROOT / "examples" / "custom_handler.py")]
    async with server_process(argv, env) as srv:
        cert = env["XDG_CACHE_HOME"] + "/ecdhe_async/dev-cert.pem"
        res = await s_client_echo(
            srv.port, "-CAfile", cert, send=b"SET k v\nGET k\nFOO\nQUIT\n", expect=b"BYE"
        )
        session = res.output.rpartition("---")[2]
        assert "OK\nv\nERR unknown command FOO\nBYE" in session, res.output
        assert await srv.stop() == 0
