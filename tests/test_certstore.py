"""SNI certificate selection and rotation without restart (keep-last-good), with real peers."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecdhe_async.certs import DevCA, describe_certificate
from ecdhe_async.certstore import CertStore
from ecdhe_async.client import connect
from ecdhe_async.connection import Connection
from ecdhe_async.errors import ConfigError
from ecdhe_async.events import CertificateReloaded
from ecdhe_async.settings import ServerSettings

from .conftest import (
    OPENSSL,
    PKI,
    client_settings,
    run_peer,
    running_server,
    s_client,
    server_settings,
)
from .eventwatch import EventWatch
from .netutil import LiveEcho, log_watch


@dataclass(frozen=True)
class Names:
    """Certificates for several names, all issued by the test CA."""

    api_ec: tuple[Path, Path]
    api_rsa: tuple[Path, Path]
    wild: tuple[Path, Path]
    special: tuple[Path, Path]


@pytest.fixture(scope="module")
def names(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Names:
    d = tmp_path_factory.mktemp("sni")
    ca = DevCA.load(pki.ca, pki.dir / "ca-key.pem")

    def issue(stem: str, hosts: list[str], key_type: str = "ec-p256") -> tuple[Path, Path]:
        return ca.issue_server_cert(
            d / f"{stem}.pem",
            d / f"{stem}-key.pem",
            hostnames=hosts,
            common_name=stem,
            key_type=key_type,  # type: ignore[arg-type]
        )

    return Names(
        api_ec=issue("api-ec", ["api.example.com"]),
        api_rsa=issue("api-rsa", ["api.example.com"], "rsa2048"),
        wild=issue("wild", ["*.apps.example.com"]),
        special=issue("special", ["special.apps.example.com"]),
    )


def sni_settings(pki: PKI, names: Names, **tls: object) -> ServerSettings:
    certificates = [
        {"certfile": c, "keyfile": k, "server_names": n}
        for (c, k), n in [
            (names.api_ec, ["api.example.com"]),
            (names.api_rsa, ["api.example.com"]),
            (names.wild, ["*.apps.example.com"]),
            (names.special, ["special.apps.example.com"]),
        ]
    ]
    return server_settings(pki, tls={"certificates": certificates, **tls})


async def tell_name(conn: Connection) -> None:
    await conn.send(f"{conn.server_name}\n".encode())
    while data := await conn.read():
        await conn.send(data)


def subject_cn(output: str) -> str:
    match = re.search(r"^subject=.*?CN ?= ?([\w.-]+)", output, re.MULTILINE)
    assert match, output
    return match.group(1)


# -- selection --------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("sni", "cn"),
    [
        ("api.example.com", "api-ec"),
        ("API.Example.COM", "api-ec"),
        ("x.apps.example.com", "wild"),
        ("special.apps.example.com", "special"),  # exact before wildcard
        ("a.b.apps.example.com", "localhost"),  # a wildcard covers one label only
        ("unknown.example.org", "localhost"),  # the default
        ("localhost", "localhost"),
    ],
)
async def test_openssl_sees_the_certificate_for_each_name(
    pki: PKI, names: Names, sni: str, cn: str
) -> None:
    async with running_server(sni_settings(pki, names), tell_name) as server:
        result = await s_client(server.port, "-servername", sni, "-CAfile", str(pki.ca))
    assert subject_cn(result.output) == cn
    assert "Verify return code: 0" in result.output or cn == "localhost"


@pytest.mark.asyncio
@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
async def test_ecdsa_and_rsa_for_one_name(pki: PKI, names: Names, version: str) -> None:
    """Both chains in one context: ECDSA for clients that offer it, RSA for the others."""
    rsa_only = "rsa_pss_rsae_sha256:RSA+SHA256"
    async with running_server(sni_settings(pki, names), tell_name) as server:
        both = await s_client(server.port, version, "-servername", "api.example.com")
        rsa = await s_client(
            server.port, version, "-servername", "api.example.com", "-sigalgs", rsa_only
        )
    assert subject_cn(both.output) == "api-ec"
    assert subject_cn(rsa.output) == "api-rsa"


@pytest.mark.asyncio
async def test_sni_strict_refuses_unknown_names(pki: PKI, names: Names) -> None:
    async with running_server(sni_settings(pki, names, sni_strict=True), tell_name) as server:
        refused = await s_client(server.port, "-servername", "unknown.example.org")
        known = await s_client(server.port, "-servername", "x.apps.example.com")
        assert OPENSSL
        no_sni = await run_peer(
            OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.port}", "-noservername"
        )
    assert refused.returncode != 0
    assert "unrecognized name" in refused.output
    assert subject_cn(known.output) == "wild"
    assert subject_cn(no_sni.output) == "localhost"  # no name at all: the default


@pytest.mark.asyncio
async def test_our_client_and_connection_server_name(pki: PKI, names: Names) -> None:
    async with running_server(sni_settings(pki, names), tell_name) as server:
        for sni, cn in [("x.apps.example.com", "wild"), ("api.example.com", "api-ec")]:
            async with connect(
                "127.0.0.1", server.port, client_settings(pki), server_hostname=sni
            ) as conn:
                assert conn.peer_subject == f"commonName={cn}"
                assert await asyncio.wait_for(conn.read(), 5) == f"{sni}\n".encode()


def test_conflicting_entries_are_config_errors(pki: PKI, names: Names) -> None:
    def entry(pair: tuple[Path, Path], *server_names: str) -> dict[str, object]:
        return {"certfile": pair[0], "keyfile": pair[1], "server_names": list(server_names)}

    overlap = server_settings(
        pki,
        tls={"certificates": [entry(names.wild, "a.b.c"), entry(names.special, "a.b.c", "x.y")]},
    )
    with pytest.raises(ConfigError, match=r"certificates\[1\].*'a.b.c' is also in"):
        CertStore(overlap.tls)
    two_ec = server_settings(
        pki, tls={"certificates": [entry(names.wild, "a.b.c"), entry(names.special, "a.b.c")]}
    )
    with pytest.raises(ConfigError, match="a second ECDSA certificate"):
        CertStore(two_ec.tls)
    mismatch = server_settings(
        pki, tls={"certificates": [entry((names.wild[0], names.special[1]), "a.b.c")]}
    )
    with pytest.raises(ConfigError, match=r"certificates\[0\].*does not match"):
        CertStore(mismatch.tls)
    with pytest.raises(ConfigError, match="server name"):
        server_settings(pki, tls={"certificates": [entry(names.wild, "*.*.x.y")]})


# -- rotation ---------------------------------------------------------------------------------


def serial_of(conn: Connection) -> int:
    assert conn.tls.peer_cert is not None
    return int(str(conn.tls.peer_cert["serialNumber"]), 16)


def file_serial(path: Path) -> int:
    return int(describe_certificate(path).serial_number, 16)


@pytest.fixture
def live_pair(pki: PKI, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the server certificate that a test may rotate."""
    cert, key = tmp_path / "live.pem", tmp_path / "live-key.pem"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    os.chmod(key, 0o600)
    return cert, key


async def echo(conn: Connection) -> None:
    while data := await conn.read():
        await conn.send(data)


@pytest.mark.asyncio
async def test_rotate_under_load(pki: PKI, live_pair: tuple[Path, Path]) -> None:
    cert, key = live_pair
    old = file_serial(cert)
    ca = DevCA.load(pki.ca, pki.dir / "ca-key.pem")
    settings = server_settings(pki, tls={"certfile": cert, "keyfile": key})
    csettings = client_settings(pki)
    async with running_server(settings, echo) as server:
        before = await connect("127.0.0.1", server.port, csettings)
        live = LiveEcho(before)
        await live.started()
        seen: list[int] = []
        failures: list[BaseException] = []
        stop = asyncio.Event()
        tick = asyncio.Event()

        async def progress(count: int) -> None:
            while len(seen) < count:  # woken by each handshake, bounded by a deadline
                tick.clear()
                await asyncio.wait_for(tick.wait(), 10)

        async def hammer() -> None:
            deadline = time.monotonic() + 20
            for _ in range(5000):  # bounded in count and time; stopped long before
                if stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    async with connect("127.0.0.1", server.port, csettings) as conn:
                        seen.append(serial_of(conn))
                        tick.set()
                except (OSError, ssl.SSLError, TimeoutError) as exc:
                    failures.append(exc)

        loops = [asyncio.create_task(hammer()) for _ in range(4)]
        try:
            await progress(20)  # the load is running
            with log_watch("ecdhe_async.certs") as logs:
                await asyncio.to_thread(
                    ca.issue_server_cert, cert, key, common_name="rotated", overwrite=True
                )
                assert await asyncio.to_thread(server.reload)
                new = file_serial(cert)
                assert logs.matching(f"serial {new:X}", logging.INFO)
            mark = len(seen)
            await progress(mark + 20)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*loops), 30)
        verified = await live.finish()
        assert serial_of(before) == old  # the connection from before still runs on the old cert
        await before.close()
    assert not failures, failures[:3]
    assert verified > 0
    assert old in seen
    # After reload() every new handshake gets the new certificate; only the handshakes already in
    # flight (at most one per client loop) may still finish with the old one.
    assert set(seen[mark:]) <= {old, new}
    assert seen[mark:].count(old) <= len(loops)
    assert seen[mark:].count(new) >= 20 - len(loops)


@pytest.mark.asyncio
async def test_broken_pem_keeps_last_good(pki: PKI, live_pair: tuple[Path, Path]) -> None:
    cert, key = live_pair
    old = file_serial(cert)
    settings = server_settings(pki, tls={"certfile": cert, "keyfile": key})
    async with running_server(settings, echo) as server:
        text = cert.read_bytes()
        cert.write_bytes(text[: len(text) // 2])  # half-written
        with log_watch("ecdhe_async.certs") as logs:
            assert not await asyncio.to_thread(server.reload)
            (error,) = logs.matching("certificate reload failed", logging.ERROR)
        assert str(cert) in error.getMessage()
        assert "does not contain a valid certificate" in error.getMessage()
        async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
            assert serial_of(conn) == old
        result = await s_client(server.port, "-CAfile", str(pki.ca))
        assert "Verify return code: 0" in result.output
        # a key that does not match: also rejected, naming the key file
        cert.write_bytes(text)
        shutil.copy(pki.rsa_key, key)
        with log_watch("ecdhe_async.certs") as logs:
            assert not await asyncio.to_thread(server.reload)
            (error,) = logs.matching("certificate reload failed", logging.ERROR)
        assert f"private key in '{key}' does not match" in error.getMessage()


def k8s_secret(root: Path, version: str, cert: Path, key: Path) -> None:
    """Project a secret like the kubelet: ..<ts>/files, ..data -> ..<ts> swapped atomically."""
    target = root / f"..{version}"
    target.mkdir()
    shutil.copy(cert, target / "tls.crt")
    shutil.copy(key, target / "tls.key")
    tmp = root / "..data_tmp"
    tmp.symlink_to(target.name)
    os.replace(tmp, root / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (root / name).is_symlink():
            (root / name).symlink_to(f"..data/{name}")


@pytest.mark.asyncio
async def test_kubernetes_symlink_swap_is_picked_up(pki: PKI, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    k8s_secret(secret, "2026_01", pki.server_cert, pki.server_key)
    ca = DevCA.load(pki.ca, pki.dir / "ca-key.pem")
    new_cert, new_key = ca.issue_server_cert(tmp_path / "n.pem", tmp_path / "n-key.pem")
    settings = server_settings(
        pki,
        tls={"certfile": secret / "tls.crt", "keyfile": secret / "tls.key"},
        cert_check_interval=0.05,
    )
    with log_watch("ecdhe_async.certs") as logs:
        async with running_server(settings, echo) as server:
            events = EventWatch(server)
            k8s_secret(secret, "2026_02", pki.server_cert, pki.server_key)
            await logs.wait("contents unchanged: no reload")  # same bytes, new target (no event)
            k8s_secret(secret, "2026_03", new_cert, new_key)
            (reloaded,) = await events.wait(CertificateReloaded)
            assert reloaded.result == "ok"
            assert reloaded.certificates[0].serial == describe_certificate(new_cert).serial_number
            async with connect("127.0.0.1", server.port, client_settings(pki)) as conn:
                assert serial_of(conn) == file_serial(new_cert)
    assert len(logs.matching("certificate files changed")) == 1


@pytest.mark.asyncio
async def test_watch_reports_a_broken_file_once_then_recovers(
    pki: PKI, live_pair: tuple[Path, Path]
) -> None:
    cert, key = live_pair
    good = cert.read_bytes()
    settings = server_settings(
        pki, tls={"certfile": cert, "keyfile": key}, cert_check_interval=0.05
    )
    with log_watch("ecdhe_async.certs") as logs:
        async with running_server(settings, echo) as server:
            events = EventWatch(server)
            cert.write_bytes(good[:100])
            await events.wait(CertificateReloaded, pred=lambda e: e.result == "error")
            checks = len(logs.matching("certificate check: no change"))
            await logs.wait("certificate check: no change", count=checks + 3)
            assert len(logs.matching("certificate reload failed")) == 1  # reported once
            assert len(events.of(CertificateReloaded)) == 1
            cert.write_bytes(good[:200])
            await events.wait(CertificateReloaded, count=2)
            cert.write_bytes(good + b"\n")
            await events.wait(CertificateReloaded, pred=lambda e: e.result == "ok")
    assert len(logs.matching("certificate reload failed")) == 2


def test_certificates_from_toml(pki: PKI, names: Names, tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        f"""
[tls]
certfile = "{pki.server_cert}"
keyfile = "{pki.server_key}"
sni_strict = true

[[tls.certificates]]
certfile = "{names.wild[0]}"
keyfile = "{names.wild[1]}"
server_names = ["*.Apps.Example.com."]

[[tls.certificates]]
certfile = "{names.special[0]}"
keyfile = "{names.special[1]}"
server_names = ["special.apps.example.com"]
"""
    )
    settings = ServerSettings.load(config)
    assert [c.server_names for c in settings.tls.certificates] == [
        ["*.apps.example.com"],
        ["special.apps.example.com"],
    ]
    store = CertStore(settings.tls)
    assert [c.subject for c in store.certificates] == ["CN=localhost", "CN=wild", "CN=special"]
    assert store.lookup("x.apps.example.com") is not store.lookup("special.apps.example.com")
    assert store.lookup("unknown.example.org") is None  # sni_strict
    assert store.lookup(None) is not None


def test_sni_callback_only_when_there_is_a_choice(
    pki: PKI, names: Names, live_pair: tuple[Path, Path]
) -> None:
    cert, key = live_pair
    single = CertStore(server_settings(pki, tls={"certfile": cert, "keyfile": key}).tls)
    assert single.context.sni_callback is None  # one certificate: no Python per ClientHello
    assert single.lookup("anything.example.org") is single.context
    assert single.reload()  # the reloaded default is a new context: chosen by the callback
    assert single.context.sni_callback is not None
    assert single.lookup(None) is not single.context
    assert CertStore(sni_settings(pki, names).tls).context.sni_callback is not None
    strict = server_settings(pki, tls={"sni_strict": True}).tls
    assert CertStore(strict).context.sni_callback is not None
