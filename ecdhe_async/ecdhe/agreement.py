"""Raw ephemeral elliptic-curve Diffie-Hellman (ECDHE) key agreement: keys, validation, HKDF.

No I/O here: this module turns a curve name into a single-use key pair, a peer's encoded public
key into a validated key, both into a raw shared secret, and that secret into a session key. The
framed exchange that carries the public keys is :mod:`ecdhe_async.ecdhe.wire` (codec) and
:mod:`ecdhe_async.ecdhe.protocol` (state machine); :mod:`ecdhe_async.ecdhe.stream` runs it on
asyncio streams.

Theory of operation
-------------------
*Forward secrecy.* Every exchange uses a brand-new private key (:class:`EphemeralKeyPair`) that
lives only in memory, is never serialised, logged or shown in a ``repr``, and is dropped after
its single use. Stealing a long-term identity key later therefore reveals nothing about past
session keys. A key pair refuses a second exchange, and refuses to be copied or pickled, so it
cannot be reused by accident.

*Peer-key validation.* A peer's public key is attacker-controlled input. Before any scalar
multiplication we insist on the exact encoding (raw 32/56 bytes for X25519/X448, the uncompressed
X9.62 point ``0x04 || X || Y`` for the NIST curves), reject the identity / point at infinity,
compressed or hybrid encodings, coordinates not reduced modulo the field prime and points that are
not on the curve (invalid-curve attacks). X25519/X448 accept any u-coordinate by design, so a
low-order point is detected the way RFC 7748 §6 recommends: by the all-zero shared secret it
produces. Every such failure raises :class:`~ecdhe_async.errors.KeyExchangeError` naming the curve.

*Key derivation.* The raw shared secret is never used as a key: it is not uniformly random (it is
a curve coordinate) and it does not bind *who* agreed on it. It always goes through HKDF
(RFC 5869; SHA-256 for X25519/X448/P-256, SHA-384 for P-384/P-521) with an ``info`` string made of
a protocol label, the curve name and both public keys, initiator first. Both sides thus bind the
transcript: a tampered public key, a swapped role or a different label gives a different key.

*Curve data.* Key and secret sizes come from the one group registry, :mod:`ecdhe_async.groups`;
only what is specific to this exchange lives here (the KDF hash, the ``cryptography`` curve
object, the field prime used to reject unreduced coordinates).

Python cannot reliably wipe memory; secrets are merely kept in as few places as possible.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, NoReturn, TypeAlias, get_args

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ecdhe_async import groups
from ecdhe_async.errors import KeyExchangeError

__all__ = [
    "CURVES",
    "DEFAULT_INFO_LABEL",
    "PUBLIC_KEY_LENGTHS",
    "Curve",
    "EphemeralKeyPair",
    "PeerPublicKey",
    "derive_key",
    "fingerprint",
    "length_prefixed",
    "load_peer_public_key",
]

Curve: TypeAlias = Literal["X25519", "X448", "P-256", "P-384", "P-521"]
"""Name of a supported key-agreement curve (canonical names of :mod:`ecdhe_async.groups`)."""

CURVES: Final[tuple[Curve, ...]] = get_args(Curve)
"""Every supported curve, strongest-per-byte first."""

PeerPublicKey: TypeAlias = x25519.X25519PublicKey | x448.X448PublicKey | ec.EllipticCurvePublicKey
"""A validated peer public key, as returned by :func:`load_peer_public_key`."""

_PrivateKey: TypeAlias = x25519.X25519PrivateKey | x448.X448PrivateKey | ec.EllipticCurvePrivateKey

DEFAULT_INFO_LABEL: Final = b"ecdhe_async v1"
"""Default protocol label that starts the HKDF ``info`` string."""

_MIN_KEY_LENGTH: Final = 16


@dataclass(frozen=True, slots=True)
class _CurveSpec:
    """What the exchange needs about a curve: sizes from the registry, the rest local."""

    public_len: int
    secret_len: int
    kdf_hash: hashes.HashAlgorithm
    ec_curve: ec.EllipticCurve | None = None
    field_prime: int | None = None

    @property
    def coord_len(self) -> int:
        return (self.public_len - 1) // 2


def _from_registry(
    curve: Curve,
    kdf_hash: hashes.HashAlgorithm,
    ec_curve: ec.EllipticCurve | None = None,
    field_prime: int | None = None,
) -> _CurveSpec:
    group = groups.lookup(curve)
    if group is None or group.public_key_size is None or group.secret_size is None:
        raise RuntimeError(f"ecdhe_async.groups has no key sizes for {curve}")  # pragma: no cover
    return _CurveSpec(group.public_key_size, group.secret_size, kdf_hash, ec_curve, field_prime)


_SPECS: Final[dict[Curve, _CurveSpec]] = {
    "X25519": _from_registry("X25519", hashes.SHA256()),
    "X448": _from_registry("X448", hashes.SHA256()),
    "P-256": _from_registry(
        "P-256", hashes.SHA256(), ec.SECP256R1(), 2**256 - 2**224 + 2**192 + 2**96 - 1
    ),
    "P-384": _from_registry(
        "P-384", hashes.SHA384(), ec.SECP384R1(), 2**384 - 2**128 - 2**96 + 2**32 - 1
    ),
    "P-521": _from_registry("P-521", hashes.SHA384(), ec.SECP521R1(), 2**521 - 1),
}

PUBLIC_KEY_LENGTHS: Final[Mapping[Curve, int]] = MappingProxyType(
    {name: s.public_len for name, s in _SPECS.items()}
)
"""Encoded public-key length in bytes for every curve (from :mod:`ecdhe_async.groups`)."""


def _spec(curve: object) -> _CurveSpec:
    for name, spec in _SPECS.items():
        if curve == name:
            return spec
    raise KeyExchangeError(f"unsupported curve {curve!r}; expected one of {', '.join(CURVES)}")


def fingerprint(data: bytes) -> str:
    """Return a short display fingerprint: the first 8 bytes of SHA-256 as ``aa:bb:...`` hex."""
    return ":".join(f"{b:02x}" for b in hashlib.sha256(data).digest()[:8])


def _is_all_zero(data: bytes) -> bool:
    return hmac.compare_digest(data, bytes(len(data)))


def _decode_public_key(curve: Curve, data: bytes) -> PeerPublicKey:
    """Structural validation and decoding (everything except the X25519/X448 low-order check)."""
    spec = _spec(curve)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise KeyExchangeError(f"{curve} peer public key must be bytes, not {type(data).__name__}")
    data = bytes(data)
    n = spec.public_len
    if data and _is_all_zero(data):
        raise KeyExchangeError(
            f"{curve} peer public key is the identity / point at infinity (all zero bytes)"
        )
    if spec.ec_curve is None:
        if len(data) != n:
            raise KeyExchangeError(f"{curve} peer public key must be {n} bytes, got {len(data)}")
        if curve == "X25519":
            return x25519.X25519PublicKey.from_public_bytes(data)
        return x448.X448PublicKey.from_public_bytes(data)
    coord = spec.coord_len
    if len(data) == 1 + coord and data[0] in (0x02, 0x03):
        raise KeyExchangeError(
            f"{curve} peer public key is a compressed point; "
            "only the uncompressed X9.62 form (0x04 || X || Y) is accepted"
        )
    if len(data) != n:
        raise KeyExchangeError(
            f"{curve} peer public key must be {n} bytes (uncompressed X9.62 point), got {len(data)}"
        )
    if data[0] != 0x04:
        raise KeyExchangeError(
            f"{curve} peer public key has a malformed encoding: first byte 0x{data[0]:02x}, "
            "expected 0x04 (uncompressed point)"
        )
    assert spec.field_prime is not None
    x = int.from_bytes(data[1 : 1 + coord], "big")
    y = int.from_bytes(data[1 + coord :], "big")
    if x >= spec.field_prime or y >= spec.field_prime:
        raise KeyExchangeError(
            f"{curve} peer public key has a coordinate that is not reduced modulo the field prime"
        )
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(spec.ec_curve, data)
    except ValueError as exc:
        raise KeyExchangeError(f"{curve} peer public key is not a point on the curve") from exc


def _low_order_error(curve: Curve) -> KeyExchangeError:
    return KeyExchangeError(
        f"{curve} peer public key is a low-order point (it yields an all-zero shared secret)"
    )


def _raw_exchange(curve: Curve, private: _PrivateKey, peer: PeerPublicKey) -> bytes:
    try:
        if isinstance(private, ec.EllipticCurvePrivateKey):
            if not isinstance(peer, ec.EllipticCurvePublicKey):  # pragma: no cover - by design
                raise TypeError("key types do not match")
            shared = private.exchange(ec.ECDH(), peer)
        elif isinstance(private, x25519.X25519PrivateKey):
            if not isinstance(peer, x25519.X25519PublicKey):  # pragma: no cover - by design
                raise TypeError("key types do not match")
            shared = private.exchange(peer)
        else:
            if not isinstance(peer, x448.X448PublicKey):  # pragma: no cover - by design
                raise TypeError("key types do not match")
            shared = private.exchange(peer)
    except ValueError as exc:
        # OpenSSL refuses an all-zero X25519/X448 result (RFC 7748 §6): a low-order point.
        if _SPECS[curve].ec_curve is None:
            raise _low_order_error(curve) from exc
        raise KeyExchangeError(f"{curve} key agreement failed") from exc
    if _is_all_zero(shared):
        raise _low_order_error(curve)
    return shared


def _generate_private_key(curve: Curve) -> _PrivateKey:
    spec = _spec(curve)
    if spec.ec_curve is not None:
        return ec.generate_private_key(spec.ec_curve)
    if curve == "X25519":
        return x25519.X25519PrivateKey.generate()
    return x448.X448PrivateKey.generate()


def load_peer_public_key(curve: Curve, data: bytes) -> PeerPublicKey:
    """Decode and fully validate a peer's encoded public key for ``curve``.

    Raises :class:`KeyExchangeError` (naming the curve) for a wrong length, the identity / point at
    infinity, a compressed or otherwise malformed encoding, an unreduced coordinate, a point that is
    not on the curve, or an X25519/X448 low-order point.
    """
    key = _decode_public_key(curve, data)
    if _SPECS[curve].ec_curve is None:
        # A low-order u-coordinate gives an all-zero result for every clamped scalar, so one
        # exchange with a throwaway key (microseconds) detects it.
        _raw_exchange(curve, _generate_private_key(curve), key)
    return key


class EphemeralKeyPair:
    """A single-use ephemeral key pair for one ECDHE exchange.

    Create it with :meth:`generate`. The private key never leaves the object: it cannot be
    exported, copied or pickled, the ``repr`` shows only the curve and a public-key fingerprint,
    and :meth:`exchange` may be called exactly once (the private key is dropped on first use, even
    if that exchange fails validation).
    """

    __slots__ = ("_curve", "_private", "_public_bytes")

    def __init__(self, curve: Curve, private_key: _PrivateKey) -> None:
        """Wrap ``private_key``; use :meth:`generate` instead outside known-answer tests."""
        spec = _spec(curve)
        if spec.ec_curve is not None:
            ok = isinstance(private_key, ec.EllipticCurvePrivateKey) and (
                private_key.curve.name == spec.ec_curve.name
            )
        elif curve == "X25519":
            ok = isinstance(private_key, x25519.X25519PrivateKey)
        else:
            ok = isinstance(private_key, x448.X448PrivateKey)
        if not ok:
            raise KeyExchangeError(
                f"private key of type {type(private_key).__name__} is not {curve}"
            )
        self._curve: Curve = curve
        self._private: _PrivateKey | None = private_key
        public = private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            self._public_bytes = public.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        else:
            self._public_bytes = public.public_bytes_raw()

    @classmethod
    def generate(cls, curve: Curve) -> EphemeralKeyPair:
        """Generate a fresh key pair on ``curve``."""
        return cls(curve, _generate_private_key(curve))

    @property
    def curve(self) -> Curve:
        """The curve name."""
        return self._curve

    @property
    def public_bytes(self) -> bytes:
        """The encoded public key (raw for X25519/X448, uncompressed X9.62 for NIST curves)."""
        return self._public_bytes

    @property
    def used(self) -> bool:
        """Whether :meth:`exchange` has been called (the private key is gone)."""
        return self._private is None

    def exchange(self, peer_public: bytes) -> bytes:
        """Validate ``peer_public`` and return the raw shared secret, input to :func:`derive_key`.

        Raises :class:`KeyExchangeError` if the key pair was already used or the peer key is
        invalid. The private key is consumed by this call whatever its outcome.
        """
        private = self._private
        if private is None:
            raise KeyExchangeError(
                f"this {self._curve} ephemeral key pair was already used; "
                "generate a new one for every exchange"
            )
        self._private = None
        peer = _decode_public_key(self._curve, peer_public)
        return _raw_exchange(self._curve, private, peer)

    def __repr__(self) -> str:
        """Show the curve and a public-key fingerprint only."""
        state = ", used" if self._private is None else ""
        return (
            f"<EphemeralKeyPair curve={self._curve} public={fingerprint(self._public_bytes)}"
            f"{state}>"
        )

    def __reduce__(self) -> NoReturn:
        """Refuse pickling and copying: an ephemeral key must neither persist nor be duplicated."""
        raise TypeError("EphemeralKeyPair cannot be pickled or copied")


def length_prefixed(data: bytes) -> bytes:
    """Return ``data`` after its 2-byte big-endian length, so concatenations stay unambiguous.

    Used for the HKDF ``info`` string and for the signed transcript; raises
    :class:`KeyExchangeError` for more than 65535 bytes.
    """
    if len(data) > 0xFFFF:
        raise KeyExchangeError(f"transcript field of {len(data)} bytes is too long (max 65535)")
    return len(data).to_bytes(2, "big") + data


def _hkdf(
    ikm: bytes, *, algorithm: hashes.HashAlgorithm, salt: bytes | None, info: bytes, length: int
) -> bytes:
    """HKDF-Extract-and-Expand (RFC 5869)."""
    return HKDF(algorithm=algorithm, length=length, salt=salt, info=info).derive(ikm)


def _kdf_info(
    label: bytes, curve: Curve, initiator_public: bytes, responder_public: bytes
) -> bytes:
    return b"".join(
        map(length_prefixed, (label, curve.encode("ascii"), initiator_public, responder_public))
    )


def derive_key(
    shared_secret: bytes,
    *,
    curve: Curve,
    initiator_public: bytes,
    responder_public: bytes,
    info_label: bytes = DEFAULT_INFO_LABEL,
    length: int = 32,
    salt: bytes | None = None,
) -> bytes:
    """Derive a session key from a raw ECDHE shared secret with HKDF.

    The hash is SHA-256 for X25519/X448/P-256 and SHA-384 for P-384/P-521. ``info`` is
    ``lp(info_label) || lp(curve) || lp(initiator_public) || lp(responder_public)`` where ``lp``
    prefixes a 2-byte big-endian length, so both sides bind the same transcript.
    """
    spec = _spec(curve)
    if len(shared_secret) != spec.secret_len:
        raise KeyExchangeError(
            f"{curve} shared secret must be {spec.secret_len} bytes, got {len(shared_secret)}"
        )
    if _is_all_zero(shared_secret):
        raise KeyExchangeError(f"{curve} shared secret is all zero (low-order peer key?)")
    for role, public in (("initiator", initiator_public), ("responder", responder_public)):
        if len(public) != spec.public_len:
            raise KeyExchangeError(
                f"{curve} {role} public key must be {spec.public_len} bytes, got {len(public)}"
            )
    max_length = 255 * spec.kdf_hash.digest_size
    if not _MIN_KEY_LENGTH <= length <= max_length:
        raise KeyExchangeError(
            f"derived key length must be between {_MIN_KEY_LENGTH} and {max_length}, got {length}"
        )
    info = _kdf_info(bytes(info_label), curve, initiator_public, responder_public)
    return _hkdf(shared_secret, algorithm=spec.kdf_hash, salt=salt, info=info, length=length)
