"""Settings for servers and clients, from defaults, a TOML file, the environment and arguments.

Sources, lowest to highest precedence: field defaults < a TOML file (``config=`` / ``--config``, or
the ``ECDHE_ASYNC_CONFIG`` environment variable) < environment variables (``ECDHE_ASYNC_`` prefix,
``__`` between nested names, e.g. ``ECDHE_ASYNC_TLS__GROUPS='["X25519","P-256"]'``) < explicit
keyword arguments. Client settings use their own prefix, ``ECDHE_ASYNC_CLIENT_``, so that a
server's certificate in the environment never becomes a client certificate by accident.

Unknown keys are errors (``extra="forbid"``): a typo in a TOML file fails loudly instead of being
ignored. :meth:`ServerSettings.load` and :meth:`ClientSettings.load` turn every validation problem
into a :class:`~ecdhe_async.errors.ConfigError` whose message has one line per bad field, naming
the field, the value and what is allowed. Key passwords are :class:`~pydantic.SecretStr` and are
never echoed.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from contextvars import ContextVar
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from . import groups as _groups
from ._setting_errors import Origin, format_validation_error, unknown_env_vars
from .errors import ConfigError

__all__ = [
    "CertificateSettings",
    "ClientAuth",
    "ClientSettings",
    "LoopName",
    "Profile",
    "ServerSettings",
    "TLSSettings",
]

log = logging.getLogger("ecdhe_async.settings")

Profile = Literal["intermediate", "modern"]
ClientAuth = Literal["none", "optional", "required"]
LoopName = Literal["auto", "asyncio", "uvloop"]
LogLevel = Literal["debug", "info", "warning", "error"]

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
ProxyProtocol = Literal["off", "v1", "v2", "auto"]


class CertificateSettings(BaseModel):
    """One extra server certificate (``[[tls.certificates]]``), served for ``server_names``.

    Names are exact host names or one leading wildcard label (``*.example.com``). Files are
    checked where they are loaded (:mod:`ecdhe_async.certstore`), at start and on every reload.
    """

    model_config = ConfigDict(extra="forbid")

    certfile: Path
    keyfile: Path | None = None
    key_password: SecretStr | None = None
    server_names: list[str] = Field(min_length=1)

    @field_validator("server_names")
    @classmethod
    def _check_names(cls, value: list[str]) -> list[str]:
        names = [name.strip().lower().rstrip(".") for name in value]
        for name in names:
            label = name.removeprefix("*.")
            if not label or "*" in label or " " in label or "." not in name.strip("*."):
                raise ValueError(
                    f"server name {name!r}: use a host name or one leading wildcard "
                    "label, e.g. 'api.example.com' or '*.example.com'"
                )
        return list(dict.fromkeys(names))


class TLSSettings(BaseModel):
    """TLS options shared by servers and clients.

    For a server, ``certfile``/``keyfile`` are its certificate chain and key and ``ca_file`` the CAs
    that client certificates must chain to. For a client, ``certfile``/``keyfile`` are the optional
    client certificate (mTLS) and ``ca_file`` the CAs trusted for the server (default: the system
    store).

    Pure data, validated by type and range: the files are opened and checked (exist, parse, key
    matches certificate, password) once, where a context is built (:mod:`ecdhe_async.tls`).
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    certfile: Path | None = None
    keyfile: Path | None = None
    key_password: SecretStr | None = None
    ca_file: Path | None = None
    profile: Profile = "intermediate"
    groups: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(_groups.DEFAULT), min_length=1
    )
    client_auth: ClientAuth = "none"
    session_tickets: bool = False
    #: Where the server's TLS 1.2 session-ID cache cannot be switched off (no OpenSSL shim),
    #: TLS 1.2 is refused unless this accepts resumption without a fresh ECDHE exchange.
    allow_tls12_session_resumption: bool = False
    alpn: Annotated[list[str], NoDecode] = Field(default_factory=list)
    keylog_file: Path | None = None
    allow_keylog: bool = False
    insecure_skip_verify: bool = False
    certificates: list[CertificateSettings] = Field(default_factory=list)
    sni_strict: bool = False

    @field_validator("groups", "alpn", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        # Accept "X25519,P-256" and "X25519:P-256" (CLI flags, OpenSSL habit) besides lists.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    raise ValueError(f"not a JSON list: {text!r} (use a list or 'A,B,C')") from None
            parts = [part.strip() for part in text.replace(":", ",").split(",") if part.strip()]
            if text and not parts:
                raise ValueError(f"{text!r} names nothing (use 'A,B,C', or leave it unset)")
            return parts
        return value

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, value: list[str]) -> list[str]:
        # Normalise aliases and drop repeats, keeping the first (preferred) position.
        return list(dict.fromkeys(_groups.canonical(g) for g in value))

    @field_validator("alpn")
    @classmethod
    def _check_alpn(cls, value: list[str]) -> list[str]:
        for proto in value:
            if not 0 < len(proto.encode()) < 256:
                raise ValueError(f"ALPN protocol names must be 1-255 bytes, got {proto!r}")
        return value

    @field_validator("certfile", "keyfile", "ca_file", "keylog_file")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        # Pure data: the files are checked where they are used (ecdhe_async.tls), not here.
        return None if value is None else value.expanduser()

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        # Errors name the field at fault, not just "tls".
        if self.keyfile is not None and self.certfile is None:
            raise _FieldError("certfile", None, "keyfile is set but certfile is not: set both")
        if self.client_auth != "none" and self.ca_file is None:
            raise _FieldError(
                "ca_file",
                None,
                f"client_auth={self.client_auth!r} needs ca_file (the CAs client certificates "
                "must chain to)",
            )
        return self


class _FieldError(ValueError):
    """A cross-field check failed; ``field`` (inside the model) and ``value`` are to blame."""

    def __init__(self, field: str, value: object, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


_config_file: ContextVar[Path | None] = ContextVar("ecdhe_async_config_file", default=None)


class _Settings(BaseSettings):
    """Common loading machinery: source order, TOML file, one-line errors."""

    config_env: ClassVar[str]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get() or _env_path(cls.config_env)
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @classmethod
    def load(cls, config: str | os.PathLike[str] | None = None, **overrides: Any) -> Self:
        """Build settings from all sources, raising :class:`ConfigError` on any bad value.

        *config* is a TOML file (else the ``*_CONFIG`` environment variable, else none);
        *overrides* are explicit values (``None`` values are ignored, so CLI flags that were not
        given do not mask lower sources). Nested values are dicts, e.g. ``tls={"groups": [...]}``.
        """
        path = Path(config).expanduser() if config is not None else _env_path(cls.config_env)
        toml = _check_toml(path) if path is not None else {}
        explicit = {k: v for k, v in overrides.items() if v is not None}
        origin = Origin(cls, explicit, path, toml)
        for name, hint in unknown_env_vars(cls, _Settings.__subclasses__()):
            log.warning("ignoring unknown environment variable %s%s", name, hint)
        token = _config_file.set(path)
        try:
            return cls(**explicit)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, origin)) from None
        except SettingsError as exc:  # a value in the environment that is not valid JSON
            raise ConfigError(origin.settings_error(exc)) from None
        except ValueError as exc:
            raise ConfigError(f"invalid setting: {exc}") from None
        finally:
            _config_file.reset(token)


def _loopback_networks() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


class ServerSettings(_Settings):
    """Everything a :class:`~ecdhe_async.server.TLSServer` needs. Each limit has a reason:

    - ``handshake_timeout``: a client that connects and never finishes the handshake holds a
      socket and memory; 10 s is generous for any real client on any real network.
    - ``idle_timeout``: no bytes either way for this long closes the connection (0 = never).
    - ``shutdown_timeout``: how long to wait for the peer's close_notify before aborting.
    - ``write_timeout``: how long ``drain()`` waits for a peer that reads nothing before the
      connection is aborted (0 = never), so a peer that never reads cannot hold its buffers.
    - ``grace``: how long ``aclose()`` lets running handlers finish before cancelling them.
    - ``max_connections``: established connections; beyond it new ones are closed at once.
    - ``max_pending_handshakes``: connections still in the handshake; beyond it the oldest that has
      not sent a byte is dropped, so silent sockets cannot starve real clients.
    - ``max_buffered_bytes``: input buffered by all connections together (unread bytes plus the
      partial lines and frames handlers hold). Per-connection limits alone allow
      ``max_connections`` x ``max_frame_size`` (160 GiB with the defaults); 256 MiB keeps a
      server within a small machine's memory while still holding 16 full-size frames at once.
      A connection whose next bytes would exceed it is closed; the others carry on.

    Deployment: ``proxy_protocol`` reads a PROXY v1/v2 header before TLS, believed only from
    ``proxy_trusted`` networks (default loopback); ``cert_check_interval`` re-reads the
    certificate files every so many seconds (0 = only on ``reload()``/SIGHUP); ``workers``
    runs that many processes (``ecdhe-async serve``; see :mod:`ecdhe_async.workers`).
    """

    model_config = SettingsConfigDict(
        env_prefix="ECDHE_ASYNC_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    config_env: ClassVar[str] = "ECDHE_ASYNC_CONFIG"

    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    handler: str = "echo"
    loop: LoopName = "auto"
    log_level: LogLevel = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line (ecdhe_async.logs)
    access_log: bool = True  # one INFO line per connection; refused handshakes are logged anyway
    handshake_timeout: Seconds = 10.0
    idle_timeout: float = Field(300.0, ge=0, allow_inf_nan=False)
    shutdown_timeout: Seconds = 5.0
    write_timeout: float = Field(60.0, ge=0, allow_inf_nan=False)
    grace: float = Field(10.0, ge=0, allow_inf_nan=False)
    max_connections: int = Field(10_000, ge=1)
    max_pending_handshakes: int = Field(512, ge=1)
    backlog: int = Field(1024, ge=1)
    reuse_port: bool = False
    metrics_port: int = Field(0, ge=0, le=65535)  # GET /metrics, /healthz, /readyz; 0 = off
    metrics_host: str = "127.0.0.1"  # needs the metrics extra (prometheus-client)
    max_line_length: int = Field(64 * 1024, ge=1)
    max_frame_size: int = Field(16 * 1024 * 1024, ge=1)
    max_buffered_bytes: int = Field(256 * 1024 * 1024, ge=1)
    proxy_protocol: ProxyProtocol = "off"
    proxy_trusted: list[IPvAnyNetwork] = Field(default_factory=_loopback_networks)
    cert_check_interval: float = Field(60.0, ge=0, allow_inf_nan=False)
    workers: int = Field(1, ge=1, le=1024)
    tls: TLSSettings = Field(default_factory=TLSSettings)


class ClientSettings(_Settings):
    """Options for :func:`~ecdhe_async.client.connect`: verified by default.

    ``server_hostname`` overrides the name checked against the certificate (and sent as SNI);
    certificate checks are skipped only with ``tls.insecure_skip_verify = true``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ECDHE_ASYNC_CLIENT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    config_env: ClassVar[str] = "ECDHE_ASYNC_CLIENT_CONFIG"

    connect_timeout: Seconds = 10.0
    handshake_timeout: Seconds = 10.0
    shutdown_timeout: Seconds = 5.0
    server_hostname: str | None = None
    tls: TLSSettings = Field(default_factory=TLSSettings)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _check_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"invalid setting config: file '{path}' does not exist") from None
    except OSError as exc:
        raise ConfigError(f"invalid setting config: cannot read '{path}': {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid setting config: '{path}' is not valid TOML: {exc}") from None
