"""What still surprised a new user after the first-hour fixes: each is one clear line now."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecdhe_async.cli import main

from .conftest import PKI


def test_empty_alpn_list_is_refused_not_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    # ",," used to become "no ALPN" without a word.
    assert main(["connect", "localhost", "8443", "--alpn", ",,"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "tls.alpn" in err
    assert "names nothing" in err


def test_certificate_without_its_key_names_the_keyfile_option(
    capsys: pytest.CaptureFixture[str], pki: PKI
) -> None:
    assert main(["serve", "--port", "0", "--certfile", str(pki.server_cert)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "does not contain a PEM private key" in err
    assert "--keyfile" in err


@pytest.mark.parametrize("command", ["serve", "connect"])
def test_serve_and_connect_help_show_examples(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"  ecdhe-async {command} " in out  # indented, kept as written
    if command == "connect":
        assert "server host name or address" in out
        assert "server TCP port" in out


def test_cert_output_says_none_for_an_empty_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["cert", "ca", "--out", "ca.crt", "--key-out", "ca.key"]) == 0
    sans = [
        line.split(None, 1)[1:]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("sans ")
    ]
    assert sans == [["(none)"]]
