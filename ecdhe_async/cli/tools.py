"""The guide and the measuring tools: ``demo``, ``explain``, ``audit`` and ``bench``.

Building their parsers imports none of their code (guide, auditor, bench): each ``cmd_*``
imports it when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final, get_args

from ..loops import LoopName
from ..loops import run as run_loop
from ._options import EXIT_OK, ExampleFormatter, Formatter, Subparsers

__all__ = [
    "BENCH_MODES",
    "add_audit",
    "add_bench",
    "add_demo",
    "add_explain",
    "cmd_audit",
    "cmd_bench",
    "cmd_demo",
    "cmd_explain",
]

#: ``ecdhe_async.bench.Mode`` spelled out, so that building the parser imports no bench code.
BENCH_MODES: Final = ("handshakes", "throughput")


def add_demo(sub: Subparsers) -> None:
    """Add the ``demo`` command."""
    demo = sub.add_parser(
        "demo",
        help="the ECDHE guide: key exchange, TLS, how it works",
        formatter_class=ExampleFormatter,
        description="Walk through the ECDHE guide with live values: a raw key exchange over "
        "loopback, a TLS handshake with a temporary certificate, and how ECDHE fits in TLS. "
        "Shows sizes and fingerprints, never a key.",
        epilog="example:\n  ecdhe-async demo --loop asyncio",
    )
    demo.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")


def add_explain(sub: Subparsers) -> None:
    """Add the ``explain`` command."""
    explain = sub.add_parser(
        "explain",
        help="how ECDHE works in a TLS handshake",
        formatter_class=ExampleFormatter,
        description="Explain step by step where ECDHE happens in a TLS 1.3 (and 1.2) handshake "
        "and why it gives forward secrecy; --live annotates each step with what crossed the "
        "wire in two real loopback handshakes.",
        epilog="example:\n  ecdhe-async explain --live",
    )
    explain.add_argument(
        "--live", action="store_true", help="annotate with a real loopback handshake"
    )
    explain.add_argument("--loop", choices=get_args(LoopName), default="auto", help="event loop")


def add_audit(sub: Subparsers) -> None:
    """Add the ``audit`` command."""
    aud = sub.add_parser(
        "audit",
        help="is a TLS server forward-secret only? (exit 0 yes, 1 no, 2 could not tell)",
        formatter_class=Formatter,
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


def add_bench(sub: Subparsers) -> None:
    """Add the ``bench`` command and its options (run by :func:`ecdhe_async.bench.main`)."""
    p = sub.add_parser(
        "bench",
        help="load-test a TLS server (handshakes or throughput)",
        description="Load generator against your own server. See benchmarks/ for the "
        "side-by-side comparison that `make bench` runs.",
    )
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``demo``."""
    from ..guide.demo import demo_main

    run_loop(demo_main(sys.stdout), loop=args.loop)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    """Run ``explain``."""
    from ..guide.explain import explain_main

    run_loop(explain_main(sys.stdout, live=args.live), loop=args.loop)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``bench``."""
    from ..bench import main as bench_main

    code: int = bench_main(args)
    return code


def cmd_audit(args: argparse.Namespace) -> int:
    """Run ``audit``."""
    from ..auditor.command import main as audit_main

    return audit_main(args)
