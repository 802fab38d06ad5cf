"""``ecdhe-async bench``: a load generator for any TLS server (handshakes/s, MB/s, latency).

Two modes, both against ``HOST PORT``:

``handshakes``
    *concurrency* workers, each repeating: TCP connect, full TLS handshake (a fresh session every
    time: no resumption), send a 16-byte line, read the 16-byte echo, close (close_notify, then
    wait for the connection to end). Reports handshakes/s and the latency of connect→echo.
``throughput``
    *concurrency* connections, each streaming 64 KiB blocks with a bounded window (at most
    *window* blocks sent and not yet echoed) and reading the echo back. Reports MB/s echoed and
    the round-trip time of each block.

Every run is bounded: a warm-up, then a measurement window that ends after *duration* seconds
or *count* operations (handshakes or blocks), whichever comes first; every network operation has
a timeout. The client context comes from :func:`ecdhe_async.tls.client_context` (ECDHE groups
only, certificate verified unless ``--insecure``). The 16-byte payload is a palindromic line so
that a line-reversing echo (``openssl s_server -rev``) answers with the same bytes.

The package is in three parts: :mod:`.measure` (configuration, counters, results: no I/O),
:mod:`.load` (the load generator: :func:`run_load` and :func:`probe`) and :mod:`.command` (the
``bench`` command; its options live in :mod:`ecdhe_async.cli`). ``benchmarks/run.py`` drives
:func:`run_load` in a separate, CPU-pinned process and reads :class:`Snapshot` marks at the edges
of the measurement window.
"""

from .command import bench_context as bench_context
from .command import main as main
from .command import raise_nofile_limit as raise_nofile_limit
from .load import probe as probe
from .load import run_load as run_load
from .measure import PAYLOAD as PAYLOAD
from .measure import LoadConfig as LoadConfig
from .measure import LoadResult as LoadResult
from .measure import Mode as Mode
from .measure import Snapshot as Snapshot
from .measure import percentile as percentile

__all__ = [
    "PAYLOAD",
    "LoadConfig",
    "LoadResult",
    "Mode",
    "Snapshot",
    "bench_context",
    "main",
    "percentile",
    "probe",
    "raise_nofile_limit",
    "run_load",
]
