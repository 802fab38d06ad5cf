"""Tests for ecdhe_async.ecdhe: known answers, peer-key validation, the async exchange over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hashlib
import hmac
import logging
import pickle
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, x448, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from ecdhe_async import ecdhe
from ecdhe_async.ecdhe import (
    CURVES,
    DEFAULT_INFO_LABEL,
    MAX_FRAME_BODY,
    PUBLIC_KEY_LENGTHS,
    Curve,
    EphemeralKeyPair,
    ExchangeResult,
    derive_key,
    exchange,
    fingerprint,
    load_peer_public_key,
)
from ecdhe_async.errors import KeyExchangeError

TIMEOUT = 10.0
T = TypeVar("T")

# --- wire helpers written independently of the module, so they also pin the wire format ----------

HELLO, AUTH = 0x01, 0x02
INITIATOR, RESPONDER = 0x01, 0x02


def frame(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(2, "big") + body


def hello(curve: str, public: bytes, *, role: int = RESPONDER, version: int = 1) -> bytes:
    name = curve.encode()
    return frame(HELLO, bytes([version, role, len(name)]) + name + public)


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    header = await asyncio.wait_for(reader.readexactly(3), TIMEOUT)
    body = await asyncio.wait_for(reader.readexactly(int.from_bytes(header[1:], "big")), TIMEOUT)
    return header + body


# --- TCP harness: real sockets on 127.0.0.1, port 0, everything closed in finally ----------------

Outcome = ExchangeResult | Exception
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Any]]


async def capture(aw: Awaitable[T]) -> T | Exception:
    try:
        return await aw
    except Exception as exc:
        return exc


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[int, asyncio.Queue[Any]]]:
    """Run ``handler`` per connection; its outcome (result or exception) lands in the queue."""
    outcomes: asyncio.Queue[Any] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            outcome = await capture(handler(reader, writer))
        finally:
            await close_writer(writer)
        outcomes.put_nowait(outcome)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], outcomes
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    try:
        yield reader, writer
    finally:
        await close_writer(writer)


async def next_outcome(outcomes: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(outcomes.get(), TIMEOUT)


def bounded_exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, **kwargs: Any
) -> Awaitable[ExchangeResult]:
    return asyncio.wait_for(exchange(reader, writer, **kwargs), TIMEOUT)


async def run_pair(
    client_kwargs: dict[str, Any] | None = None, server_kwargs: dict[str, Any] | None = None
) -> tuple[Outcome, Outcome]:
    """One exchange between a TCP client (initiator) and server (responder)."""
    server_kwargs = {"initiator": False, **(server_kwargs or {})}
    client_kwargs = {"initiator": True, **(client_kwargs or {})}

    async def responder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        return await bounded_exchange(reader, writer, **server_kwargs)

    async with serve(responder) as (port, outcomes):
        async with connect(port) as (reader, writer):
            client = await capture(bounded_exchange(reader, writer, **client_kwargs))
        server = await next_outcome(outcomes)
    return client, server


async def run_against_script(script: bytes, *, eof: bool = True, **client_kwargs: Any) -> Outcome:
    """The client runs ``exchange`` against a peer that sends ``script`` and nothing else."""

    async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(script)
        await writer.drain()
        if eof:
            writer.write_eof()
        await asyncio.wait_for(reader.read(), TIMEOUT)  # until the client gives up and closes

    async with serve(scripted) as (port, outcomes):
        async with connect(port) as (reader, writer):
            client = await capture(
                bounded_exchange(reader, writer, **{"initiator": True, **client_kwargs})
            )
        assert await next_outcome(outcomes) is None
    return client


def assert_error(outcome: Outcome, pattern: str) -> None:
    assert isinstance(outcome, KeyExchangeError), f"expected KeyExchangeError, got {outcome!r}"
    assert re.search(pattern, str(outcome)), f"{pattern!r} not in {str(outcome)!r}"


def assert_ok(outcome: Outcome) -> ExchangeResult:
    assert isinstance(outcome, ExchangeResult), f"exchange failed: {outcome!r}"
    return outcome


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
    out = ecdhe._hkdf(ikm, algorithm=hashes.SHA256(), salt=salt, info=info, length=length)
    assert out.hex() == okm
    if not salt:  # RFC 5869 §2.2: an absent salt is HashLen zero bytes, same as empty.
        none_salt = ecdhe._hkdf(ikm, algorithm=hashes.SHA256(), salt=None, info=info, length=length)
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


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=80))
def test_random_hello_bodies_raise_only_key_exchange_error(body: bytes) -> None:
    try:
        ecdhe._parse_hello(body)
    except KeyExchangeError:
        pass


# --- the async exchange over real TCP ------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("curve", CURVES)
async def test_exchange_over_tcp_agrees_on_every_curve(curve: Curve) -> None:
    client, server = await run_pair({"curve": curve}, {"curve": curve})
    c, s = assert_ok(client), assert_ok(server)
    assert hmac.compare_digest(c.key, s.key)
    assert len(c.key) == 32
    assert c.curve == s.curve == curve
    assert c.local_public == s.peer_public
    assert c.peer_public == s.local_public
    assert len(c.local_public) == PUBLIC_KEY_LENGTHS[curve]
    assert not c.authenticated
    assert not s.authenticated
    assert c.key_fingerprint == s.key_fingerprint
    assert c.key.hex() not in repr(c)


@pytest.mark.asyncio
async def test_every_exchange_uses_fresh_ephemeral_keys() -> None:
    first, _ = await run_pair()
    second, _ = await run_pair()
    a, b = assert_ok(first), assert_ok(second)
    assert a.local_public != b.local_public
    assert a.key != b.key


@pytest.mark.asyncio
async def test_default_curve_is_x25519_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        client, _ = await run_pair()
    result = assert_ok(client)
    assert result.curve == "X25519"
    assert not [r for r in caplog.records if r.name.startswith("ecdhe_async")]
    assert result.key.hex() not in caplog.text


@pytest.mark.asyncio
async def test_info_label_mismatch_gives_different_keys() -> None:
    client, server = await run_pair({"info_label": b"app A"}, {"info_label": b"app B"})
    assert assert_ok(client).key != assert_ok(server).key


@pytest.mark.asyncio
async def test_curve_mismatch_is_a_clear_error() -> None:
    client, server = await run_pair({"curve": "X25519"}, {"curve": "P-256"})
    assert_error(client, r"curve mismatch: we use X25519, the peer uses 'P-256'")
    assert_error(server, r"curve mismatch: we use P-256, the peer uses 'X25519'")


@pytest.mark.asyncio
@pytest.mark.parametrize("initiator", [True, False])
async def test_role_mismatch_is_a_clear_error(initiator: bool) -> None:
    client, server = await run_pair({"initiator": initiator}, {"initiator": initiator})
    role = "initiator" if initiator else "responder"
    assert_error(client, f"role mismatch: both sides claim to be the {role}")
    assert_error(server, f"role mismatch: both sides claim to be the {role}")


def _ecdsa(curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve)


IDENTITY_FACTORIES: dict[str, Callable[[], Any]] = {
    "Ed25519": ed25519.Ed25519PrivateKey.generate,
    "ECDSA-P256": lambda: _ecdsa(ec.SECP256R1()),
    "ECDSA-P384": lambda: _ecdsa(ec.SECP384R1()),
}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("client_alg", "server_alg"),
    [
        ("Ed25519", "Ed25519"),
        ("ECDSA-P256", "ECDSA-P256"),
        ("ECDSA-P384", "Ed25519"),
    ],
)
@pytest.mark.parametrize("curve", ["X25519", "P-256"])
async def test_authenticated_exchange_succeeds(
    client_alg: str, server_alg: str, curve: Curve
) -> None:
    client_id, server_id = IDENTITY_FACTORIES[client_alg](), IDENTITY_FACTORIES[server_alg]()
    client, server = await run_pair(
        {"curve": curve, "identity": client_id, "peer_verify_key": server_id.public_key()},
        {"curve": curve, "identity": server_id, "peer_verify_key": client_id.public_key()},
    )
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated
    assert s.authenticated
    assert hmac.compare_digest(c.key, s.key)


@pytest.mark.asyncio
async def test_one_sided_authentication() -> None:
    server_id = ed25519.Ed25519PrivateKey.generate()
    client, server = await run_pair(
        {"peer_verify_key": server_id.public_key()}, {"identity": server_id}
    )
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated  # the client verified the server
    assert not s.authenticated  # the server has no idea who the client is
    assert c.key == s.key


@pytest.mark.asyncio
async def test_wrong_verify_key_is_rejected() -> None:
    server_id, impostor = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    client, server = await run_pair(
        {"peer_verify_key": impostor.public_key()}, {"identity": server_id}
    )
    assert_error(client, r"signature .* man in the middle\?")
    assert isinstance(server, ExchangeResult | KeyExchangeError)


@pytest.mark.asyncio
async def test_missing_peer_signature_is_rejected() -> None:
    server_id = ed25519.Ed25519PrivateKey.generate()
    client, server = await run_pair({"peer_verify_key": server_id.public_key()}, {})
    assert_error(client, r"peer sent no signature .* man in the middle\?")
    assert isinstance(server, ExchangeResult | KeyExchangeError)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "bad_key",
    [
        pytest.param(lambda: ed448.Ed448PrivateKey.generate(), id="ed448"),
        pytest.param(lambda: _ecdsa(ec.SECP521R1()), id="ecdsa-p521"),
        pytest.param(lambda: x25519.X25519PrivateKey.generate(), id="x25519"),
    ],
)
@pytest.mark.parametrize("as_public", [False, True])
async def test_unsupported_identity_keys_are_rejected_before_io(
    bad_key: Callable[[], Any], as_public: bool
) -> None:
    key = bad_key()
    kwargs = {"peer_verify_key": key.public_key()} if as_public else {"identity": key}
    written: list[bytes] = []

    async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        written.append(await asyncio.wait_for(reader.read(), TIMEOUT))

    async with serve(idle) as (port, outcomes):
        async with connect(port) as (reader, writer):
            with pytest.raises(KeyExchangeError, match="unsupported"):
                await bounded_exchange(reader, writer, initiator=True, **kwargs)
        await next_outcome(outcomes)
    assert written == [b""]


@pytest.mark.asyncio
async def test_unknown_curve_is_rejected_before_io() -> None:
    outcome = await run_against_script(b"", curve="P-192")
    assert_error(outcome, "unsupported curve 'P-192'")


# --- framing errors (a scripted peer on real TCP) ------------------------------------------------


def _valid_hello(curve: Curve = "X25519") -> bytes:
    return hello(curve, _valid_public(curve))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("script", "eof", "pattern"),
    [
        pytest.param(b"", True, r"truncated HELLO frame header: .* after 0 of 3 bytes", id="eof"),
        pytest.param(b"\x01\x00", True, r"truncated HELLO frame header", id="short-header"),
        pytest.param(
            frame(HELLO, b"\x01\x02")[:-1], True, r"truncated HELLO frame body", id="short-body"
        ),
        pytest.param(
            _valid_hello()[:20], True, r"truncated HELLO frame body: .* 17 of 41", id="half-hello"
        ),
        pytest.param(b"\x01\xff\xff", False, r"oversized HELLO frame: 65535 bytes", id="oversized"),
        pytest.param(
            b"\x01" + (MAX_FRAME_BODY + 1).to_bytes(2, "big"),
            False,
            r"oversized HELLO frame: 1025 bytes exceeds the maximum of 1024",
            id="just-oversized",
        ),
        pytest.param(
            frame(0x07, b""),
            False,
            r"expected a HELLO frame, got message type 0x07",
            id="unknown-type",
        ),
        pytest.param(
            frame(AUTH, b""),
            False,
            r"expected a HELLO frame, got message type 0x02",
            id="auth-first",
        ),
        pytest.param(
            frame(HELLO, b"\x01"), False, r"malformed HELLO: 1 bytes is too short", id="tiny-hello"
        ),
        pytest.param(
            hello("X25519", b"\x09" * 32, version=2),
            False,
            r"unsupported protocol version 2",
            id="version",
        ),
        pytest.param(
            hello("X25519", b"\x09" * 32, role=0x09), False, r"unknown role 0x09", id="role"
        ),
        pytest.param(
            frame(HELLO, b"\x01\x02\x10X25519"),
            False,
            r"curve name runs past the end",
            id="name-overrun",
        ),
        pytest.param(
            frame(HELLO, b"\x01\x02\x02\xff\xfe"),
            False,
            r"curve name is not ASCII",
            id="name-not-ascii",
        ),
        pytest.param(
            hello("X25518", b"\x09" * 32),
            False,
            r"curve mismatch: we use X25519, the peer uses 'X25518'",
            id="unknown-curve",
        ),
        pytest.param(_valid_hello(), True, r"truncated AUTH frame header", id="no-auth"),
        pytest.param(
            _valid_hello() + b"\x02\xff\xff", False, r"oversized AUTH frame", id="oversized-auth"
        ),
        pytest.param(
            _valid_hello() + frame(HELLO, b""),
            False,
            r"expected a AUTH frame, got message type 0x01",
            id="second-hello",
        ),
    ],
)
async def test_framing_errors(script: bytes, eof: bool, pattern: str) -> None:
    assert_error(await run_against_script(script, eof=eof), pattern)


@pytest.mark.asyncio
@pytest.mark.parametrize("curve", CURVES)
async def test_invalid_peer_key_in_hello_is_rejected(curve: Curve) -> None:
    outcome = await run_against_script(
        hello(curve, bytes(PUBLIC_KEY_LENGTHS[curve])), eof=False, curve=curve
    )
    assert_error(outcome, f"^{curve} peer public key is the identity")
    bad_length = hello(curve, _valid_public(curve)[:-1])
    outcome = await run_against_script(bad_length, eof=False, curve=curve)
    assert_error(outcome, f"^{curve} peer public key must be")


@pytest.mark.asyncio
async def test_low_order_peer_key_in_hello_is_rejected() -> None:
    outcome = await run_against_script(hello("X25519", (1).to_bytes(32, "little")), eof=False)
    assert_error(outcome, "^X25519 peer public key is a low-order point")
    outcome = await run_against_script(
        hello("X448", (_P448 - 1).to_bytes(56, "little")), eof=False, curve="X448"
    )
    assert_error(outcome, "^X448 peer public key is a low-order point")


@pytest.mark.asyncio
async def test_reflected_public_key_is_rejected() -> None:
    async def mirror(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        their_hello = await read_frame(reader)
        body = bytearray(their_hello[3:])
        body[1] = RESPONDER  # flip the role, keep their public key
        writer.write(frame(HELLO, bytes(body)))
        await writer.drain()
        await asyncio.wait_for(reader.read(), TIMEOUT)

    async with serve(mirror) as (port, outcomes):
        async with connect(port) as (reader, writer):
            outcome = await capture(bounded_exchange(reader, writer, initiator=True))
        await next_outcome(outcomes)
    assert_error(outcome, "echoed our own public key")


@pytest.mark.asyncio
async def test_read_frame_translates_incomplete_read() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frame(AUTH, b"signature")[:-3])
    reader.feed_eof()
    with pytest.raises(KeyExchangeError, match=r"truncated AUTH frame body: .* 6 of 9 bytes"):
        await ecdhe._read_frame(reader, ecdhe._MSG_AUTH)


def test_encode_frame_bounds_the_body() -> None:
    assert ecdhe._encode_frame(HELLO, b"ab") == b"\x01\x00\x02ab"
    with pytest.raises(KeyExchangeError, match="exceeds"):
        ecdhe._encode_frame(AUTH, bytes(MAX_FRAME_BODY + 1))


def test_hello_wire_format() -> None:
    public = bytes(range(32))
    assert ecdhe._encode_hello(ecdhe._ROLE_INITIATOR, "X25519", public) == (
        bytes([1, 1, 6]) + b"X25519" + public
    )
    assert ecdhe._parse_hello(bytes([1, 2, 5]) + b"P-256" + b"\x04") == (2, "P-256", b"\x04")


# --- man in the middle ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def mitm_setup(
    server_kwargs: dict[str, Any],
    relay: Callable[
        [asyncio.StreamReader, asyncio.StreamWriter, asyncio.StreamReader, asyncio.StreamWriter],
        Awaitable[Any],
    ],
) -> AsyncIterator[tuple[int, asyncio.Queue[Any], asyncio.Queue[Any]]]:
    """Real server <- relay (MITM) <- client. Yields the MITM port and both outcome queues."""

    async def real_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        return await bounded_exchange(reader, writer, initiator=False, **server_kwargs)

    async with serve(real_server) as (server_port, server_outcomes):

        async def mitm(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> Any:
            async with connect(server_port) as (s_reader, s_writer):
                return await relay(c_reader, c_writer, s_reader, s_writer)

        async with serve(mitm) as (mitm_port, mitm_outcomes):
            yield mitm_port, server_outcomes, mitm_outcomes


def exchanging_relay(**mitm_kwargs: Any) -> Any:
    """A MITM that runs its own, independent exchange with each side."""

    async def relay(
        c_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
        s_reader: asyncio.StreamReader,
        s_writer: asyncio.StreamWriter,
    ) -> tuple[Outcome, Outcome]:
        return await asyncio.gather(
            capture(bounded_exchange(c_reader, c_writer, initiator=False, **mitm_kwargs)),
            capture(bounded_exchange(s_reader, s_writer, initiator=True, **mitm_kwargs)),
        )

    return relay


async def run_mitm(
    client_kwargs: dict[str, Any], server_kwargs: dict[str, Any], relay: Any
) -> tuple[Outcome, Outcome, Any]:
    async with mitm_setup(server_kwargs, relay) as (port, server_outcomes, mitm_outcomes):
        async with connect(port) as (reader, writer):
            client = await capture(
                bounded_exchange(reader, writer, initiator=True, **client_kwargs)
            )
        mitm = await next_outcome(mitm_outcomes)
        server = await next_outcome(server_outcomes)
    return client, server, mitm


@pytest.mark.asyncio
@pytest.mark.parametrize("curve", ["X25519", "P-384"])
async def test_unauthenticated_exchange_is_open_to_mitm(curve: Curve) -> None:
    client, server, mitm = await run_mitm(
        {"curve": curve}, {"curve": curve}, exchanging_relay(curve=curve)
    )
    c, s = assert_ok(client), assert_ok(server)
    mitm_with_client, mitm_with_server = (assert_ok(x) for x in mitm)
    # Both sides "succeed" ...
    assert not c.authenticated
    assert not s.authenticated
    # ... but with different keys, each of which the MITM knows.
    assert c.key != s.key
    assert c.key == mitm_with_client.key
    assert s.key == mitm_with_server.key
    # Comparing fingerprints out of band would reveal the attack.
    assert c.key_fingerprint != s.key_fingerprint
    assert c.peer_public == mitm_with_client.local_public != s.local_public


@pytest.fixture
def identities() -> dict[str, Any]:
    client_id = ed25519.Ed25519PrivateKey.generate()
    server_id = ec.generate_private_key(ec.SECP256R1())
    return {
        "client": {"identity": client_id, "peer_verify_key": server_id.public_key()},
        "server": {"identity": server_id, "peer_verify_key": client_id.public_key()},
    }


@pytest.mark.asyncio
async def test_mitm_without_identity_is_detected(identities: dict[str, Any]) -> None:
    client, server, _ = await run_mitm(
        identities["client"], identities["server"], exchanging_relay()
    )
    assert_error(client, r"peer sent no signature .* man in the middle\?")
    assert_error(server, r"peer sent no signature .* man in the middle\?")


@pytest.mark.asyncio
async def test_mitm_with_its_own_identity_is_detected(identities: dict[str, Any]) -> None:
    relay = exchanging_relay(identity=ed25519.Ed25519PrivateKey.generate())
    client, server, _ = await run_mitm(identities["client"], identities["server"], relay)
    assert_error(client, r"signature .* man in the middle\?")
    assert_error(server, r"signature .* man in the middle\?")


async def signature_forwarding_relay(
    c_reader: asyncio.StreamReader,
    c_writer: asyncio.StreamWriter,
    s_reader: asyncio.StreamReader,
    s_writer: asyncio.StreamWriter,
) -> None:
    """A smarter MITM: substitutes its own ephemeral keys but forwards the genuine signatures."""
    to_client, to_server = EphemeralKeyPair.generate("X25519"), EphemeralKeyPair.generate("X25519")
    c_writer.write(hello("X25519", to_client.public_bytes, role=RESPONDER))
    s_writer.write(hello("X25519", to_server.public_bytes, role=INITIATOR))
    await asyncio.wait_for(asyncio.gather(c_writer.drain(), s_writer.drain()), TIMEOUT)
    await read_frame(c_reader)  # client HELLO
    await read_frame(s_reader)  # server HELLO
    client_auth, server_auth = await read_frame(c_reader), await read_frame(s_reader)
    assert client_auth[0] == server_auth[0] == AUTH
    assert len(client_auth) > 3  # the client did sign
    c_writer.write(server_auth)
    s_writer.write(client_auth)
    await asyncio.wait_for(asyncio.gather(c_writer.drain(), s_writer.drain()), TIMEOUT)
    await asyncio.wait_for(c_reader.read(), TIMEOUT)
    await asyncio.wait_for(s_reader.read(), TIMEOUT)


@pytest.mark.asyncio
async def test_mitm_forwarding_genuine_signatures_is_detected(identities: dict[str, Any]) -> None:
    client, server, mitm = await run_mitm(
        identities["client"], identities["server"], signature_forwarding_relay
    )
    assert mitm is None  # the relay itself ran to completion
    assert_error(client, r"signature over the exchange transcript is invalid.*man in the middle\?")
    assert_error(server, r"signature over the exchange transcript is invalid.*man in the middle\?")


@pytest.mark.asyncio
async def test_forwarding_relay_without_key_substitution_is_harmless(
    identities: dict[str, Any],
) -> None:
    """Harness sanity check: a relay forwarding everything verbatim is no attack."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):  # HELLO, AUTH
            writer.write(await read_frame(reader))
            await asyncio.wait_for(writer.drain(), TIMEOUT)

    async def relay(
        c_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
        s_reader: asyncio.StreamReader,
        s_writer: asyncio.StreamWriter,
    ) -> None:
        await asyncio.gather(pipe(c_reader, s_writer), pipe(s_reader, c_writer))

    client, server, _ = await run_mitm(identities["client"], identities["server"], relay)
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated
    assert s.authenticated
    assert c.key == s.key


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
