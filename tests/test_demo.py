"""The guide's functions (ecdhe_async.guide), called with the guide's own arguments; the demo."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import ecdhe_async
from ecdhe_async import HandshakeError, certs, ecdhe, groups, guide
from ecdhe_async.errors import ConfigError
from ecdhe_async.guide import (
    create_self_signed_cert,
    demonstrate_basic_ecdhe,
    demonstrate_tls_with_ecdhe,
    explain_ecdhe_in_tls,
    run_tls_client,
    run_tls_server,
)
from ecdhe_async.guide.basic_ecdhe import demonstrate_mitm
from ecdhe_async.guide.demo import demo_main
from ecdhe_async.guide.explain import explain_text
from ecdhe_async.guide.tls_demo import TLSClientResult

ROOT = Path(__file__).resolve().parents[1]
HEADINGS = (
    "1. Basic ECDHE key exchange",
    "2. TLS with ECDHE key exchange",
    "3. How ECDHE works in TLS",
)
GUIDE_NAMES = (
    "demonstrate_basic_ecdhe",
    "create_self_signed_cert",
    "run_tls_server",
    "run_tls_client",
    "demonstrate_tls_with_ecdhe",
    "explain_ecdhe_in_tls",
)
TIMEOUT = 10


@contextlib.asynccontextmanager
async def tls_server(*args: Any, **kwargs: Any) -> AsyncIterator[tuple[str, int]]:
    """``run_tls_server(*args)`` as a task; yields its bound address; cancels it (bounded)."""
    ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_tls_server(*args, ready=ready, **kwargs))
    try:
        yield await asyncio.wait_for(ready, TIMEOUT)
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=TIMEOUT)
        assert task in done, "run_tls_server did not stop after cancellation"
        assert task.cancelled()


@pytest.fixture
def guide_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp working directory holding the guide's ``server.crt`` / ``server.key``."""
    monkeypatch.chdir(tmp_path)
    create_self_signed_cert("server.crt", "server.key")
    return tmp_path


# --- the guide's functions, with the guide's arguments ------------------------------------------


def test_guide_functions_exported_at_top_level() -> None:
    assert sorted(guide.__all__) == sorted(GUIDE_NAMES)
    for name in GUIDE_NAMES:
        assert getattr(ecdhe_async, name, None) is getattr(guide, name), name
        assert name in ecdhe_async.__all__, name
    assert create_self_signed_cert is certs.create_self_signed_cert  # re-exported, not copied


@pytest.mark.asyncio
async def test_run_tls_server_and_client(guide_dir: Path) -> None:
    assert (guide_dir / "server.crt").is_file()
    async with tls_server("127.0.0.1", 0, "server.crt", "server.key") as (host, port):
        assert host == "127.0.0.1"
        assert port > 0
        result = await run_tls_client("127.0.0.1", port, ca_file="server.crt")
        custom = await run_tls_client(
            "127.0.0.1", port, b"second message", ca_file="server.crt", server_hostname="localhost"
        )
    assert isinstance(result, TLSClientResult)
    assert result.reply == b"Hello, ECDHE!"
    assert custom.reply == b"second message"
    assert result.group in groups.ALLOWED
    assert result.forward_secret
    assert result.version == "TLSv1.3"
    assert result.cipher is not None
    assert result.cipher.startswith("TLS_")
    assert result.peer_subject == "commonName=localhost"


@pytest.mark.asyncio
async def test_run_tls_client_verifies_by_default(guide_dir: Path) -> None:
    async with tls_server("127.0.0.1", 0, "server.crt", "server.key") as (_, port):
        # The guide's bare run_tls_client(host, port): the system store does not trust it.
        with pytest.raises(HandshakeError, match="certificate verify failed"):
            await run_tls_client("127.0.0.1", port)
        with pytest.raises(HandshakeError, match=r"match|mismatch"):
            await run_tls_client("127.0.0.1", port, ca_file="server.crt", server_hostname="a.test")


@pytest.mark.asyncio
async def test_run_tls_server_reports_startup_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_tls_server("127.0.0.1", 0, "missing.crt", "missing.key", ready=ready)
    )
    with pytest.raises(ConfigError, match=r"missing\.crt"):
        await asyncio.wait_for(ready, TIMEOUT)
    with pytest.raises(ConfigError):
        await asyncio.wait_for(task, TIMEOUT)


@pytest.mark.asyncio
async def test_run_tls_server_cancelled_before_ready(guide_dir: Path) -> None:
    ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_tls_server("127.0.0.1", 0, "server.crt", "server.key", ready=ready)
    )
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait({task}, timeout=TIMEOUT)
    assert task.cancelled()
    assert ready.cancelled()  # a waiter on *ready* is released, not left hanging


@pytest.mark.asyncio
async def test_demonstrate_basic_ecdhe() -> None:
    key = await demonstrate_basic_ecdhe()
    again = await demonstrate_basic_ecdhe()
    assert isinstance(key, bytes)
    assert len(key) == 32
    assert len(again) == 32
    assert key != again  # fresh ephemeral keys every time


@pytest.mark.asyncio
@pytest.mark.parametrize("curve", ["X448", "P-256", "P-521"])
async def test_demonstrate_basic_ecdhe_other_curves(curve: ecdhe.Curve) -> None:
    assert len(await demonstrate_basic_ecdhe(curve)) == 32


@pytest.mark.asyncio
async def test_basic_ecdhe_parties_agree_and_use_loopback_tcp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both tasks run ecdhe.exchange over a real TCP connection and derive the returned key."""
    real = ecdhe.exchange
    seen: list[tuple[bool, Any, ecdhe.ExchangeResult]] = []

    async def spy(reader: Any, writer: Any, **kwargs: Any) -> ecdhe.ExchangeResult:
        result = await real(reader, writer, **kwargs)
        seen.append((kwargs["initiator"], writer.get_extra_info("peername"), result))
        return result

    monkeypatch.setattr(ecdhe, "exchange", spy)
    key = await demonstrate_basic_ecdhe()
    assert sorted(initiator for initiator, _, _ in seen) == [False, True]
    assert all(peer[0] == "127.0.0.1" for _, peer, _ in seen)
    assert all(result.key == key for _, _, result in seen)
    assert all(not result.authenticated for _, _, result in seen)


@pytest.mark.asyncio
async def test_demonstrate_tls_with_ecdhe_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**kwargs: Any) -> str:
        path: str = real_mkdtemp(**kwargs)
        created.append(Path(path))
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    result = await demonstrate_tls_with_ecdhe()
    assert result.client.reply == result.message == b"Hello, ECDHE!"
    assert result.forward_secret
    assert result.client.group in groups.ALLOWED
    assert result.certificate.key_type == "ECDSA P-256"
    assert result.address[0] == "127.0.0.1"
    assert len(created) == 1
    assert not created[0].exists()  # the temporary certificate and key are gone


def test_explain_ecdhe_in_tls() -> None:
    text = explain_ecdhe_in_tls()
    assert text == explain_text()
    for step in ("ClientHello", "key_share", "ServerHello", "CertificateVerify", "Finished"):
        assert step in text


@pytest.mark.parametrize(
    ("group", "forward_secret"),
    [
        ("X25519", True),
        ("P-384", True),
        ("ffdhe2048", False),  # finite-field DH: what our contexts refuse
        ("X25519MLKEM768", False),  # a hybrid, not (only) elliptic-curve DH
        ("no-such-group", False),
        (None, False),  # no handshake facts
    ],
)
def test_forward_secret_reads_the_group_registry(group: str | None, forward_secret: bool) -> None:
    result = TLSClientResult(b"", "TLSv1.3", "TLS_AES_128_GCM_SHA256", group, None, 0.0)
    assert result.forward_secret is forward_secret


# --- the man in the middle -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_mitm_unauthenticated_succeeds_authenticated_detects() -> None:
    result = await demonstrate_mitm()
    # Unauthenticated: both sides complete, with different keys, both known to Mallory.
    assert result.unauthenticated_alice_fingerprint != result.unauthenticated_bob_fingerprint
    assert result.mallory_knows_alice_key
    assert result.mallory_knows_bob_key
    # Authenticated: both sides refuse.
    assert result.authenticated_detected
    for error in (result.alice_error, result.bob_error):
        assert error is not None
        assert "man in the middle" in error
    # Fingerprints and messages only: no key material is kept.
    assert not any(isinstance(getattr(result, f.name), bytes) for f in dataclasses.fields(result))


@pytest.mark.asyncio
async def test_mitm_on_p384() -> None:
    result = await demonstrate_mitm("P-384")
    assert result.mallory_knows_alice_key
    assert result.mallory_knows_bob_key
    assert result.authenticated_detected


# --- the demo's output ---------------------------------------------------------------------------


def encodings(secret: bytes) -> Iterable[str]:
    """Common ways a secret could leak into text."""
    yield secret.hex()
    yield secret.hex().upper()
    yield secret.hex(":")
    yield secret[:8].hex()  # even a prefix
    yield base64.b64encode(secret).decode().rstrip("=")
    yield base64.urlsafe_b64encode(secret).decode().rstrip("=")
    yield repr(secret)[2:-1]
    yield str(int.from_bytes(secret, "big"))


def assert_absent(secrets: Iterable[bytes], output: str) -> None:
    for secret in secrets:
        for form in encodings(secret):
            assert form not in output, f"secret material leaked into the output as {form!r}"


def private_material(key: Any) -> list[bytes]:
    """The secret part of a private key (scalar or raw form) and its whole PKCS#8 DER."""
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    numbers = getattr(key, "private_numbers", None)
    if numbers is not None:  # EC: the private scalar
        value = numbers().private_value
        return [value.to_bytes((value.bit_length() + 7) // 8, "big"), pkcs8]
    return [key.private_bytes_raw(), pkcs8]  # X25519 / X448


def assert_headings(output: str) -> None:
    positions = [
        output.find(f"\n{h}\n") if i else output.find(f"{h}\n") for i, h in enumerate(HEADINGS)
    ]
    assert all(p >= 0 for p in positions), positions
    assert positions == sorted(positions)


@pytest.mark.asyncio
async def test_demo_main_shows_live_values_never_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plant markers: record every derived key and private key, then look for them in the text."""
    derived: list[bytes] = []
    private_keys: list[Any] = []
    from ecdhe_async.ecdhe import agreement, protocol  # where derive_key and keygen are called

    real_derive, real_generate = ecdhe.derive_key, agreement._generate_private_key
    real_cert_key = certs.generate_private_key

    def derive_key(*args: Any, **kwargs: Any) -> bytes:
        key = real_derive(*args, **kwargs)
        derived.append(key)
        return key

    def generate(curve: ecdhe.Curve) -> Any:
        key = real_generate(curve)
        private_keys.append(key)
        return key

    def cert_key(*args: Any, **kwargs: Any) -> Any:
        key = real_cert_key(*args, **kwargs)
        private_keys.append(key)
        return key

    monkeypatch.setattr(protocol, "derive_key", derive_key)
    monkeypatch.setattr(agreement, "_generate_private_key", generate)
    monkeypatch.setattr(certs.issue, "generate_private_key", cert_key)
    out = io.StringIO()
    await demo_main(out)
    output = out.getvalue()

    assert_headings(output)
    # Live values in each section.
    assert re.search(r"curve\s+X25519", output)
    assert re.search(r"Alice's public key\s+32 bytes", output)
    assert re.search(r"P-521\s+133-byte public key", output)
    assert re.search(r"derived key\s+32 bytes, fp ([0-9a-f]{2}:){7}[0-9a-f]{2}", output)
    assert re.search(r"version\s+TLSv1\.3", output)
    assert re.search(r"cipher suite\s+TLS_", output)
    assert re.search(r"key exchange\s+ECDHE on X25519", output)
    assert re.search(r"chosen group\s+X25519", output)
    assert re.search(r"ServerKeyExchange\s+curve X25519", output)
    # The MITM part.
    assert "holds both keys: yes" in output
    assert "man in the middle" in output
    # The planted markers: the demo did derive keys and make private keys, and shows none.
    assert len(derived) >= 2 * (2 + len(ecdhe.CURVES)) + 4
    assert len(private_keys) >= len(derived) + 2  # + the two temporary certificates' keys
    assert_absent(derived, output)
    assert_absent([m for key in private_keys for m in private_material(key)], output)
    assert "PRIVATE KEY" not in output
    assert any(ecdhe.fingerprint(key) in output for key in derived)  # fingerprints only
    assert not re.search(r"\x1b\[", output)  # not a terminal: no colour


def run_python(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    env.pop("SSLKEYLOGFILE", None)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )


def assert_demo_output(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert_headings(proc.stdout)
    assert re.search(r"key exchange\s+ECDHE on (X25519|X448|P-256|P-384|P-521)\b", proc.stdout)
    assert "Traceback" not in proc.stderr
    assert "PRIVATE KEY" not in proc.stdout


def test_python_m_ecdhe_async_demo_subprocess() -> None:
    assert_demo_output(run_python("-m", "ecdhe_async", "demo"))


# Runs ``python -m ecdhe_async demo`` exactly as -m does (runpy), after planting a recorder on
# the exchange's derive_key that writes every derived key to a file the test then reads.
_PLANTED = """
import runpy, sys
from ecdhe_async.ecdhe import protocol
real, marker = protocol.derive_key, sys.argv[1]
def derive_key(*args, **kwargs):
    key = real(*args, **kwargs)
    with open(marker, "a") as fh:
        fh.write(key.hex() + "\\n")
    return key
protocol.derive_key = derive_key
sys.argv = ["ecdhe_async", "demo"]
runpy.run_module("ecdhe_async", run_name="__main__", alter_sys=True)
"""


def test_python_m_ecdhe_async_demo_subprocess_leaks_no_derived_key(tmp_path: Path) -> None:
    marker = tmp_path / "derived-keys.txt"
    proc = run_python("-c", _PLANTED, str(marker))
    assert_demo_output(proc)
    keys = [bytes.fromhex(line) for line in marker.read_text().split()]
    assert len(keys) >= 10
    assert_absent(keys, proc.stdout + proc.stderr)


def test_example_script_runs_as_is() -> None:
    assert_demo_output(run_python(str(ROOT / "examples" / "ecdhe_tls.py")))
