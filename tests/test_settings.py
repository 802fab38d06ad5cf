"""Settings: source precedence, one-line errors per field, secrets never shown, the samples."""

from __future__ import annotations

import logging
import os
import re
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ecdhe_async import (
    ClientSettings,
    ConfigError,
    ServerSettings,
    TLSSettings,
    client_context,
    describe_context,
    server_context,
)
from ecdhe_async.certs import create_self_signed_cert
from ecdhe_async.cli import main

from .conftest import PKI

ROOT = Path(__file__).resolve().parent.parent
SERVER_SAMPLE = ROOT / "config" / "server.toml"
CLIENT_SAMPLE = ROOT / "config" / "client.toml"

PLANTED = "pl4nted-S3CRET-pw"  # the real password of the encrypted key
WRONG = "wr0ng-S3CRET-guess"  # a wrong one; must never be echoed either
ALLOWED = (
    "allowed: X25519, X448, P-256, P-384, P-521 "
    "(aliases prime256v1, secp256r1, secp384r1, secp521r1)"
)


@dataclass(frozen=True)
class EncryptedPair:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory: pytest.TempPathFactory) -> EncryptedPair:
    d = tmp_path_factory.mktemp("encrypted")
    cert, key = create_self_signed_cert(d / "enc.pem", d / "enc-key.pem", key_password=PLANTED)
    return EncryptedPair(cert, key)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def config_error(cls: type[ServerSettings | ClientSettings], **kwargs: Any) -> list[str]:
    """The lines of the ConfigError that loading raises."""
    with pytest.raises(ConfigError) as info:
        cls.load(**kwargs)
    return str(info.value).splitlines()


def build_error(tls: dict[str, Any], *, client: bool = False) -> list[str]:
    """The lines of the ConfigError raised where the files are used: building the context.

    Settings are pure data, so loading them succeeds without opening any file.
    """
    settings = (ClientSettings if client else ServerSettings).load(tls=tls)
    build = client_context if client else server_context
    with pytest.raises(ConfigError) as info:
        build(settings.tls)
    return str(info.value).splitlines()


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records)


# -- precedence ------------------------------------------------------------------------------
def test_defaults() -> None:
    s = ServerSettings.load()
    assert (s.host, s.port, s.handler, s.loop) == ("127.0.0.1", 8443, "echo", "auto")
    assert s.tls.groups == ["X25519", "P-256", "P-384"]
    assert s.tls.profile == "intermediate"
    assert s.tls.session_tickets is False
    assert s.tls.client_auth == "none"
    assert s.tls.keylog_file is None
    assert s.tls.allow_keylog is False
    c = ClientSettings.load()
    assert (c.connect_timeout, c.handshake_timeout, c.server_hostname) == (10.0, 10.0, None)
    assert c.tls.insecure_skip_verify is False
    assert c.tls.groups == ["X25519", "P-256", "P-384"]


def test_precedence_defaults_toml_env_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = write(
        tmp_path / "server.toml",
        'port = 1000\nhost = "0.0.0.0"\n[tls]\ngroups = ["P-384"]\nprofile = "modern"\n',
    )
    s = ServerSettings.load(config=toml)  # TOML over defaults
    assert (s.port, s.host, s.tls.groups, s.tls.profile) == (1000, "0.0.0.0", ["P-384"], "modern")
    assert s.handler == "echo"  # untouched keys keep their defaults

    monkeypatch.setenv("ECDHE_ASYNC_PORT", "2000")
    monkeypatch.setenv("ECDHE_ASYNC_TLS__GROUPS", '["X25519","P-256"]')
    s = ServerSettings.load(config=toml)  # env over TOML, nested tables merged
    assert (s.port, s.host, s.tls.groups, s.tls.profile) == (
        2000,
        "0.0.0.0",
        ["X25519", "P-256"],
        "modern",
    )

    s = ServerSettings.load(config=toml, port=3000, tls={"profile": "intermediate"})
    assert (s.port, s.host, s.tls.groups, s.tls.profile) == (
        3000,
        "0.0.0.0",
        ["X25519", "P-256"],
        "intermediate",
    )

    # None means "not given" (a CLI flag left out), so it does not mask lower sources.
    assert ServerSettings.load(config=toml, port=None).port == 2000


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_toml = write(tmp_path / "env.toml", "port = 1111\n")
    arg_toml = write(tmp_path / "arg.toml", "port = 2222\n")
    monkeypatch.setenv("ECDHE_ASYNC_CONFIG", str(env_toml))
    assert ServerSettings.load().port == 1111
    assert ServerSettings.load(config=arg_toml).port == 2222  # an explicit file wins
    # Clients have their own variables: the server's file and values never leak into them.
    monkeypatch.setenv("ECDHE_ASYNC_TLS__GROUPS", "P-521")
    assert ClientSettings.load().tls.groups == ["X25519", "P-256", "P-384"]
    client_toml = write(tmp_path / "client.toml", "connect_timeout = 3.5\n")
    monkeypatch.setenv("ECDHE_ASYNC_CLIENT_CONFIG", str(client_toml))
    monkeypatch.setenv("ECDHE_ASYNC_CLIENT_TLS__GROUPS", "P-384")
    c = ClientSettings.load()
    assert (c.connect_timeout, c.tls.groups) == (3.5, ["P-384"])


@pytest.mark.parametrize(
    ("value", "groups"),
    [
        ('["X25519","P-256"]', ["X25519", "P-256"]),
        ("X448,P-521", ["X448", "P-521"]),
        ("secp384r1:prime256v1", ["P-384", "P-256"]),  # OpenSSL habit and aliases
    ],
)
def test_groups_from_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, groups: list[str]
) -> None:
    monkeypatch.setenv("ECDHE_ASYNC_TLS__GROUPS", value)
    assert ServerSettings.load().tls.groups == groups


# -- errors: one line per bad field, naming the field, the value and what is allowed ---------
def test_bad_group() -> None:
    assert config_error(ServerSettings, tls={"groups": ["X25519", "ffdhe2048"]}) == [
        "invalid setting tls.groups=['X25519', 'ffdhe2048']: unknown or disallowed key-exchange "
        f"group 'ffdhe2048'; {ALLOWED}"
    ]


def test_bad_group_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECDHE_ASYNC_TLS__GROUPS", "X25519,ffdhe2048")
    assert config_error(ServerSettings) == [
        "invalid setting tls.groups='X25519,ffdhe2048' (from ECDHE_ASYNC_TLS__GROUPS): unknown "
        f"or disallowed key-exchange group 'ffdhe2048'; {ALLOWED}"
    ]


def test_groups_not_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECDHE_ASYNC_TLS__GROUPS", '["X25519",')
    assert config_error(ServerSettings) == [
        "invalid setting tls.groups='[\"X25519\",' (from ECDHE_ASYNC_TLS__GROUPS): not a JSON "
        "list: '[\"X25519\",' (use a list or 'A,B,C')"
    ]


def test_empty_groups() -> None:
    assert config_error(ServerSettings, tls={"groups": []}) == [
        "invalid setting tls.groups=[]: List should have at least 1 item after validation, not 0"
    ]


def test_bad_profile() -> None:
    assert config_error(ServerSettings, tls={"profile": "old"}) == [
        "invalid setting tls.profile='old': Input should be 'intermediate' or 'modern'"
    ]


def test_port_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_error(ServerSettings, port=70000) == [
        "invalid setting port=70000: Input should be less than or equal to 65535"
    ]
    monkeypatch.setenv("ECDHE_ASYNC_PORT", "http")
    assert config_error(ServerSettings) == [
        "invalid setting port='http' (from ECDHE_ASYNC_PORT): Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_several_bad_fields_one_line_each(tmp_path: Path) -> None:
    assert config_error(
        ServerSettings,
        port=-1,
        loop="trio",
        tls={"profile": "x", "client_auth": "maybe", "groups": "ffdhe3072"},
    ) == [
        "invalid setting port=-1: Input should be greater than or equal to 0",
        "invalid setting loop='trio': Input should be 'auto', 'asyncio' or 'uvloop'",
        "invalid setting tls.profile='x': Input should be 'intermediate' or 'modern'",
        "invalid setting tls.groups='ffdhe3072': unknown or disallowed key-exchange group "
        f"'ffdhe3072'; {ALLOWED}",
        "invalid setting tls.client_auth='maybe': Input should be 'none', 'optional' or 'required'",
    ]


def test_missing_cert_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    expected = [
        f"invalid setting tls.certfile='{missing}': file '{missing}' does not exist or is not a "
        "regular file"
    ]
    assert build_error({"certfile": missing}) == expected
    assert build_error({"certfile": missing}, client=True) == expected


def test_missing_cert_and_key_one_line_each(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    assert build_error({"certfile": cert, "keyfile": key}) == [
        f"invalid setting tls.certfile='{cert}': file '{cert}' does not exist or is not a "
        "regular file",
        f"invalid setting tls.keyfile='{key}': file '{key}' does not exist or is not a "
        "regular file",
    ]


def test_missing_ca_file(pki: PKI, tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    expected = [
        f"invalid setting tls.ca_file='{missing}': file '{missing}' does not exist or is not a "
        "regular file"
    ]
    assert build_error({"ca_file": missing}, client=True) == expected
    server = {"certfile": pki.server_cert, "keyfile": pki.server_key, "client_auth": "optional"}
    assert build_error({**server, "ca_file": missing}) == expected


def test_cert_path_is_a_directory(tmp_path: Path) -> None:
    assert build_error({"certfile": tmp_path}) == [
        f"invalid setting tls.certfile='{tmp_path}': file '{tmp_path}' does not exist or is not "
        "a regular file"
    ]


def test_settings_are_data_and_open_no_file(tmp_path: Path) -> None:
    """Loading settings names files without reading them (they may not exist yet)."""
    cert, key, ca = tmp_path / "later.pem", tmp_path / "later-key.pem", tmp_path / "ca.pem"
    s = ServerSettings.load(
        tls={"certfile": cert, "keyfile": key, "ca_file": ca, "client_auth": "required"}
    )
    assert (s.tls.certfile, s.tls.keyfile, s.tls.ca_file) == (cert, key, ca)
    home = Path("~").expanduser()
    assert TLSSettings(certfile=Path("~/c.pem")).certfile == home / "c.pem"


def _as_nobody(fn: Callable[[], list[str]]) -> list[str]:
    """Run *fn* in a forked child that dropped root to ``nobody`` (root reads chmod-000 files)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, "\n".join(fn()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out.splitlines()


def test_unreadable_cert_file(pki: PKI) -> None:
    # A world-traversable directory, so that the unprivileged child can reach the file.
    directory = Path(tempfile.mkdtemp(prefix="ecdhe-async-unreadable-"))
    try:
        directory.chmod(0o755)
        cert = directory / "server.pem"
        shutil.copy(pki.server_cert, cert)
        cert.chmod(0)

        def check() -> list[str]:
            return build_error({"certfile": cert})

        lines = _as_nobody(check) if os.geteuid() == 0 else check()
        assert lines == [
            f"invalid setting tls.certfile='{cert}': file '{cert}' is not readable by this user"
        ]
    finally:
        shutil.rmtree(directory)


def test_cert_file_without_a_certificate(pki: PKI) -> None:
    assert build_error({"certfile": pki.ca.parent / "ca-key.pem"}) == [
        f"invalid setting tls.certfile='{pki.ca.parent / 'ca-key.pem'}': certificate file "
        f"'{pki.ca.parent / 'ca-key.pem'}' does not contain a valid certificate"
    ]


def test_key_does_not_match_certificate(pki: PKI) -> None:
    expected = [
        f"invalid setting tls.keyfile='{pki.rsa_key}': the private key does not match the "
        f"certificate in '{pki.server_cert}'"
    ]
    tls = {"certfile": pki.server_cert, "keyfile": pki.rsa_key}
    assert build_error(tls) == expected
    assert build_error({**tls, "ca_file": pki.ca}, client=True) == expected


def test_serve_names_the_key_that_does_not_match(
    pki: PKI, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI user sees the same one line, now raised where the context is built."""
    argv = ["serve", "--port", "0", "--certfile", str(pki.server_cert)]
    assert main([*argv, "--keyfile", str(pki.client_key)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ecdhe-async: invalid setting tls.keyfile='{pki.client_key}': the private key does not "
        f"match the certificate in '{pki.server_cert}'"
    ]


def test_keyfile_without_certfile(pki: PKI) -> None:
    assert config_error(ServerSettings, tls={"keyfile": pki.server_key}) == [
        "invalid setting tls.certfile=None: keyfile is set but certfile is not: set both"
    ]


def test_client_auth_needs_ca_file(pki: PKI) -> None:
    tls = {"certfile": pki.server_cert, "keyfile": pki.server_key, "client_auth": "required"}
    assert config_error(ServerSettings, tls=tls) == [
        "invalid setting tls.ca_file=None: client_auth='required' needs ca_file (the CAs client "
        "certificates must chain to)"
    ]


def test_encrypted_key(encrypted: EncryptedPair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pair = {"certfile": encrypted.cert, "keyfile": encrypted.key}
    assert build_error({**pair, "key_password": WRONG}) == [
        "invalid setting tls.key_password='**********': wrong password for key file "
        f"'{encrypted.key}' (or the key is corrupted)"
    ]
    # Refused, never an OpenSSL password prompt on the terminal.
    assert build_error(pair) == [
        f"invalid setting tls.key_password=None: key file '{encrypted.key}' is encrypted: a "
        "password is required: give it with `ecdhe-async serve --key-password-env VAR` (VAR holds "
        "the password), the ECDHE_ASYNC_TLS__KEY_PASSWORD environment variable, or "
        "tls.key_password in the config file"
    ]
    s = ServerSettings.load(tls={**pair, "key_password": PLANTED})
    assert s.tls.key_password is not None
    assert s.tls.key_password.get_secret_value() == PLANTED
    assert server_context(s.tls).verify_mode == ssl.CERT_NONE  # loads with the password
    for text in (repr(s), str(s), repr(s.tls), s.model_dump_json(), all_log_text(caplog)):
        assert PLANTED not in text
        assert WRONG not in text
    assert "**********" in repr(s)


def test_key_password_never_shown(
    encrypted: EncryptedPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Planted in every source, next to other bad values: never in a message, repr or log."""
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    pair = {"certfile": encrypted.cert, "keyfile": encrypted.key}
    # kwargs, with another bad field in the same table
    messages += config_error(ServerSettings, tls={**pair, "key_password": WRONG, "profile": "x"})
    # wrong type for the password itself
    messages += config_error(ServerSettings, tls={**pair, "key_password": [WRONG]})
    # a table of the wrong shape around the password
    messages += config_error(ServerSettings, tls=[{"key_password": WRONG}])
    # environment: a whole JSON table, and the nested variable
    monkeypatch.setenv("ECDHE_ASYNC_TLS", f'{{"key_password": "{WRONG}", "profile": "y"}}')
    messages += config_error(ServerSettings)
    monkeypatch.delenv("ECDHE_ASYNC_TLS")
    monkeypatch.setenv("ECDHE_ASYNC_TLS__KEY_PASSWORD", WRONG)
    messages += build_error(pair)
    monkeypatch.setenv("ECDHE_ASYNC_TLS__KEY_PASSWORD", PLANTED)
    s = ServerSettings.load(tls=pair)
    server_context(s.tls)
    monkeypatch.delenv("ECDHE_ASYNC_TLS__KEY_PASSWORD")
    # a TOML file with the password and a typo next to it
    toml = write(
        tmp_path / "pw.toml",
        f'[tls]\ncertfile = "{encrypted.cert}"\nkeyfile = "{encrypted.key}"\n'
        f'key_password = "{WRONG}"\nkey_pasword = "{WRONG}"\n',
    )
    messages += config_error(ServerSettings, config=toml)
    # the same file without the typo: loads, and the wrong password is named at build time
    toml.write_text("\n".join(toml.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ConfigError) as info:
        server_context(ServerSettings.load(config=toml).tls)
    messages.append(str(info.value))
    wrong_password = (
        "invalid setting tls.key_password='**********': wrong password for key file "
        f"'{encrypted.key}' (or the key is corrupted)"
    )
    assert messages == [
        "invalid setting tls.profile='x': Input should be 'intermediate' or 'modern'",
        "invalid setting tls.key_password='**********': Input should be a valid string",
        "invalid setting tls: Input should be a valid dictionary or instance of TLSSettings",
        "invalid setting tls.profile='y' (from ECDHE_ASYNC_TLS): Input should be 'intermediate' "
        "or 'modern'",
        wrong_password,
        f"invalid setting tls.key_pasword (in {toml}): unknown setting; did you mean "
        "'key_password'?",
        wrong_password,
    ]
    text = "\n".join([*messages, repr(s), str(s), all_log_text(caplog)])
    assert WRONG not in text
    assert PLANTED not in text


# -- TOML files ------------------------------------------------------------------------------
def test_unknown_toml_keys(tmp_path: Path) -> None:
    toml = write(tmp_path / "typo.toml", 'prot = 8443\n[tls]\ngrups = ["X25519"]\n')
    assert sorted(config_error(ServerSettings, config=toml)) == [
        f"invalid setting prot (in {toml}): unknown setting; did you mean 'port'?",
        f"invalid setting tls.grups (in {toml}): unknown setting; did you mean 'groups'?",
    ]
    assert config_error(ServerSettings, bogus=1) == [
        "invalid setting bogus: unknown setting; check the spelling"
    ]


def test_invalid_toml_syntax(tmp_path: Path) -> None:
    toml = write(tmp_path / "bad.toml", "port = \n")
    (line,) = config_error(ServerSettings, config=toml)
    assert line.startswith(f"invalid setting config: '{toml}' is not valid TOML: ")
    assert "line 1" in line


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.toml"
    assert config_error(ServerSettings, config=missing) == [
        f"invalid setting config: file '{missing}' does not exist"
    ]
    monkeypatch.setenv("ECDHE_ASYNC_CLIENT_CONFIG", str(missing))
    assert config_error(ClientSettings) == [
        f"invalid setting config: file '{missing}' does not exist"
    ]


def test_bad_value_in_toml(tmp_path: Path) -> None:
    toml = write(tmp_path / "v.toml", 'port = 70000\n[tls]\ngroups = ["ffdhe2048"]\n')
    assert config_error(ServerSettings, config=toml) == [
        f"invalid setting port=70000 (in {toml}): Input should be less than or equal to 65535",
        f"invalid setting tls.groups=['ffdhe2048'] (in {toml}): unknown or disallowed "
        f"key-exchange group 'ffdhe2048'; {ALLOWED}",
    ]


# -- private key permissions -----------------------------------------------------------------
def test_world_readable_key_warns(
    pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "key.pem"
    shutil.copy(pki.server_key, key)
    key.chmod(0o600)
    tls = ServerSettings.load(tls={"certfile": pki.server_cert, "keyfile": key}).tls
    with caplog.at_level(logging.WARNING, logger="ecdhe_async.tls"):
        server_context(tls)
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        key.chmod(0o644)
        server_context(tls)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "ecdhe_async.tls"
    assert warnings[0].getMessage() == (
        f"private key file '{key}' is readable by other users: chmod 600 it"
    )


# -- the documented samples ------------------------------------------------------------------
def _sections(text: str) -> dict[str, set[str]]:
    """Keys per table (``""`` = top level), commented-out ``# key = value`` lines included."""
    sections: dict[str, set[str]] = {"": set()}
    current = ""
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]\s*", line):
            current = m.group(1)
            sections.setdefault(current, set())
        elif m := re.fullmatch(r"#?\s*([a-z_][a-z0-9_]*)\s*=\s*\S.*", line):
            sections[current].add(m.group(1))
    return sections


def _field_names(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


@pytest.mark.parametrize(
    ("sample", "cls"), [(SERVER_SAMPLE, ServerSettings), (CLIENT_SAMPLE, ClientSettings)]
)
def test_sample_config_loads_and_documents_every_key(
    sample: Path, cls: type[ServerSettings | ClientSettings]
) -> None:
    loaded = cls.load(config=sample)
    # The active lines restate the defaults, so the documented defaults cannot drift either.
    assert loaded.model_dump() == cls.load().model_dump()
    sections = _sections(sample.read_text())
    assert set(sections) == {"", "tls"}
    assert sections[""] == _field_names(cls) - {"tls"}
    assert sections["tls"] == _field_names(TLSSettings)


def test_sample_commented_paths_are_valid_keys(pki: PKI, tmp_path: Path) -> None:
    """Uncommenting the sample's path lines (pointed at real files) gives a loadable config."""
    text = SERVER_SAMPLE.read_text()
    real = {
        "certfile": pki.server_cert,
        "keyfile": pki.server_key,
        "ca_file": pki.ca,
        "keylog_file": tmp_path / "keys.log",
    }
    for key, path in real.items():
        text, n = re.subn(rf"(?m)^# {key} = \".*\"$", f'{key} = "{path}"', text)
        assert n == 1, key
    s = ServerSettings.load(config=write(tmp_path / "server.toml", text))
    assert s.tls.certfile == pki.server_cert
    assert describe_context(server_context(s.tls))["keylog_file"] == str(tmp_path / "keys.log")
    assert s.tls.keylog_file == tmp_path / "keys.log"
