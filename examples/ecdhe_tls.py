"""The "ECDHE for TLS" guide, runnable as is: ``python examples/ecdhe_tls.py``.

Prints the guide's three sections with live values (the same as ``python -m ecdhe_async demo``):

1. a basic ECDHE key exchange between two asyncio tasks, and a man in the middle against it;
2. a real TLS server and client on 127.0.0.1 (temporary self-signed certificate);
3. how ECDHE works in TLS, annotated with a traced TLS 1.3 and TLS 1.2 handshake.

Nothing listens beyond loopback and nothing is left behind: the certificate lives in a temporary
directory that is removed at the end. Keys are shown as fingerprints only.
"""

from __future__ import annotations

import sys

from ecdhe_async.guide.demo import demo_main
from ecdhe_async.loops import run


def main() -> int:
    """Run the three sections on the best available event loop (uvloop if installed)."""
    try:
        run(demo_main(sys.stdout))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
