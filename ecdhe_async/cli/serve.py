"""``ecdhe-async serve``: run a TLS server (one process, or workers under a supervisor)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import get_args

from .._setting_errors import key_password_hint
from ..errors import CertificateError, ConfigError
from ..loops import LoopName
from ..settings import ClientAuth, ProxyProtocol, ServerSettings
from ._options import (
    EXIT_FAILURE,
    EXIT_OK,
    ExampleFormatter,
    Subparsers,
    common_tls,
    password_from_env,
    tls_overrides,
)

__all__ = ["add_serve", "cmd_serve"]


def add_serve(sub: Subparsers) -> None:
    """Add the ``serve`` command and its options."""
    serve = sub.add_parser(
        "serve",
        help="run a TLS server",
        formatter_class=ExampleFormatter,
        epilog="examples:\n"
        "  ecdhe-async serve --port 8443 --certfile server.crt --keyfile server.key\n"
        "  ecdhe-async serve --config config/server.toml --workers 2 --log-format json",
        description="Run an ECDHE-only TLS server. Settings: defaults < --config TOML < "
        "ECDHE_ASYNC_* environment < these flags. Without a certificate, a development "
        "certificate is created in the per-user cache directory (and reused).",
    )
    common_tls(serve)
    d = ServerSettings.model_fields
    serve.add_argument("--host", help=f"address to bind (default: {d['host'].default})")
    serve.add_argument("--port", type=int, help=f"port to bind (default: {d['port'].default})")
    serve.add_argument(
        "--handler",
        help="echo | lines | frames | package.module:attr (default: echo)",
    )
    serve.add_argument(
        "--loop",
        choices=get_args(LoopName),
        help="event loop; auto = uvloop when installed (default: auto)",
    )
    serve.add_argument(
        "--client-auth",
        choices=get_args(ClientAuth),
        help="client certificates, checked against --ca-file (default: none)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help=f"limit on connections (default: {d['max_connections'].default})",
    )
    serve.add_argument(
        "--key-password-env",
        metavar="VAR",
        help="the encrypted key's password is in this environment variable (never put the "
        "password itself on the command line: other users can read it with ps)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes; N > 1 runs a supervisor (SO_REUSEPORT on Linux) (default: 1)",
    )
    serve.add_argument(
        "--proxy-protocol",
        choices=get_args(ProxyProtocol),
        help="read a PROXY protocol header before TLS, from proxy_trusted sources (default: off)",
    )
    # -- observe (issue 13) --
    serve.add_argument(
        "--metrics-port",
        type=int,
        help="serve /metrics, /healthz, /readyz on this port (needs ecdhe-async[metrics]; "
        "default: 0 = off)",
    )
    serve.add_argument(
        "--log-format", choices=["text", "json"], help="log lines as text or JSON (default: text)"
    )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_const",
        const=False,
        help="no INFO line per connection (refused handshakes are still logged)",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``serve``: load the settings (flags win), then the server or its workers."""
    from ..runner import run_server
    from . import _setup_logging  # the package's, loaded by now (it imports this module)

    # Like uvicorn's --app-dir: import paths ("pkg.mod:attr") resolve from the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    tls = tls_overrides(args)
    if args.client_auth is not None:
        tls["client_auth"] = args.client_auth
    if args.key_password_env is not None:
        tls["key_password"] = password_from_env(args.key_password_env)
    try:
        settings = ServerSettings.load(
            args.config,
            host=args.host,
            port=args.port,
            handler=args.handler,
            loop=args.loop,
            max_connections=args.max_connections,
            workers=args.workers,
            proxy_protocol=args.proxy_protocol,
            log_level=args.log_level,
            metrics_port=args.metrics_port,
            log_format=args.log_format,
            access_log=args.access_log,
            tls=tls or None,
        )
        logging.getLogger().setLevel(settings.log_level.upper())
        if settings.workers > 1 or settings.log_format != "text":
            _setup_logging(settings.log_level, settings.log_format, pid=settings.workers > 1)
        if settings.workers > 1:
            from ..workers import run_workers

            return run_workers(settings)
        run_server(settings)
    except OSError as exc:  # cannot listen: the runner's message names the address
        if exc.errno is None and not str(exc).startswith("cannot listen on"):
            raise
        print(f"ecdhe-async: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (ConfigError, CertificateError) as exc:
        text = str(exc)
        if "a password is required" in text and "--key-password-env" not in text:
            raise type(exc)(f"{text}: {key_password_hint()}") from None
        raise
    return EXIT_OK
