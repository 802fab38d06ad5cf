"""The echo server: ``python examples/echo_server.py [--config FILE]`` (what ``make run`` runs).

Defaults: 127.0.0.1:8443, the echo handler, a development certificate generated once in the
per-user cache directory. Everything else comes from the usual sources, e.g.
``ECDHE_ASYNC_PORT=9000 python examples/echo_server.py`` or ``--config config/server.toml``.
Stop it with Ctrl-C (a second Ctrl-C stops at once) or SIGTERM.

Try it with ``python examples/echo_client.py`` or
``openssl s_client -connect 127.0.0.1:8443 -CAfile ~/.cache/ecdhe_async/dev-cert.pem``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ecdhe_async import ConfigError, ServerSettings
from ecdhe_async.runner import run_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    args = parser.parse_args()
    # Logging first, so that warnings about the settings come out like every other line.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    try:
        settings = ServerSettings.load(args.config)
    except ConfigError as exc:
        print(f"echo_server: {exc}", file=sys.stderr)
        return 2
    logging.getLogger().setLevel(settings.log_level.upper())
    try:
        run_server(settings)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # e.g. the port is already in use
        print(f"echo_server: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
