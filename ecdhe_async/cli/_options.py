"""What the commands share: help formatters, exit codes, global and TLS options, overrides."""

from __future__ import annotations

import argparse
import os
from typing import Any, Final, TypeAlias, get_args

from ..errors import ConfigError
from ..settings import LogLevel, Profile

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "ExampleFormatter",
    "Formatter",
    "Subparsers",
    "accept_global_options",
    "common_tls",
    "global_options",
    "password_from_env",
    "tls_overrides",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2

#: What ``add_subparsers()`` returns: each command module adds its parser to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default only when it has one (settings-backed flags say theirs in text)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        if action.nargs == 0:  # an on/off flag (store_true...): "(default: False)" says nothing
            return action.help
        return super()._get_help_string(action)


class ExampleFormatter(Formatter):
    """Defaults shown; prose is wrapped, indented lines (the epilog's examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text  # a generator expression has no zero-argument super()
        lines = text.splitlines()
        return "\n".join(indent + x if x.startswith(" ") else fill(x, width, indent) for x in lines)


def common_tls(p: argparse.ArgumentParser) -> None:
    """The TLS options of ``serve`` and ``connect`` (the ``tls`` table of the settings)."""
    p.add_argument("--config", metavar="FILE", help="TOML settings file")
    p.add_argument("--certfile", metavar="PEM", help="certificate chain (PEM)")
    p.add_argument("--keyfile", metavar="PEM", help="private key (PEM)")
    p.add_argument("--ca-file", metavar="PEM", help="CA certificates to trust (PEM)")
    p.add_argument(
        "--groups",
        metavar="LIST",
        help="key-exchange groups in preference order, from X25519, X448, P-256, P-384, "
        "P-521 (default: X25519,P-256,P-384)",
    )
    p.add_argument(
        "--profile",
        choices=get_args(Profile),
        help="intermediate = TLS 1.2 ECDHE + 1.3, modern = TLS 1.3 only (default: intermediate)",
    )
    p.add_argument("--alpn", metavar="LIST", help="ALPN protocols, e.g. h2,http/1.1")


def global_options(p: argparse.ArgumentParser, *, default: Any, command: str | None) -> None:
    """Options valid before and after the command: ``--log-level debug serve`` works too."""
    if command is None:
        level = "info for serve, warning otherwise"
    else:
        level = "the log_level setting, info" if command == "serve" else "warning"
    p.add_argument(
        "--log-level",
        default=default,
        choices=get_args(LogLevel),
        help=f"log level (default: {level})",
    )


def accept_global_options(parser: argparse.ArgumentParser, command: str | None = None) -> None:
    """Add the global options to every (sub)command, however deeply nested.

    On a subcommand they default to ``SUPPRESS``, so that a value given before the command is
    not reset by the subcommand's parser.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                global_options(subparser, default=argparse.SUPPRESS, command=command or name)
                accept_global_options(subparser, command or name)


def tls_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``tls`` settings given as flags (those left out come from the file/environment)."""
    tls: dict[str, Any] = {
        "certfile": args.certfile,
        "keyfile": args.keyfile,
        "ca_file": args.ca_file,
        "groups": args.groups,
        "profile": args.profile,
        "alpn": args.alpn,
    }
    return {k: v for k, v in tls.items() if v is not None}


def password_from_env(var: str | None) -> str | None:
    """A key password from the environment variable *var* (never from argv: ps would show it)."""
    if var is None:
        return None
    password = os.environ.get(var)
    if not password:
        raise ConfigError(f"invalid setting {var}: that environment variable is empty or unset")
    return password
