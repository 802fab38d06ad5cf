"""``ecdhe-async`` / ``python -m ecdhe_async``: a thin command line over the public API.

Commands: ``serve``, ``connect``, ``cert``, ``demo``, ``explain``, ``bench``. Exit codes:
0 success, 1 runtime failure (handshake refused, connection failed), 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Final, get_args

from . import __version__
from .errors import CertificateError, ConfigError, HandshakeError
from .loops import LoopName
from .loops import run as run_loop
from .settings import ClientAuth, ClientSettings, Profile, ServerSettings

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2

log = logging.getLogger("ecdhe_async")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default only when it has one (settings-backed flags say theirs in text)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _common_tls(p: argparse.ArgumentParser) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="ecdhe-async",
        description="Forward-secret (ECDHE-only) TLS servers and clients for asyncio.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default=None, choices=["debug", "info", "warning", "error"], help="log level"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = _Formatter

    serve = sub.add_parser(
        "serve",
        help="run a TLS server",
        formatter_class=fmt,
        description="Run an ECDHE-only TLS server. Settings: defaults < --config TOML < "
        "ECDHE_ASYNC_* environment < these flags. Without a certificate, a development "
        "certificate is created in the per-user cache directory (and reused).",
    )
    _common_tls(serve)
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
        "--client-auth", choices=get_args(ClientAuth), help="client certificates (default: none)"
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        help=f"limit on connections (default: {d['max_connections'].default})",
    )

    conn = sub.add_parser(
        "connect",
        help="connect to a TLS server and show what was negotiated",
        formatter_class=fmt,
        description="Handshake (verifying the certificate and host name), print the negotiated "
        "version, cipher, group and certificate, optionally send a message and print the reply.",
    )
    conn.add_argument("host")
    conn.add_argument("port", type=int)
    _common_tls(conn)
    conn.add_argument("--server-hostname", help="name to verify and send as SNI (default HOST)")
    conn.add_argument("--message", help="text to send; the reply is printed")
    conn.add_argument(
        "--insecure", action="store_true", help="DO NOT verify the certificate (testing only)"
    )
    conn.add_argument("--timeout", type=float, default=10.0, help="connect/handshake timeout (s)")
    conn.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")

    cert = sub.add_parser(
        "cert",
        help="create development certificates",
        formatter_class=fmt,
        description="Create a self-signed certificate, or a development CA and certificates "
        "it issues (for mTLS). Private keys are written 0600.",
    )
    cert_sub = cert.add_subparsers(dest="cert_command", required=True, metavar="KIND")
    self_signed = cert_sub.add_parser("self-signed", help="a self-signed server certificate")
    self_signed.add_argument("--out", default="server.crt", help="certificate file")
    self_signed.add_argument("--key-out", default="server.key", help="private key file")
    for p in (self_signed,):
        _cert_options(p)
    ca = cert_sub.add_parser("ca", help="a development CA")
    ca.add_argument("--out", default="ca.crt", help="CA certificate file")
    ca.add_argument("--key-out", default="ca.key", help="CA private key file")
    ca.add_argument("--name", default="ecdhe_async dev CA", help="CA common name")
    ca.add_argument("--key-type", default="ec-p256", choices=_key_types(), help="key type")
    ca.add_argument("--days", type=int, default=3650, help="validity in days")
    ca.add_argument(
        "--key-password-env",
        metavar="VAR",
        help="encrypt the CA key with the password in this environment variable",
    )
    for kind in ("server", "client"):
        leaf = cert_sub.add_parser(kind, help=f"a {kind} certificate issued by a dev CA")
        leaf.add_argument("--ca", required=True, help="CA certificate file")
        leaf.add_argument("--ca-key", required=True, help="CA private key file")
        leaf.add_argument(
            "--ca-password-env",
            metavar="VAR",
            help="the CA key's password is in this environment variable",
        )
        leaf.add_argument("--out", default=f"{kind}.crt", help="certificate file")
        leaf.add_argument("--key-out", default=f"{kind}.key", help="private key file")
        _cert_options(leaf)

    demo = sub.add_parser("demo", help="the ECDHE guide: key exchange, TLS, how it works")
    demo.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")
    explain = sub.add_parser("explain", help="how ECDHE works in a TLS handshake")
    explain.add_argument(
        "--live", action="store_true", help="annotate with a real loopback handshake"
    )
    explain.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")
    bench = sub.add_parser(
        "bench",
        help="load-test a TLS server (handshakes or throughput)",
        description="Load generator against your own server. See benchmarks/ for the "
        "side-by-side comparison that `make bench` runs.",
    )
    _add_bench(bench)
    return parser


def _key_types() -> list[str]:
    from .certs import KEY_TYPES

    return list(KEY_TYPES)


def _cert_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hostname",
        action="append",
        dest="hostnames",
        help="subject alternative name (repeatable; default localhost, 127.0.0.1, ::1)",
    )
    p.add_argument("--common-name", help="subject common name")
    p.add_argument("--key-type", default="ec-p256", choices=_key_types(), help="key type")
    p.add_argument("--days", type=int, default=365, help="validity in days")
    p.add_argument(
        "--key-password-env",
        metavar="VAR",
        help="encrypt the private key with the password in this environment variable",
    )


def _add_bench(p: argparse.ArgumentParser) -> None:
    try:
        from .bench import add_arguments
    except ImportError:  # pragma: no cover - bench module absent
        return
    add_arguments(p)


def _tls_overrides(args: argparse.Namespace) -> dict[str, Any]:
    tls: dict[str, Any] = {
        "certfile": args.certfile,
        "keyfile": args.keyfile,
        "ca_file": args.ca_file,
        "groups": args.groups,
        "profile": args.profile,
        "alpn": args.alpn,
    }
    return {k: v for k, v in tls.items() if v is not None}


def _cmd_serve(args: argparse.Namespace) -> int:
    from .runner import run_server

    # Like uvicorn's --app-dir: import paths ("pkg.mod:attr") resolve from the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    tls = _tls_overrides(args)
    if args.client_auth is not None:
        tls["client_auth"] = args.client_auth
    settings = ServerSettings.load(
        args.config,
        host=args.host,
        port=args.port,
        handler=args.handler,
        loop=args.loop,
        max_connections=args.max_connections,
        log_level=args.log_level,
        tls=tls or None,
    )
    _setup_logging(settings.log_level)
    run_server(settings)
    return EXIT_OK


def _cmd_connect(args: argparse.Namespace) -> int:
    from .client import connect

    target = _hostport(args.host, args.port)
    if not 0 < args.port < 65536:
        print(f"ecdhe-async: port {args.port} is out of range (1-65535)", file=sys.stderr)
        return EXIT_USAGE
    tls = _tls_overrides(args)
    if args.insecure:
        tls["insecure_skip_verify"] = True
    settings = ClientSettings.load(
        args.config,
        server_hostname=args.server_hostname,
        connect_timeout=args.timeout,
        handshake_timeout=args.timeout,
        tls=tls or None,
    )
    # In TLS 1.3 the server judges our certificate after our side of the handshake is done:
    # its verdict (an alert) comes in the first record. Wait that long before saying "connected".
    settle = min(0.5, args.timeout)

    async def go() -> int:
        async with connect(args.host, args.port, settings) as conn:
            first = b""
            if args.message is None and conn.version == "TLSv1.3":
                try:
                    first = await asyncio.wait_for(conn.read(), settle)
                except TimeoutError:
                    pass  # nothing from the server: no refusal
            info = conn.tls
            rows = [
                ("connected to", target),
                ("protocol", info.version),
                ("cipher", info.cipher),
                ("key exchange", f"ECDHE {info.group}" if info.group else "unknown"),
                ("server name", info.server_name),
                ("certificate", info.peer_subject),
                ("issuer", _issuer(info.peer_cert)),
                ("valid until", (info.peer_cert or {}).get("notAfter")),
                ("ALPN", info.alpn),
                ("handshake", f"{conn.handshake_duration * 1e3:.1f} ms"),
            ]
            reply = first
            if args.message is not None:
                await conn.send(args.message.encode() + b"\n")
                reply = await asyncio.wait_for(conn.read(), args.timeout)
            if args.insecure:
                rows.append(("verification", "DISABLED (--insecure)"))
            if reply:
                rows.append(("reply", reply.decode(errors="replace").rstrip()))
            width = max(len(k) for k, _ in rows)
            for key, value in rows:
                if value is not None:
                    print(f"{key:<{width}}  {value}")
        return EXIT_OK

    try:
        return run_loop(go(), loop=args.loop)
    except HandshakeError as exc:
        print(f"ecdhe-async: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (OSError, TimeoutError) as exc:
        message = str(exc) if "cannot connect to" in str(exc) else f"{target}: {exc}"
        print(f"ecdhe-async: {message or type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILURE


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _issuer(cert: dict[str, Any] | None) -> str | None:
    if not cert:
        return None
    return ",".join(f"{k}={v}" for rdn in cert.get("issuer", ()) for k, v in rdn) or None


def _cmd_cert(args: argparse.Namespace) -> int:
    from .certs import DevCA, create_self_signed_cert, describe_certificate

    password = _password_from_env(getattr(args, "key_password_env", None))
    kind = args.cert_command
    if kind == "ca":
        ca = DevCA.create(args.name, key_type=args.key_type, days=args.days)
        cert_path, key_path = ca.save(args.out, args.key_out, password)
    else:
        extra: dict[str, Any] = {"key_type": args.key_type, "days": args.days}
        if args.hostnames:
            extra["hostnames"] = args.hostnames
        if args.common_name:
            extra["common_name"] = args.common_name
        if password:
            extra["key_password"] = password
        if kind == "self-signed":
            cert_path, key_path = create_self_signed_cert(args.out, args.key_out, **extra)
        else:
            ca = DevCA.load(args.ca, args.ca_key, _password_from_env(args.ca_password_env))
            if kind == "server":
                cert_path, key_path = ca.issue_server_cert(args.out, args.key_out, **extra)
            else:
                extra.pop("hostnames", None)
                cert_path, key_path = ca.issue_client_cert(args.out, args.key_out, **extra)
    rows = {"certificate": str(cert_path), "private key": f"{key_path} (mode 0600)"}
    rows.update(describe_certificate(cert_path).as_dict())
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    return EXIT_OK


def _password_from_env(var: str | None) -> str | None:
    """A key password from the environment variable *var* (never from argv: ps would show it)."""
    if var is None:
        return None
    password = os.environ.get(var)
    if not password:
        raise ConfigError(f"invalid setting {var}: that environment variable is empty or unset")
    return password


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_main

    run_loop(demo_main(sys.stdout), loop=args.loop)
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_main

    run_loop(explain_main(sys.stdout, live=args.live), loop=args.loop)
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    code: int = bench_main(args)
    return code


_COMMANDS: Final = {
    "serve": _cmd_serve,
    "connect": _cmd_connect,
    "cert": _cmd_cert,
    "demo": _cmd_demo,
    "explain": _cmd_explain,
    "bench": _cmd_bench,
}


def _setup_logging(level: str | None) -> None:
    logging.basicConfig(
        level=getattr(logging, (level or "info").upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ecdhe-async``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        _setup_logging(args.log_level or "warning")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
