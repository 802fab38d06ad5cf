"""Client contexts built once per settings and reused, built off the event loop.

Building a client context costs milliseconds (19 ms here, most of it parsing the system CA store
in ``load_default_certs``), and it is pure: the same TLS settings give the same context. So
:func:`cached_client_context` builds each one once, in a worker thread (``asyncio.to_thread``,
so the loop keeps serving while OpenSSL reads files), and every later ``connect()`` with equal
settings shares it. OpenSSL's ``SSL_CTX`` is safe to share between connections and threads.

The cache key is the settings' TLS part as JSON, plus what JSON hides or the context reads from
elsewhere: the key password and, with ``allow_keylog``, ``SSLKEYLOGFILE``. Files are read when the
context is built: after replacing a certificate, CA or key file under the same name, call
:func:`clear_context_cache` (or pass new settings). The cache holds at most
:data:`MAX_CACHED` contexts, least recently used first out.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections import OrderedDict
from typing import Final

from .settings import TLSSettings
from .tls import client_context

__all__ = ["MAX_CACHED", "cached_client_context", "clear_context_cache"]

#: Distinct client settings whose contexts are kept.
MAX_CACHED: Final = 16

_Key = tuple[str, str | None, str | None]
_cache: OrderedDict[_Key, ssl.SSLContext] = OrderedDict()
_lock = threading.Lock()


def _key(tls: TLSSettings) -> _Key:
    password = tls.key_password.get_secret_value() if tls.key_password is not None else None
    keylog_env = os.environ.get("SSLKEYLOGFILE") if tls.allow_keylog else None
    return tls.model_dump_json(), password, keylog_env


def _get_or_build(key: _Key, tls: TLSSettings) -> ssl.SSLContext:
    with _lock:  # one build per key even when several connect() calls miss at once
        ctx = _cache.get(key)
        if ctx is None:
            ctx = _cache[key] = client_context(tls)
            while len(_cache) > MAX_CACHED:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        return ctx


async def cached_client_context(tls: TLSSettings) -> ssl.SSLContext:
    """The client context for *tls*: from the cache, else built once in a worker thread."""
    key = _key(tls)
    with _lock:
        ctx = _cache.get(key)
        if ctx is not None:
            _cache.move_to_end(key)
            return ctx
    return await asyncio.to_thread(_get_or_build, key, tls)


def clear_context_cache() -> None:
    """Forget every cached context (e.g. after replacing certificate files in place)."""
    with _lock:
        _cache.clear()
