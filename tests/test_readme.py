"""The README's samples run as written, in order, in a fresh directory.

The certificates come from the README's own ``cert`` commands; each Python block runs as a
program of its own, and so do the mutual-TLS ``serve``/``connect`` lines. The samples use ports
8443 and 9443; here the servers bind port 0 instead (the OS chooses, the log line says which)
and the clients connect to that port, so the test never collides with anything on this machine.
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
from pathlib import Path

import pytest

from .test_cli import ROOT, clean_env, run_program, server_process

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
CLI = ".venv/bin/ecdhe-async"


def blocks(language: str) -> list[str]:
    """The README's fenced blocks of one language, in order."""
    return [m.group(2) for m in FENCE.finditer(README.read_text()) if m.group(1) == language]


def commands(command: str, *must: str) -> list[list[str]]:
    """The README's ``ecdhe-async COMMAND ...`` lines with all of *must*, as argv to run here."""
    found = []
    for block in blocks("sh"):
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            if argv[:2] == [CLI, command] and all(word in argv for word in must):
                found.append([sys.executable, "-m", "ecdhe_async", *argv[1:]])
    return found


def cert_commands() -> list[list[str]]:
    """The README's ``ecdhe-async cert ...`` lines."""
    return commands("cert")


def test_readme_has_the_samples_this_test_runs() -> None:
    python = blocks("python")
    assert len(python) == 3
    assert sum("run_server(" in b for b in python) == 1
    assert sum('connect("localhost", 8443' in b for b in python) == 1
    assert len(cert_commands()) == 3
    for block in python:  # complete programs: no top-level await / async with
        compile(block, "README.md", "exec")


@pytest.mark.asyncio
async def test_readme_samples_run_in_sequence(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    for argv in cert_commands():
        made = await run_program(argv, env, cwd=tmp_path)
        assert made.returncode == 0, made.output
    for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key"):
        assert (tmp_path / name).is_file(), name

    server_code, lifecycle_code, client_code = _classify(blocks("python"))
    (tmp_path / "shout.py").write_text(server_code.replace("port=8443", "port=0"))
    async with server_process([sys.executable, "shout.py"], env, cwd=tmp_path) as srv:
        (tmp_path / "client.py").write_text(client_code.replace("8443", str(srv.port)))
        client = await run_program([sys.executable, "client.py"], env, cwd=tmp_path)
        assert client.returncode == 0, client.output
        assert "TLSv1.3" in client.output
        assert "b'HELLO\\n'" in client.output
        # Ctrl-C: a graceful stop, exit code 0, no KeyboardInterrupt traceback.
        assert await srv.stop(signal.SIGINT) == 0
    log = "\n".join(srv.lines)
    assert "press Ctrl-C to stop" in log
    assert "press Ctrl-C again to force" in log
    assert "Traceback" not in log
    assert "KeyboardInterrupt" not in log

    # The mutual-TLS pair, on a port the OS chooses instead of 9443.
    (serve,) = commands("serve", "--client-auth")
    (connect,) = commands("connect", "client.crt")
    async with server_process(_port(serve, "0"), env, cwd=tmp_path) as srv:
        hello = await run_program(_port(connect, str(srv.port)), env, cwd=tmp_path)
        assert hello.returncode == 0, hello.output
        assert re.search(r"reply\s+hi", hello.output)
        assert await srv.stop() == 0

    (tmp_path / "lifecycle.py").write_text(lifecycle_code)
    own = await run_program([sys.executable, "lifecycle.py"], env, cwd=tmp_path)
    assert own.returncode == 0, own.output
    assert "X25519 b'one line\\n'" in own.output


def _port(argv: list[str], port: str) -> list[str]:
    """*argv* with 9443 (the README's port) replaced by *port*."""
    assert "9443" in argv
    return [port if arg == "9443" else arg for arg in argv]


def _classify(python: list[str]) -> tuple[str, str, str]:
    """(server program, self-contained lifecycle program, client program)."""
    (server,) = [b for b in python if "run_server(" in b]
    (client,) = [b for b in python if 'connect("localhost", 8443' in b]
    (lifecycle,) = [b for b in python if b not in (server, client)]
    return server, lifecycle, client
