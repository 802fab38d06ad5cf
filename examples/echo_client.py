"""Talk to the echo server: ``python examples/echo_client.py [HOST] [PORT] [--message TEXT]``.

Verifies the server certificate against the CA file from the usual client sources (``--config``,
``ECDHE_ASYNC_CLIENT_*`` environment, ``--ca-file``); when none names one, against the
development certificate that ``make run`` generated in the per-user cache directory. Prints
what was negotiated and the reply.

The message goes out as one line (``--framing lines``, the default), which the ``echo`` and
``lines`` handlers both echo; use ``--framing frames`` for a ``frames`` server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ecdhe_async import ClientSettings, ConfigError, HandshakeError, RemoteProtocolError, connect
from ecdhe_async.certs import default_cache_dir
from ecdhe_async.handlers.framing import FrameDecoder, LineDecoder, encode_frame, encode_line


def client_settings(args: argparse.Namespace) -> ClientSettings:
    """Settings from --config, the environment and the flags that were given (and only those)."""
    tls = {"ca_file": args.ca_file} if args.ca_file else None
    settings = ClientSettings.load(args.config, server_hostname=args.server_hostname, tls=tls)
    dev_cert = default_cache_dir() / "dev-cert.pem"
    if settings.tls.ca_file is None and dev_cert.is_file():  # `make run`'s certificate
        tls_with_dev = settings.tls.model_copy(update={"ca_file": dev_cert})
        settings = settings.model_copy(update={"tls": tls_with_dev})
    return settings


async def talk(host: str, port: int, settings: ClientSettings, args: argparse.Namespace) -> int:
    """Connect, send one message, print the reply; raise on any failure."""
    message = args.message.encode()
    decoder: Any = LineDecoder() if args.framing == "lines" else FrameDecoder()
    request = encode_line(message) if args.framing == "lines" else encode_frame(message)
    async with connect(host, port, settings) as conn:
        print(f"connected: {conn.version} {conn.cipher} key exchange ECDHE {conn.group}")
        await conn.send(request)
        replies: list[bytes] = []
        async with asyncio.timeout(args.timeout):
            while not replies:
                chunk = await conn.read()
                if not chunk:
                    raise ConnectionError(
                        "the server closed the connection without replying (does it run the "
                        "echo, lines or frames handler? --framing must match: lines for echo "
                        "and lines, frames for frames)"
                    )
                replies = decoder.feed(chunk)
        print(f"reply: {replies[0].decode(errors='replace')}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    parser.add_argument("port", nargs="?", type=int, default=8443)
    parser.add_argument("--config", metavar="FILE", help="TOML client settings file")
    parser.add_argument("--ca-file", help="CA certificates to trust (default: from the settings)")
    parser.add_argument("--server-hostname", help="name to verify and send as SNI")
    parser.add_argument("--message", default="Hello, forward secrecy!")
    parser.add_argument("--framing", choices=["lines", "frames"], default="lines")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply")
    args = parser.parse_args()
    try:
        settings = client_settings(args)
        return asyncio.run(talk(args.host, args.port, settings, args))
    except ConfigError as exc:
        print(f"echo_client: {exc}", file=sys.stderr)
        return 2
    except TimeoutError:
        print(
            f"echo_client: no reply within {args.timeout:g}s (a lines server needs a line, a "
            "frames server a frame: is --framing right?)",
            file=sys.stderr,
        )
        return 1
    except (HandshakeError, RemoteProtocolError, OSError) as exc:
        print(f"echo_client: {exc or type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
