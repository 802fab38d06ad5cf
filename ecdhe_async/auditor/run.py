"""``audit()``: run every probe against one server, concurrently and bounded, into a report.

Order of events: the "defaults" probe runs first, alone — a stock OpenSSL client's handshake,
which also fetches the certificate. If it finds no server (connection refused, no answer) or a
server that does not speak TLS, the audit stops there with exit code 2 and that reason, instead of
timing out every other probe. Otherwise all probes run at once under a semaphore (servers such as
``openssl s_server`` handle one connection at a time; the others wait in its backlog, each
bounded by the timeout), and the certificate is checked against the trust store unless
``insecure``. If not one handshake succeeded anywhere, the report says why (exit code 2).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import SignatureAlgorithmOID

from ..certs import describe_certificate
from .handshake import Failure, Handshake, Target
from .probe_context import verify_context
from .probes import DEFAULTS, Probe, catalogue, failed_row, run_offer
from .report import AuditReport, CertificateReport, Finding, Negotiated, ProbeResult, Problem

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_TIMEOUT", "Progress", "audit"]

DEFAULT_TIMEOUT = 5.0
#: Probes in flight at once: enough to finish a local audit in a few seconds, few enough not to
#: look like a flood to a rate-limiting server.
DEFAULT_CONCURRENCY = 8

#: Called with (probes done, probes in all) as the audit goes (the CLI's progress indicator).
Progress = Callable[[int, int], None]

DEFAULTS_SECTION = "negotiated defaults"
CERT_SECTION = "certificate"
#: RSA keys below this size are reported (NIST SP 800-57: 2048 bits until 2030).
_RSA_MIN_BITS = 2048

_SIGNATURES = {
    oid: name.replace("_WITH_", " with ").replace("_", "-")
    for name, oid in vars(SignatureAlgorithmOID).items()
    if isinstance(oid, x509.ObjectIdentifier)
}


async def audit(
    host: str,
    port: int = 443,
    *,
    servername: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - bounds each probe, not the call
    ca_file: str | Path | None = None,
    insecure: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit the TLS server at *host*:*port*: can any client get a non-forward-secret session?

    *servername* is sent as SNI and verified in the certificate check (default: *host*).
    *timeout* bounds each probe (connect + handshake). The certificate is verified against
    *ca_file* (or the system's trust store) unless *insecure*; a certificate problem is a
    warning in the report — key exchange is tested either way. Never raises for the server's
    behaviour: an unreachable server is a report with ``error`` set (``exit_code`` 2).
    """
    if timeout <= 0 or concurrency < 1:
        raise ValueError("timeout must be > 0 and concurrency >= 1")
    started = time.perf_counter()
    name = host if servername is None else servername
    target = Target(host, port, name or None, timeout)
    probes = catalogue()
    total = len(probes) + 2  # + defaults + certificate check
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    def report(
        rows: tuple[ProbeResult, ...] = (),
        error: str | None = None,
        defaults: Negotiated | None = None,
        cert: CertificateReport | None = None,
    ) -> AuditReport:
        duration = time.perf_counter() - started
        return AuditReport(host, port, target.servername, duration, rows, defaults, cert, error)

    defaults = await run_offer(target, DEFAULTS)
    tick()
    if isinstance(defaults, Failure) and defaults.kind in ("unreachable", "not_tls", "timeout"):
        return report(error=defaults.reason)
    limit = asyncio.Semaphore(concurrency)

    async def bounded(probe: Probe) -> list[ProbeResult]:
        async with limit:
            rows = await probe(target)
        tick()
        return rows

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(bounded(p)) for p in probes]
        verified = tg.create_task(_verify(target, ca_file, insecure, limit))
    tick()
    rows = tuple(row for task in tasks for row in task.result())
    error = _incomplete(rows)
    if isinstance(defaults, Failure):
        default_row = failed_row(
            "defaults", DEFAULTS_SECTION, "stock client (OpenSSL defaults)", defaults, "info"
        )
        if not any(row.outcome == "accepted" for row in rows):
            return report(rows, error=f"no TLS handshake succeeded ({defaults.reason})")
        return report((default_row, *rows), error)
    got = defaults.negotiated
    default_row = ProbeResult(
        "defaults",
        DEFAULTS_SECTION,
        "stock client (OpenSSL defaults)",
        "accepted",
        "info",
        str(got),
        got,
    )
    cert = _certificate(defaults, *verified.result())
    return report((default_row, *rows, *_certificate_rows(cert)), error, got, cert)


def _incomplete(rows: tuple[ProbeResult, ...]) -> str | None:
    """Fail closed: a probe that got no answer could have hidden a failure, so no "all clear"."""
    silent = [row for row in rows if row.outcome == "error"]
    if not silent or any(row.finding == "fail" for row in rows):
        return None  # complete, or already not forward-secret whatever the silent probes hide
    names = ", ".join(row.name for row in silent[:3]) + (", …" if len(silent) > 3 else "")
    return (
        f"incomplete: {len(silent)} probe(s) got no answer ({names}: {silent[0].detail}); "
        "no verdict (try a longer --timeout)"
    )


async def _verify(
    target: Target, ca_file: str | Path | None, insecure: bool, limit: asyncio.Semaphore
) -> tuple[bool | None, str | None]:
    """(verified, problem): chain and host name against the trust store, unless *insecure*."""
    if insecure:
        return None, None
    from .handshake import handshake

    ctx = verify_context(ca_file)
    async with limit:
        try:
            await handshake(target, ctx)
        except Failure as failure:
            if failure.kind == "untrusted":
                return False, failure.reason
            return None, f"not checked: {failure.reason}"
    return True, None


def _certificate(
    defaults: Handshake, verified: bool | None, verify_error: str | None
) -> CertificateReport | None:
    if defaults.peer_cert is None:
        return None
    cert = x509.load_der_x509_certificate(defaults.peer_cert)
    info = describe_certificate(cert)
    oid = cert.signature_algorithm_oid
    days_left = (info.not_after - dt.datetime.now(dt.UTC)).days
    return CertificateReport(
        subject=info.subject,
        issuer=info.issuer,
        key=info.key_type,
        signature=_SIGNATURES.get(oid, oid.dotted_string),
        not_after=info.not_after.isoformat(),
        days_left=days_left,
        self_signed=info.self_signed,
        verified=verified,
        verify_error=verify_error,
    )


def _certificate_rows(cert: CertificateReport | None) -> list[ProbeResult]:
    """Table rows for the certificate: the leaf (key, signature, expiry) and the trust check."""
    if cert is None:
        return [ProbeResult("certificate", CERT_SECTION, "leaf", "error", "warn", "no certificate")]
    leaf = f"{cert.key}, {cert.signature}, expires {cert.not_after[:10]} ({cert.days_left} days)"
    problem: Problem | None = None
    if cert.days_left < 0:
        problem = Problem("certificate expired")
    elif cert.key.startswith("RSA ") and int(cert.key.split()[1]) < _RSA_MIN_BITS:
        problem = Problem("certificate key too small", cert.key)
    finding: Finding = "info" if problem is None else "warn"
    rows = [
        ProbeResult("certificate", CERT_SECTION, "leaf", "accepted", finding, leaf, None, problem)
    ]
    if cert.verified is None:
        detail = cert.verify_error or "not verified (--insecure)"
        rows.append(
            ProbeResult("certificate.trust", CERT_SECTION, "trust", "not_tested", "info", detail)
        )
    elif cert.verified:
        rows.append(
            ProbeResult(
                "certificate.trust",
                CERT_SECTION,
                "trust",
                "accepted",
                "ok",
                "chain and name verified",
            )
        )
    else:
        problem = Problem("certificate not trusted", cert.verify_error)
        detail = f"verify failed: {cert.verify_error}"
        rows.append(
            ProbeResult(
                "certificate.trust", CERT_SECTION, "trust", "refused", "warn", detail, None, problem
            )
        )
    return rows
