"""A protocol of your own: a tiny key-value store over TLS, one command per line.

Commands: ``SET key value`` → ``OK``, ``GET key`` → the value or ``NIL``, ``DEL key`` → ``1``/``0``,
``QUIT``. Anything else → ``ERR ...``. The framework owns sockets, TLS, limits and shutdown; the
handler only speaks the protocol, using the sans-IO line decoder.

Run it: ``python examples/custom_handler.py`` (127.0.0.1:8443 with the dev certificate, settings
from the environment / ``--config`` as for ``serve``), or plug it into the CLI:
``ecdhe-async serve --handler examples.custom_handler:KeyValueHandler`` (from the repo root).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ecdhe_async import ConfigError, Connection, ServerSettings
from ecdhe_async.handlers.framing import LineDecoder, encode_line
from ecdhe_async.runner import run_server


class KeyValueHandler:
    """One store shared by every connection of the server (the class is instantiated once)."""

    def __init__(self, max_line_length: int = 4096) -> None:
        self.store: dict[bytes, bytes] = {}
        self.max_line_length = max_line_length

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> KeyValueHandler:
        """How the server builds it (also for ``--handler``): limits come from the settings."""
        return cls(settings.max_line_length)

    def execute(self, line: bytes) -> bytes:
        """Run one command and return the reply line (pure: easy to test)."""
        command, _, rest = line.strip().partition(b" ")
        match command.upper():
            case b"SET":
                key, _, value = rest.partition(b" ")
                if not key:
                    return b"ERR usage: SET key value"
                self.store[key] = value
                return b"OK"
            case b"GET":
                return self.store.get(rest, b"NIL") if rest else b"ERR usage: GET key"
            case b"DEL":
                return b"1" if self.store.pop(rest, None) is not None else b"0"
            case _:
                return b"ERR unknown command " + command[:32]

    async def __call__(self, conn: Connection) -> None:
        decoder = LineDecoder(self.max_line_length)
        while not conn.stop_requested:
            data = await conn.read()
            if not data:
                return
            for line in decoder.feed(data):
                if line.strip().upper() == b"QUIT":
                    await conn.send(b"BYE\n")
                    return
                conn.write(encode_line(self.execute(line)))
            await conn.drain()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    args = parser.parse_args()
    # Logging first, so that warnings about the settings come out like every other line; then
    # the level the settings ask for (log_level, ECDHE_ASYNC_LOG_LEVEL).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    try:
        settings = ServerSettings.load(args.config)
        logging.getLogger().setLevel(settings.log_level.upper())
        run_server(settings, KeyValueHandler)  # built with from_settings()
    except ConfigError as exc:  # a bad setting
        print(f"custom_handler: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port already in use, ...
        print(f"custom_handler: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
