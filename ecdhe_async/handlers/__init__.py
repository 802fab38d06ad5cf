"""Pluggable protocol handlers: the ``Handler`` protocol, the built-ins and the resolver.

A handler is an async callable taking a :class:`~ecdhe_async.connection.Connection`; the
framework owns the socket, TLS, limits and shutdown, and closes the connection when the handler
returns or raises. Select one by built-in name (``echo``, ``lines``, ``frames``), by import path
``"package.module:attr"``, or pass the object itself. A class is instantiated once per server:
with ``cls.from_settings(settings)`` if it has that classmethod, else with no arguments.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from ..errors import ConfigError
from .builtin import EchoHandler, FrameEchoHandler, LineEchoHandler

if TYPE_CHECKING:
    from ..connection import Connection
    from ..settings import ServerSettings

__all__ = [
    "BUILTIN_HANDLERS",
    "EchoHandler",
    "FrameEchoHandler",
    "Handler",
    "HandlerSpec",
    "LineEchoHandler",
    "resolve_handler",
]


@runtime_checkable
class Handler(Protocol):
    """Anything ``await handler(conn)`` works on."""

    def __call__(self, conn: Connection, /) -> Awaitable[None]: ...


#: What a server accepts as its handler: a built-in name (``"echo"``), an import path
#: (``"package.module:attr"``), a handler class (instantiated once per server), or the async
#: callable itself. :func:`resolve_handler` turns any of them into a :class:`Handler`.
HandlerSpec: TypeAlias = str | Handler | type[Handler]

BUILTIN_HANDLERS: dict[str, type] = {
    "echo": EchoHandler,
    "lines": LineEchoHandler,
    "frames": FrameEchoHandler,
}


def resolve_handler(spec: HandlerSpec, settings: ServerSettings | None = None) -> Handler:
    """Turn a name, an import path, a class or a callable into a ready handler.

    Raises :class:`~ecdhe_async.errors.ConfigError` (a ``ValueError``) with a one-line reason:
    unknown name, module not importable, attribute missing, object not an async callable. The
    command line prints it as one line with exit code 2, like uvicorn's "Error loading ASGI app".
    Exceptions raised by the application's own code while it is imported or instantiated
    propagate unchanged: their traceback is the useful part.
    """
    obj = _load(spec) if isinstance(spec, str) else spec
    if inspect.isclass(obj):
        factory = getattr(obj, "from_settings", None)
        obj = factory(settings) if factory is not None and settings is not None else obj()
    if not callable(obj):
        raise ConfigError(
            f"handler {spec!r} is not callable (it is {_kind(obj)}): "
            "a handler is an async callable taking a Connection"
        )
    # A coroutine function (also behind functools.partial), or an object whose __call__ is one.
    call = getattr(obj, "__call__", None)  # noqa: B004 - we want the method itself
    if not (inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(call)):
        raise ConfigError(
            f"handler {spec!r} must be an async callable taking a Connection "
            f"('async def handler(conn)'), not {_kind(obj)}"
        )
    handler: Handler = obj
    return handler


def _load(spec: str) -> Any:
    """The object a built-in name or an import path ``"package.module:attr"`` names."""
    if spec in BUILTIN_HANDLERS:
        return BUILTIN_HANDLERS[spec]
    if ":" not in spec:
        close = difflib.get_close_matches(spec.lower(), BUILTIN_HANDLERS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown handler {spec!r}: {hint}use one of {', '.join(BUILTIN_HANDLERS)} "
            "or an import path 'package.module:attr'"
        )
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(
            f"handler {spec!r}: an import path needs both parts, 'package.module:attr'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"handler {spec!r}: cannot import {module_name!r}: {exc} "
            "(import paths resolve from the current directory and sys.path)"
        ) from None
    except SyntaxError as exc:
        raise ConfigError(
            f"handler {spec!r}: cannot import {module_name!r}: {exc.msg} "
            f"({exc.filename}, line {exc.lineno})"
        ) from None
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ConfigError(f"handler {spec!r}: {module_name!r} has no {attr!r}") from None
    return obj


def _kind(obj: object) -> str:
    """'a str', 'a plain function', ... for error messages."""
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "a plain (synchronous) function"
    article = "an" if type(obj).__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {type(obj).__name__}"
