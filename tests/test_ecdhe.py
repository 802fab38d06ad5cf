"""Tests for the raw key agreement (ecdhe_async.ecdhe.agreement): known answers, HKDF, key pairs,
peer-key validation. The exchange's codec and state machine are in test_ecdhe_wire.py and
test_ecdhe_protocol.py, the asyncio layer over real sockets in test_ecdhe_streams.py."""

from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
import hmac
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from ecdhe_async import ecdhe, groups
from ecdhe_async.ecdhe import (
    CURVES,
    DEFAULT_INFO_LABEL,
    PUBLIC_KEY_LENGTHS,
    Curve,
    EphemeralKeyPair,
    ExchangeResult,
    agreement,
    derive_key,
    fingerprint,
    load_peer_public_key,
)
from ecdhe_async.errors import KeyExchangeError

# --- known-answer tests --------------------------------------------------------------------------

RFC7748_X25519 = {
    "alice_private": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    "alice_public": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
    "bob_private": "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    "bob_public": "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    "shared": "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
}

RFC7748_X448 = {
    "alice_private": "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28d"
    "d9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b",
    "alice_public": "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c"
    "22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0",
    "bob_private": "1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d"
    "6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d",
    "bob_public": "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b430"
    "27d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609",
    "shared": "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282b"
    "b60c0b56fd2464c335543936521c24403085d59a449a5037514a879d",
}

# RFC 5903 §8.1, 256-bit random ECP group.
RFC5903_P256 = {
    "i": "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
    "gix": "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180",
    "giy": "5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
    "r": "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
    "grx": "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63",
    "gry": "56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
    "girx": "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de",
    "giry": "522bde0af0d8585b8def9c183b5ae38f50235206a8674ecb5d98edb20eb153a2",
}
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.mark.parametrize(
    ("curve", "vector", "private_type"),
    [
        ("X25519", RFC7748_X25519, x25519.X25519PrivateKey),
        ("X448", RFC7748_X448, x448.X448PrivateKey),
    ],
)
def test_rfc7748_known_answers(curve: Curve, vector: dict[str, str], private_type: Any) -> None:
    v = {k: bytes.fromhex(h) for k, h in vector.items()}
    alice = EphemeralKeyPair(curve, private_type.from_private_bytes(v["alice_private"]))
    bob = EphemeralKeyPair(curve, private_type.from_private_bytes(v["bob_private"]))
    # Internal consistency: the RFC's public keys are X(priv, base point).
    assert alice.public_bytes == v["alice_public"]
    assert bob.public_bytes == v["bob_public"]
    assert alice.exchange(v["bob_public"]) == v["shared"]
    assert bob.exchange(v["alice_public"]) == v["shared"]


def test_rfc5903_p256_known_answer() -> None:
    v = {k: bytes.fromhex(h) for k, h in RFC5903_P256.items()}
    i, r = int.from_bytes(v["i"], "big"), int.from_bytes(v["r"], "big")
    initiator = EphemeralKeyPair("P-256", ec.derive_private_key(i, ec.SECP256R1()))
    responder = EphemeralKeyPair("P-256", ec.derive_private_key(r, ec.SECP256R1()))
    assert initiator.public_bytes == b"\x04" + v["gix"] + v["giy"]
    assert responder.public_bytes == b"\x04" + v["grx"] + v["gry"]
    assert initiator.exchange(responder.public_bytes) == v["girx"]
    assert responder.exchange(initiator.public_bytes) == v["girx"]
    # Cross-check the full shared point (x and y) of the vector: (i*r mod n)·G.
    shared_point = ec.derive_private_key(i * r % P256_ORDER, ec.SECP256R1()).public_key()
    numbers = shared_point.public_numbers()
    assert (numbers.x, numbers.y) == (int.from_bytes(v["girx"]), int.from_bytes(v["giry"]))


RFC5869_SHA256 = [
    pytest.param(
        b"\x0b" * 22,
        bytes(range(0x00, 0x0D)),
        bytes(range(0xF0, 0xFA)),
        42,
        "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        id="A.1-basic",
    ),
    pytest.param(
        bytes(range(0x00, 0x50)),
        bytes(range(0x60, 0xB0)),
        bytes(range(0xB0, 0x100)),
        82,
        "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        id="A.2-long",
    ),
    pytest.param(
        b"\x0b" * 22,
        b"",
        b"",
        42,
        "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        id="A.3-empty-salt-info",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "prk", "okm"), RFC5869_SHA256)
def test_rfc5869_hkdf(
    ikm: bytes, salt: bytes, info: bytes, length: int, prk: str, okm: str
) -> None:
    # Consistency of the typed-in vector: PRK = HMAC-SHA256(salt, IKM).
    assert hmac.new(salt, ikm, hashlib.sha256).hexdigest() == prk
    out = agreement._hkdf(ikm, algorithm=hashes.SHA256(), salt=salt, info=info, length=length)
    assert out.hex() == okm
    if not salt:  # RFC 5869 §2.2: an absent salt is HashLen zero bytes, same as empty.
        none_salt = agreement._hkdf(
            ikm, algorithm=hashes.SHA256(), salt=None, info=info, length=length
        )
        assert none_salt.hex() == okm


# --- derive_key ----------------------------------------------------------------------------------

SECRET_LEN = {"X25519": 32, "X448": 56, "P-256": 32, "P-384": 48, "P-521": 66}
KDF_HASH = {
    "X25519": "sha256",
    "X448": "sha256",
    "P-256": "sha256",
    "P-384": "sha384",
    "P-521": "sha384",
}


def lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


@pytest.mark.parametrize("curve", CURVES)
def test_derive_key_pins_hash_and_info_layout(curve: Curve) -> None:
    shared = bytes(range(1, SECRET_LEN[curve] + 1))
    init, resp = b"\x11" * PUBLIC_KEY_LENGTHS[curve], b"\x22" * PUBLIC_KEY_LENGTHS[curve]
    info = lp(b"ecdhe_async v1") + lp(curve.encode()) + lp(init) + lp(resp)
    algorithm = hashes.SHA256() if KDF_HASH[curve] == "sha256" else hashes.SHA384()
    expected = HKDF(algorithm=algorithm, length=32, salt=None, info=info).derive(shared)
    got = derive_key(shared, curve=curve, initiator_public=init, responder_public=resp)
    assert got == expected
    assert len(got) == 32


def test_derive_key_binds_label_roles_salt_and_length() -> None:
    a, b = EphemeralKeyPair.generate("X25519"), EphemeralKeyPair.generate("X25519")
    shared = a.exchange(b.public_bytes)
    base: dict[str, Any] = {"curve": "X25519", "initiator_public": a.public_bytes}
    key = derive_key(shared, **base, responder_public=b.public_bytes)
    assert key == derive_key(shared, **base, responder_public=b.public_bytes)
    variants = [
        derive_key(shared, **base, responder_public=b.public_bytes, info_label=b"other"),
        derive_key(shared, **base, responder_public=b.public_bytes, salt=b"salt"),
        derive_key(
            shared, curve="X25519", initiator_public=b.public_bytes, responder_public=a.public_bytes
        ),
    ]
    assert len({key, *variants}) == 4
    long_key = derive_key(shared, **base, responder_public=b.public_bytes, length=64)
    assert len(long_key) == 64
    assert long_key[:32] == key  # HKDF-Expand output is a prefix-stable stream


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"shared_secret": b"\x01" * 31}, "shared secret must be 32 bytes"),
        ({"shared_secret": bytes(32)}, "all zero"),
        ({"initiator_public": b"\x01" * 31}, "initiator public key must be 32 bytes"),
        ({"responder_public": b"\x01" * 65}, "responder public key must be 32 bytes"),
        ({"length": 8}, "length must be between"),
        ({"length": 255 * 32 + 1}, "length must be between"),
        ({"curve": "P-192"}, "unsupported curve 'P-192'"),
    ],
)
def test_derive_key_rejects_bad_input(kwargs: dict[str, Any], pattern: str) -> None:
    args: dict[str, Any] = {
        "shared_secret": b"\x01" * 32,
        "curve": "X25519",
        "initiator_public": b"\x02" * 32,
        "responder_public": b"\x03" * 32,
        **kwargs,
    }
    shared = args.pop("shared_secret")
    with pytest.raises(KeyExchangeError, match=pattern):
        derive_key(shared, **args)


# --- key pairs, fingerprints, reprs --------------------------------------------------------------


def test_curve_table() -> None:
    assert CURVES == ("X25519", "X448", "P-256", "P-384", "P-521")
    assert [PUBLIC_KEY_LENGTHS[c] for c in CURVES] == [32, 56, 65, 97, 133]


@pytest.mark.parametrize("curve", CURVES)
def test_curve_sizes_come_from_the_group_registry(curve: Curve) -> None:
    group = groups.lookup(curve)
    assert group is not None
    assert group.name == curve
    assert group.allowed
    assert group.is_ecdhe
    assert PUBLIC_KEY_LENGTHS[curve] == group.public_key_size
    assert SECRET_LEN[curve] == group.secret_size


@pytest.mark.parametrize("curve", CURVES)
def test_generate_gives_fresh_well_formed_keys(curve: Curve) -> None:
    a, b = EphemeralKeyPair.generate(curve), EphemeralKeyPair.generate(curve)
    assert a.curve == curve
    assert len(a.public_bytes) == PUBLIC_KEY_LENGTHS[curve]
    assert a.public_bytes != b.public_bytes
    if curve.startswith("P-"):
        assert a.public_bytes[0] == 0x04
    assert load_peer_public_key(curve, a.public_bytes) is not None
    shared = a.exchange(b.public_bytes)
    assert shared == b.exchange(a.public_bytes)
    assert len(shared) == SECRET_LEN[curve]


def test_unknown_curve_is_rejected() -> None:
    with pytest.raises(KeyExchangeError, match="unsupported curve 'P-192'"):
        EphemeralKeyPair.generate("P-192")  # type: ignore[arg-type]
    with pytest.raises(KeyExchangeError, match="unsupported curve 'x25519'"):
        load_peer_public_key("x25519", bytes(range(32)))  # type: ignore[arg-type]


def test_key_pair_rejects_private_key_of_another_curve() -> None:
    with pytest.raises(KeyExchangeError, match="is not P-256"):
        EphemeralKeyPair("P-256", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(KeyExchangeError, match="is not X448"):
        EphemeralKeyPair("X448", x25519.X25519PrivateKey.generate())


@pytest.mark.parametrize("curve", CURVES)
def test_private_key_is_single_use(curve: Curve) -> None:
    a, b = EphemeralKeyPair.generate(curve), EphemeralKeyPair.generate(curve)
    assert not a.used
    a.exchange(b.public_bytes)
    assert a.used
    with pytest.raises(KeyExchangeError, match=f"{curve} ephemeral key pair was already used"):
        a.exchange(b.public_bytes)


def test_failed_exchange_still_consumes_the_key() -> None:
    a, b = EphemeralKeyPair.generate("X25519"), EphemeralKeyPair.generate("X25519")
    with pytest.raises(KeyExchangeError, match="low-order"):
        a.exchange(bytes([1]) + bytes(31))
    with pytest.raises(KeyExchangeError, match="already used"):
        a.exchange(b.public_bytes)


def test_key_pair_cannot_be_copied_or_pickled() -> None:
    kp = EphemeralKeyPair.generate("X25519")
    with pytest.raises(TypeError, match="cannot be pickled or copied"):
        copy.copy(kp)
    with pytest.raises(TypeError, match="cannot be pickled or copied"):
        copy.deepcopy(kp)
    with pytest.raises(TypeError, match="cannot be pickled or copied"):
        pickle.dumps(kp)


def test_fingerprint() -> None:
    assert fingerprint(b"") == "e3:b0:c4:42:98:fc:1c:14"  # SHA-256("") = e3b0c442 98fc1c14...
    assert re.fullmatch(r"([0-9a-f]{2}:){7}[0-9a-f]{2}", fingerprint(b"\x01" * 32))


def _private_hex(kp: EphemeralKeyPair) -> str:
    private = kp._private
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return f"{private.private_numbers().private_value:x}"
    assert private is not None
    return private.private_bytes_raw().hex()


@pytest.mark.parametrize("curve", CURVES)
def test_key_pair_repr_reveals_only_curve_and_fingerprint(curve: Curve) -> None:
    kp = EphemeralKeyPair.generate(curve)
    secret_hex = _private_hex(kp)
    text = repr(kp)
    assert text == f"<EphemeralKeyPair curve={curve} public={fingerprint(kp.public_bytes)}>"
    assert secret_hex not in text
    assert kp.public_bytes.hex() not in text
    assert str(kp) == text
    kp.exchange(EphemeralKeyPair.generate(curve).public_bytes)
    assert repr(kp).endswith(", used>")


def test_exchange_result_repr_hides_key() -> None:
    key = bytes(range(32))
    result = ExchangeResult(
        curve="X25519",
        key=key,
        local_public=b"\x01" * 32,
        peer_public=b"\x02" * 32,
        authenticated=True,
    )
    text = repr(result)
    assert key.hex() not in text
    assert repr(key) not in text
    assert "key=<redacted>" in text
    assert "authenticated=True" in text
    assert result.key_fingerprint == fingerprint(key)
    assert next(f for f in dataclasses.fields(result) if f.name == "key").repr is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.key = b"other"  # type: ignore[misc]


# --- peer-key validation -------------------------------------------------------------------------

FIELD_PRIME = {
    "P-256": 2**256 - 2**224 + 2**192 + 2**96 - 1,
    "P-384": 2**384 - 2**128 - 2**96 + 2**32 - 1,
    "P-521": 2**521 - 1,
}
NIST = ("P-256", "P-384", "P-521")


def _valid_public(curve: Curve) -> bytes:
    return EphemeralKeyPair.generate(curve).public_bytes


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("delta", [-1, +1])
def test_wrong_length_is_rejected(curve: Curve, delta: int) -> None:
    good = _valid_public(curve)
    bad = good[:delta] if delta < 0 else good + b"\x01"
    with pytest.raises(KeyExchangeError, match=rf"^{curve} peer public key must be \d+ bytes"):
        load_peer_public_key(curve, bad)


@pytest.mark.parametrize("curve", CURVES)
def test_empty_key_is_rejected(curve: Curve) -> None:
    with pytest.raises(KeyExchangeError, match=f"{curve} peer public key must be"):
        load_peer_public_key(curve, b"")


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("encoding", ["single-zero-byte", "all-zero"])
def test_identity_is_rejected(curve: Curve, encoding: str) -> None:
    data = b"\x00" if encoding == "single-zero-byte" else bytes(PUBLIC_KEY_LENGTHS[curve])
    with pytest.raises(KeyExchangeError, match=f"^{curve} .*identity / point at infinity"):
        load_peer_public_key(curve, data)
    with pytest.raises(KeyExchangeError, match=f"^{curve} .*identity"):
        EphemeralKeyPair.generate(curve).exchange(data)


@pytest.mark.parametrize("curve", NIST)
def test_off_curve_point_is_rejected(curve: Curve) -> None:
    good = bytearray(_valid_public(curve))
    good[-1] ^= 0x01  # y -> y ± 1: off the curve (y^2 changes, x does not)
    with pytest.raises(KeyExchangeError, match=f"^{curve} peer public key is not a point on"):
        load_peer_public_key(curve, bytes(good))
    coord = (PUBLIC_KEY_LENGTHS[curve] - 1) // 2
    origin = b"\x04" + bytes(coord - 1) + b"\x01" + bytes(coord)  # (1, 0) is not on the curve
    with pytest.raises(KeyExchangeError, match="not a point on the curve"):
        EphemeralKeyPair.generate(curve).exchange(origin)


@pytest.mark.parametrize("curve", NIST)
def test_compressed_point_is_rejected(curve: Curve) -> None:
    public = load_peer_public_key(curve, _valid_public(curve))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    compressed = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    with pytest.raises(KeyExchangeError, match=f"^{curve} peer public key is a compressed point"):
        load_peer_public_key(curve, compressed)


@pytest.mark.parametrize("curve", NIST)
@pytest.mark.parametrize("prefix", [0x02, 0x03, 0x05, 0x06, 0x07, 0xFF])
def test_malformed_prefix_is_rejected(curve: Curve, prefix: int) -> None:
    data = bytes([prefix]) + _valid_public(curve)[1:]  # hybrid 06/07 and junk prefixes
    with pytest.raises(KeyExchangeError, match=f"^{curve} .*malformed encoding: first byte"):
        load_peer_public_key(curve, data)


@pytest.mark.parametrize("curve", NIST)
def test_unreduced_coordinate_is_rejected(curve: Curve) -> None:
    coord = (PUBLIC_KEY_LENGTHS[curve] - 1) // 2
    x_is_p = b"\x04" + FIELD_PRIME[curve].to_bytes(coord, "big") + b"\x01" * coord
    with pytest.raises(KeyExchangeError, match=f"^{curve} .*not reduced modulo the field prime"):
        load_peer_public_key(curve, x_is_p)


def test_p521_valid_point_with_y_plus_p_is_rejected() -> None:
    # P-521 coordinates have 7 spare bits, so (x, y + p) is the same point, encoded unreduced.
    public = load_peer_public_key("P-521", _valid_public("P-521"))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    n = public.public_numbers()
    data = b"\x04" + n.x.to_bytes(66, "big") + (n.y + FIELD_PRIME["P-521"]).to_bytes(66, "big")
    with pytest.raises(KeyExchangeError, match="not reduced"):
        load_peer_public_key("P-521", data)


_P25519 = 2**255 - 19
_P448 = 2**448 - 2**224 - 1
_ORDER8_A = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
_ORDER8_B = "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"
LOW_ORDER_POINTS = {
    "X25519-u=0": ("X25519", (0).to_bytes(32, "little")),
    "X25519-u=1": ("X25519", (1).to_bytes(32, "little")),
    "X25519-order8-a": ("X25519", bytes.fromhex(_ORDER8_A)),
    "X25519-order8-b": ("X25519", bytes.fromhex(_ORDER8_B)),
    "X25519-u=p-1": ("X25519", (_P25519 - 1).to_bytes(32, "little")),
    "X25519-u=p": ("X25519", _P25519.to_bytes(32, "little")),
    "X25519-u=p+1": ("X25519", (_P25519 + 1).to_bytes(32, "little")),
    "X25519-u=p-1+high-bit": ("X25519", (_P25519 - 1 + 2**255).to_bytes(32, "little")),
    "X25519-order8-a+high-bit": ("X25519", bytes.fromhex(_ORDER8_A[:-2] + "80")),
    "X448-u=0": ("X448", (0).to_bytes(56, "little")),
    "X448-u=1": ("X448", (1).to_bytes(56, "little")),
    "X448-u=p-1": ("X448", (_P448 - 1).to_bytes(56, "little")),
    "X448-u=p": ("X448", _P448.to_bytes(56, "little")),
    "X448-u=p+1": ("X448", (_P448 + 1).to_bytes(56, "little")),
}
RAW_XDH: dict[str, tuple[Any, Any]] = {
    "X25519": (x25519.X25519PrivateKey, x25519.X25519PublicKey),
    "X448": (x448.X448PrivateKey, x448.X448PublicKey),
}


@pytest.mark.parametrize(
    ("curve", "point"), list(LOW_ORDER_POINTS.values()), ids=list(LOW_ORDER_POINTS)
)
def test_low_order_points_are_rejected(curve: Curve, point: bytes) -> None:
    # Vector check: the raw library computes an all-zero secret for it (and refuses).
    private_type, public_type = RAW_XDH[curve]
    with pytest.raises(ValueError, match="Error computing shared key"):
        private_type.generate().exchange(public_type.from_public_bytes(point))
    pattern = f"^{curve} peer public key is (a low-order point|the identity)"
    with pytest.raises(KeyExchangeError, match=pattern):
        load_peer_public_key(curve, point)
    with pytest.raises(KeyExchangeError, match=pattern):
        EphemeralKeyPair.generate(curve).exchange(point)


def test_non_bytes_peer_key_is_rejected() -> None:
    with pytest.raises(KeyExchangeError, match="must be bytes, not str"):
        load_peer_public_key("X25519", "a" * 32)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(curve=st.sampled_from(CURVES), data=st.binary(max_size=200))
def test_random_peer_keys_raise_only_key_exchange_error(curve: Curve, data: bytes) -> None:
    try:
        load_peer_public_key(curve, data)
    except KeyExchangeError:
        pass
    try:
        EphemeralKeyPair.generate(curve).exchange(data)
    except KeyExchangeError:
        pass


@settings(max_examples=200, deadline=None)
@given(curve=st.sampled_from(NIST), data=st.data())
def test_random_uncompressed_points_raise_only_key_exchange_error(
    curve: Curve, data: st.DataObject
) -> None:
    n = PUBLIC_KEY_LENGTHS[curve] - 1
    candidate = b"\x04" + data.draw(st.binary(min_size=n, max_size=n))
    with pytest.raises(KeyExchangeError, match=curve):  # random (x, y) is off-curve w.h.p.
        load_peer_public_key(curve, candidate)


def test_default_label() -> None:
    assert DEFAULT_INFO_LABEL == b"ecdhe_async v1"


def test_over_long_info_label_is_rejected() -> None:
    with pytest.raises(KeyExchangeError, match="too long"):
        derive_key(
            b"\x01" * 32,
            curve="X25519",
            initiator_public=b"\x02" * 32,
            responder_public=b"\x03" * 32,
            info_label=bytes(70_000),
        )


# --- the package ---------------------------------------------------------------------------------

PUBLIC_BEFORE_THE_SPLIT = {
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
}


def test_package_still_exports_every_public_name() -> None:
    assert PUBLIC_BEFORE_THE_SPLIT <= set(ecdhe.__all__)
    for name in ecdhe.__all__:
        assert getattr(ecdhe, name) is not None


@pytest.mark.parametrize("module", ["agreement", "auth", "protocol", "wire"])
def test_sans_io_modules_import_no_io(module: str) -> None:
    source = Path(ecdhe.__file__).with_name(f"{module}.py").read_text()
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imported & {"asyncio", "socket", "ssl", "selectors", "uvloop", "trio", "anyio"}
