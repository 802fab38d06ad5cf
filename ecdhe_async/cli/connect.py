"""``ecdhe-async connect``: handshake with a server and show what was negotiated."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, get_args

from ..errors import HandshakeError
from ..loops import LoopName
from ..loops import run as run_loop
from ..settings import ClientSettings
from ._options import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    ExampleFormatter,
    Subparsers,
    common_tls,
    tls_overrides,
)

__all__ = ["add_connect", "cmd_connect"]


def add_connect(sub: Subparsers) -> None:
    """Add the ``connect`` command and its options."""
    conn = sub.add_parser(
        "connect",
        help="connect to a TLS server and show what was negotiated",
        formatter_class=ExampleFormatter,
        epilog="examples:\n"
        "  ecdhe-async connect localhost 8443 --ca-file ca.crt --message hi\n"
        "  ecdhe-async connect api.local 9443 --ca-file ca.crt --certfile client.crt "
        "--keyfile client.key",
        description="Handshake (verifying the certificate and host name), print the negotiated "
        "version, cipher, group and certificate, optionally send a message and print the reply.",
    )
    conn.add_argument("host", help="server host name or address")
    conn.add_argument("port", type=int, help="server TCP port")
    common_tls(conn)
    conn.add_argument("--server-hostname", help="name to verify and send as SNI (default HOST)")
    conn.add_argument("--message", help="text to send; the reply is printed")
    conn.add_argument(
        "--insecure", action="store_true", help="DO NOT verify the certificate (testing only)"
    )
    conn.add_argument("--timeout", type=float, default=10.0, help="connect/handshake timeout (s)")
    conn.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")


def cmd_connect(args: argparse.Namespace) -> int:
    """Run ``connect``: print the negotiated parameters (and the reply to ``--message``)."""
    from ..client import connect

    target = _hostport(args.host, args.port)
    if not 0 < args.port < 65536:
        print(f"ecdhe-async: port {args.port} is out of range (1-65535)", file=sys.stderr)
        return EXIT_USAGE
    tls = tls_overrides(args)
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
