"""Raw ephemeral elliptic-curve Diffie-Hellman (ECDHE) key agreement for asyncio streams.

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

*Authentication.* Unauthenticated ECDHE is only secure against passive eavesdroppers; an active
man in the middle can run one exchange with each side. :func:`exchange` can therefore sign the
transcript (own ephemeral key, peer's ephemeral key, role, curve, label) with a long-term Ed25519 or
ECDSA key and verify the peer's signature against a known public key.

Wire format of :func:`exchange`: every message is a frame ``type (1 byte) || length (2 bytes, big
endian) || body`` with the body bounded by :data:`MAX_FRAME_BODY`. Each side first sends a HELLO
(``version || role || len(curve) || curve name || public key``) and then an AUTH frame whose body is
a signature over the transcript, or empty when the side has no identity key.

Python cannot reliably wipe memory; secrets are merely kept in as few places as possible.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, NoReturn, TypeAlias, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x448, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ecdhe_async.errors import KeyExchangeError

__all__ = [
    "CURVES",
    "DEFAULT_INFO_LABEL",
    "MAX_FRAME_BODY",
    "PROTOCOL_VERSION",
    "PUBLIC_KEY_LENGTHS",
    "Curve",
    "EphemeralKeyPair",
    "ExchangeResult",
    "PeerPublicKey",
    "SigningKey",
    "VerifyKey",
    "derive_key",
    "exchange",
    "fingerprint",
    "load_peer_public_key",
]

Curve: TypeAlias = Literal["X25519", "X448", "P-256", "P-384", "P-521"]
"""Name of a supported key-agreement curve."""

CURVES: Final[tuple[Curve, ...]] = get_args(Curve)
"""Every supported curve, strongest-per-byte first."""

PeerPublicKey: TypeAlias = x25519.X25519PublicKey | x448.X448PublicKey | ec.EllipticCurvePublicKey
"""A validated peer public key, as returned by :func:`load_peer_public_key`."""

SigningKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
"""A long-term identity key: Ed25519, or ECDSA on P-256 / P-384."""

VerifyKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
"""The public half of a :data:`SigningKey`."""

_PrivateKey: TypeAlias = x25519.X25519PrivateKey | x448.X448PrivateKey | ec.EllipticCurvePrivateKey

DEFAULT_INFO_LABEL: Final = b"ecdhe_async v1"
"""Default protocol label that starts the HKDF ``info`` string."""

PROTOCOL_VERSION: Final = 1
"""Version byte carried in every HELLO message."""

MAX_FRAME_BODY: Final = 1024
"""Largest accepted frame body in bytes (a P-521 HELLO is 141, a P-384 ECDSA signature <= 104)."""

_MSG_HELLO: Final = 0x01
_MSG_AUTH: Final = 0x02
_MSG_NAMES: Final = {_MSG_HELLO: "HELLO", _MSG_AUTH: "AUTH"}
_FRAME_HEADER_LEN: Final = 3
_ROLE_INITIATOR: Final = 0x01
_ROLE_RESPONDER: Final = 0x02
_ROLE_LABELS: Final = {_ROLE_INITIATOR: b"initiator", _ROLE_RESPONDER: b"responder"}
_SIGNATURE_CONTEXT: Final = b"ecdhe_async transcript signature v1"
_MIN_KEY_LENGTH: Final = 16


@dataclass(frozen=True, slots=True)
class _CurveSpec:
    public_len: int
    secret_len: int
    kdf_hash: hashes.HashAlgorithm
    ec_curve: ec.EllipticCurve | None = None
    field_prime: int | None = None

    @property
    def coord_len(self) -> int:
        return (self.public_len - 1) // 2


_SPECS: Final[dict[Curve, _CurveSpec]] = {
    "X25519": _CurveSpec(32, 32, hashes.SHA256()),
    "X448": _CurveSpec(56, 56, hashes.SHA256()),
    "P-256": _CurveSpec(
        65, 32, hashes.SHA256(), ec.SECP256R1(), 2**256 - 2**224 + 2**192 + 2**96 - 1
    ),
    "P-384": _CurveSpec(
        97, 48, hashes.SHA384(), ec.SECP384R1(), 2**384 - 2**128 - 2**96 + 2**32 - 1
    ),
    "P-521": _CurveSpec(133, 66, hashes.SHA384(), ec.SECP521R1(), 2**521 - 1),
}

PUBLIC_KEY_LENGTHS: Final[Mapping[Curve, int]] = MappingProxyType(
    {name: s.public_len for name, s in _SPECS.items()}
)
"""Encoded public-key length in bytes for every curve."""

_ECDSA_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
}


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


def _lp(data: bytes) -> bytes:
    """Length-prefix ``data`` (2 bytes, big endian) so concatenations stay unambiguous."""
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
    return _lp(label) + _lp(curve.encode("ascii")) + _lp(initiator_public) + _lp(responder_public)


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


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExchangeResult:
    """Outcome of :func:`exchange`. ``key`` is secret and never part of the ``repr``.

    Equality is identity (``eq=False``) so keys are never compared in variable time; use
    :func:`hmac.compare_digest` if you must compare them.
    """

    curve: Curve
    key: bytes = field(repr=False)
    local_public: bytes
    peer_public: bytes
    authenticated: bool

    @property
    def key_fingerprint(self) -> str:
        """A short fingerprint of the derived key, for out-of-band comparison by humans."""
        return fingerprint(self.key)

    def __repr__(self) -> str:
        """Show the curve, public-key fingerprints and authentication state, never the key."""
        return (
            f"ExchangeResult(curve={self.curve!r}, local={fingerprint(self.local_public)}, "
            f"peer={fingerprint(self.peer_public)}, authenticated={self.authenticated}, "
            "key=<redacted>)"
        )


# --- wire protocol -------------------------------------------------------------------------------


def _encode_frame(msg_type: int, body: bytes) -> bytes:
    if len(body) > MAX_FRAME_BODY:
        raise KeyExchangeError(f"frame body of {len(body)} bytes exceeds {MAX_FRAME_BODY}")
    return bytes([msg_type]) + len(body).to_bytes(2, "big") + body


async def _write_frame(writer: asyncio.StreamWriter, msg_type: int, body: bytes) -> None:
    frame = _encode_frame(msg_type, body)
    try:
        writer.write(frame)
        await writer.drain()
    except ConnectionError as exc:
        raise KeyExchangeError(f"connection lost while sending {_MSG_NAMES[msg_type]}") from exc


async def _read_exactly(reader: asyncio.StreamReader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise KeyExchangeError(
            f"truncated {what}: connection closed after {len(exc.partial)} of {n} bytes"
        ) from exc
    except ConnectionError as exc:
        raise KeyExchangeError(f"connection lost while reading {what}") from exc


async def _read_frame(reader: asyncio.StreamReader, expected_type: int) -> bytes:
    name = _MSG_NAMES[expected_type]
    header = await _read_exactly(reader, _FRAME_HEADER_LEN, f"{name} frame header")
    msg_type, length = header[0], int.from_bytes(header[1:], "big")
    if msg_type != expected_type:
        raise KeyExchangeError(f"expected a {name} frame, got message type 0x{msg_type:02x}")
    if length > MAX_FRAME_BODY:
        raise KeyExchangeError(
            f"oversized {name} frame: {length} bytes exceeds the maximum of {MAX_FRAME_BODY}"
        )
    return await _read_exactly(reader, length, f"{name} frame body")


def _encode_hello(role: int, curve: Curve, public: bytes) -> bytes:
    name = curve.encode("ascii")
    return bytes([PROTOCOL_VERSION, role, len(name)]) + name + public


def _parse_hello(body: bytes) -> tuple[int, str, bytes]:
    """Split a HELLO body into (role, curve name, public key); checks framing only."""
    if len(body) < 3:
        raise KeyExchangeError(f"malformed HELLO: {len(body)} bytes is too short")
    version, role, name_len = body[0], body[1], body[2]
    if version != PROTOCOL_VERSION:
        raise KeyExchangeError(
            f"unsupported protocol version {version} in HELLO (we speak {PROTOCOL_VERSION})"
        )
    if role not in _ROLE_LABELS:
        raise KeyExchangeError(f"malformed HELLO: unknown role 0x{role:02x}")
    if len(body) < 3 + name_len:
        raise KeyExchangeError("malformed HELLO: curve name runs past the end of the message")
    try:
        name = body[3 : 3 + name_len].decode("ascii")
    except UnicodeDecodeError as exc:
        raise KeyExchangeError("malformed HELLO: curve name is not ASCII") from exc
    return role, name, body[3 + name_len :]


def _signature_hash(
    key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
) -> hashes.HashAlgorithm:
    algorithm = _ECDSA_HASHES.get(key.curve.name)
    if algorithm is None:
        raise KeyExchangeError(
            f"unsupported ECDSA curve {key.curve.name!r} for identity keys; use P-256 or P-384"
        )
    return algorithm


def _check_identity(identity: object, peer_verify_key: object) -> None:
    if identity is not None:
        if isinstance(identity, ec.EllipticCurvePrivateKey):
            _signature_hash(identity)
        elif not isinstance(identity, ed25519.Ed25519PrivateKey):
            raise KeyExchangeError(
                f"unsupported identity key type {type(identity).__name__}; "
                "use Ed25519 or ECDSA P-256/P-384"
            )
    if peer_verify_key is not None:
        if isinstance(peer_verify_key, ec.EllipticCurvePublicKey):
            _signature_hash(peer_verify_key)
        elif not isinstance(peer_verify_key, ed25519.Ed25519PublicKey):
            raise KeyExchangeError(
                f"unsupported peer verify key type {type(peer_verify_key).__name__}; "
                "use Ed25519 or ECDSA P-256/P-384"
            )


def _transcript(
    info_label: bytes, curve: Curve, signer_role: int, signer_public: bytes, other_public: bytes
) -> bytes:
    return (
        _lp(_SIGNATURE_CONTEXT)
        + _lp(info_label)
        + _lp(curve.encode("ascii"))
        + _lp(_ROLE_LABELS[signer_role])
        + _lp(signer_public)
        + _lp(other_public)
    )


def _sign(identity: SigningKey, data: bytes) -> bytes:
    if isinstance(identity, ed25519.Ed25519PrivateKey):
        return identity.sign(data)
    return identity.sign(data, ec.ECDSA(_signature_hash(identity)))


def _verify(key: VerifyKey, signature: bytes, data: bytes) -> None:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(_signature_hash(key)))
    except (InvalidSignature, ValueError) as exc:
        raise KeyExchangeError(
            "peer's signature over the exchange transcript is invalid: "
            "wrong identity key, or a man in the middle?"
        ) from exc


async def exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    curve: Curve = "X25519",
    initiator: bool,
    identity: SigningKey | None = None,
    peer_verify_key: VerifyKey | None = None,
    info_label: bytes = DEFAULT_INFO_LABEL,
) -> ExchangeResult:
    """Run one ECDHE exchange over a stream pair and return the derived 32-byte key.

    Exactly one side must pass ``initiator=True``. With ``identity`` we sign the transcript; with
    ``peer_verify_key`` we require and verify the peer's signature (``authenticated`` is then
    True). Without ``peer_verify_key`` the result is unauthenticated and an active man in the
    middle cannot be detected. Every failure raises :class:`KeyExchangeError`; the caller owns the
    streams (close them) and should bound the call with :func:`asyncio.wait_for`.
    """
    _spec(curve)
    _check_identity(identity, peer_verify_key)
    label = bytes(info_label)
    own_role = _ROLE_INITIATOR if initiator else _ROLE_RESPONDER
    peer_role = _ROLE_RESPONDER if initiator else _ROLE_INITIATOR
    keypair = EphemeralKeyPair.generate(curve)
    local_public = keypair.public_bytes

    await _write_frame(writer, _MSG_HELLO, _encode_hello(own_role, curve, local_public))
    role, peer_curve, peer_public = _parse_hello(await _read_frame(reader, _MSG_HELLO))
    if peer_curve != curve:
        raise KeyExchangeError(f"curve mismatch: we use {curve}, the peer uses {peer_curve!r}")
    if role != peer_role:
        both = _ROLE_LABELS[own_role].decode()
        raise KeyExchangeError(f"role mismatch: both sides claim to be the {both}")
    if hmac.compare_digest(peer_public, local_public):
        raise KeyExchangeError(f"{curve} peer echoed our own public key (reflection attack?)")
    shared = keypair.exchange(peer_public)

    signature = b""
    if identity is not None:
        signature = _sign(identity, _transcript(label, curve, own_role, local_public, peer_public))
    await _write_frame(writer, _MSG_AUTH, signature)
    peer_signature = await _read_frame(reader, _MSG_AUTH)
    authenticated = False
    if peer_verify_key is not None:
        if not peer_signature:
            raise KeyExchangeError(
                "peer sent no signature although a peer_verify_key was given: "
                "unauthenticated peer, or a man in the middle?"
            )
        transcript = _transcript(label, curve, peer_role, peer_public, local_public)
        _verify(peer_verify_key, peer_signature, transcript)
        authenticated = True

    initiator_public, responder_public = (
        (local_public, peer_public) if initiator else (peer_public, local_public)
    )
    key = derive_key(
        shared,
        curve=curve,
        initiator_public=initiator_public,
        responder_public=responder_public,
        info_label=label,
    )
    del shared
    return ExchangeResult(
        curve=curve,
        key=key,
        local_public=local_public,
        peer_public=peer_public,
        authenticated=authenticated,
    )
