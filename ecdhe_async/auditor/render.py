"""Rendering an :class:`~ecdhe_async.auditor.report.AuditReport`: the table, JSON, progress.

The table is for people: one aligned row per probe under its section, a mark for what the answer
means (✓ fine, ✗ a non-forward-secret path, ! a warning, · neutral, ? not tested) and the verdict
as the last line. Colour only on a terminal (and never with ``NO_COLOR`` set); the progress
indicator likewise writes to a terminal only, on one line it clears when done.
"""

from __future__ import annotations

import json
import os
from typing import Final, TextIO

from .report import AuditReport, Finding, ProbeResult, summarize

__all__ = ["Progress", "render_json", "render_table"]

_MARKS: Final[dict[Finding, str]] = {
    "ok": "✓",
    "fail": "✗",
    "warn": "!",
    "info": "·",
    "not_tested": "?",
}
_COLOURS: Final[dict[Finding, str]] = {
    "ok": "32",
    "fail": "31",
    "warn": "33",
    "info": "0",
    "not_tested": "35",
}
_OUTCOMES: Final = {
    "accepted": "accepted",
    "refused": "refused",
    "not_tested": "not tested",
    "error": "no answer",
}


def use_colour(stream: TextIO) -> bool:
    """Colour for a terminal only, unless ``NO_COLOR`` is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _paint(text: str, finding: Finding, colour: bool) -> str:
    return f"\x1b[{_COLOURS[finding]}m{text}\x1b[0m" if colour else text


def render_table(report: AuditReport, *, colour: bool = False) -> str:
    """The report as an aligned table ending with the verdict line."""
    lines = [
        f"audit of {report.address}"
        + (
            f" (SNI {report.servername})"
            if report.servername and report.servername != report.host
            else ""
        )
    ]
    if report.error is not None and not report.probes:
        lines.append(_paint(report.verdict, "fail", colour))
        return "\n".join(lines) + "\n"
    width = max((len(p.name) for p in report.probes), default=0)
    outcome_width = max(len(v) for v in _OUTCOMES.values())
    section = None
    for probe in report.probes:
        if probe.section != section:
            section = probe.section
            lines.append("")
            lines.append(section)
        lines.append(_row(probe, width, outcome_width, colour))
    lines.append("")
    if report.not_tested:
        lines.append(f"not tested here: {len(report.not_tested)} probe(s) — see '?' rows")
    if report.warnings:
        lines.append("warnings: " + summarize(p.problem for p in report.warnings))
    lines.append(f"finished in {report.duration:.1f} s (probes made with {report.openssl})")
    finding: Finding = "fail" if report.exit_code else "ok"
    lines.append(_paint(report.verdict, finding, colour))
    return "\n".join(lines) + "\n"


def _row(probe: ProbeResult, width: int, outcome_width: int, colour: bool) -> str:
    mark = _paint(_MARKS[probe.finding], probe.finding, colour)
    outcome = _OUTCOMES[probe.outcome]
    return f"  {mark} {probe.name:<{width}}  {outcome:<{outcome_width}}  {probe.detail}"


def render_json(report: AuditReport) -> str:
    """The report as JSON (the same data as the table, plus verdict and exit code)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


class Progress:
    """A one-line ``[done/total]`` indicator on *stream*, drawn only when it is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[Kauditing… [{done}/{total}]")
            self.stream.flush()

    def clear(self) -> None:
        """Erase the indicator line."""
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
