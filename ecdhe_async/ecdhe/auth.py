"""Transcript signatures: how an exchange proves who is on the other end.

Unauthenticated ECDHE is only secure against passive eavesdroppers; an active man in the middle
can run one exchange with each side. A side that holds a long-term identity key (Ed25519, or ECDSA
on P-256 / P-384) therefore signs the transcript: a fixed context string, the protocol label, the
curve, its own role, its own ephemeral public key and the peer's. The peer verifies it against a
public key it already knows. Binding both ephemeral keys and the role is what defeats a relay that
substitutes its own keys while forwarding genuine signatures; binding the label and the curve keeps
a signature from one protocol or curve from being replayed in another.

No I/O and no state: :class:`ecdhe_async.ecdhe.protocol.KeyExchange` calls these.
"""

from __future__ import annotations

from typing import Final, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ecdhe_async.ecdhe.agreement import Curve, length_prefixed
from ecdhe_async.ecdhe.wire import RemoteExchangeError, Role
from ecdhe_async.errors import KeyExchangeError

__all__ = ["SigningKey", "VerifyKey", "check_identity", "sign", "transcript", "verify"]

SigningKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
"""A long-term identity key: Ed25519, or ECDSA on P-256 / P-384."""

VerifyKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
"""The public half of a :data:`SigningKey`."""

_SIGNATURE_CONTEXT: Final = b"ecdhe_async transcript signature v1"

_ECDSA_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
}


def _signature_hash(
    key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
) -> hashes.HashAlgorithm:
    algorithm = _ECDSA_HASHES.get(key.curve.name)
    if algorithm is None:
        raise KeyExchangeError(
            f"unsupported ECDSA curve {key.curve.name!r} for identity keys; use P-256 or P-384"
        )
    return algorithm


def _check_key(key: object, ecdsa: type, eddsa: type, what: str) -> None:
    if isinstance(key, ecdsa):
        assert isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
        _signature_hash(key)
    elif not isinstance(key, eddsa):
        raise KeyExchangeError(
            f"unsupported {what} type {type(key).__name__}; use Ed25519 or ECDSA P-256/P-384"
        )


def check_identity(identity: object, peer_verify_key: object) -> None:
    """Refuse key types we cannot sign or verify with, before anything is sent.

    Raises :class:`~ecdhe_async.errors.KeyExchangeError` naming the unsupported type or curve.
    """
    if identity is not None:
        _check_key(identity, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, "identity key")
    if peer_verify_key is not None:
        _check_key(
            peer_verify_key, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, "peer verify key"
        )


def transcript(
    info_label: bytes, curve: Curve, signer: Role, signer_public: bytes, other_public: bytes
) -> bytes:
    """The bytes a side signs: context, label, curve, its role, its key, the other key."""
    fields = (
        _SIGNATURE_CONTEXT,
        info_label,
        curve.encode("ascii"),
        signer.label,
        signer_public,
        other_public,
    )
    return b"".join(map(length_prefixed, fields))


def sign(identity: SigningKey, data: bytes) -> bytes:
    """Sign ``data`` with Ed25519 or ECDSA (SHA-256 on P-256, SHA-384 on P-384)."""
    if isinstance(identity, ed25519.Ed25519PrivateKey):
        return identity.sign(data)
    return identity.sign(data, ec.ECDSA(_signature_hash(identity)))


def verify(key: VerifyKey, signature: bytes, data: bytes) -> None:
    """Check the peer's ``signature`` over ``data``; :class:`RemoteExchangeError` if it fails."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(_signature_hash(key)))
    except (InvalidSignature, ValueError) as exc:
        raise RemoteExchangeError(
            "peer's signature over the exchange transcript is invalid: "
            "wrong identity key, or a man in the middle?"
        ) from exc
