"""`ecdhe-async cert`, `demo --help`, `explain --help` as a newcomer runs them: real subprocesses.

Issue 11 points 4 (never overwrite a key or certificate without --force) and 7 (help that
teaches: a description, an example that works, defaults shown; `cert client --hostname` works).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ecdhe_async.certs import describe_certificate, load_certificate

ECDHE_ASYNC = [sys.executable, "-m", "ecdhe_async"]
OPENSSL = shutil.which("openssl")
TIMEOUT = 60  # seconds per subprocess; key generation plus interpreter start-up
CERT_KINDS = ("self-signed", "ca", "server", "client")


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line (bounded), capturing its output."""
    return subprocess.run(
        [*ECDHE_ASYNC, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def ok(*args: str, cwd: Path) -> str:
    res = run(*args, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return res.stdout


def openssl_verify(purpose: str, cert: str, *, cwd: Path) -> None:
    """A real peer's opinion: OpenSSL verifies *cert* against ca.crt for *purpose*."""
    assert OPENSSL is not None, "openssl binary is required (apt-get install -y openssl)"
    cmd = [OPENSSL, "verify", "-x509_strict", "-purpose", purpose, "-CAfile", "ca.crt", cert]
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    """A working directory holding a development CA made by `cert ca` (ca.crt, ca.key)."""
    ok("cert", "ca", cwd=tmp_path)
    return tmp_path


def cert_args(kind: str) -> list[str]:
    return ["cert", kind] + (
        ["--ca", "ca.crt", "--ca-key", "ca.key"] if kind in CERT_KINDS[2:] else []
    )


def default_names(kind: str) -> tuple[str, str]:
    stem = "server" if kind == "self-signed" else kind
    return f"{stem}.crt", f"{stem}.key"


# --- point 4: never overwrite without --force -------------------------------------------------


@pytest.mark.parametrize("kind", CERT_KINDS)
def test_cert_refuses_to_overwrite_then_force_replaces(ca_dir: Path, kind: str) -> None:
    crt, key = default_names(kind)
    if kind != "ca":
        ok(*cert_args(kind), cwd=ca_dir)
    before = files(ca_dir)

    again = run(*cert_args(kind), cwd=ca_dir)
    assert again.returncode == 1
    lines = again.stderr.strip().splitlines()
    refusal = f"'{key}' already exists; refusing to overwrite it (pass --force to replace it)"
    assert lines == [f"ecdhe-async: {refusal}"]
    assert again.stdout == ""
    assert files(ca_dir) == before  # not a byte changed, no temporary file left

    forced = run(*cert_args(kind), "--force", cwd=ca_dir)
    assert forced.returncode == 0, forced.stderr
    after = files(ca_dir)
    assert after[key] != before[key]
    assert after[crt] != before[crt]
    assert (ca_dir / key).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("existing", ["crt", "key"])
def test_cert_checks_both_files_before_writing_either(ca_dir: Path, existing: str) -> None:
    """One file of the pair exists: refused by name, and the other one is not written."""
    target = ca_dir / f"api.{existing}"
    target.write_text("keep me\n")
    res = run(*cert_args("server"), "--out", "api.crt", "--key-out", "api.key", cwd=ca_dir)
    assert res.returncode == 1
    assert f"'api.{existing}' already exists" in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert target.read_text() == "keep me\n"
    other = "key" if existing == "crt" else "crt"
    assert not (ca_dir / f"api.{other}").exists()


def test_cert_ca_twice_keeps_issued_certificates_verifiable(ca_dir: Path) -> None:
    """The reported failure: a second `cert ca` replaced ca.key and orphaned every leaf."""
    ok(*cert_args("server"), cwd=ca_dir)
    assert run("cert", "ca", cwd=ca_dir).returncode == 1
    openssl_verify("sslserver", "server.crt", cwd=ca_dir)


# --- point 7: `cert client --hostname` works ----------------------------------------------------


def test_cert_client_hostname_becomes_a_san(ca_dir: Path) -> None:
    out = ok(*cert_args("client"), "--common-name", "bob", "--hostname", "bob.example", cwd=ca_dir)
    assert re.search(r"sans\s+DNS:bob\.example$", out, re.MULTILINE)
    info = describe_certificate(ca_dir / "client.crt")
    assert info.subject == "CN=bob"
    assert info.sans == ("DNS:bob.example",)
    eku = load_certificate(ca_dir / "client.crt").extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    )
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    openssl_verify("sslclient", "client.crt", cwd=ca_dir)


def test_cert_client_without_hostname_has_no_san(ca_dir: Path) -> None:
    ok(*cert_args("client"), cwd=ca_dir)
    info = describe_certificate(ca_dir / "client.crt")
    assert info.sans == ()
    assert info.subject == "CN=ecdhe_async dev client"


def test_cert_bad_hostname_is_one_line(ca_dir: Path) -> None:
    res = run(*cert_args("client"), "--hostname", "not a host", cwd=ca_dir)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "ecdhe-async: CertificateError: invalid hostname for a certificate: 'not a host'"
    ]
    assert not (ca_dir / "client.key").exists()


# --- point 7: help that teaches ------------------------------------------------------------------


def help_text(*command: str, cwd: Path) -> str:
    env = dict(os.environ, COLUMNS="100")
    res = run(*command, "--help", cwd=cwd, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout


def examples(text: str) -> list[list[str]]:
    """The command lines of the help's example section, as argument lists."""
    section = text.split("\nexample", 1)[1].split("\n", 1)[1]
    return [shlex.split(line) for line in section.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "command", [("cert",), *(("cert", kind) for kind in CERT_KINDS), ("demo",), ("explain",)]
)
def test_every_command_has_a_description_an_example_and_defaults(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    text = help_text(*command, cwd=tmp_path)
    description = text.split("\n\n")[1]
    assert len(description.split()) >= 8, f"no description for {command}: {text}"
    cmds = examples(text)
    assert cmds, text
    assert all(cmd[0] == "ecdhe-async" for cmd in cmds)
    assert any(cmd[1 : 1 + len(command)] == list(command) for cmd in cmds), cmds
    if command[0] in ("demo", "explain"):
        assert "(default: auto)" in text
    if len(command) == 2:
        kind = command[1]
        crt, key = default_names(kind)
        for shown in (crt, key, "ec-p256", "3650" if kind == "ca" else "365"):
            assert f"(default: {shown})" in re.sub(r"\s+", " ", text), (shown, text)
        assert "--force" in text
        if kind != "ca":
            assert "--hostname" in text
            flat = re.sub(r"\s+", " ", text)
            sans = "none" if kind == "client" else "localhost, 127.0.0.1, ::1"
            assert f"default: {sans})" in flat


def test_the_cert_help_example_runs_as_written(tmp_path: Path) -> None:
    """Copy the mTLS example out of `cert --help`, run it line by line: it builds a CA pair."""
    cmds = examples(help_text("cert", cwd=tmp_path))
    assert [cmd[:3] for cmd in cmds] == [
        ["ecdhe-async", "cert", "ca"],
        ["ecdhe-async", "cert", "server"],
        ["ecdhe-async", "cert", "client"],
    ]
    for cmd in cmds:
        ok(*cmd[1:], cwd=tmp_path)
    assert sorted(files(tmp_path)) == [
        "ca.crt",
        "ca.key",
        "client.crt",
        "client.key",
        "server.crt",
        "server.key",
    ]
    assert describe_certificate(tmp_path / "server.crt").sans == ("DNS:api.local",)
    assert describe_certificate(tmp_path / "client.crt").subject == "CN=alice"
