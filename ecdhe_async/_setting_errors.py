"""One-line messages for bad settings: the field, the value, where it came from, what is allowed.

pydantic reports a location and a message; this module adds what a person needs to fix it:
which source held the value (an environment variable by name, or the TOML file), the closest
known key for a typo ("did you mean 'groups'?"), how to give a missing key password, and a
warning for variables with our prefix that name no setting. Secrets are never echoed.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsError

__all__ = ["Origin", "format_validation_error", "key_password_hint", "unknown_env_vars"]

_SECRET_FIELDS = frozenset({"key_password"})
_MODEL_FIELDS = frozenset({"tls"})


def _is_plain(value: object) -> bool:
    """A scalar, a path, or a list/tuple of scalars: safe and short enough to echo."""
    if isinstance(value, list | tuple):
        return all(isinstance(v, str | int | float | bool) for v in value)
    return isinstance(value, str | int | float | bool | Path)


def key_password_hint(prefix: str = "ECDHE_ASYNC_") -> str:
    """The ways to give an encrypted key's password, for error messages."""
    flag = "`ecdhe-async serve --key-password-env VAR` (VAR holds the password), "
    return (
        f"give it with {flag if prefix == 'ECDHE_ASYNC_' else ''}the {prefix}TLS__KEY_PASSWORD "
        "environment variable, or tls.key_password in the config file"
    )


class Origin:
    """Where a setting came from, for error messages: an argument, a variable or a file.

    Precedence decides: explicit arguments beat the environment, which beats the TOML file.
    """

    def __init__(
        self, cls: type[BaseSettings], explicit: dict[str, Any], path: Path | None, toml: Any
    ) -> None:
        self.cls = cls
        self.explicit = explicit
        self.path = path
        self.toml = toml
        self.prefix = str(cls.model_config.get("env_prefix", ""))

    def of(self, loc: Sequence[str]) -> str:
        """`` (from ENV_VAR)``, `` (in FILE)`` or ``""`` (an argument, or a default)."""
        if not loc or _lookup(self.explicit, loc):
            return ""
        environ = {k.upper() for k in os.environ}
        for end in range(len(loc), 0, -1):  # ECDHE_ASYNC_TLS__GROUPS, then ECDHE_ASYNC_TLS
            name = self.prefix + "__".join(loc[:end]).upper()
            if name in environ:
                return f" (from {name})"
        if self.path is not None and _lookup(self.toml, loc):
            return f" (in {self.path})"
        return ""

    def unknown(self, loc: Sequence[str]) -> str:
        """The message for an unknown key: where it is, and the closest known name."""
        model: type[BaseModel] = self.cls
        for part in loc[:-1]:
            field = model.model_fields.get(part)
            if field is None or not _is_model(field.annotation):
                break
            model = field.annotation  # type: ignore[assignment]
        close = difflib.get_close_matches(loc[-1].lower(), model.model_fields, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "check the spelling"
        return f"invalid setting {'.'.join(loc)}{self.of(loc)}: unknown setting; {hint}"

    def settings_error(self, exc: SettingsError) -> str:
        """pydantic-settings says 'error parsing value for field "tls"': name the variable."""
        match = re.search(r'field "([^"]+)"', str(exc))
        if match and "Env" in str(exc):
            name = self.prefix + match.group(1).upper()
            return f"invalid setting {match.group(1)} (from {name}): not valid JSON"
        return f"invalid setting: {exc}"


def _lookup(data: Any, loc: Sequence[str]) -> bool:
    """Whether the nested dict *data* holds the key path *loc*."""
    for part in loc:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def unknown_env_vars(
    cls: type[BaseSettings], family: Sequence[type[BaseSettings]]
) -> list[tuple[str, str]]:
    """Variables with *cls*'s prefix that name no setting or table, each with a "did you mean".

    Not errors, unlike unknown keys in a file or in arguments: other tools may share the prefix.
    The prefixes of the other settings classes in *family* (``ECDHE_ASYNC_CLIENT_``) and their
    ``config_env`` variables (``ECDHE_ASYNC_CONFIG``) are known.
    """
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    others = [str(sub.model_config.get("env_prefix", "")).upper() for sub in family]
    known = {str(getattr(sub, "config_env", "")).upper() for sub in family}
    known.update(prefix + name.upper() for name in cls.model_fields)
    found = []
    for var in sorted(os.environ):
        upper = var.upper()
        # ECDHE_ASYNC_TLS__GRUPS names a known table: pydantic reports the key inside as an error.
        if not upper.startswith(prefix) or upper.partition("__")[0] in known:
            continue
        if any(o != prefix and o.startswith(prefix) and upper.startswith(o) for o in others):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1)
        found.append((var, f" (did you mean {close[0]}?)" if close else ""))
    return found


def format_validation_error(exc: ValidationError, origin: Origin | None = None) -> str:
    """One line per error: ``invalid setting FIELD=VALUE: what is allowed``. Secrets are masked.

    With *origin*, a value from the environment or a file says which variable or file it came
    from, and an unknown key gets a "did you mean" suggestion.
    """
    lines = []
    for err in exc.errors(include_url=False):
        parts = [str(part) for part in err["loc"]]
        loc = ".".join(parts)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            if origin is not None and parts:
                lines.append(origin.unknown(parts))
            else:
                lines.append(f"invalid setting {loc}: unknown setting (check the spelling)")
            continue
        value = err.get("input")
        cause = (err.get("ctx") or {}).get("error")
        # A cross-field check (settings' _FieldError) names the field at fault and its value.
        field = getattr(cause, "field", None) if isinstance(cause, ValueError) else None
        if isinstance(field, str):
            loc = f"{loc}.{field}" if loc else field
            value = getattr(cause, "value", None)
            msg = str(cause)
        secret = _SECRET_FIELDS.intersection(loc.split("."))
        if secret and value is None and "a password is required" in msg:
            msg = f"{msg}: {key_password_hint(origin.prefix if origin else 'ECDHE_ASYNC_')}"
        if value is not None and secret:
            shown = "'**********'"
        elif value is None and isinstance(field, str):
            shown = "None"
        elif loc.rpartition(".")[2] in _MODEL_FIELDS or not _is_plain(value):
            shown = None  # (input for) a whole table may hold secrets: name the field only
        else:
            shown = repr(str(value)) if isinstance(value, Path) else repr(value)
        target = f"{loc or 'settings'}={shown}" if shown is not None else (loc or "settings")
        where = origin.of(loc.split(".")) if origin is not None and loc else ""
        lines.append(f"invalid setting {target}{where}: {msg}")
    return "\n".join(lines)
