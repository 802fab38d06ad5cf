"""Talk to the echo server: ``python examples/echo_client.py [HOST] [PORT] [--message TEXT]``.

Verifies the server certificate against ``--ca-file`` (default: the development certificate
that ``make run`` generated in the per-user cache directory) and prints what was negotiated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ecdhe_async import ClientSettings, ConfigError, HandshakeError, connect
from ecdhe_async.certs import default_cache_dir


async def talk(host: str, port: int, ca_file: str, message: str) -> int:
    settings = ClientSettings.load(tls={"ca_file": ca_file}, server_hostname="localhost")
    async with connect(host, port, settings) as conn:
        print(f"connected: {conn.version} {conn.cipher} key exchange ECDHE {conn.group}")
        await conn.send(message.encode())
        reply = b""
        while len(reply) < len(message.encode()):
            chunk = await asyncio.wait_for(conn.read(), 10)
            if not chunk:
                break
            reply += chunk
        print(f"reply: {reply.decode(errors='replace')}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    parser.add_argument("port", nargs="?", type=int, default=8443)
    parser.add_argument("--ca-file", default=str(default_cache_dir() / "dev-cert.pem"))
    parser.add_argument("--message", default="Hello, forward secrecy!")
    args = parser.parse_args()
    try:
        return asyncio.run(talk(args.host, args.port, args.ca_file, args.message))
    except (ConfigError, HandshakeError, OSError) as exc:
        print(f"echo_client: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
