"""The one registry of TLS key-exchange groups: names, aliases, wire ids, sizes, our policy.

Every module that names a group reads it from here: the context factories (what OpenSSL is told),
the handshake facts (what OpenSSL reports back), the raw ECDHE exchange (key and secret sizes),
the guide's wire parser (IANA ids) and the audit's probes. Adding a group — for instance a
post-quantum hybrid such as ``X25519MLKEM768`` once we allow it — is one row here.

Pure data and lookups: no I/O and no OpenSSL calls. Whether the *linked* OpenSSL has a group is
asked of :mod:`ecdhe_async._openssl` (:func:`ecdhe_async._openssl.group_available`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "ALLOWED",
    "BY_IANA",
    "DEFAULT",
    "GROUPS",
    "Group",
    "GroupKind",
    "by_iana",
    "by_openssl_name",
    "canonical",
    "lookup",
]

GroupKind: TypeAlias = Literal["ecdhe", "ffdhe", "hybrid"]


@dataclass(frozen=True, slots=True)
class Group:
    """One named group of the TLS ``supported_groups`` registry (RFC 8446 §4.2.7, RFC 7919)."""

    #: Our canonical name (what logs, settings and ``Connection.group`` use).
    name: str
    #: IANA ``NamedGroup`` code point.
    iana_id: int
    #: The name OpenSSL's group list takes (``SSL_CTX_set1_groups_list``).
    openssl_name: str
    #: What kind of key exchange it is: elliptic-curve DH, finite-field DH, or a PQ hybrid.
    kind: GroupKind
    #: Other spellings accepted on input (case-insensitive), OpenSSL's short names among them.
    aliases: tuple[str, ...] = ()
    #: Encoded public key length in bytes (raw for X25519/X448, uncompressed X9.62 for NIST).
    public_key_size: int | None = None
    #: Raw shared-secret length in bytes.
    secret_size: int | None = None
    #: True for the groups an ecdhe_async context may ever negotiate (ephemeral EC only).
    allowed: bool = False

    @property
    def is_ecdhe(self) -> bool:
        """Elliptic-curve Diffie-Hellman (forward-secret, and what our policy requires)."""
        return self.kind == "ecdhe"


GROUPS: Final[tuple[Group, ...]] = (
    Group("X25519", 0x001D, "X25519", "ecdhe", ("x25519",), 32, 32, allowed=True),
    Group("X448", 0x001E, "X448", "ecdhe", ("x448",), 56, 56, allowed=True),
    Group("P-256", 0x0017, "prime256v1", "ecdhe", ("prime256v1", "secp256r1"), 65, 32, True),
    Group("P-384", 0x0018, "secp384r1", "ecdhe", ("secp384r1",), 97, 48, allowed=True),
    Group("P-521", 0x0019, "secp521r1", "ecdhe", ("secp521r1",), 133, 66, allowed=True),
    Group("brainpoolP256r1", 0x001A, "brainpoolP256r1", "ecdhe", (), 65, 32),
    Group("brainpoolP384r1", 0x001B, "brainpoolP384r1", "ecdhe", (), 97, 48),
    Group("brainpoolP512r1", 0x001C, "brainpoolP512r1", "ecdhe", (), 129, 64),
    Group("ffdhe2048", 0x0100, "ffdhe2048", "ffdhe", (), 256, 256),
    Group("ffdhe3072", 0x0101, "ffdhe3072", "ffdhe", (), 384, 384),
    Group("ffdhe4096", 0x0102, "ffdhe4096", "ffdhe", (), 512, 512),
    Group("ffdhe6144", 0x0103, "ffdhe6144", "ffdhe", (), 768, 768),
    Group("ffdhe8192", 0x0104, "ffdhe8192", "ffdhe", (), 1024, 1024),
    Group("SecP256r1MLKEM768", 0x11EB, "SecP256r1MLKEM768", "hybrid"),
    Group("X25519MLKEM768", 0x11EC, "X25519MLKEM768", "hybrid"),
    Group("SecP384r1MLKEM1024", 0x11ED, "SecP384r1MLKEM1024", "hybrid"),
)

#: Canonical names of the groups we allow, strongest-common first.
ALLOWED: Final[tuple[str, ...]] = tuple(g.name for g in GROUPS if g.allowed)
#: The default preference list of our contexts.
DEFAULT: Final[tuple[str, ...]] = ("X25519", "P-256", "P-384")

BY_IANA: Final[dict[int, Group]] = {g.iana_id: g for g in GROUPS}
_BY_NAME: Final[dict[str, Group]] = {
    key.lower(): g for g in GROUPS for key in (g.name, g.openssl_name, *g.aliases)
}


def lookup(name: str) -> Group | None:
    """The group called *name* (canonical, OpenSSL or alias spelling, any case), or ``None``."""
    return _BY_NAME.get(name.strip().lower())


def by_iana(code: int) -> Group | None:
    """The group with IANA code point *code*, or ``None`` for one we do not know."""
    return BY_IANA.get(code)


def by_openssl_name(name: str) -> str:
    """Our canonical name for a group OpenSSL reports (``prime256v1`` → ``P-256``).

    Unknown names come back unchanged, so that a group we do not list is still shown as OpenSSL
    calls it rather than hidden.
    """
    group = lookup(name)
    return group.name if group is not None else name


def canonical(name: str) -> str:
    """The canonical name of an *allowed* group, or ``ValueError`` naming the choices.

    OpenSSL's aliases (``prime256v1``, ``secp384r1``, ``secp521r1``) are accepted; finite-field
    groups (``ffdhe2048``…) and anything else never are.
    """
    group = lookup(name)
    if group is None or not group.allowed:
        aliases = sorted({a for g in GROUPS if g.allowed for a in g.aliases if a != g.name.lower()})
        raise ValueError(
            f"unknown or disallowed key-exchange group {name!r}; allowed: "
            + ", ".join(ALLOWED)
            + f" (aliases {', '.join(a for a in aliases if not a.startswith('x'))})"
        )
    return group.name
