"""``ecdhe-async`` / ``python -m ecdhe_async``: a thin command line over the public API.

Commands: ``serve``, ``connect``, ``cert``, ``demo``, ``explain``, ``bench``. Exit codes:
0 success, 1 runtime failure (handshake refused, connection failed), 2 bad usage or settings.

This module builds the parser and dispatches; one module per command (or family) adds its
options and runs it: :mod:`.serve`, :mod:`.connect`, :mod:`.cert`, :mod:`.tools` (demo,
explain, audit, bench), with what they share in :mod:`._options`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Final

from .. import __version__
from ..errors import CertificateError, ConfigError, HandshakeError
from ..logs import LogFormat, configure_logging
from ._options import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    Formatter,
    accept_global_options,
    global_options,
)
from .cert import add_cert, cmd_cert
from .connect import add_connect, cmd_connect
from .serve import add_serve, cmd_serve
from .tools import (
    BENCH_MODES,
    add_audit,
    add_bench,
    add_demo,
    add_explain,
    cmd_audit,
    cmd_bench,
    cmd_demo,
    cmd_explain,
)

__all__ = ["BENCH_MODES", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

log = logging.getLogger("ecdhe_async")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="ecdhe-async",
        description="Forward-secret (ECDHE-only) TLS servers and clients for asyncio.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    global_options(parser, default=None, command=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve(sub)
    add_connect(sub)
    add_cert(sub)
    add_demo(sub)
    add_explain(sub)
    add_audit(sub)
    add_bench(sub)
    accept_global_options(parser)
    return parser


_COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "serve": cmd_serve,
    "connect": cmd_connect,
    "cert": cmd_cert,
    "demo": cmd_demo,
    "explain": cmd_explain,
    "bench": cmd_bench,
    "audit": cmd_audit,
}


def _setup_logging(level: str | None, fmt: LogFormat = "text", *, pid: bool = False) -> None:
    """Log to stderr as text or JSON; *pid* (workers) adds the process id, also to a handler
    already set up."""
    configure_logging(level, fmt, pid=pid)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ecdhe-async``; returns the exit code."""
    args = build_parser().parse_args(argv)
    # Before any settings are read: their warnings go through logging like every other message.
    _setup_logging(args.log_level or ("info" if args.command == "serve" else "warning"))
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"ecdhe-async: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (HandshakeError, CertificateError, OSError, TimeoutError) as exc:
        print(f"ecdhe-async: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
