"""Forward secrecy without exceptions (issue 10, points 1, 2, 4, 11).

- A caller's own ``ssl_context`` gets the policy (server and client), and every established
  connection is checked before its handler runs: a non-forward-secret one is refused.
- :func:`check_forward_secret` against real handshakes between two in-memory ``SSLObject``s with
  permissive contexts (ffdhe2048 in TLS 1.3, RSA key transport, CBC, TLS 1.1).
- Without the OpenSSL shim, TLS 1.2 (whose session-ID cache could not be switched off) is refused,
  unless ``allow_tls12_session_resumption`` accepts the risk, loudly.
- With ``truststore.inject_into_ssl()`` our contexts still build and restrict; a wrapping context
  passed in is refused in one line.
- Client contexts are built once per settings; the dev certificate is prepared off the loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import truststore

from ecdhe_async import (
    ConfigError,
    HandshakeError,
    TLSServer,
    TLSSettings,
    _openssl,
    connect,
    describe_context,
)
from ecdhe_async.events import HandshakeFailed
from ecdhe_async.runner import prepare_server
from ecdhe_async.settings import ServerSettings
from ecdhe_async.tls import TLS12_CIPHERS, check_forward_secret, client_context, server_context

from .conftest import PKI, client_settings, running_server, s_client, s_server, server_settings
from .eventwatch import EventWatch
from .netutil import log_watch

T = 10.0


class Recorder:
    """Handler that records that it ran and echoes one chunk."""

    def __init__(self) -> None:
        self.ran = 0

    async def __call__(self, conn: object) -> None:
        self.ran += 1
        data = await conn.read()  # type: ignore[attr-defined]
        if data:
            await conn.send(data)  # type: ignore[attr-defined]


# -- in-memory handshakes --------------------------------------------------------------------
def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """Run a full handshake between two SSLObjects over memory BIOs; return the server side."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    for _ in range(10):
        for obj in (cli, srv):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    assert srv.version() is not None
    return srv


def permissive(pki: PKI, *, rsa: bool = False) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if rsa:
        srv.load_cert_chain(pki.rsa_cert, pki.rsa_key)
    else:
        srv.load_cert_chain(pki.server_cert, pki.server_key)
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.load_verify_locations(pki.ca)
    return srv, cli


ALLOWED = ["X25519", "P-256", "P-384"]


def test_check_accepts_ecdhe(pki: PKI) -> None:
    srv, cli = permissive(pki)
    assert check_forward_secret(handshake(srv, cli), ALLOWED) is None
    cli.maximum_version = ssl.TLSVersion.TLSv1_2
    assert check_forward_secret(handshake(srv, cli), ALLOWED) is None


def test_check_refuses_ffdhe_in_tls13(pki: PKI) -> None:
    srv, cli = permissive(pki)
    assert _openssl._openssl is not None
    _openssl._openssl.set_groups(cli, ["ffdhe2048"])  # OpenSSL's defaults allow it on a server
    obj = handshake(srv, cli)
    assert obj.version() == "TLSv1.3"
    assert check_forward_secret(obj, ALLOWED) == "key exchange ffdhe2048 is not ECDHE"


def test_check_refuses_a_group_not_allowed(pki: PKI) -> None:
    srv, cli = permissive(pki)
    assert _openssl._openssl is not None
    _openssl._openssl.set_groups(cli, ["secp521r1"])
    problem = check_forward_secret(handshake(srv, cli), ALLOWED)
    assert problem == "key-exchange group P-521 is not allowed (X25519, P-256, P-384)"


@pytest.mark.parametrize(
    ("suite", "problem"),
    [
        ("AES128-GCM-SHA256", "has no ECDHE key exchange (kx-rsa)"),
        ("ECDHE-RSA-AES128-SHA256", "is not AEAD"),
    ],
)
def test_check_refuses_tls12_suites(pki: PKI, suite: str, problem: str) -> None:
    srv, cli = permissive(pki, rsa=True)
    for ctx in (srv, cli):
        ctx.set_ciphers(suite)
    cli.maximum_version = ssl.TLSVersion.TLSv1_2
    assert check_forward_secret(handshake(srv, cli), ALLOWED) == f"cipher suite {suite} {problem}"


def test_check_refuses_tls11(pki: PKI) -> None:
    srv, cli = permissive(pki)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for ctx in (srv, cli):
            ctx.set_ciphers("DEFAULT@SECLEVEL=0")
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    assert check_forward_secret(handshake(srv, cli), ALLOWED) == "protocol TLSv1.1 is below TLS 1.2"


# -- a caller's own context ------------------------------------------------------------------
@pytest.mark.asyncio
async def test_supplied_server_context_is_restricted(pki: PKI) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    recorder = Recorder()
    server = TLSServer(server_settings(pki), recorder, ssl_context=ctx)
    assert server.ssl_context is ctx
    assert describe_context(ctx)["groups"] == ALLOWED
    await asyncio.wait_for(server.start(), T)
    try:
        r = await s_client(server.port, "-CAfile", str(pki.ca), "-tls1_3", "-groups", "ffdhe2048")
        assert "alert handshake failure" in r.output, r.output
        assert "Server Temp Key" not in r.output, r.output
        r = await s_client(
            server.port, "-CAfile", str(pki.ca), "-tls1_2", "-no_ticket", "-reconnect"
        )
        assert re.findall(r"^(New|Reused), TLSv1\.2", r.output, re.MULTILINE) == ["New"] * 6
    finally:
        await asyncio.wait_for(server.aclose(grace=0), 30)
    assert server.stats.handshakes == 6


@pytest.mark.asyncio
async def test_supplied_client_context_is_restricted(pki: PKI) -> None:
    ctx = ssl.create_default_context(cafile=pki.ca)
    args = ("-cert", str(pki.server_cert), "-key", str(pki.server_key), "-groups", "ffdhe2048")
    async with s_server(*args) as (_proc, port):
        with pytest.raises(HandshakeError, match="handshake failure"):
            await connect("127.0.0.1", port, client_settings(pki), ssl_context=ctx)
    assert describe_context(ctx)["groups"] == ALLOWED


@pytest.mark.asyncio
async def test_connect_refuses_a_session_that_is_not_forward_secret(pki: PKI) -> None:
    """A client context loosened behind our back: fatal alert, ERROR log, no Connection."""
    ctx = ssl.create_default_context(cafile=pki.ca)
    args = ("-cert", str(pki.server_cert), "-key", str(pki.server_key), "-groups", "ffdhe2048")
    async with s_server(*args, rev=False) as (proc, port):
        connecting = connect("127.0.0.1", port, client_settings(pki), ssl_context=ctx)
        _openssl._openssl.set_groups(ctx, ["ffdhe2048"])  # type: ignore[union-attr]
        with log_watch() as watch:
            with pytest.raises(HandshakeError, match="key exchange ffdhe2048 is not ECDHE"):
                await asyncio.wait_for(connecting, T)
        assert proc.stdout is not None
        output = ""
        async with asyncio.timeout(T):
            while "CONNECTION CLOSED" not in output and (line := await proc.stdout.readline()):
                output += line.decode(errors="replace")
    [record] = watch.matching("not forward secret", logging.ERROR)
    assert f"refused 127.0.0.1:{port}" in record.getMessage()
    assert "alert unexpected message" in output, output  # a fatal alert, not a reset


@pytest.mark.parametrize(
    ("ctx_factory", "message"),
    [
        (lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "a server needs a PROTOCOL_TLS_SERVER"),
        (lambda: truststore.SSLContext(ssl.PROTOCOL_TLS_SERVER), "it wraps another context"),
    ],
)
def test_unrestrictable_server_context_refused(pki: PKI, ctx_factory: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        TLSServer(server_settings(pki), ssl_context=ctx_factory())  # type: ignore[operator]
    assert "\n" not in str(err.value)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("args", "loosen", "problem", "alert"),
    [
        pytest.param(
            ("-tls1_3", "-groups", "ffdhe2048"),
            lambda ctx: _openssl._openssl.set_groups(ctx, ["ffdhe2048"]),  # type: ignore[union-attr]
            "key exchange ffdhe2048 is not ECDHE",
            "alert unexpected message",
            id="ffdhe2048",
        ),
        pytest.param(
            ("-tls1_2", "-cipher", "AES128-GCM-SHA256"),
            lambda ctx: ctx.set_ciphers(TLS12_CIPHERS + ":AES128-GCM-SHA256"),
            "cipher suite AES128-GCM-SHA256 has no ECDHE key exchange (kx-rsa)",
            "alert internal error",
            id="rsa-key-transport",
        ),
    ],
)
async def test_established_connection_checked_before_the_handler(
    pki: PKI, args: tuple[str, ...], loosen: object, problem: str, alert: str
) -> None:
    """Even if the context is loosened behind our back, the handler never sees such a session."""
    recorder = Recorder()
    settings = server_settings(pki, tls={"certfile": pki.rsa_cert, "keyfile": pki.rsa_key})
    with log_watch() as watch:
        async with running_server(settings, recorder) as server:
            loosen(server.ssl_context)  # type: ignore[operator]
            events = EventWatch(server)
            r = await s_client(
                server.port, "-CAfile", str(pki.ca), "-ign_eof", *args, stdin=b"hi\n"
            )
            (failed,) = await events.wait(HandshakeFailed)
            [record] = watch.matching("not forward secret")
        assert (failed.reason, failed.alert_sent) == ("not_forward_secret", True)
        assert record.levelno == logging.ERROR
        assert problem in record.getMessage()
        assert not watch.matching("handshake failed from")  # one line: policy's ERROR
    assert recorder.ran == 0
    assert server.stats.handshakes == 0
    assert server.stats.handshake_failures == 1
    assert "\nhi\n" not in r.output, r.output  # s_client's handshake finished; no echo came back
    assert alert in r.output, r.output  # a fatal alert, not a reset or a clean close


# -- no shim: fail closed --------------------------------------------------------------------
@pytest.fixture
def no_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_openssl, "_openssl", None)
    monkeypatch.setattr(_openssl, "_shim_error", "forced off by the test")


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_shim")
async def test_no_shim_refuses_tls12(pki: PKI) -> None:
    with log_watch("ecdhe_async.tls") as watch:
        settings = server_settings(pki)
        async with running_server(settings, Recorder()) as server:
            assert describe_context(server.ssl_context)["minimum_version"] == "TLSv1.3"
            r = await s_client(server.port, "-CAfile", str(pki.ca), "-tls1_2", "-reconnect")
            ok = await s_client(
                server.port, "-CAfile", str(pki.ca), "-tls1_3", "-ign_eof", stdin=b"hi\n"
            )
    assert "alert protocol version" in r.output, r.output
    assert "Reused" not in r.output, r.output
    assert "New, TLSv1.3" in ok.output, ok.output
    assert "\nhi\n" in ok.output, ok.output  # one curve (X25519) in force, checked and served
    [warning] = watch.matching("TLS 1.2 is refused", logging.WARNING)
    text = warning.getMessage()
    assert "forced off by the test" in text
    assert "tls.allow_tls12_session_resumption = true" in text


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_shim")
async def test_no_shim_tls12_only_when_the_risk_is_accepted(pki: PKI) -> None:
    with log_watch("ecdhe_async.tls") as watch:
        settings = server_settings(pki, tls={"allow_tls12_session_resumption": True})
        async with running_server(settings) as server:
            r = await s_client(
                server.port, "-CAfile", str(pki.ca), "-tls1_2", "-no_ticket", "-reconnect"
            )
    assert watch.matching("TLS 1.2 SESSION-ID RESUMPTION IS ON", logging.WARNING)
    # The risk that was accepted, shown: one full handshake, then resumed sessions.
    assert re.findall(r"^(New|Reused), TLSv1\.2", r.output, re.MULTILINE)[0] == "New"
    assert "Reused, TLSv1.2" in r.output, r.output


# -- truststore ------------------------------------------------------------------------------
@pytest.fixture
def truststore_injected() -> Iterator[None]:
    truststore.inject_into_ssl()
    try:
        yield
    finally:
        truststore.extract_from_ssl()


@pytest.mark.asyncio
@pytest.mark.usefixtures("truststore_injected")
async def test_truststore_injected_contexts_still_restricted(pki: PKI) -> None:
    srv = server_context(TLSSettings(certfile=pki.server_cert, keyfile=pki.server_key))
    cli = client_context(TLSSettings(ca_file=pki.ca))
    assert describe_context(srv)["groups"] == describe_context(cli)["groups"] == ALLOWED
    async with running_server(server_settings(pki)) as server:
        r = await s_client(server.port, "-CAfile", str(pki.ca), "-tls1_3", "-groups", "ffdhe2048")
        assert "alert handshake failure" in r.output, r.output
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            assert conn.group == "X25519"
        wrapped = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # truststore's class now
        with pytest.raises(ConfigError, match=r"truststore\._api\.SSLContext\) cannot be restr"):
            await connect("127.0.0.1", server.port, client_settings(pki), ssl_context=wrapped)


# -- context reuse and blocking work ---------------------------------------------------------
@pytest.mark.asyncio
async def test_connect_reuses_one_context(pki: PKI) -> None:
    settings = client_settings(pki)
    async with running_server(server_settings(pki)) as server:
        seen = []
        for _ in range(2):
            async with connect("127.0.0.1", server.port, settings) as conn:
                seen.append(conn._pump.context)
        other = client_settings(pki, tls={"groups": ["P-256"]})
        async with connect("127.0.0.1", server.port, other) as conn:
            seen.append(conn._pump.context)
    assert seen[0] is seen[1]
    assert seen[2] is not seen[0]


@pytest.mark.asyncio
async def test_dev_certificate_prepared_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the dev-certificate lock: the loop must keep running meanwhile."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "ecdhe_async"
    cache.mkdir(mode=0o700)
    fd = os.open(cache / ".dev-cert.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    release = threading.Event()

    def holder() -> None:  # releases when told, or after 5 s should the loop be stuck
        release.wait(5)
        os.close(fd)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        task = asyncio.create_task(prepare_server(ServerSettings.load(port=0)))
        started = time.monotonic()
        for _ in range(5):  # the task starts, takes the lock (or blocks the loop on it)
            await asyncio.sleep(0)
        stuck_for = time.monotonic() - started
        assert not task.done()
        release.set()
        server = await asyncio.wait_for(task, T)
    finally:
        release.set()
        thread.join(T)
    assert stuck_for < 1.0, f"the event loop was blocked for {stuck_for:.1f}s"
    assert server.settings.tls.certfile == cache / "dev-cert.pem"
