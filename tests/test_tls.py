"""ECDHE-only TLS against real OpenSSL peers (``openssl s_client`` / ``s_server``) on loopback.

Every refusal is checked from the peer's side: ``s_client`` must report that it CONNECTED, sent its
ClientHello and got the server's fatal alert back (``alert handshake failure`` = 40, ``alert
protocol version`` = 70), and our server must count exactly one failed handshake. A test that
passes because ``s_client`` refused to start would fail those checks.

Success paths run ``s_client -ign_eof`` against a one-shot handler (record the connection's TLS
facts, echo one chunk, close with close_notify): ``s_client`` reads up to the close, so every
post-handshake message (e.g. TLS 1.3 session tickets) has been printed when it exits. No sleeps:
each step waits for the previous one's result, with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecdhe_async import (
    ClientSettings,
    ConfigError,
    Connection,
    HandshakeError,
    TLSInfo,
    TLSSettings,
    client_context,
    connect,
    describe_context,
    server_context,
)
from ecdhe_async._openssl import negotiated_group
from ecdhe_async.groups import ALLOWED as ALLOWED_GROUPS
from ecdhe_async.settings import ClientAuth
from ecdhe_async.tls import TLS12_CIPHERS

from .conftest import (
    PKI,
    Result,
    client_settings,
    running_server,
    s_client,
    s_server,
    server_settings,
)

T = 10.0  # seconds: the bound on every wait for a peer

# What `s_client` prints as "Server Temp Key" for each group.
TEMP_KEY = {
    "X25519": "X25519, 253 bits",
    "X448": "X448, 448 bits",
    "P-256": "ECDH, prime256v1, 256 bits",
    "P-384": "ECDH, secp384r1, 384 bits",
    "P-521": "ECDH, secp521r1, 521 bits",
}
# What `s_server` prints as the client's "Supported groups" for each group.
OPENSSL_GROUP = {
    "X25519": "x25519",
    "X448": "x448",
    "P-256": "secp256r1",
    "P-384": "secp384r1",
    "P-521": "secp521r1",
}
ALERT_NUMBER = {"handshake failure": 40, "protocol version": 70}
TLS13_SUITES = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}


# -- helpers ---------------------------------------------------------------------------------
class Recorder:
    """Handler: remember each connection's TLS facts, echo one chunk, then close."""

    def __init__(self) -> None:
        self.seen: asyncio.Queue[TLSInfo] = asyncio.Queue()

    async def __call__(self, conn: Connection) -> None:
        self.seen.put_nowait(conn.tls)
        data = await conn.read()
        if data:
            await conn.send(data)

    async def next(self) -> TLSInfo:
        return await asyncio.wait_for(self.seen.get(), T)


def ecdsa(pki: PKI) -> dict[str, Any]:
    return {"certfile": pki.server_cert, "keyfile": pki.server_key}


def rsa(pki: PKI) -> dict[str, Any]:
    return {"certfile": pki.rsa_cert, "keyfile": pki.rsa_key}


async def probe(pki: PKI, port: int, *args: str, refused: bool = False) -> Result:
    """``s_client`` verifying against the test CA.

    Expected to succeed: send ``hi``, then read until the server closes (``-ign_eof``).
    Expected to be *refused*: send nothing and quit at once should the handshake succeed after
    all, so that a broken guarantee fails fast instead of waiting for the deadline.
    """
    ca = ("-CAfile", str(pki.ca))
    if refused:
        return await s_client(port, *ca, *args, deadline=T)
    return await s_client(port, "-ign_eof", *ca, *args, stdin=b"hi\n", deadline=T)


def temp_key(output: str) -> str:
    match = re.search(r"^Server Temp Key: (.+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1).strip()


def assert_established(r: Result, version: str, cipher: str | None = None) -> None:
    assert r.returncode == 0, r.output
    match = re.search(r"^New, (TLSv1\.[0-3]), Cipher is (\S+)$", r.output, re.MULTILINE)
    assert match, r.output
    assert match.group(1) == version, r.output
    if cipher is not None:
        assert match.group(2) == cipher, r.output
    assert "Verification: OK" in r.output, r.output
    assert "\nhi\n" in r.output, r.output  # our handler echoed application data


def assert_refused_by_server(r: Result, alert: str, server_failures: int) -> None:
    """s_client connected, sent a ClientHello, and got the server's fatal *alert*."""
    assert r.returncode != 0, r.output
    assert "CONNECTED(" in r.output, r.output
    assert f"alert {alert}" in r.output, r.output
    assert f"SSL alert number {ALERT_NUMBER[alert]}" in r.output, r.output
    # All the client read was one alert record (5-byte header + 2-byte alert).
    assert "SSL handshake has read 7 bytes" in r.output, r.output
    assert "Cipher is (NONE)" in r.output, r.output
    assert server_failures == 1


async def server_output(proc: asyncio.subprocess.Process) -> str:
    """Everything ``s_server`` printed; it exits after its one connection (``-naccept 1``)."""
    out, _ = await asyncio.wait_for(proc.communicate(), T)
    return out.decode(errors="replace")


@contextlib.contextmanager
def warnings_from(caplog: pytest.LogCaptureFixture, logger: str) -> Iterator[list[str]]:
    messages: list[str] = []
    with caplog.at_level(logging.WARNING, logger=logger):
        caplog.clear()
        yield messages
        messages.extend(
            r.getMessage()
            for r in caplog.records
            if r.name == logger and r.levelno == logging.WARNING
        )


# -- TLS 1.3: groups -------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("group", "server_groups"),
    [
        ("X25519", None),  # None: the default group list
        ("P-256", None),
        ("P-384", None),
        ("X448", list(ALLOWED_GROUPS)),
        ("P-521", list(ALLOWED_GROUPS)),
    ],
)
async def test_tls13_each_allowed_group_alone(
    pki: PKI, group: str, server_groups: list[str] | None
) -> None:
    tls = {"groups": server_groups} if server_groups else {}
    recorder = Recorder()
    async with running_server(server_settings(pki, tls=tls), recorder) as server:
        r = await probe(pki, server.port, "-tls1_3", "-groups", group)
        info = await recorder.next()
    assert_established(r, "TLSv1.3")
    assert temp_key(r.output) == TEMP_KEY[group]
    assert info.group == group
    assert info.version == "TLSv1.3"
    assert info.server_name == "localhost"


@pytest.mark.asyncio
async def test_tls13_group_outside_configured_list_fails(pki: PKI) -> None:
    async with running_server(server_settings(pki, tls={"groups": ["X25519"]})) as server:
        r = await probe(pki, server.port, "-tls1_3", "-groups", "P-384", refused=True)
        assert_refused_by_server(r, "handshake failure", server.stats.handshake_failures)
        assert server.stats.handshakes == 0


@pytest.mark.asyncio
async def test_tls13_ffdhe_only_client_is_refused(pki: PKI) -> None:
    async with running_server(server_settings(pki)) as server:
        r = await probe(pki, server.port, "-tls1_3", "-groups", "ffdhe2048:ffdhe3072", refused=True)
        assert_refused_by_server(r, "handshake failure", server.stats.handshake_failures)
        assert server.stats.handshakes == 0
    assert "Server Temp Key" not in r.output


@pytest.mark.asyncio
async def test_stdlib_context_does_negotiate_ffdhe(pki: PKI) -> None:
    """Contrast: the same client against a stock stdlib server gets finite-field DH."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    assert describe_context(ctx)["groups"] is None  # not ours: OpenSSL defaults in force
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[str | None] = loop.create_future()
    finished: asyncio.Future[None] = loop.create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.set_result(negotiated_group(writer.get_extra_info("ssl_object")))
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), T)
        finally:
            finished.set_result(None)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        port = server.sockets[0].getsockname()[1]
        # -ign_eof: s_client stays until the handler (which runs after the server's handshake
        # completed) closes, so the server never sees a client that vanished mid-handshake.
        r = await s_client(
            port, "-ign_eof", "-CAfile", str(pki.ca), "-tls1_3", "-groups", "ffdhe2048:ffdhe3072"
        )
        assert await asyncio.wait_for(seen, T) == "ffdhe2048"
        await asyncio.wait_for(finished, T)
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)
    assert r.returncode == 0, r.output
    assert temp_key(r.output) == "DH, 2048 bits"
    assert "New, TLSv1.3, Cipher is " in r.output


# -- TLS 1.2 and older -----------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("cert", "args", "alert"),
    [
        pytest.param(
            "rsa",
            ["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
            "handshake failure",
            id="rsa-key-transport",
        ),
        pytest.param(
            "rsa",
            ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"],
            "handshake failure",
            id="dhe",
        ),
        pytest.param(
            "ecdsa",
            ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA"],
            "handshake failure",
            id="cbc-ecdsa",
        ),
        pytest.param(
            "rsa",
            ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA"],
            "handshake failure",
            id="cbc-rsa",
        ),
        pytest.param(
            "ecdsa", ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], "protocol version", id="tls1.1"
        ),
        pytest.param(
            "ecdsa", ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"], "protocol version", id="tls1.0"
        ),
    ],
)
async def test_tls12_non_ecdhe_and_old_versions_refused(
    pki: PKI, cert: str, args: list[str], alert: str
) -> None:
    tls = rsa(pki) if cert == "rsa" else ecdsa(pki)
    async with running_server(server_settings(pki, tls=tls)) as server:
        r = await probe(pki, server.port, *args, refused=True)
        assert_refused_by_server(r, alert, server.stats.handshake_failures)
        assert server.stats.handshakes == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("cert", "suite"),
    [
        ("ecdsa", "ECDHE-ECDSA-AES128-GCM-SHA256"),
        ("ecdsa", "ECDHE-ECDSA-CHACHA20-POLY1305"),
        ("rsa", "ECDHE-RSA-AES128-GCM-SHA256"),
        ("rsa", "ECDHE-RSA-AES256-GCM-SHA384"),
    ],
)
async def test_tls12_ecdhe_accepted(pki: PKI, cert: str, suite: str) -> None:
    tls = rsa(pki) if cert == "rsa" else ecdsa(pki)
    recorder = Recorder()
    async with running_server(server_settings(pki, tls=tls), recorder) as server:
        r = await probe(pki, server.port, "-tls1_2", "-cipher", suite)
        info = await recorder.next()
    assert_established(r, "TLSv1.2", suite)
    assert temp_key(r.output) == TEMP_KEY["X25519"]
    assert (info.version, info.cipher, info.group) == ("TLSv1.2", suite, "X25519")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("profile", "version", "accepted"),
    [
        ("modern", "-tls1_2", False),
        ("modern", "-tls1_3", True),
        ("intermediate", "-tls1_2", True),
    ],
)
async def test_profiles(pki: PKI, profile: str, version: str, accepted: bool) -> None:
    recorder = Recorder()
    async with running_server(server_settings(pki, tls={"profile": profile}), recorder) as server:
        r = await probe(pki, server.port, version, refused=not accepted)
        if accepted:
            info = await recorder.next()
            assert_established(r, "TLSv1.3" if version == "-tls1_3" else "TLSv1.2")
            assert info.group == "X25519"
        else:
            assert_refused_by_server(r, "protocol version", server.stats.handshake_failures)


# -- session tickets -------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
@pytest.mark.parametrize("tickets", [False, True])
async def test_session_tickets(pki: PKI, version: str, tickets: bool) -> None:
    recorder = Recorder()
    settings = server_settings(pki, tls={"session_tickets": tickets})
    async with running_server(settings, recorder) as server:
        r = await probe(pki, server.port, version)
        await recorder.next()
    # s_client read through to our close_notify (the echo arrived), so it printed every ticket.
    assert_established(r, "TLSv1.3" if version == "-tls1_3" else "TLSv1.2")
    issued = r.output.count("TLS session ticket:")
    post_handshake = r.output.count("Post-Handshake New Session Ticket arrived")
    if not tickets:
        assert (issued, post_handshake) == (0, 0), r.output
    elif version == "-tls1_3":
        assert post_handshake == issued == 2, r.output  # num_tickets = 2, OpenSSL's default
    else:
        assert issued == 1, r.output  # in the TLS 1.2 handshake itself
        assert "TLS session ticket lifetime hint" in r.output


@pytest.mark.asyncio
@pytest.mark.parametrize("tickets", [False, True])
async def test_no_session_id_resumption_by_default(pki: PKI, tickets: bool) -> None:
    """TLS 1.2 session-ID resumption would skip the ECDHE exchange: off unless opted in."""
    settings = server_settings(pki, tls={"session_tickets": tickets})
    async with running_server(settings) as server:
        r = await s_client(
            server.port, "-CAfile", str(pki.ca), "-tls1_2", "-no_ticket", "-reconnect"
        )
    handshakes = re.findall(r"^(New|Reused), TLSv1\.2", r.output, re.MULTILINE)
    assert len(handshakes) == 6, r.output  # -reconnect: one full handshake, then five tries
    if tickets:
        assert handshakes.count("Reused") == 5, r.output
    else:
        assert handshakes == ["New"] * 6, r.output


# -- ALPN and client certificates ------------------------------------------------------------
@pytest.mark.asyncio
async def test_alpn_negotiated_with_s_client(pki: PKI) -> None:
    recorder = Recorder()
    async with running_server(
        server_settings(pki, tls={"alpn": ["h2", "http/1.1"]}), recorder
    ) as server:
        r = await probe(pki, server.port, "-alpn", "spdy/1,http/1.1")
        info = await recorder.next()
    assert_established(r, "TLSv1.3")
    assert "ALPN protocol: http/1.1" in r.output
    assert info.alpn == "http/1.1"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("client_auth", "client", "outcome"),
    [
        ("required", "alice", "commonName=alice"),
        ("required", None, "alert certificate required"),
        ("required", "eve", "alert unknown ca"),  # a certificate from the rogue CA
        ("optional", None, None),
        ("optional", "alice", "commonName=alice"),
    ],
)
async def test_client_certificates(
    pki: PKI, client_auth: str, client: str | None, outcome: str | None
) -> None:
    tls = {"client_auth": client_auth, "ca_file": pki.ca}
    certs = {
        "alice": ["-cert", str(pki.client_cert), "-key", str(pki.client_key)],
        "eve": ["-cert", str(pki.other_client_cert), "-key", str(pki.other_client_key)],
    }
    recorder = Recorder()
    refused = outcome is not None and outcome.startswith("alert")
    async with running_server(server_settings(pki, tls=tls), recorder) as server:
        args = certs[client] if client else []
        if refused:
            # TLS 1.3: the client finishes first and gets the verdict as an alert afterwards, so
            # it must keep reading; it sends no data (the server would answer it with an RST).
            r = await s_client(server.port, "-ign_eof", "-CAfile", str(pki.ca), *args, deadline=T)
            assert r.returncode != 0, r.output
            assert outcome is not None
            assert outcome in r.output, r.output
            assert server.stats.handshake_failures == 1
            assert server.stats.handshakes == 0
            return
        r = await probe(pki, server.port, *args)
        info = await recorder.next()
    assert_established(r, "TLSv1.3")
    assert info.peer_subject == outcome


# -- our client against openssl s_server -----------------------------------------------------
async def roundtrip(conn: Connection) -> None:
    await conn.send(b"hello\n")
    assert await asyncio.wait_for(conn.readexactly(6), T) == b"olleh\n"  # s_server -rev


async def handshake_error(port: int, settings: ClientSettings, **kw: Any) -> HandshakeError:
    """The HandshakeError that connecting raises (fails the test if it connects)."""
    try:
        conn = await connect("127.0.0.1", port, settings, **kw)
    except HandshakeError as exc:
        return exc
    await conn.close()
    pytest.fail(f"the handshake succeeded: {conn!r}")


@pytest.mark.asyncio
@pytest.mark.parametrize("cert", ["ecdsa", "rsa"])
async def test_client_against_s_server(pki: PKI, cert: str) -> None:
    pair = rsa(pki) if cert == "rsa" else ecdsa(pki)
    async with s_server("-cert", str(pair["certfile"]), "-key", str(pair["keyfile"])) as (
        proc,
        port,
    ):
        async with connect("127.0.0.1", port, client_settings(pki)) as conn:
            assert (conn.version, conn.group) == ("TLSv1.3", "X25519")
            assert conn.cipher in TLS13_SUITES
            assert conn.peer_subject == "commonName=localhost"
            await roundtrip(conn)
        out = await server_output(proc)
    assert "CONNECTION ESTABLISHED" in out, out
    # Our client offered exactly the configured (default) groups: no ffdhe.
    assert "Supported groups: x25519:secp256r1:secp384r1\n" in out, out


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("groups", "offered", "negotiated"),
    [
        (["P-384"], "secp384r1", "P-384"),
        (["secp384r1", "prime256v1"], "secp384r1:secp256r1", "P-384"),
        (["X448"], "x448", "X448"),
        (["secp521r1"], "secp521r1", "P-521"),
    ],
)
async def test_client_groups_applied(
    pki: PKI, groups: list[str], offered: str, negotiated: str
) -> None:
    args = ("-cert", str(pki.server_cert), "-key", str(pki.server_key))
    async with s_server(*args) as (proc, port):
        settings = client_settings(pki, tls={"groups": groups})
        async with connect("127.0.0.1", port, settings) as conn:
            assert conn.group == negotiated
            await roundtrip(conn)
        out = await server_output(proc)
    assert f"Supported groups: {offered}\n" in out, out


@pytest.mark.asyncio
async def test_client_and_server_agree_on_group(pki: PKI) -> None:
    recorder = Recorder()
    async with running_server(
        server_settings(pki, tls={"groups": ["X448", "P-521"]}), recorder
    ) as s:
        settings = client_settings(pki, tls={"groups": ["P-521", "X448"]})
        async with connect("127.0.0.1", s.port, settings) as conn:
            await conn.send(b"x")
            assert await asyncio.wait_for(conn.readexactly(1), T) == b"x"
            info = await recorder.next()
            assert conn.group == info.group
            assert conn.group in {"X448", "P-521"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("server_args", "server_says"),
    [
        pytest.param(("-tls1_3", "-groups", "ffdhe2048"), "no suitable key share", id="ffdhe-only"),
        pytest.param(
            ("-tls1_2", "-cipher", "AES128-GCM-SHA256"),
            "no shared cipher",
            id="rsa-key-transport-only",
        ),
    ],
)
async def test_client_refuses_non_ecdhe_server(
    pki: PKI, server_args: tuple[str, ...], server_says: str
) -> None:
    args = ("-cert", str(pki.rsa_cert), "-key", str(pki.rsa_key), *server_args)
    async with s_server(*args) as (proc, port):
        error = await handshake_error(port, client_settings(pki))
        out = await server_output(proc)
    assert error.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    assert "handshake failure" in str(error)
    assert "CONNECTION FAILURE" in out, out
    assert server_says in out, out  # the server found nothing but ECDHE on offer


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("tls", "kwargs", "message", "alert"),
    [
        pytest.param(
            {"ca_file": "OTHER_CA"},
            {},
            "unable to get local issuer certificate",
            "alert unknown ca",
            id="untrusted-ca",
        ),
        pytest.param(
            {},
            {"server_hostname": "not-localhost.example"},
            "Hostname mismatch, certificate is not valid for 'not-localhost.example'",
            "alert bad certificate",
            id="wrong-hostname",
        ),
    ],
)
async def test_client_verifies_server(
    pki: PKI, tls: dict[str, object], kwargs: dict[str, str], message: str, alert: str
) -> None:
    tls = {k: (pki.other_ca if v == "OTHER_CA" else v) for k, v in tls.items()}
    args = ("-cert", str(pki.server_cert), "-key", str(pki.server_key))
    async with s_server(*args) as (proc, port):
        error = await handshake_error(port, client_settings(pki, tls=tls), **kwargs)
        out = await server_output(proc)
    assert error.reason == "CERTIFICATE_VERIFY_FAILED"
    assert message in str(error)
    assert alert in out, out  # our client told the server why (gh-98078 fixed)


@pytest.mark.asyncio
async def test_insecure_skip_verify_connects_anywhere(
    pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    args = ("-cert", str(pki.self_signed_cert), "-key", str(pki.self_signed_key))
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        settings = ClientSettings.load(tls={"insecure_skip_verify": True})
        async with s_server(*args) as (proc, port):
            async with connect("127.0.0.1", port, settings, server_hostname="anything") as conn:
                assert conn.group == "X25519"
                await roundtrip(conn)
            await server_output(proc)
    assert any("verification is OFF" in m for m in warned), warned


# -- key logging -----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_keylog_file_written(
    pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keylog = tmp_path / "keys.log"
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        settings = client_settings(pki, tls={"keylog_file": keylog})
        async with running_server(server_settings(pki)) as server:
            async with connect("127.0.0.1", server.port, settings) as conn:
                await conn.send(b"x")
                assert await asyncio.wait_for(conn.readexactly(1), T) == b"x"
    text = keylog.read_text()
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET " in text
    assert "CLIENT_TRAFFIC_SECRET_0 " in text
    assert stat.S_IMODE(keylog.stat().st_mode) == 0o600
    assert any("KEY LOGGING IS ON" in m and str(keylog) in m for m in warned), warned


def test_keylog_off_by_default_and_sslkeylogfile_needs_opt_in(
    pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env_file = tmp_path / "env-keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(env_file))
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        for ctx in (
            server_context(TLSSettings(**ecdsa(pki))),
            client_context(TLSSettings(ca_file=pki.ca)),
        ):
            assert ctx.keylog_filename is None
            assert describe_context(ctx)["keylog_file"] is None
    assert warned == []
    assert not env_file.exists()
    # The stdlib's default context would have honoured the variable silently.
    assert ssl.create_default_context().keylog_filename == str(env_file)
    env_file.unlink()

    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        ctx = client_context(TLSSettings(ca_file=pki.ca, allow_keylog=True))
    assert describe_context(ctx)["keylog_file"] == str(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert any("KEY LOGGING IS ON" in m for m in warned), warned


def test_keylog_file_unwritable_is_a_config_error(tmp_path: Path, pki: PKI) -> None:
    bad = tmp_path / "missing-dir" / "keys.log"
    with pytest.raises(ConfigError, match=r"tls\.keylog_file='.*keys\.log': cannot open"):
        client_context(TLSSettings(ca_file=pki.ca, keylog_file=bad))


def test_keylog_symlink_is_refused(tmp_path: Path, pki: PKI) -> None:
    target = tmp_path / "elsewhere.log"
    link = tmp_path / "keys.log"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match=r"keys\.log': it is a symbolic link; refused"):
        client_context(TLSSettings(ca_file=pki.ca, keylog_file=link))
    assert not target.exists()  # nothing was created through the link


def test_keylog_existing_world_readable_file_made_private(
    tmp_path: Path, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    keylog = tmp_path / "keys.log"
    keylog.write_text("")
    keylog.chmod(0o644)
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        client_context(TLSSettings(ca_file=pki.ca, keylog_file=keylog))
    assert stat.S_IMODE(keylog.stat().st_mode) == 0o600
    assert any("was readable by others (mode 0644): changed to 0600" in m for m in warned), warned


def test_keylog_not_a_regular_file_is_refused(pki: PKI) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        client_context(TLSSettings(ca_file=pki.ca, keylog_file=Path("/dev/null")))


# -- contexts and describe_context() ----------------------------------------------------------
def test_describe_server_defaults(pki: PKI) -> None:
    d = describe_context(server_context(TLSSettings(**ecdsa(pki))))
    assert d["minimum_version"] == "TLSv1.2"
    assert d["maximum_version"] == "TLSv1.3"
    assert d["tls12_ciphers"] == TLS12_CIPHERS.split(":")
    assert all(c.startswith("ECDHE-") for c in d["tls12_ciphers"])
    assert not any("CBC" in c or c.endswith("-SHA") for c in d["tls12_ciphers"])
    assert set(d["tls13_ciphers"]) == TLS13_SUITES
    assert d["groups"] == ["X25519", "P-256", "P-384"]
    assert d["session_tickets"] is False
    assert d["verify_mode"] == "CERT_NONE"
    assert d["alpn"] == []
    assert d["keylog_file"] is None


def test_describe_modern_and_options(pki: PKI) -> None:
    tls = TLSSettings(
        **ecdsa(pki), profile="modern", groups=["P-384", "X25519"], alpn=["h2", "http/1.1"]
    )
    ctx = server_context(tls)
    d = describe_context(ctx)
    assert (d["minimum_version"], d["maximum_version"]) == ("TLSv1.3", "TLSv1.3")
    assert d["tls12_ciphers"] == []
    assert set(d["tls13_ciphers"]) == TLS13_SUITES
    assert d["groups"] == ["P-384", "X25519"]
    assert d["alpn"] == ["h2", "http/1.1"]
    assert ctx.num_tickets == 0
    assert ctx.options & ssl.OP_NO_TICKET
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & ssl.OP_NO_RENEGOTIATION


def test_group_aliases_accepted_and_applied(pki: PKI) -> None:
    tls = TLSSettings(groups=["prime256v1", "secp384r1", "secp521r1", "x448", "P-256"])
    assert tls.groups == ["P-256", "P-384", "P-521", "X448"]  # canonical, repeats dropped
    assert describe_context(client_context(tls))["groups"] == ["P-256", "P-384", "P-521", "X448"]


def test_session_tickets_opt_in_warns(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        ctx = server_context(TLSSettings(**ecdsa(pki), session_tickets=True))
    assert describe_context(ctx)["session_tickets"] is True
    assert ctx.num_tickets == 2
    assert any("session tickets are ON" in m and "forward secrecy" in m for m in warned), warned
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        server_context(TLSSettings(**ecdsa(pki)))
    assert warned == []


def test_client_context_verifies_by_default(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        ctx = client_context(TLSSettings(ca_file=pki.ca))
        system = client_context(TLSSettings())  # system trust store
    assert warned == []
    for c in (ctx, system):
        assert c.verify_mode == ssl.CERT_REQUIRED
        assert c.check_hostname is True
        assert describe_context(c)["groups"] == ["X25519", "P-256", "P-384"]
    assert ctx.cert_store_stats()["x509_ca"] == 1  # the given CA only
    assert describe_context(ctx)["verify_mode"] == "CERT_REQUIRED"
    assert describe_context(ctx)["check_hostname"] is True


def test_insecure_skip_verify_warns_and_disables_checks(caplog: pytest.LogCaptureFixture) -> None:
    with warnings_from(caplog, "ecdhe_async.tls") as warned:
        ctx = client_context(TLSSettings(insecure_skip_verify=True))
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.check_hostname is False
    assert any("verification is OFF" in m for m in warned), warned
    # Nothing is verified, so the system store (~100 ms of parsing) is not loaded for nothing.
    assert ctx.cert_store_stats()["x509_ca"] == 0


@pytest.mark.parametrize(
    ("client_auth", "mode"),
    [("none", ssl.CERT_NONE), ("optional", ssl.CERT_OPTIONAL), ("required", ssl.CERT_REQUIRED)],
)
def test_client_auth_sets_verify_mode(
    pki: PKI, client_auth: ClientAuth, mode: ssl.VerifyMode
) -> None:
    ctx = server_context(TLSSettings(**ecdsa(pki), client_auth=client_auth, ca_file=pki.ca))
    assert ctx.verify_mode == mode
    if mode != ssl.CERT_NONE:
        assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "test CA"),),)]


def test_bad_ca_file_is_a_config_error(pki: PKI) -> None:
    # A readable file that holds no certificate (a private key): ConfigError, not ssl.SSLError.
    with pytest.raises(ConfigError, match=r"^invalid setting tls\.ca_file='.*': cannot load CA"):
        client_context(TLSSettings(ca_file=pki.server_key))
    with pytest.raises(ConfigError, match=r"^invalid setting tls\.ca_file='.*': cannot load CA"):
        server_context(TLSSettings(**ecdsa(pki), client_auth="required", ca_file=pki.server_key))


def test_server_context_needs_a_certificate() -> None:
    with pytest.raises(ConfigError, match=r"tls\.certfile=None: a server needs a certificate"):
        server_context(TLSSettings())


def test_no_ffdhe_setting_possible() -> None:
    with pytest.raises(ValueError, match="disallowed key-exchange group 'ffdhe2048'"):
        TLSSettings(groups=["X25519", "ffdhe2048"])
