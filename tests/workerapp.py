"""Handlers loaded by import path in the worker-process tests (``tests.workerapp:...``)."""

from __future__ import annotations

import os
from typing import Self

from ecdhe_async.connection import Connection
from ecdhe_async.settings import ServerSettings


async def pid_echo(conn: Connection) -> None:
    """Say which process serves this connection (``pid NNN``), then echo everything."""
    await conn.send(b"pid %d\n" % os.getpid())
    while data := await conn.read():
        await conn.send(data)


class DiesAtStart:
    """A handler whose construction kills the worker process before it is ready."""

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Self:
        os._exit(3)

    async def __call__(self, conn: Connection) -> None:
        """Never reached."""
