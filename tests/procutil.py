"""Test helpers around processes and many sockets: a TLSServer in a child process, silent peers.

:class:`ServerProcess` runs a :class:`~ecdhe_async.server.TLSServer` in a fresh child process
(same loop kind as the test), driven over its stdin/stdout, for what must be measured or broken
apart from the test's own process: its RSS, its file-descriptor limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

from .conftest import PKI

#: The repository's root (the child process imports ``ecdhe_async`` from there).
ROOT = str(Path(__file__).resolve().parent.parent)


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: the kind of the running loop."""
    return "uvloop" if "uvloop" in type(asyncio.get_running_loop()).__module__ else "asyncio"


async def open_silent(port: int, n: int) -> list[socket.socket]:
    """*n* TCP connections that never send a byte (100 connects in flight at a time)."""
    loop = asyncio.get_running_loop()
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for sock in socks:
            sock.setblocking(False)
        async with asyncio.timeout(30):
            for start in range(0, n, 100):
                await asyncio.gather(
                    *(loop.sock_connect(s, ("127.0.0.1", port)) for s in socks[start : start + 100])
                )
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


#: The child process: serve, answer ``probe`` (fds exhausted? RSS, stats) and ``quit``.
SERVER_PROCESS = r"""
import asyncio, json, logging, os, resource, sys
from pathlib import Path
from ecdhe_async.server import TLSServer
from ecdhe_async.settings import ServerSettings

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
loop_name, pki_dir, headroom, options = sys.argv[1:5]
pki_dir, headroom = Path(pki_dir), int(headroom)

status = open("/proc/self/status")  # kept open: must work even when out of fds

def rss():
    status.seek(0)
    return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS:"))

async def main():
    settings = ServerSettings.load(
        host="127.0.0.1", port=0, idle_timeout=0,
        tls={"certfile": pki_dir / "server.pem", "keyfile": pki_dir / "server-key.pem"},
        **json.loads(options),
    )
    server = TLSServer(settings)
    await server.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    limit = len(os.listdir("/proc/self/fd")) + headroom
    if headroom:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    print(json.dumps({"port": server.port, "limit": limit}), flush=True)
    while command := (await reader.readline()).strip():
        if command == b"probe":
            try:
                os.close(os.open(os.devnull, os.O_RDONLY))
                exhausted = False
            except OSError:
                exhausted = True
            state = {"exhausted": exhausted, "rss": rss(), **server.stats.as_dict()}
            print(json.dumps(state), flush=True)
        elif command == b"quit":
            break
    await server.aclose(grace=0)
    transport.close()

if loop_name == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


class ServerProcess:
    """A TLSServer in a child process (same loop kind as the test), driven over stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.proc = proc
        self.port = 0
        self.log = bytearray()
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._stderr = proc.stderr
        self._log_task = asyncio.create_task(self._collect_log())

    async def _collect_log(self) -> None:
        while chunk := await self._stderr.read(65536):
            self.log += chunk

    @classmethod
    @contextlib.asynccontextmanager
    async def run(cls, pki: PKI, *, headroom: int = 0, **options: Any) -> AsyncIterator[Self]:
        """Start the child (*options* are ServerSettings fields, *headroom* caps its fds at
        what it has open plus that many, 0 = no cap); ``quit`` it, checking it exits 0."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVER_PROCESS,
            loop_name(),
            str(pki.dir),
            str(headroom),
            json.dumps(options),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        child = cls(proc)
        try:
            hello = json.loads(await asyncio.wait_for(child._stdout.readline(), 20))
            child.port = hello["port"]
            yield child
            child._stdin.write(b"quit\n")
            await child._stdin.drain()
            await asyncio.wait_for(proc.wait(), 20)
            await asyncio.wait_for(child._log_task, 5)
            assert proc.returncode == 0, child.log[-2000:].decode(errors="replace")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            child._log_task.cancel()
            child._stdin.close()

    async def ask(self, command: bytes = b"probe") -> dict[str, Any]:
        """Send *command*; return the child's JSON answer (``exhausted``, ``rss``, its stats)."""
        self._stdin.write(command + b"\n")
        await self._stdin.drain()
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(self._stdout.readline(), 10))
        return reply
