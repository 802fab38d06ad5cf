"""How ECDHE works in a TLS handshake: a walkthrough for people, optionally annotated live.

Theory of operation
-------------------
:func:`explain_text` is the static walkthrough (TLS 1.3 step by step, the TLS 1.2 variant, why
this gives forward secrecy and what would break it). :func:`explain_main` prints it; with
``live=True`` it first runs two real loopback handshakes (our :class:`~ecdhe_async.TLSServer` and
our :func:`~ecdhe_async.connect`, one TLS 1.3 and one capped at TLS 1.2) and annotates every step
with what actually crossed the wire.

The work is split by job, each module testable on its own:

- :mod:`~ecdhe_async.guide.iana` and :mod:`~ecdhe_async.guide.wire`: TLS registry values and
  sans-IO parsers for the handshake messages (pure; group names come from
  :mod:`ecdhe_async.groups`);
- :mod:`~ecdhe_async.guide.trace`: the live handshakes and the ``_msg_callback`` trace (sockets);
- :mod:`~ecdhe_async.guide.render`: the walkthrough's text, its layout and colour (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from .render import Style, banner, render, use_color
from .trace import HandshakeReport, trace_handshakes

__all__ = ["explain_ecdhe_in_tls", "explain_main", "explain_text"]

TITLE = "How ECDHE works in TLS"


def explain_text() -> str:
    """The static walkthrough (no colour, no live values)."""
    return render()


def explain_ecdhe_in_tls() -> str:
    """How ECDHE works in a TLS handshake, as text: the guide's name for :func:`explain_text`."""
    return explain_text()


async def explain_main(
    out: TextIO,
    *,
    live: bool = False,
    color: bool | None = None,
) -> None:
    """Print the walkthrough to *out*; with *live*, run loopback handshakes and annotate it.

    *color*: ``None`` = auto (a terminal and no ``NO_COLOR``), ``True``/``False`` force it.
    """
    style = Style(use_color(out, color))
    reports: Sequence[HandshakeReport] = ()
    if live:
        reports = await trace_handshakes()
    out.write(banner(TITLE, style))
    out.write(render(reports, color=style.color))
    out.flush()
