"""The first hour of a new user (issue 11): what the command line says when things go wrong.

Every check runs the real ``ecdhe-async`` (or an example) in a subprocess, as a user would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ecdhe_async.cli import build_parser

from .conftest import PKI
from .test_cli import ROOT, SERVE, clean_env, run_program, server_process

CLI = [sys.executable, "-m", "ecdhe_async"]
ECHO_CLIENT = [sys.executable, str(ROOT / "examples" / "echo_client.py")]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment with a private cache dir (for the dev certificate)."""
    return clean_env(tmp_path)


def cli(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``ecdhe-async ARGS`` to its end (bounded), stdout and stderr apart."""
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    """The single line on stderr of a failed command (no traceback, nothing else)."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("ecdhe-async: ")
    return lines[0]


# -- 2: a bad --handler is one line, exit code 2 ---------------------------------------------
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nosuch.module:thing", "cannot import 'nosuch.module': No module named 'nosuch'"),
        ("foo", "unknown handler 'foo': use one of echo, lines, frames"),
        ("Lines", "did you mean 'lines'?"),
        ("os:sep", "handler 'os:sep' is not callable (it is a str)"),
        ("json:dumps", "must be an async callable taking a Connection"),
        ("tests.netutil:sync_handler", "not a plain (synchronous) function"),
        ("tests.netutil:nothing", "'tests.netutil' has no 'nothing'"),
    ],
)
def test_bad_handler_is_one_line_exit_2(
    env: dict[str, str], tmp_path: Path, spec: str, expected: str
) -> None:
    line = one_error_line(cli("serve", "--port", "0", "--handler", spec, env=env))
    assert expected in line
    # Checked before anything else: no development certificate was made for nothing.
    assert not (tmp_path / "cache" / "ecdhe_async").exists()


# -- 6: global options after the command -----------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["serve"],
        ["connect", "localhost", "8443"],
        ["cert", "ca"],
        ["cert", "client", "--ca", "c", "--ca-key", "k"],
        ["demo"],
        ["explain"],
        ["bench", "handshakes", "localhost", "8443"],
    ],
)
def test_log_level_before_or_after_the_command(argv: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args([*argv, "--log-level", "debug"]).log_level == "debug"
    assert parser.parse_args(["--log-level", "error", *argv]).log_level == "error"
    assert parser.parse_args(argv).log_level is None


@pytest.mark.asyncio
async def test_serve_log_level_after_the_command_takes_effect(env: dict[str, str]) -> None:
    env = dict(env)
    env["ECDHE_ASYNC_LOG_LEVEL"] = "error"  # the flag beats the environment
    argv = [*SERVE, "--loop", "asyncio", "--log-level", "debug"]
    async with server_process(argv, env) as srv:
        assert await srv.stop() == 0
    assert any(" DEBUG " in line for line in srv.lines), srv.lines


# -- 8: no setuptools deprecation banners ----------------------------------------------------
def test_pyproject_uses_spdx_license() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"  # a table is deprecated (setuptools >= 77)
    (requirement,) = meta["build-system"]["requires"]
    assert requirement == "setuptools>=77"


# -- 9: the echo client against every built-in handler ---------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("handler", ["echo", "lines", "frames"])
async def test_echo_client_against_each_handler(env: dict[str, str], handler: str) -> None:
    framing = ["--framing", "frames"] if handler == "frames" else []
    async with server_process([*SERVE, "--handler", handler], env) as srv:
        args = [*ECHO_CLIENT, "127.0.0.1", str(srv.port), "--message", "ping 1"]
        ok = await run_program([*args, *framing], env)
        assert ok.returncode == 0, ok.output
        assert "reply: ping 1" in ok.output
        if handler != "echo":  # the wrong framing: a clear error, at once or after --timeout
            wrong = ["--framing", "lines" if framing else "frames", "--timeout", "0.5"]
            bad = await run_program([*args, *wrong], env)
            assert bad.returncode == 1
            assert re.search(r"echo_client: \S", bad.output), bad.output
            assert "--framing" in bad.output
        assert await srv.stop() == 0


@pytest.mark.asyncio
async def test_echo_client_takes_config_and_environment(
    env: dict[str, str], pki: PKI, tmp_path: Path
) -> None:
    argv = [*SERVE, "--certfile", str(pki.server_cert), "--keyfile", str(pki.server_key)]
    async with server_process(argv, env) as srv:
        target = [*ECHO_CLIENT, "127.0.0.1", str(srv.port)]
        # No dev certificate, no CA: verification fails with text, not an empty line.
        plain = await run_program(target, env)
        assert plain.returncode == 1
        assert "certificate verify failed" in plain.output
        # The environment is not masked by the example's own defaults.
        with_env = dict(env, ECDHE_ASYNC_CLIENT_TLS__CA_FILE=str(pki.ca))
        with_env["ECDHE_ASYNC_CLIENT_SERVER_HOSTNAME"] = "localhost"
        res = await run_program(target, with_env)
        assert res.returncode == 0, res.output
        # Nor is a --config file.
        toml = tmp_path / "client.toml"
        toml.write_text(f'server_hostname = "localhost"\n[tls]\nca_file = "{pki.ca}"\n')
        res = await run_program([*target, "--config", str(toml)], env)
        assert res.returncode == 0, res.output
        assert "reply: Hello, forward secrecy!" in res.output
        assert await srv.stop() == 0


# -- 10: setting errors point at the variable or the file ------------------------------------
def test_typo_in_config_file_suggests_the_key(env: dict[str, str], tmp_path: Path) -> None:
    toml = tmp_path / "typo.toml"
    toml.write_text('[tls]\ngrups = ["X25519"]\n')
    line = one_error_line(cli("serve", "--config", str(toml), env=env))
    assert line == (
        f"ecdhe-async: invalid setting tls.grups (in {toml}): unknown setting; "
        "did you mean 'groups'?"
    )


def test_environment_value_error_names_the_variable(env: dict[str, str]) -> None:
    line = one_error_line(cli("serve", env=dict(env, ECDHE_ASYNC_PORT="http")))
    assert "invalid setting port='http' (from ECDHE_ASYNC_PORT): " in line
    line = one_error_line(cli("serve", env=dict(env, ECDHE_ASYNC_TLS="{")))
    assert line == "ecdhe-async: invalid setting tls (from ECDHE_ASYNC_TLS): not valid JSON"


@pytest.mark.asyncio
async def test_unknown_environment_variable_warns_by_name(env: dict[str, str]) -> None:
    env = dict(env, ECDHE_ASYNC_PROT="9000", ECDHE_ASYNC_CLIENT_CONNECT_TIMEOUT="3")
    async with server_process(SERVE, env) as srv:
        assert await srv.stop() == 0
    warnings = [line for line in srv.lines if "unknown environment variable" in line]
    assert len(warnings) == 1, srv.lines  # the client's variables are not the server's business
    assert " WARNING " in warnings[0]
    assert "ECDHE_ASYNC_PROT (did you mean ECDHE_ASYNC_PORT?)" in warnings[0]


# -- 11: an encrypted key's password ---------------------------------------------------------
@pytest.mark.asyncio
async def test_encrypted_key_password_from_an_environment_variable(
    env: dict[str, str], tmp_path: Path
) -> None:
    password = "tr0ub4dor&3"
    env = dict(env, SERVER_KEY_PASSWORD=password)
    crt, key = tmp_path / "s.crt", tmp_path / "s.key"
    # The CLI runs to completion in a thread: a blocking subprocess.run must not hold the loop.
    made = await asyncio.to_thread(
        cli,
        "cert", "self-signed", "--out", str(crt), "--key-out", str(key),
        "--key-password-env", "SERVER_KEY_PASSWORD", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    pair = ["--certfile", str(crt), "--keyfile", str(key)]
    line = one_error_line(await asyncio.to_thread(cli, "serve", *pair, env=env))
    assert "is encrypted: a password is required" in line
    assert "--key-password-env VAR" in line
    assert "ECDHE_ASYNC_TLS__KEY_PASSWORD" in line
    unset_args = [*pair, "--key-password-env", "NO_SUCH_VAR"]
    unset = one_error_line(await asyncio.to_thread(cli, "serve", *unset_args, env=env))
    assert "NO_SUCH_VAR" in unset
    async with server_process([*SERVE, *pair, "--key-password-env", "SERVER_KEY_PASSWORD"], env):
        pass
    assert password not in build_parser().format_help()


def test_port_in_use_names_the_address(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = cli("serve", "--port", str(port), env=env)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"ecdhe-async: cannot listen on 127.0.0.1:{port}: address already in use (is another "
        "server running there? choose another port with --port)"
    )


# -- 13: start and stop lines ----------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_start_and_stop_lines(env: dict[str, str], loop: str) -> None:
    async with server_process([*SERVE, "--loop", loop], env) as srv:
        assert await srv.stop(signal.SIGINT) == 0
    log = "\n".join(srv.lines)
    assert f"server process {srv.proc.pid} on the {loop}" in log
    assert "(press Ctrl-C to stop)" in log
    assert (
        "stopping gracefully (waiting up to 10s for open connections; press Ctrl-C again to " in log
    )


@pytest.mark.asyncio
async def test_world_readable_key_warning_is_a_log_line(
    env: dict[str, str], pki: PKI, tmp_path: Path
) -> None:
    key = tmp_path / "open.key"
    shutil.copy(pki.server_key, key)
    os.chmod(key, 0o644)
    argv = [*SERVE, "--certfile", str(pki.server_cert), "--keyfile", str(key)]
    async with server_process(argv, env) as srv:
        assert await srv.stop() == 0
    (line,) = [line for line in srv.lines if "readable by other users" in line]
    assert re.match(r"\d{4}-\d\d-\d\d \S+ WARNING +ecdhe_async\.\S+: ", line), line


@pytest.mark.asyncio
async def test_custom_handler_example_honours_log_level(env: dict[str, str]) -> None:
    env = dict(env, ECDHE_ASYNC_PORT="0", ECDHE_ASYNC_LOOP="asyncio", ECDHE_ASYNC_LOG_LEVEL="debug")
    argv = [sys.executable, str(ROOT / "examples" / "custom_handler.py")]
    async with server_process(argv, env) as srv:
        assert await srv.stop() == 0
    assert any(" DEBUG " in line for line in srv.lines), srv.lines


def test_no_help_shows_default_false(env: dict[str, str]) -> None:
    """Every (sub)command's help: on/off flags say no "(default: False)"; --log-level is there."""
    pending = [build_parser()]
    seen = 0
    while pending:
        parser = pending.pop()
        text = parser.format_help()
        assert "(default: False)" not in text, parser.prog
        assert "--log-level" in text, parser.prog
        seen += 1
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    assert seen >= 11  # ecdhe-async, 6 commands, 4 kinds of cert
    res = cli("connect", "--help", env=env)
    assert res.returncode == 0
    assert "DO NOT verify the certificate (testing only)\n" in res.stdout
