"""The walkthrough's text and its rendering: the steps, the style, the live annotations.

:func:`render` lays out the static walkthrough (TLS 1.3 step by step, the TLS 1.2 variant, why
this gives forward secrecy and what would break it) and, given
:class:`~ecdhe_async.guide.trace.HandshakeReport` values, annotates each step with what crossed the
wire (``wire:``) or follows from it (``live:``). Pure text in, text out: no I/O.

Colour: ANSI escapes only when the stream is a terminal and ``NO_COLOR`` is not set to a
non-empty value (https://no-color.org); ``color=True``/``False`` overrides both
(:func:`use_color`, :class:`Style`).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

from .. import groups
from .iana import cipher_suite_name, group_name, signature_scheme_name, version_name
from .trace import HandshakeReport

__all__ = [
    "BREAKS_FORWARD_SECRECY",
    "FORWARD_SECRECY_TEXT",
    "TLS12_TEXT",
    "TLS13_STEPS",
    "Style",
    "banner",
    "fields",
    "render",
    "use_color",
]

_WIDTH: Final = 92


@dataclass(frozen=True, slots=True)
class _Step:
    title: str
    text: str
    on_the_wire: bool = True  # False: nothing of this step is sent (annotated "live:")


TLS13_STEPS: Final = (
    _Step(
        "ClientHello with key_share",
        "The client lists the groups it supports (supported_groups) and, to save a round trip, "
        "already sends a fresh ephemeral public key for its preferred group (key_share). The "
        "private half stays in the client's memory.",
    ),
    _Step(
        "ServerHello with the server's key_share",
        "The server picks a group that both sides allow, generates its own ephemeral key pair "
        "on it and answers with the public half. (Had the client sent no share for that group, "
        "the server would first ask for one with a HelloRetryRequest.)",
    ),
    _Step(
        "Both compute the shared secret",
        "Each side combines its own ephemeral private key with the other's public key and gets "
        "the same ECDHE shared secret. It never crosses the wire: an eavesdropper sees two "
        "public keys and cannot compute it.",
        on_the_wire=False,
    ),
    _Step(
        "Key schedule",
        "HKDF (RFC 8446 section 7.1) mixes the shared secret with a hash of the transcript into "
        "the handshake traffic keys; everything after ServerHello is encrypted. The application "
        "traffic keys are derived the same way, later in the schedule.",
        on_the_wire=False,
    ),
    _Step(
        "Certificate and CertificateVerify sign the transcript",
        "The server sends its certificate and signs the transcript hash, which covers both key "
        "shares, with its long-term key. A man in the middle cannot produce that signature over "
        "his own key shares. The long-term key only signs; it never encrypts a secret.",
    ),
    _Step(
        "Finished",
        "Each side sends an HMAC over the whole transcript, keyed from the key schedule: proof "
        "that both derived the same keys and saw the same messages. The ephemeral private keys "
        "are then thrown away.",
    ),
)

TLS12_TEXT: Final = (
    "TLS 1.2 runs the same exchange in other messages (ECDHE_ECDSA / ECDHE_RSA suites only): "
    "ServerKeyExchange carries the curve and the server's ephemeral public key, signed with the "
    "certificate's key; ClientKeyExchange carries the client's ephemeral public key. The shared "
    "secret becomes the premaster secret, and Finished messages confirm the handshake."
)

FORWARD_SECRECY_TEXT: Final = (
    "Someone who records the traffic today and steals the server's private key tomorrow still "
    "cannot decrypt it: that key only signed the handshake, and the ephemeral keys that could "
    "recompute the shared secret no longer exist. Every session's keys are independent."
)

BREAKS_FORWARD_SECRECY: Final = (
    (
        "static RSA key transport",
        "TLS 1.2 'RSA' suites (e.g. AES128-GCM-SHA256) encrypt the premaster secret to the "
        "server's long-term RSA key, so whoever gets that key later decrypts every recorded "
        "session. ecdhe_async allows ECDHE suites only.",
    ),
    (
        "long-lived ticket keys",
        "a TLS 1.2 session ticket holds the session's master secret encrypted under a ticket "
        "key that lives for hours or days; steal it and the sessions open up (TLS 1.3 psk_ke "
        "resumption would skip ECDHE entirely). ecdhe_async issues no tickets by default "
        "(OP_NO_TICKET, num_tickets = 0).",
    ),
    (
        "keylog files",
        "SSLKEYLOGFILE writes every session secret to disk for tools like Wireshark; anyone who "
        "reads the file decrypts the traffic. ecdhe_async ignores it unless allow_keylog = true, "
        "and then warns loudly.",
    ),
    (
        "reused 'ephemeral' keys",
        "one key pair reused across sessions is a static key in disguise. ecdhe_async sets "
        "OP_SINGLE_ECDH_USE and never offers finite-field groups.",
    ),
)


def use_color(out: TextIO, color: bool | None = None) -> bool:
    """Whether to emit ANSI colour: *color* if given, else a terminal and no ``NO_COLOR``."""
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty is not None and isatty())


class Style:
    """ANSI styling that is a no-op when ``color`` is False."""

    def __init__(self, color: bool) -> None:
        """Style with colour on or off."""
        self.color = color

    def _sgr(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def heading(self, text: str) -> str:
        """Bold."""
        return self._sgr("1", text)

    def step(self, text: str) -> str:
        """Bold cyan."""
        return self._sgr("1;36", text)

    def label(self, text: str) -> str:
        """Dim."""
        return self._sgr("2", text)

    def value(self, text: str) -> str:
        """Green."""
        return self._sgr("32", text)

    def warn(self, text: str) -> str:
        """Yellow."""
        return self._sgr("33", text)


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=indent)


def _section(title: str, style: Style, underline: str = "-") -> list[str]:
    return ["", style.heading(title), style.heading(underline * len(title))]


def banner(title: str, style: Style) -> str:
    """A top-level title underlined with ``=``: one block of text ending in a newline."""
    return "\n".join(_section(title, style, "=")).lstrip("\n") + "\n"


def fields(pairs: Sequence[tuple[str, str]], style: Style, indent: str = "     ") -> list[str]:
    """Aligned ``label  value`` lines (labels padded to the longest; long values wrapped)."""
    width = max((len(label) for label, _ in pairs), default=0)
    lines = []
    for label, value in pairs:
        room = max(_WIDTH - len(indent) - width - 2, 30)
        chunks = textwrap.wrap(value, room, break_on_hyphens=False) or [""]
        lines.append(f"{indent}{style.label(label.ljust(width))}  {style.value(chunks[0])}")
        pad = " " * (len(indent) + width + 2)
        lines += [f"{pad}{style.value(chunk)}" for chunk in chunks[1:]]
    return lines


def _names(codes: Iterable[int]) -> str:
    return ", ".join(group_name(c) for c in codes) or "(none)"


def _secret_size(name: str | None) -> str:
    group = groups.lookup(name) if name else None
    if group is None or group.secret_size is None:
        return "never on the wire, never printed"
    return f"{group.secret_size} bytes on {name}: never on the wire, never printed"


def _tls13_annotations(report: HandshakeReport) -> list[list[tuple[str, str]]]:
    """Wire facts per TLS 1.3 step (same order as TLS13_STEPS)."""
    w = report.wire
    if w is None:
        return [[] for _ in TLS13_STEPS]
    chosen = w.chosen_group
    server_share = [("server key share", str(w.server_key_share))] if w.server_key_share else []
    retry = [("HelloRetryRequest", group_name(w.retry_group))] if w.retry_group is not None else []
    cert = []
    if w.certificate_key_type:
        cert.append(("certificate key", f"{w.certificate_key_type} ({w.certificate_count} cert)"))
    if w.certificate_verify_scheme is not None:
        cert.append(("CertificateVerify", signature_scheme_name(w.certificate_verify_scheme)))
    finished = []
    if w.finished_size is not None:
        finished.append(("server Finished", f"{w.finished_size}-byte verify_data"))
    suite = cipher_suite_name(w.cipher_suite) if w.cipher_suite is not None else "?"
    return [
        [
            ("offered groups", _names(w.offered_groups)),
            ("key shares sent", ", ".join(map(str, w.client_key_shares)) or "(none)"),
            ("offered versions", ", ".join(version_name(v) for v in w.offered_versions)),
            ("offered suites", str(w.offered_suites)),
        ],
        [
            ("chosen group", group_name(chosen) if chosen is not None else "?"),
            *retry,
            *server_share,
            ("version", version_name(w.version) if w.version is not None else "?"),
            ("cipher suite", suite),
        ],
        [("shared secret", _secret_size(report.group))],
        [("traffic keys", f"from the schedule of {suite}")],
        cert,
        finished,
    ]


def _tls12_annotations(report: HandshakeReport) -> list[tuple[str, str]]:
    w = report.wire
    if w is None:
        return []
    pairs = [("offered groups", _names(w.offered_groups))]
    ske = w.server_key_exchange
    if ske is not None:
        pairs.append(
            (
                "ServerKeyExchange",
                f"curve {ske.curve_name}, {ske.public_key_size}-byte public key, signed with "
                f"{signature_scheme_name(ske.signature_scheme)}",
            )
        )
    if w.client_key_exchange_size is not None:
        pairs.append(("ClientKeyExchange", f"{w.client_key_exchange_size}-byte public key"))
    if w.certificate_key_type:
        pairs.append(("certificate key", w.certificate_key_type))
    if w.cipher_suite is not None:
        pairs.append(("cipher suite", cipher_suite_name(w.cipher_suite)))
    if w.version is not None:
        pairs.append(("version", version_name(w.version)))
    if w.downgrade_sentinel:
        pairs.append(
            (
                "ServerHello random",
                "ends in DOWNGRD\\x01: the server speaks TLS 1.3, so a TLS 1.3 client "
                "would detect an attacker forcing this downgrade",
            )
        )
    return pairs


def _negotiated(report: HandshakeReport, style: Style) -> list[str]:
    if report.error is not None:
        return fields([("handshake", f"failed: {report.error}")], style, "   ")
    pairs = [
        ("version", report.version or "?"),
        ("cipher suite", report.cipher or "?"),
        ("group", report.group or "?"),
        ("certificate key", report.certificate_key_type or "?"),
    ]
    lines = fields(pairs, style, "   ")
    if report.note:
        lines.append(f"   {style.warn(report.note)}")
    return lines


def _wire_lines(pairs: Sequence[tuple[str, str]], style: Style, tag: str = "wire:") -> list[str]:
    """Annotation lines: ``wire:`` for facts read off the trace, ``live:`` for derived ones."""
    if not pairs:
        return []
    indent = " " * 11
    lines = fields(pairs, style, indent)
    lines[0] = "     " + style.label(tag.ljust(6)) + lines[0][len(indent) :]
    return lines


def render(reports: Sequence[HandshakeReport] = (), *, color: bool = False) -> str:
    """The walkthrough as text; with *reports* (from :func:`trace_handshakes`) annotated live."""
    style = Style(color)
    tls13 = next((r for r in reports if r.label == "TLS 1.3"), None)
    tls12 = next((r for r in reports if r.label == "TLS 1.2"), None)
    lines: list[str] = []
    if reports:
        intro = (
            "Annotated with a live loopback handshake: our TLSServer and our client on "
            "127.0.0.1, once with TLS 1.3 and once capped at TLS 1.2. "
        )
        if any(r.wire is not None for r in reports):
            intro += (
                "'wire:' lines show what the client's trace saw cross the wire, 'live:' lines "
                "what follows from it."
            )
        else:
            intro += "Only the negotiated facts are shown: no wire trace."
        lines += _wrap(intro, "")
    lines += _section("The TLS 1.3 handshake, step by step", style)
    annotations = _tls13_annotations(tls13) if tls13 else [[] for _ in TLS13_STEPS]
    for number, (step, pairs) in enumerate(zip(TLS13_STEPS, annotations, strict=True), 1):
        lines.append(style.step(f"  {number}. {step.title}"))
        lines += _wrap(step.text, "     ")
        lines += _wire_lines(pairs, style, "wire:" if step.on_the_wire else "live:")
    if tls13 is not None:
        lines.append("")
        lines.append(style.heading("   Negotiated (TLS 1.3 connection):"))
        lines += _negotiated(tls13, style)

    lines += _section("TLS 1.2: ServerKeyExchange and ClientKeyExchange", style)
    lines += _wrap(TLS12_TEXT, "  ")
    if tls12 is not None:
        lines += _wire_lines(_tls12_annotations(tls12), style)
        lines.append("")
        lines.append(style.heading("   Negotiated (TLS 1.2 connection):"))
        lines += _negotiated(tls12, style)

    lines += _section("Why this gives forward secrecy", style)
    lines += _wrap(FORWARD_SECRECY_TEXT, "  ")
    lines += _section("What would break it", style)
    width = max(len(name) for name, _ in BREAKS_FORWARD_SECRECY)
    for name, text in BREAKS_FORWARD_SECRECY:
        wrapped = _wrap(text, " " * (6 + width))
        wrapped[0] = f"  - {style.label(name.ljust(width))}  " + wrapped[0].lstrip()
        lines += wrapped
    return "\n".join(lines).lstrip("\n") + "\n"
