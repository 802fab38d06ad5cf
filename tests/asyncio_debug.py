"""pytest plugin for the asyncio debug-mode run: asyncio's own complaints fail the test.

``make test-debug`` runs the whole suite with ``PYTHONASYNCIODEBUG=1 -p tests.asyncio_debug``.
In debug mode both loops (the stdlib's and uvloop) log a warning for every callback that holds
the loop longer than ``slow_callback_duration`` (``Executing <Handle ...> took 0.2 seconds``),
and any loop logs an error for a future or task whose exception nobody retrieved. Those are log
records, not Python warnings, so ``filterwarnings = error`` does not see them: this plugin
collects them from the ``asyncio`` logger and turns them into a test error, after a garbage
collection at the end of each test so that a forgotten future is reported by the test that
dropped it.

Load tests (marked ``@pytest.mark.load``) run hundreds of clients *and* the server on one loop
on purpose. Debug mode's own overhead (a traceback captured for every handle and future, the
slow-callback timing of every step) plus the garbage collector walking that many objects makes an
ordinary step of theirs cross the default 0.1 s now and then, without any blocking call in them.
For those tests a slow callback fails only above :data:`LOAD_SLOW_CALLBACK` seconds (a real
blocking call, e.g. hashing 16 MiB or a ``subprocess.run`` on the loop, still shows); "never
retrieved" always fails.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Generator

import pytest

#: What asyncio (and uvloop) say about a slow callback or an exception nobody retrieved.
COMPLAINTS = re.compile(r"never retrieved|^Executing .* took \d")
#: How long a slow callback took, from asyncio's message ("... took 0.125 seconds").
TOOK = re.compile(r"^Executing .* took (\d+(?:\.\d+)?) seconds")
#: The slow-callback threshold for tests marked ``load`` (see the module docstring).
LOAD_SLOW_CALLBACK = 0.5


class _Complaints(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if COMPLAINTS.search(message):
            self.found.append(message.splitlines()[0])


_handler = _Complaints()


def _tolerated(message: str, item: pytest.Item) -> bool:
    """A load test's slow callback under :data:`LOAD_SLOW_CALLBACK` (see the module docstring)."""
    took = TOOK.match(message)
    return (
        took is not None
        and item.get_closest_marker("load") is not None
        and float(took.group(1)) < LOAD_SLOW_CALLBACK
    )


def pytest_configure(config: pytest.Config) -> None:
    """Listen to the ``asyncio`` logger for the whole session."""
    logging.getLogger("asyncio").addHandler(_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop listening."""
    logging.getLogger("asyncio").removeHandler(_handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """After the test's own teardown: collect garbage, then fail on what asyncio complained of."""
    result = yield
    gc.collect()
    found, _handler.found = [m for m in _handler.found if not _tolerated(m, item)], []
    if found:
        pytest.fail("asyncio complained in debug mode:\n  " + "\n  ".join(found), pytrace=False)
    return result
