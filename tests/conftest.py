"""Shared fixtures: a dev PKI on disk, both event loops, a running server, openssl as a peer.

Every async test runs on the stdlib loop and on uvloop (``pytest_asyncio_loop_factories`` below).
Readiness is a return value: servers bind port 0 and tests read the port back from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop

from ecdhe_async.certs import DevCA, create_self_signed_cert
from ecdhe_async.connection import Connection
from ecdhe_async.contexts import clear_context_cache
from ecdhe_async.server import TLSServer
from ecdhe_async.settings import ClientSettings, ServerSettings

OPENSSL = shutil.which("openssl")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run every async test on both loops: the stdlib's and uvloop."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@dataclass(frozen=True)
class PKI:
    """Files of a small development PKI (all in one temp dir)."""

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    rsa_cert: Path
    rsa_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path
    self_signed_cert: Path
    self_signed_key: Path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A dev CA with an ECDSA P-256 and an RSA 2048 server cert, client certs, and a rogue CA."""
    d = tmp_path_factory.mktemp("pki")
    ca = DevCA.create("test CA")
    ca.save(d / "ca.pem", d / "ca-key.pem")
    ca.issue_server_cert(d / "server.pem", d / "server-key.pem", common_name="localhost")
    ca.issue_server_cert(
        d / "rsa.pem", d / "rsa-key.pem", common_name="localhost", key_type="rsa2048"
    )
    ca.issue_client_cert(d / "client.pem", d / "client-key.pem", common_name="alice")
    other = DevCA.create("rogue CA")
    other.save(d / "other-ca.pem", d / "other-ca-key.pem")
    other.issue_client_cert(d / "other-client.pem", d / "other-client-key.pem", common_name="eve")
    create_self_signed_cert(d / "self.pem", d / "self-key.pem")
    return PKI(
        dir=d,
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server-key.pem",
        rsa_cert=d / "rsa.pem",
        rsa_key=d / "rsa-key.pem",
        client_cert=d / "client.pem",
        client_key=d / "client-key.pem",
        other_ca=d / "other-ca.pem",
        other_client_cert=d / "other-client.pem",
        other_client_key=d / "other-client-key.pem",
        self_signed_cert=d / "self.pem",
        self_signed_key=d / "self-key.pem",
    )


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ECDHE_ASYNC_* or SSLKEYLOGFILE from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("ECDHE_ASYNC_") or name == "SSLKEYLOGFILE":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _fresh_client_contexts() -> Iterator[None]:
    """Each test builds its client contexts anew (their warnings are logged at build time)."""
    clear_context_cache()
    yield
    clear_context_cache()


def server_settings(pki: PKI, *, tls: dict[str, Any] | None = None, **kw: Any) -> ServerSettings:
    """Settings for a loopback test server on port 0 with the PKI's ECDSA certificate."""
    tls_values: dict[str, Any] = {"certfile": pki.server_cert, "keyfile": pki.server_key}
    tls_values.update(tls or {})
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("port", 0)
    return ServerSettings.load(tls=tls_values, **kw)


def client_settings(pki: PKI, *, tls: dict[str, Any] | None = None, **kw: Any) -> ClientSettings:
    """Client settings trusting the PKI's CA."""
    tls_values: dict[str, Any] = {"ca_file": pki.ca}
    tls_values.update(tls or {})
    kw.setdefault("server_hostname", "localhost")
    return ClientSettings.load(tls=tls_values, **kw)


#: The TLS versions the server, client, handler and pump suites run on (see ``tls_version``).
TLS_VERSIONS = ("TLSv1.3", "TLSv1.2")
#: The version the running test is parametrized with (set by the ``tls_version`` fixture).
_tls_version: list[str] = []


@pytest.fixture(params=TLS_VERSIONS)
def tls_version(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once per TLS version: ``running_server`` caps its server at this version.

    Capping the server (not the client) also covers peers the test builds itself (openssl,
    raw ``ssl`` clients). ``running_server`` checks that every connection its handler was given
    negotiated exactly this version, so a cap that silently did not apply fails the test. Use it
    through :data:`both_tls`; a test that is specific to one version keeps it explicitly.
    """
    version: str = request.param
    _tls_version.append(version)
    yield version
    _tls_version.remove(version)


#: Mark a test to run on TLS 1.3 and TLS 1.2 (see ``tls_version``).
both_tls = pytest.mark.usefixtures("tls_version")


def _cap_version(server: TLSServer) -> list[str]:
    """Cap *server* at the parametrized TLS version; return the versions its handler then sees."""
    seen: list[str] = []
    if not _tls_version:
        return seen
    server.ssl_context.maximum_version = ssl.TLSVersion[_tls_version[-1].replace(".", "_")]
    inner = server.handler

    async def checked(conn: Connection) -> None:
        seen.append(conn.version or "?")
        await inner(conn)

    # Its logs still name the test's handler ("handler BoomOrEcho crashed ...").
    checked.__qualname__ = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    server.handler = checked
    return seen


@contextlib.asynccontextmanager
async def running_server(
    settings: ServerSettings, handler: Any = None, *, grace: float = 0.0
) -> AsyncIterator[TLSServer]:
    """Start a TLSServer; always stop it (bounded) when the block ends.

    Under the ``tls_version`` fixture the server is capped at that version, and every
    connection that reached the handler must have negotiated it.
    """
    server = TLSServer(settings, handler)
    seen = _cap_version(server)
    await asyncio.wait_for(server.start(), 10)
    try:
        yield server
    finally:
        await asyncio.wait_for(server.aclose(grace=grace), 30)
    if _tls_version:
        assert set(seen) <= {_tls_version[-1]}, f"negotiated {seen}, not {_tls_version[-1]}"
        _NEGOTIATED[_tls_version[-1]] = _NEGOTIATED.get(_tls_version[-1], 0) + len(seen)


#: Connections checked per version by ``running_server`` (shown in the terminal summary).
_NEGOTIATED: dict[str, int] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many connections the TLS-parametrized tests checked on each version."""
    if _NEGOTIATED:
        counts = ", ".join(f"{v}: {n}" for v, n in sorted(_NEGOTIATED.items()))
        terminalreporter.write_line(f"connections checked per parametrized TLS version: {counts}")


@dataclass
class Result:
    """What an external peer printed."""

    returncode: int
    output: str


async def run_peer(*argv: str, stdin: bytes = b"", deadline: float = 20) -> Result:
    """Run a peer program (openssl, curl, ...) without blocking the loop; stdout+stderr merged."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(deadline):
            out, _ = await asyncio.gather(proc.stdout.read(), _feed(proc.stdin, stdin))
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"))


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> None:
    """Write *data* to a peer's stdin and close it; a peer that already exited is no error.

    ``communicate()`` does the same, but on uvloop a peer that exits before its stdin is written
    (``openssl s_client`` after a refused handshake) leaves the pipe's transport closing with a
    write pending ("handler is closed"), reported later as a ResourceWarning in another test.
    Waiting for the close here, with the errors of a gone reader swallowed, settles it now.
    """
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
        if data:
            stdin.write(data)
            await stdin.drain()
    stdin.close()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
        await stdin.wait_closed()


async def s_client(port: int, *args: str, stdin: bytes = b"", deadline: float = 20) -> Result:
    """``openssl s_client`` against 127.0.0.1:*port*; returns its exit code and output."""
    assert OPENSSL, "openssl binary is required (apt-get install -y openssl)"
    return await run_peer(
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        "localhost",
        "-no_ign_eof",
        *args,
        stdin=stdin,
        deadline=deadline,
    )


@contextlib.asynccontextmanager
async def s_server(
    *args: str, rev: bool = True
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``openssl s_server`` on an OS-chosen port (``-accept 0``); yields (process, port).

    Asynchronous, so that waiting for openssl to listen does not block the event loop. Without
    *rev* (``-rev`` echoes reversed lines) it reports the errors it reads, e.g. an alert; its
    stdin then stays open until the process is killed.
    """
    assert OPENSSL, "openssl binary is required (apt-get install -y openssl)"
    mode = ["-rev"] if rev else []
    proc = await asyncio.create_subprocess_exec(
        *[OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", *mode, *args],
        stdin=asyncio.subprocess.DEVNULL if rev else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        port = 0
        async with asyncio.timeout(20):
            while raw := await proc.stdout.readline():  # "ACCEPT 127.0.0.1:PORT" once listening
                line = raw.decode(errors="replace")
                if line.startswith("ACCEPT"):
                    port = int(line.rsplit(":", 1)[1])
                    break
        assert port, "openssl s_server did not report its port"
        yield proc, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.wait_for(proc.communicate(), 10)  # drains the pipe, reaps the process


async def s_client_echo(
    port: int, *args: str, send: bytes, expect: bytes, deadline: float = 20
) -> Result:
    """Interactive ``openssl s_client``: send *send* after the handshake, wait for *expect*.

    Closes stdin only once *expect* was read, so the reply cannot race the close. Returns the
    whole output; on a failed handshake it returns as soon as s_client exits.
    """
    assert OPENSSL, "openssl binary is required (apt-get install -y openssl)"
    proc = await asyncio.create_subprocess_exec(
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        "localhost",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    out = b""
    try:
        async with asyncio.timeout(deadline):
            proc.stdin.write(send)
            await proc.stdin.drain()
            while expect not in out.rpartition(b"---")[2]:
                chunk = await proc.stdout.read(65536)
                if not chunk:
                    break
                out += chunk
            proc.stdin.close()
            out += await proc.stdout.read()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"))
