"""``ecdhe-async bench`` itself: the client context, the report, the exit code.

The options are defined with the rest of the command line in :mod:`ecdhe_async.cli`; this
module turns the parsed namespace into a :class:`~ecdhe_async.bench.measure.LoadConfig`, runs
:func:`~ecdhe_async.bench.load.run_load` and prints the result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import ssl
import sys
from typing import Any

from ..loops import run as run_loop
from ..settings import ClientSettings
from ..tls import client_context
from .load import probe, run_load
from .measure import MB, LoadConfig, LoadResult

__all__ = ["bench_context", "main", "raise_nofile_limit"]


def bench_context(
    *,
    ca_file: str | None = None,
    insecure: bool = False,
    groups: str | None = None,
    tls13_only: bool = True,
) -> ssl.SSLContext:
    """The load generator's client context (ECDHE only; TLS 1.3 only unless told otherwise)."""
    tls: dict[str, Any] = {"profile": "modern" if tls13_only else "intermediate"}
    if ca_file is not None:
        tls["ca_file"] = ca_file
    if insecure:
        tls["insecure_skip_verify"] = True
    if groups is not None:
        tls["groups"] = groups
    return client_context(ClientSettings.load(tls=tls).tls)


def raise_nofile_limit() -> int | None:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; return the new soft limit.

    ``None`` where there is no such limit to raise (Windows has no :mod:`resource` module).
    """
    try:
        import resource  # POSIX only: imported here so that the package imports on Windows
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _config(args: argparse.Namespace) -> LoadConfig:
    concurrency = args.concurrency
    if concurrency is None:
        concurrency = 16 if args.mode == "handshakes" else 4
    return LoadConfig(
        mode=args.mode,
        host=args.host,
        port=args.port,
        concurrency=concurrency,
        warmup=args.warmup,
        duration=args.duration,
        count=args.count,
        block_size=args.block_size,
        window=args.window,
        timeout=args.timeout,
        server_hostname=args.server_hostname,
    )


async def _bench(cfg: LoadConfig, ctx: ssl.SSLContext) -> tuple[dict[str, str | None], LoadResult]:
    info = await probe(cfg.host, cfg.port, ctx, cfg.server_hostname, cfg.timeout)
    return info, await run_load(cfg, ctx)


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def _report(cfg: LoadConfig, info: dict[str, str | None], result: LoadResult) -> str:
    data = result.as_dict()
    lat = data["latency_ms"]
    lines = [
        f"{cfg.mode} against {cfg.host}:{cfg.port}: {info['version']} {info['cipher']} "
        f"group={info['group']}, {cfg.concurrency} "
        f"{'workers' if cfg.mode == 'handshakes' else 'connections'}, "
        f"{result.seconds:.1f} s window after {cfg.warmup:g} s warm-up",
    ]
    if cfg.mode == "handshakes":
        lines.append(f"  handshakes   {result.ops} ({data['ops_per_s']:.1f} hs/s)")
        lines.append(f"  latency      p50 {_fmt(lat['p50'], 'ms')}  p99 {_fmt(lat['p99'], 'ms')}")
    else:
        lines.append(
            f"  echoed       {result.bytes / MB:.1f} MB ({data['mb_per_s']:.1f} MB/s, "
            f"{result.ops} blocks of {cfg.block_size} B)"
        )
        lines.append(f"  block RTT    p50 {_fmt(lat['p50'], 'ms')}  p99 {_fmt(lat['p99'], 'ms')}")
    per_op = data["client_cpu_us_per_op"]
    lines.append(
        f"  client CPU   {result.client_cpu / result.seconds:.0%} of one core"
        + (f" ({per_op:.0f} us per op)" if per_op is not None else "")
    )
    lines.append(
        f"  errors       {result.errors}"
        + (f" (last: {result.last_error})" if result.last_error else "")
    )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run ``ecdhe-async bench``; 0 when operations completed without error, else 1."""
    cfg = _config(args)
    if not args.insecure and not args.ca_file:
        sys.stderr.write(
            "ecdhe-async bench: verifying against the system CA store "
            "(use --ca-file PEM for a private CA, --insecure to skip verification)\n"
        )
    ctx = bench_context(
        ca_file=args.ca_file,
        insecure=args.insecure,
        groups=args.groups or "X25519",
        tls13_only=not args.allow_tls12,
    )
    raise_nofile_limit()
    info, result = run_loop(_bench(cfg, ctx), loop=args.loop)
    if args.json:
        sys.stdout.write(json.dumps({"server": info, **result.as_dict()}, indent=2) + "\n")
    else:
        sys.stdout.write(_report(cfg, info, result) + "\n")
    return 0 if result.ops > 0 and result.errors == 0 else 1
