"""The audit's typed report: one result per probe, the certificate, and the verdict.

A probe's *outcome* is what the server did (``accepted`` / ``refused``), or that we could not ask
(``not_tested``: this OpenSSL cannot make the offer; ``error``: no answer within the timeout, the
connection broke). Its *finding* is what that means for forward secrecy: ``fail`` (a session
without a fresh ephemeral EC key exchange is possible), ``warn`` (worth fixing, but every session
is still forward-secret), ``ok``, ``info``, or ``not_tested`` — which is never counted as a pass.

Pure data: no I/O, no OpenSSL calls. :func:`ecdhe_async.auditor.audit` fills it in.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

__all__ = [
    "EXIT_FORWARD_SECRET",
    "EXIT_NOT_FORWARD_SECRET",
    "EXIT_UNREACHABLE",
    "AuditReport",
    "CertificateReport",
    "Finding",
    "Negotiated",
    "Outcome",
    "ProbeResult",
    "Problem",
    "summarize",
]

#: Exit codes of ``ecdhe-async audit`` (and :attr:`AuditReport.exit_code`).
EXIT_FORWARD_SECRET: Final = 0
EXIT_NOT_FORWARD_SECRET: Final = 1
EXIT_UNREACHABLE: Final = 2

Outcome: TypeAlias = Literal["accepted", "refused", "not_tested", "error"]
Finding: TypeAlias = Literal["fail", "warn", "ok", "info", "not_tested"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One phrase of the verdict line; problems with the same ``text`` are listed together.

    ``Problem("accepts FFDHE in TLS 1.3", "ffdhe2048")`` and the same text with ``"ffdhe3072"``
    become "accepts FFDHE in TLS 1.3 (ffdhe2048, ffdhe3072)".
    """

    text: str
    item: str | None = None


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What one successful handshake settled on."""

    version: str
    cipher: str
    #: Key-exchange group (our canonical name), ``None`` for a non-ECDHE TLS 1.2 suite or a
    #: TLS 1.3 ``psk_ke`` resumption.
    group: str | None
    resumed: bool = False

    def __str__(self) -> str:
        parts = [self.version, self.cipher, self.group or "no (EC)DHE group"]
        return " ".join(parts) + (" (resumed)" if self.resumed else "")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: what was offered, what the server did, and what that means."""

    #: Stable identifier, e.g. ``"tls13.group.ffdhe2048"`` (for scripts reading ``--json``).
    key: str
    #: The table section, e.g. ``"TLS 1.3 groups"``.
    section: str
    #: What was offered, e.g. ``"ffdhe2048 alone"``.
    name: str
    outcome: Outcome
    finding: Finding
    #: The negotiated parameters, the refusal or the reason it was not tested.
    detail: str
    negotiated: Negotiated | None = None
    #: The verdict phrase for a ``fail`` or ``warn`` finding.
    problem: Problem | None = None


@dataclass(frozen=True, slots=True)
class CertificateReport:
    """The server's leaf certificate, as seen by the default-client probe."""

    subject: str
    issuer: str
    key: str
    signature: str
    not_after: str
    days_left: int
    self_signed: bool
    #: ``True`` verified (chain and host name), ``False`` failed (see ``verify_error``), ``None``
    #: not checked (``--insecure``).
    verified: bool | None
    verify_error: str | None = None


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything one audit found (see :func:`ecdhe_async.auditor.audit`)."""

    host: str
    port: int
    servername: str | None
    #: Wall time of the whole audit in seconds.
    duration: float
    probes: tuple[ProbeResult, ...] = ()
    #: What a default OpenSSL client negotiates with the server.
    defaults: Negotiated | None = None
    certificate: CertificateReport | None = None
    #: Why the audit could not judge the server (unreachable, not TLS, no handshake at all).
    error: str | None = None
    #: The OpenSSL that made the probes (what it cannot offer is "not tested").
    openssl: str = ssl.OPENSSL_VERSION

    @property
    def failures(self) -> tuple[ProbeResult, ...]:
        """Probes that found a path to a session without a fresh ephemeral EC key exchange."""
        return tuple(p for p in self.probes if p.finding == "fail")

    @property
    def warnings(self) -> tuple[ProbeResult, ...]:
        """Probes worth attention that do not break forward secrecy by themselves."""
        return tuple(p for p in self.probes if p.finding == "warn")

    @property
    def not_tested(self) -> tuple[ProbeResult, ...]:
        """Probes that could not be run here (never counted as a pass)."""
        return tuple(p for p in self.probes if p.finding == "not_tested")

    @property
    def forward_secret_only(self) -> bool | None:
        """``True``/``False`` as the verdict says; ``None`` when the server could not be judged."""
        if self.error is not None:
            return None
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 forward-secret only, 1 at least one non-forward-secret path, 2 could not judge."""
        if self.error is not None:
            return EXIT_UNREACHABLE
        return EXIT_NOT_FORWARD_SECRET if self.failures else EXIT_FORWARD_SECRET

    @property
    def verdict(self) -> str:
        """The one-line verdict, e.g. ``"NOT forward-secret only: accepts FFDHE in TLS 1.3 …"``."""
        if self.error is not None:
            return f"cannot audit {self.address}: {self.error}"
        if not self.failures:
            return "forward-secret only"
        return "NOT forward-secret only: " + summarize(p.problem for p in self.failures)

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 addresses in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with the verdict and exit code included."""
        data = dataclasses.asdict(self)
        data.update(
            verdict=self.verdict,
            exit_code=self.exit_code,
            forward_secret_only=self.forward_secret_only,
            warnings=[summarize([p.problem]) for p in self.warnings],
        )
        return data


def summarize(problems: Iterable[Problem | None]) -> str:
    """Join problems into one phrase list, grouping the items of problems with the same text."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        if problem is None:
            continue
        items = grouped.setdefault(problem.text, [])
        if problem.item is not None and problem.item not in items:
            items.append(problem.item)
    return ", ".join(
        f"{text} ({', '.join(items)})" if items else text for text, items in grouped.items()
    )
