"""Access log and JSON lines from real connections; peer-controlled text escaped and bounded."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from ecdhe_async._refusals import RefusalLog
from ecdhe_async.events import ConnectionClosed, HandshakeFailed
from ecdhe_async.logs import MAX_PEER_TEXT, JSONFormatter, escape

from .conftest import PKI, running_server, s_client, s_client_echo, server_settings
from .eventwatch import EventWatch
from .netutil import log_watch
from .test_cli import SERVE, server_process
from .test_events import REFUSED_CLIENTS, echo_once

EVIL_SNI = "evil host\x1b[31m\nsni=forged"


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Lines that the ``ecdhe_async`` loggers write at DEBUG and above, through *formatter*."""
    stream = io.StringIO()
    with log_watch() as watch:
        yield stream
    stream.write("".join(formatter.format(r) + "\n" for r in watch.records))


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.asyncio
async def test_json_lines_carry_connection_fields(pki: PKI) -> None:
    with captured(JSONFormatter()) as out:
        async with running_server(server_settings(pki)) as server:
            watch = EventWatch(server)  # subscribed after the access log: it has written
            await echo_once(server.port, pki, b"hello")
            await watch.wait(ConnectionClosed)
            await s_client(server.port, *REFUSED_CLIENTS[0][1])
            await watch.wait(HandshakeFailed)
    lines = json_lines(out)
    (closed,) = [x for x in lines if x.get("event") == "connection_closed"]
    assert closed["level"] == "info"
    assert closed["logger"] == "ecdhe_async.access"
    assert closed["msg"].startswith("closed 127.0.0.1:")
    datetime.fromisoformat(closed["ts"])  # ISO 8601
    assert closed["ts"].endswith("Z")
    assert closed["peer"].startswith("127.0.0.1:")
    assert (closed["version"], closed["group"], closed["sni"]) == ("TLSv1.3", "X25519", "localhost")
    assert closed["cipher"].startswith("TLS_")
    assert (closed["bytes_in"], closed["bytes_out"], closed["cause"]) == (5, 5, "peer_close")
    assert closed["duration_ms"] >= 0
    assert closed["handshake_ms"] > 0
    (refused,) = [x for x in lines if x.get("event") == "handshake_failed"]
    assert (refused["reason"], refused["alert_sent"]) == ("no_shared_group", True)
    assert refused["level"] == "info"
    assert refused["detail"] == "NO_SUITABLE_KEY_SHARE"
    assert "groups ffdhe2048" in refused["offer"]


@pytest.mark.asyncio
async def test_peer_controlled_sni_is_escaped_in_text_and_exact_in_json(pki: PKI) -> None:
    text_fmt = logging.Formatter("%(message)s")
    with captured(text_fmt) as text, captured(JSONFormatter()) as js:
        async with running_server(server_settings(pki)) as server:
            watch = EventWatch(server)
            await s_client_echo(
                server.port, "-servername", EVIL_SNI, send=b"x\n", expect=b"x"
            )  # conftest passes -servername localhost first; the later one wins
            (closed,) = await watch.wait(ConnectionClosed)
            assert closed.sni == EVIL_SNI  # what the client really sent
    (line,) = [x for x in text.getvalue().splitlines() if x.startswith("closed ")]
    assert "sni=evil\\x20host\\x1b[31m\\x0asni=forged cause=peer_close" in line
    assert "\x1b" not in text.getvalue()
    (record,) = [x for x in json_lines(js) if x.get("event") == "connection_closed"]
    assert record["sni"] == EVIL_SNI  # JSON encodes it safely, one line per record
    assert len(js.getvalue().splitlines()) == len(json_lines(js))


@pytest.mark.asyncio
async def test_access_log_off_keeps_refusals_visible(pki: PKI) -> None:
    with captured(logging.Formatter("%(levelname)s %(message)s")) as out:
        async with running_server(server_settings(pki, access_log=False)) as server:
            watch = EventWatch(server)
            await echo_once(server.port, pki)
            await watch.wait(ConnectionClosed)
            await s_client(server.port, *REFUSED_CLIENTS[2][1])
            await watch.wait(HandshakeFailed)
    text = out.getvalue()
    assert "closed 127.0.0.1" not in text
    (line,) = [x for x in text.splitlines() if "handshake failed from" in x]  # one line each
    assert line.startswith("INFO handshake failed from 127.0.0.1:"), line
    assert "protocol_version: UNSUPPORTED_PROTOCOL (offered: versions TLSv1.1;" in line, line


def test_refusal_log_is_the_subscriber_for_failures() -> None:
    """Refusals: rate-limited INFO lines with a summary; a client gone: DEBUG, every one; a
    handshake that failed the forward-secrecy check: nothing here (policy logged it at ERROR)."""
    logger = logging.getLogger("ecdhe_async.test_refusal_events")
    refusals = RefusalLog(logger, "TLSv1.2+")
    refusals.burst, refusals.window = 2, 3600.0
    refused = HandshakeFailed(("10.0.0.1", 1), "handshake", "no_shared_cipher", True, "X", 0.001)
    gone = HandshakeFailed(("10.0.0.2", 2), "waiting", "timeout", False, "TimeoutError", 0.0)
    not_fs = HandshakeFailed(None, "handshake", "not_forward_secret", True, "N", 0.001)
    with log_watch("ecdhe_async.test_refusal_events") as watch:

        async def flood() -> None:
            for event in (refused, gone, gone, not_fs, refused, refused, refused):
                refusals(event)
            refusals.close()

        asyncio.run(flood())
    info = [r.getMessage() for r in watch.records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in watch.records if r.levelno == logging.DEBUG]
    assert len(info) == 3, info
    assert info[0].startswith("handshake failed from 10.0.0.1:1: no_shared_cipher: X (offered")
    assert info[-1] == "… and 2 more handshake failures in the last 3600 s"
    assert debug == ["handshake failed from 10.0.0.2:2: timeout (TimeoutError, waiting)"] * 2


def test_escape_bounds_and_neutralises() -> None:
    assert escape("api.example.com") == "api.example.com"
    assert escape(None) == "-"
    assert escape('a"b\\c d\te') == "a\\x22b\\x5cc\\x20d\\x09e"
    assert escape("caf\u00e9\u202e") == "caf\\xe9\\u202e"
    long = escape("x" * 10_000)
    assert long == "x" * MAX_PEER_TEXT + "..."


def test_json_formatter_exceptions_and_odd_values() -> None:
    record = logging.LogRecord(
        "ecdhe_async.x", logging.ERROR, __file__, 1, "boom %s", ("\n",), None
    )
    try:
        raise ValueError("inner")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.peer = object()  # anything: encoded with str()
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["msg"] == "boom \n"
    assert "ValueError: inner" in data["exc"]
    assert data["level"] == "error"


@pytest.mark.asyncio
async def test_serve_cli_json_logs_and_no_access_log(pki: PKI, tmp_path: Any) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ECDHE_ASYNC_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    argv = [*SERVE, "--log-format", "json", "--no-access-log"]
    argv += ["--certfile", str(pki.server_cert), "--keyfile", str(pki.server_key)]
    async with server_process(argv, env) as srv:
        await s_client_echo(srv.port, "-CAfile", str(pki.ca), send=b"hi\n", expect=b"hi")
        await s_client(srv.port, *REFUSED_CLIENTS[1][1])
        code = await asyncio.wait_for(srv.stop(), 30)
    assert code == 0
    records = [json.loads(line) for line in srv.lines]  # every line is one JSON object
    assert any(r["msg"].startswith("listening on") for r in records)
    assert not [r for r in records if r.get("event") == "connection_closed"]
    (refused,) = [r for r in records if r.get("event") == "handshake_failed"]
    assert refused["reason"] == "no_shared_cipher"
