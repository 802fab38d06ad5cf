"""examples/deploy/ stays in step with the settings (haproxy.cfg itself runs in test_haproxy)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ecdhe_async.settings import ServerSettings, TLSSettings

DEPLOY = Path(__file__).resolve().parent.parent / "examples" / "deploy"
FILES = ["kubernetes.yaml", "ecdhe-async.service", "haproxy.cfg"]


def env_names(text: str) -> set[str]:
    return set(re.findall(r"\b(ECDHE_ASYNC_[A-Z_]+)\b", text))


@pytest.mark.parametrize("name", FILES)
def test_every_environment_variable_is_a_setting(name: str) -> None:
    text = (DEPLOY / name).read_text()
    for var in env_names(text):
        field, _, nested = var.removeprefix("ECDHE_ASYNC_").lower().partition("__")
        if field == "config":
            continue  # the TOML file's path, not a field
        assert field in ServerSettings.model_fields, f"{name}: {var} is no setting"
        if nested:
            assert nested in TLSSettings.model_fields, f"{name}: {var} is no TLS setting"


def test_stop_timeouts_cover_a_graceful_stop() -> None:
    defaults = ServerSettings.model_fields
    needed = float(defaults["grace"].default) + float(defaults["shutdown_timeout"].default)
    k8s = (DEPLOY / "kubernetes.yaml").read_text()
    unit = (DEPLOY / "ecdhe-async.service").read_text()
    grace = re.search(r"terminationGracePeriodSeconds: (\d+)", k8s)
    stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE)
    assert grace
    assert stop
    assert int(grace.group(1)) > needed
    assert int(stop.group(1)) > needed
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "KillMode=mixed" in unit  # SIGTERM to the supervisor only; it stops the workers
    assert "subPath:" not in k8s  # subPath mounts never receive Secret updates
