"""The probes: what each one offers, and what the server's answer means for forward secrecy.

Every probe is a real handshake (or two, for resumption) with a context from
:mod:`ecdhe_async.auditor.probe_context`. Group names come from :mod:`ecdhe_async.groups`, the one
registry; whether the linked OpenSSL has a group is found out by trying to set it alone on the
probe's context (a failure makes the probe "not tested").

What counts as a failure — a way for some client to get a session without a fresh ephemeral
elliptic-curve key exchange:

- TLS 1.3 finite-field DH (ffdhe2048…8192), TLS 1.2 DHE and RSA key transport;
- TLS 1.2 resumption, by session ID or ticket: the resumed session reuses the old master secret;
- TLS 1.3 resumption with ``psk_ke`` (no (EC)DHE at all);
- a legacy version (TLS 1.0/1.1) that settles on a non-ECDHE key exchange.

Warnings do not break forward secrecy: a server that *prefers* FFDHE when a client offers both,
TLS 1.2 ECDHE with CBC suites, TLS 1.0/1.1 with ECDHE, certificate problems.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ..groups import GROUPS, Group, lookup
from .handshake import Failure, Handshake, Target, handshake
from .probe_context import NotTestable, Offer, probe_context
from .report import Finding, Negotiated, Outcome, ProbeResult, Problem

__all__ = ["DEFAULTS", "Probe", "catalogue", "failed_row", "run_offer"]

V12: Final = ssl.TLSVersion.TLSv1_2
V13: Final = ssl.TLSVersion.TLSv1_3
# Security level 0: OpenSSL 3 refuses TLS < 1.2, SHA-1 and small keys client side from level 1.
_ANY: Final = "@SECLEVEL=0"

GROUPS_13: Final = "TLS 1.3 groups"
PREFERENCE_13: Final = "TLS 1.3 preference"
KEX_12: Final = "TLS 1.2 key exchange"
LEGACY: Final = "legacy versions"
RESUMPTION: Final = "resumption"

#: What a stock OpenSSL client offers (the "negotiated defaults" probe; also fetches the cert).
DEFAULTS: Final = Offer()

#: A probe: one coroutine giving one or more result rows.
Probe = Callable[[Target], Awaitable[list[ProbeResult]]]
#: Judges an accepted handshake: (finding, verdict phrase or None, note for the table).
Judge = Callable[[Negotiated], tuple[Finding, Problem | None, str]]

_FFDHE_13: Final = "accepts FFDHE in TLS 1.3"
_RESUMES_12: Final = "resumes TLS 1.2 sessions without a new key exchange"


async def run_offer(
    target: Target, offer: Offer, *, server_hostname: str | None = None
) -> Handshake | Failure:
    """One handshake making *offer*; the :class:`Failure` is returned, not raised."""
    try:
        ctx, _ = probe_context(offer)
    except NotTestable as exc:
        return Failure("local", str(exc))
    return await _try(target, ctx, server_hostname=server_hostname)


async def _try(
    target: Target,
    ctx: ssl.SSLContext,
    *,
    session: ssl.SSLSession | None = None,
    server_hostname: str | None = None,
) -> Handshake | Failure:
    try:
        return await handshake(target, ctx, session=session, server_hostname=server_hostname)
    except Failure as failure:
        return failure


def failed_row(
    key: str, section: str, name: str, failure: Failure, if_refused: Finding
) -> ProbeResult:
    """The row for a probe whose handshake did not complete."""
    outcome: Outcome
    if failure.kind in ("refused", "untrusted"):
        outcome, finding, detail = "refused", if_refused, f"refused: {failure.reason}"
    elif failure.kind == "local":
        outcome, finding, detail = "not_tested", "not_tested", failure.reason
    else:  # no verdict from a probe that got no answer: never a pass
        outcome, finding, detail = "error", "not_tested", failure.reason
    return ProbeResult(key, section, name, outcome, finding, detail)


@dataclass(frozen=True, slots=True)
class _Single:
    """A one-handshake probe."""

    key: str
    section: str
    name: str
    offer: Offer
    judge: Judge
    #: The finding when the server refuses the offer.
    if_refused: Finding

    async def __call__(self, target: Target) -> list[ProbeResult]:
        result = await run_offer(target, self.offer)
        if isinstance(result, Failure):
            return [failed_row(self.key, self.section, self.name, result, self.if_refused)]
        got = result.negotiated
        finding, problem, note = self.judge(got)
        detail = f"{got}{f' — {note}' if note else ''}"
        return [
            ProbeResult(
                self.key, self.section, self.name, "accepted", finding, detail, got, problem
            )
        ]


def _group_alone(group: Group) -> _Single:
    def judge(got: Negotiated) -> tuple[Finding, Problem | None, str]:
        if group.kind == "ffdhe":
            return "fail", Problem(_FFDHE_13, group.name), "finite-field DH"
        return "ok", None, ""

    offer = Offer(minimum=V13, groups=(group,))
    refused: Finding = "ok" if group.kind == "ffdhe" else "info"
    return _Single(
        f"tls13.group.{group.name}", GROUPS_13, f"{group.name} alone", offer, judge, refused
    )


def _preference(first: Group, second: Group) -> _Single:
    def judge(got: Negotiated) -> tuple[Finding, Problem | None, str]:
        picked = None if got.group is None else lookup(got.group)
        if picked is None:  # no way to read the group on this Python: say so, claim nothing
            return "info", None, "negotiated group unknown"
        if picked.kind != "ffdhe":
            return "ok", None, "the server picks ECDHE"
        if first.kind == "ffdhe":
            return "info", None, "the server takes the client's first choice"
        problem = Problem("prefers FFDHE over ECDHE when a client offers both")
        return "warn", problem, "the server prefers finite-field DH over ECDHE"

    key = f"tls13.order.{first.name}.{second.name}"
    offer = Offer(minimum=V13, groups=(first, second))
    return _Single(key, PREFERENCE_13, f"{first.name}, then {second.name}", offer, judge, "info")


def _tls12(key: str, name: str, ciphers: str, finding: Finding, problem: Problem | None) -> _Single:
    def judge(got: Negotiated) -> tuple[Finding, Problem | None, str]:
        return finding, problem, "" if problem is None else problem.text

    refused: Finding = "info" if finding == "ok" else "ok"
    offer = Offer(maximum=V12, ciphers=ciphers)
    return _Single(f"tls12.{key}", KEX_12, name, offer, judge, refused)


def _legacy(version: ssl.TLSVersion, label: str) -> _Single:
    def judge(got: Negotiated) -> tuple[Finding, Problem | None, str]:
        if got.cipher.startswith("ECDHE-"):
            return "warn", Problem("accepts legacy TLS versions", label), "legacy, but ECDHE"
        problem = Problem("accepts non-ECDHE key exchange in legacy TLS", label)
        return "fail", problem, "legacy and no ECDHE"

    offer = Offer(minimum=version, maximum=version, ciphers=f"ALL:{_ANY}")
    return _Single(f"legacy.{label}", LEGACY, f"{label}, any suite", offer, judge, "ok")


async def _resume_tls12(target: Target, *, tickets: bool) -> list[ProbeResult]:
    """Connect, reconnect with the session: did the server resume without a new key exchange?"""
    how = "ticket" if tickets else "session ID"
    key, name = f"resumption.tls12.{how.replace(' ', '_')}", f"TLS 1.2 by {how}"
    try:
        ctx, _ = probe_context(Offer(maximum=V12, tickets=tickets))
    except NotTestable as exc:
        return [failed_row(key, RESUMPTION, name, Failure("local", str(exc)), "ok")]
    first = await _try(target, ctx)
    if isinstance(first, Failure):
        return [failed_row(key, RESUMPTION, name, first, "ok")]
    session = first.session
    if session is None or (tickets and not session.has_ticket):
        return [ProbeResult(key, RESUMPTION, name, "refused", "ok", f"no {how} issued")]
    second = await _try(target, ctx, session=session)
    if isinstance(second, Failure):
        return [failed_row(key, RESUMPTION, name, second, "ok")]
    if second.negotiated.resumed:
        problem = Problem(_RESUMES_12, how)
        detail = f"resumed by {how}: no new key exchange"
        if tickets:
            detail += f" (ticket lifetime hint {session.ticket_lifetime_hint} s)"
        return [
            ProbeResult(
                key, RESUMPTION, name, "accepted", "fail", detail, second.negotiated, problem
            )
        ]
    return [
        ProbeResult(key, RESUMPTION, name, "refused", "ok", f"{how} not resumed: full handshake")
    ]


async def _tls13_tickets(target: Target) -> list[ProbeResult]:
    """Tickets issued (count, lifetime hint); resumption offering psk_ke next to psk_dhe_ke."""
    issued_key, issued_name = "resumption.tls13.tickets", "TLS 1.3 tickets issued"
    psk_key, psk_name = "resumption.tls13.psk_ke", "TLS 1.3 psk_ke with psk_dhe_ke"
    alone = ProbeResult(
        "resumption.tls13.psk_ke_alone",
        RESUMPTION,
        "TLS 1.3 psk_ke alone",
        "not_tested",
        "not_tested",
        "OpenSSL always offers psk_dhe_ke next to psk_ke: a server that takes psk_ke only from "
        "clients offering nothing else is not detected",
    )
    try:
        ctx, counter = probe_context(Offer(minimum=V13, allow_no_dhe_kex=True))
    except NotTestable as exc:
        failure = Failure("local", str(exc))
        return [
            failed_row(k, RESUMPTION, n, failure, "ok")
            for k, n in ((issued_key, issued_name), (psk_key, psk_name))
        ] + [alone]
    first = await _try(target, ctx)
    if isinstance(first, Failure):
        return [failed_row(issued_key, RESUMPTION, issued_name, first, "ok"), alone]
    session = first.session
    has_ticket = session is not None and session.has_ticket
    count = counter.count
    if not has_ticket:
        return [
            ProbeResult(issued_key, RESUMPTION, issued_name, "refused", "ok", "no ticket issued"),
            ProbeResult(psk_key, RESUMPTION, psk_name, "refused", "ok", "nothing to resume"),
            alone,
        ]
    assert session is not None
    what = "tickets" if count is None else f"{count} ticket{'s' if count != 1 else ''}"
    issued = ProbeResult(
        issued_key,
        RESUMPTION,
        issued_name,
        "accepted",
        "info",
        f"{what}, lifetime hint {session.ticket_lifetime_hint} s",
    )
    second = await _try(target, ctx, session=session)
    if isinstance(second, Failure):
        return [issued, failed_row(psk_key, RESUMPTION, psk_name, second, "ok"), alone]
    got = second.negotiated
    if not got.resumed:
        psk = ProbeResult(psk_key, RESUMPTION, psk_name, "refused", "ok", "ticket not accepted")
    elif got.group is None:
        problem = Problem("resumes TLS 1.3 sessions without (EC)DHE (psk_ke)")
        psk = ProbeResult(
            psk_key, RESUMPTION, psk_name, "accepted", "fail", f"{got}: psk_ke", got, problem
        )
    else:
        detail = f"{got}: psk_dhe_ke, a fresh {got.group} exchange"
        psk = ProbeResult(psk_key, RESUMPTION, psk_name, "accepted", "ok", detail, got)
    return [issued, psk, alone]


def catalogue() -> list[Probe]:
    """Every probe of a full audit, in table order (the defaults probe is run first, apart)."""
    probes: list[Probe] = []
    tested = [g for g in GROUPS if g.allowed or g.kind in ("ffdhe", "hybrid")]
    probes += [_group_alone(g) for g in tested]
    ffdhe2048, x25519 = lookup("ffdhe2048"), lookup("X25519")
    assert ffdhe2048 is not None
    assert x25519 is not None
    probes += [_preference(ffdhe2048, x25519), _preference(x25519, ffdhe2048)]
    probes += [
        _tls12(
            "ecdhe_aead", "ECDHE + AEAD", "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AESCCM", "ok", None
        ),
        _tls12(
            "ecdhe_cbc",
            "ECDHE + CBC",
            f"ECDHE:!AESGCM:!CHACHA20:!AESCCM:!aNULL:{_ANY}",
            "warn",
            Problem("accepts CBC suites in TLS 1.2 (forward-secret, not AEAD)"),
        ),
        _tls12("dhe", "DHE (any)", f"kDHE:{_ANY}", "fail", Problem("accepts DHE in TLS 1.2")),
        _tls12(
            "rsa",
            "RSA key transport",
            f"kRSA:{_ANY}",
            "fail",
            Problem("accepts RSA key transport in TLS 1.2"),
        ),
    ]
    probes += [_legacy(ssl.TLSVersion.TLSv1, "TLS 1.0"), _legacy(ssl.TLSVersion.TLSv1_1, "TLS 1.1")]

    async def by_id(target: Target) -> list[ProbeResult]:
        return await _resume_tls12(target, tickets=False)

    async def by_ticket(target: Target) -> list[ProbeResult]:
        return await _resume_tls12(target, tickets=True)

    probes += [by_id, by_ticket, _tls13_tickets]
    return probes
