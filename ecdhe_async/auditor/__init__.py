"""Audit any TLS server: can a client get a session that is not forward-secret?

``await audit(host, port)`` runs real handshakes — each with a probe context built to make one
offer: a TLS 1.3 group alone, a TLS 1.2 key-exchange class, a legacy version, a resumption — and
returns an :class:`AuditReport` with a verdict and an exit code (0 forward-secret only, 1 at
least one non-forward-secret path, 2 unreachable or no handshake at all). ``ecdhe-async audit
HOST[:PORT]`` is the same from the command line.

Modules: :mod:`.probe_context` (the contexts — never used by our own server or client),
:mod:`.handshake` (one handshake over asyncio), :mod:`.probes` (what to offer and what the answer
means), :mod:`.run` (the concurrent run), :mod:`.report` (the typed report), :mod:`.render`.
"""

from .report import EXIT_FORWARD_SECRET as EXIT_FORWARD_SECRET
from .report import EXIT_NOT_FORWARD_SECRET as EXIT_NOT_FORWARD_SECRET
from .report import EXIT_UNREACHABLE as EXIT_UNREACHABLE
from .report import AuditReport as AuditReport
from .report import CertificateReport as CertificateReport
from .report import Negotiated as Negotiated
from .report import ProbeResult as ProbeResult
from .report import Problem as Problem
from .run import audit as audit

__all__ = [
    "EXIT_FORWARD_SECRET",
    "EXIT_NOT_FORWARD_SECRET",
    "EXIT_UNREACHABLE",
    "AuditReport",
    "CertificateReport",
    "Negotiated",
    "ProbeResult",
    "Problem",
    "audit",
]
