"""``ecdhe-async audit HOST[:PORT]``: the command behind the CLI's ``audit`` subparser.

Exit codes are the report's (0 forward-secret only, 1 a non-forward-secret path, 2 could not
audit). A mistake of the user's own — a bad address, a missing CA file, a non-positive timeout —
is one line on stderr and exit code 2 as well: never 1, which would read as a verdict.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path

from ..errors import ConfigError
from ..loops import run as run_loop
from .render import Progress, render_json, render_table, use_colour
from .report import EXIT_UNREACHABLE
from .run import audit

__all__ = ["main", "parse_target"]


def parse_target(text: str, default_port: int = 443) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address → (host, port)."""
    host, port = text.strip(), str(default_port)
    if host.startswith("["):
        inner, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"invalid address {text!r}: expected [IPv6]:PORT")
        host, port = inner, rest[1:] or port
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host:
        raise ConfigError(f"invalid address {text!r}: no host")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"invalid address {text!r}: port must be 1-65535")
    return host, int(port)


def main(args: argparse.Namespace) -> int:
    """Run the audit the parsed *args* describe, print the table or JSON, return the exit code."""
    host, port = parse_target(args.target)
    if args.timeout <= 0:
        raise ConfigError(f"invalid setting --timeout={args.timeout}: must be > 0")
    if args.ca_file is not None:
        ca_file = Path(args.ca_file)
        if not ca_file.is_file():
            raise ConfigError(f"invalid setting --ca-file={args.ca_file}: no such file")
        try:
            ssl.create_default_context(cafile=str(ca_file))
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"invalid setting --ca-file={args.ca_file}: {exc}") from None
    progress = Progress(sys.stderr)
    try:
        report = run_loop(
            audit(
                host,
                port,
                servername=args.servername,
                timeout=args.timeout,
                ca_file=args.ca_file,
                insecure=args.insecure,
                progress=None if args.json else progress,
            ),
            loop=args.loop,
        )
    except (TimeoutError, OSError) as exc:  # pragma: no cover - defensive
        sys.stderr.write(f"ecdhe-async: audit failed: {exc}\n")
        return EXIT_UNREACHABLE
    finally:
        progress.clear()
    if args.json:
        sys.stdout.write(render_json(report))
    elif report.probes:
        sys.stdout.write(render_table(report, colour=use_colour(sys.stdout)))
    if report.error is not None:  # the one-line reason
        sys.stderr.write(f"ecdhe-async: {report.verdict}\n")
    return report.exit_code
