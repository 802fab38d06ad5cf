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
from ._setting_errors import key_password_hint
from .errors import CertificateError, ConfigError, HandshakeError
from .loops import LoopName
from .loops import run as run_loop
from .settings import ClientAuth, ClientSettings, LogLevel, Profile, ProxyProtocol, ServerSettings

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
        if action.nargs == 0:  # an on/off flag (store_true...): "(default: False)" says nothing
            return action.help
        return super()._get_help_string(action)


class _ExampleFormatter(_Formatter):
    """Defaults shown; prose is wrapped, indented lines (the epilog's examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text  # a generator expression has no zero-argument super()
        lines = text.splitlines()
        return "\n".join(indent + x if x.startswith(" ") else fill(x, width, indent) for x in lines)


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
    _global_options(parser, default=None, command=None)
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

    _add_cert(sub)
    demo = sub.add_parser(
        "demo",
        help="the ECDHE guide: key exchange, TLS, how it works",
        formatter_class=_ExampleFormatter,
        description="Walk through the ECDHE guide with live values: a raw key exchange over "
        "loopback, a TLS handshake with a temporary certificate, and how ECDHE fits in TLS. "
        "Shows sizes and fingerprints, never a key.",
        epilog="example:\n  ecdhe-async demo --loop asyncio",
    )
    demo.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")
    explain = sub.add_parser(
        "explain",
        help="how ECDHE works in a TLS handshake",
        formatter_class=_ExampleFormatter,
        description="Explain step by step where ECDHE happens in a TLS 1.3 (and 1.2) handshake "
        "and why it gives forward secrecy; --live annotates each step with what crossed the "
        "wire in two real loopback handshakes.",
        epilog="example:\n  ecdhe-async explain --live",
    )
    explain.add_argument(
        "--live", action="store_true", help="annotate with a real loopback handshake"
    )
    explain.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")
    _add_audit(sub)
    bench = sub.add_parser(
        "bench",
        help="load-test a TLS server (handshakes or throughput)",
        description="Load generator against your own server. See benchmarks/ for the "
        "side-by-side comparison that `make bench` runs.",
    )
    _add_bench(bench)
    _accept_global_options(parser)
    return parser


def _global_options(p: argparse.ArgumentParser, *, default: Any, command: str | None) -> None:
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


def _accept_global_options(parser: argparse.ArgumentParser, command: str | None = None) -> None:
    """Add the global options to every (sub)command, however deeply nested.

    On a subcommand they default to ``SUPPRESS``, so that a value given before the command is
    not reset by the subcommand's parser.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                _global_options(subparser, default=argparse.SUPPRESS, command=command or name)
                _accept_global_options(subparser, command or name)


def _key_types() -> list[str]:
    from .certs import KEY_TYPES

    return list(KEY_TYPES)


_CERT_KINDS: Final = {
    # kind: (help, description, example)
    "self-signed": (
        "a self-signed server certificate",
        "Create a self-signed server certificate and its private key (mode 0600). The "
        "certificate is its own trust anchor: clients trust it with --ca-file.",
        "ecdhe-async cert self-signed --hostname api.local\n"
        "  ecdhe-async serve --certfile server.crt --keyfile server.key",
    ),
    "ca": (
        "a development CA",
        "Create a development certificate authority (certificate and 0600 key) that issues "
        "the server and client certificates of a mutual-TLS setup.",
        "ecdhe-async cert ca\n"
        "  ecdhe-async cert server --ca ca.crt --ca-key ca.key --hostname api.local\n"
        "  ecdhe-async cert client --ca ca.crt --ca-key ca.key --common-name alice",
    ),
    "server": (
        "a server certificate issued by a dev CA",
        "Issue a server certificate (serverAuth) signed by a development CA, with its 0600 "
        "key. Clients trust the CA certificate (--ca-file ca.crt).",
        "ecdhe-async cert server --ca ca.crt --ca-key ca.key --hostname api.local",
    ),
    "client": (
        "a client certificate issued by a dev CA",
        "Issue a client certificate (clientAuth) for mutual TLS, signed by a development CA, "
        "with its 0600 key. Servers trust the CA (serve --ca-file ca.crt --client-auth "
        "required).",
        "ecdhe-async cert client --ca ca.crt --ca-key ca.key --common-name alice",
    ),
}


def _add_cert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cert = sub.add_parser(
        "cert",
        help="create development certificates",
        formatter_class=_ExampleFormatter,
        description="Create a self-signed certificate, or a development CA and certificates "
        "it issues (for mTLS). Private keys are written 0600; existing files are never "
        "replaced without --force.",
        epilog="example (mutual TLS):\n  " + _CERT_KINDS["ca"][2],
    )
    cert_sub = cert.add_subparsers(dest="cert_command", required=True, metavar="KIND")
    for kind, (summary, description, example) in _CERT_KINDS.items():
        p = cert_sub.add_parser(
            kind,
            help=summary,
            description=description,
            epilog=f"example:\n  {example}",
            formatter_class=_ExampleFormatter,
        )
        stem = "server" if kind == "self-signed" else kind
        if kind in ("server", "client"):
            p.add_argument("--ca", required=True, metavar="PEM", help="CA certificate file")
            p.add_argument("--ca-key", required=True, metavar="PEM", help="CA private key file")
            p.add_argument(
                "--ca-password-env",
                metavar="VAR",
                help="the CA key's password is in this environment variable",
            )
        p.add_argument("--out", default=f"{stem}.crt", metavar="PEM", help="certificate file")
        p.add_argument("--key-out", default=f"{stem}.key", metavar="PEM", help="private key file")
        _cert_options(p, kind)


def _cert_options(p: argparse.ArgumentParser, kind: str) -> None:
    if kind == "ca":
        p.add_argument("--name", default="ecdhe_async dev CA", help="CA common name")
    else:
        default_sans = "none" if kind == "client" else "localhost, 127.0.0.1, ::1"
        p.add_argument(
            "--hostname",
            action="append",
            dest="hostnames",
            metavar="NAME",
            help=f"subject alternative name, DNS name or IP (repeatable; default: {default_sans})",
        )
        if kind == "client":
            p.add_argument(
                "--common-name", default="ecdhe_async dev client", help="subject common name"
            )
        else:
            p.add_argument("--common-name", help="subject common name (default: first hostname)")
    p.add_argument("--key-type", default="ec-p256", choices=_key_types(), help="key type")
    p.add_argument(
        "--days", type=int, default=3650 if kind == "ca" else 365, help="validity in days"
    )
    p.add_argument(
        "--key-password-env",
        metavar="VAR",
        help="encrypt the private key with the password in this environment variable",
    )
    p.add_argument(
        "--force", action="store_true", help="replace the certificate and key files if they exist"
    )


#: ``ecdhe_async.bench.Mode`` spelled out, so that building the parser imports no bench code.
BENCH_MODES: Final = ("handshakes", "throughput")


def _add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("mode", choices=BENCH_MODES, help="what to measure")
    p.add_argument("host", help="server address")
    p.add_argument("port", type=int, help="server port")
    p.add_argument("--ca-file", metavar="PEM", help="CA certificates to trust (PEM)")
    p.add_argument(
        "--insecure", action="store_true", help="DO NOT verify the certificate (testing only)"
    )
    p.add_argument("--server-hostname", help="name to verify and send as SNI (default HOST)")
    p.add_argument(
        "--groups", metavar="LIST", help="key-exchange groups to offer (default: X25519)"
    )
    p.add_argument(
        "--allow-tls12", action="store_true", help="allow TLS 1.2 (default: TLS 1.3 only)"
    )
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        help="concurrent workers (handshakes, default 16) or connections (throughput, default 4)",
    )
    p.add_argument(
        "-d", "--duration", type=float, default=10.0, help="measurement window in seconds"
    )
    p.add_argument(
        "-n", "--count", type=int, help="end the window after this many handshakes or blocks"
    )
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before the window")
    p.add_argument("--block-size", type=int, default=64 * 1024, help="throughput: bytes per block")
    p.add_argument(
        "--window", type=int, default=4, help="throughput: blocks in flight per connection"
    )
    p.add_argument(
        "--timeout", type=float, default=10.0, help="per connection/operation timeout (s)"
    )
    p.add_argument(
        "--loop",
        choices=get_args(LoopName),
        default="auto",
        help="client event loop (auto = uvloop when installed)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")


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
    if args.key_password_env is not None:
        tls["key_password"] = _password_from_env(args.key_password_env)
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
            tls=tls or None,
        )
        logging.getLogger().setLevel(settings.log_level.upper())
        if settings.workers > 1:
            from .workers import run_workers

            _setup_logging(settings.log_level, pid=True)
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
    from .certs import CertificateExistsError, DevCA, create_self_signed_cert, describe_certificate

    password = _password_from_env(getattr(args, "key_password_env", None))
    kind = args.cert_command
    paths: dict[str, Any] = {"cert_file": args.out, "key_file": args.key_out}
    try:
        if kind == "ca":
            ca = DevCA.create(args.name, key_type=args.key_type, days=args.days)
            cert_path, key_path = ca.save(**paths, password=password, overwrite=args.force)
        else:
            extra: dict[str, Any] = {"key_type": args.key_type, "days": args.days}
            if args.hostnames:
                extra["hostnames"] = args.hostnames
            if args.common_name:
                extra["common_name"] = args.common_name
            if password:
                extra["key_password"] = password
            extra.update(paths, overwrite=args.force)
            if kind == "self-signed":
                cert_path, key_path = create_self_signed_cert(**extra)
            else:
                ca = DevCA.load(args.ca, args.ca_key, _password_from_env(args.ca_password_env))
                issue = ca.issue_server_cert if kind == "server" else ca.issue_client_cert
                cert_path, key_path = issue(**extra)
    except CertificateExistsError as exc:
        print(f"ecdhe-async: {exc} (pass --force to replace it)", file=sys.stderr)
        return EXIT_FAILURE
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
    from .guide.demo import demo_main

    run_loop(demo_main(sys.stdout), loop=args.loop)
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    from .guide.explain import explain_main

    run_loop(explain_main(sys.stdout, live=args.live), loop=args.loop)
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    code: int = bench_main(args)
    return code


def _add_audit(sub: Any) -> None:
    aud = sub.add_parser(
        "audit",
        help="is a TLS server forward-secret only? (exit 0 yes, 1 no, 2 could not tell)",
        formatter_class=_Formatter,
        description="Probe any TLS server with real handshakes (TLS 1.3 groups one by one, "
        "TLS 1.2 key-exchange classes, legacy versions, resumption) and give a verdict.",
    )
    aud.add_argument("target", metavar="HOST[:PORT]", help="server to audit (default port 443)")
    aud.add_argument("--servername", help="SNI and name to verify (default: HOST)")
    aud.add_argument("--json", action="store_true", help="print the report as JSON")
    aud.add_argument("--timeout", type=float, default=5.0, help="per-probe timeout (s)")
    aud.add_argument("--ca-file", metavar="PEM", help="CA certificates to verify against")
    aud.add_argument(
        "--insecure", action="store_true", help="skip the certificate check (kex is tested anyway)"
    )
    aud.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")


def _cmd_audit(args: argparse.Namespace) -> int:
    from .auditor.command import main as audit_main

    return audit_main(args)


_COMMANDS: Final = {
    "serve": _cmd_serve,
    "connect": _cmd_connect,
    "cert": _cmd_cert,
    "demo": _cmd_demo,
    "explain": _cmd_explain,
    "bench": _cmd_bench,
    "audit": _cmd_audit,
}


def _setup_logging(level: str | None, *, pid: bool = False) -> None:
    """Log to stderr; *pid* (workers) adds the process id, also to a handler already set up."""
    fmt = (
        "%(asctime)s %(levelname)-7s " + ("[%(process)d] " if pid else "") + "%(name)s: %(message)s"
    )
    logging.basicConfig(
        level=getattr(logging, (level or "info").upper()), format=fmt, stream=sys.stderr
    )
    # Not in the format: not collected per record either (os.getpid() is a syscall per line).
    logging.logThreads = logging.logMultiprocessing = False
    logging.logProcesses = pid
    if pid:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter(fmt))


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
