"""The exchange's sans-IO state machine (ecdhe_async.ecdhe.protocol.KeyExchange), fed bytes.

Two machines are wired back to back in memory (:func:`pump`), or one machine is fed a scripted
peer's bytes (:func:`against_script`). The asyncio layer over real sockets is in
test_ecdhe_streams.py.
"""

from __future__ import annotations

import copy
import hmac
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ecdhe_async.ecdhe import (
    CURVES,
    PUBLIC_KEY_LENGTHS,
    Curve,
    EphemeralKeyPair,
    ExchangeResult,
    Hello,
    KeyExchange,
    LocalExchangeError,
    RemoteExchangeError,
    Role,
    encode_message,
)
from ecdhe_async.errors import KeyExchangeError
from tests.ecdheutil import AUTH, HELLO, RESPONDER, frame, hello

Outcome = ExchangeResult | KeyExchangeError | None


@dataclass
class End:
    """One end of an in-memory connection: a machine, the bytes waiting for it, whether the
    other end hung up, and how it ended."""

    machine: KeyExchange
    inbox: bytes = b""
    peer_closed: bool = False
    outcome: Outcome = None

    def step(self, peer: End, chunk: int) -> None:
        """Deliver up to ``chunk`` waiting bytes; a failing end closes its side of the wire."""
        if self.outcome is not None:
            return
        data, self.inbox = self.inbox[:chunk], self.inbox[chunk:]
        try:
            if data:
                peer.inbox += self.machine.receive_data(data)
            elif self.peer_closed:
                self.machine.receive_eof()
        except KeyExchangeError as exc:
            self.outcome = exc
            peer.peer_closed = True
            return
        self.outcome = self.machine.result


def pump(a: KeyExchange, b: KeyExchange, *, chunk: int = 1 << 16) -> tuple[Outcome, Outcome]:
    """Run two machines against each other, ``chunk`` bytes per delivery; bounded in steps."""
    end_a, end_b = End(a), End(b)
    end_b.inbox, end_a.inbox = a.initiate(), b.initiate()
    for _ in range(4000):
        if end_a.outcome is not None and end_b.outcome is not None:
            break
        end_a.step(end_b, chunk)
        end_b.step(end_a, chunk)
    return end_a.outcome, end_b.outcome


def run_pair(
    client_kwargs: dict[str, Any] | None = None,
    server_kwargs: dict[str, Any] | None = None,
    *,
    chunk: int = 1 << 16,
) -> tuple[Outcome, Outcome]:
    """One exchange between a client (initiator) and a server (responder)."""
    client = KeyExchange(**{"initiator": True, **(client_kwargs or {})})
    server = KeyExchange(**{"initiator": False, **(server_kwargs or {})})
    return pump(client, server, chunk=chunk)


def against_script(script: bytes, *, eof: bool = True, **kwargs: Any) -> Outcome:
    """An initiator fed ``script`` as the peer's bytes (then end of stream, if ``eof``)."""
    machine = KeyExchange(**{"initiator": True, **kwargs})
    machine.initiate()
    try:
        machine.receive_data(script)
        if eof:
            machine.receive_eof()
    except KeyExchangeError as exc:
        return exc
    return machine.result


def assert_error(outcome: Outcome, pattern: str, blame: type = RemoteExchangeError) -> None:
    assert isinstance(outcome, blame), f"expected {blame.__name__}, got {outcome!r}"
    assert re.search(pattern, str(outcome)), f"{pattern!r} not in {str(outcome)!r}"


def assert_ok(outcome: Outcome) -> ExchangeResult:
    assert isinstance(outcome, ExchangeResult), f"exchange failed: {outcome!r}"
    return outcome


def _valid_public(curve: Curve) -> bytes:
    return EphemeralKeyPair.generate(curve).public_bytes


# --- two machines agree --------------------------------------------------------------------------


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
def test_exchange_agrees_on_every_curve(curve: Curve, chunk: int) -> None:
    client, server = run_pair({"curve": curve}, {"curve": curve}, chunk=chunk)
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


def test_every_exchange_uses_fresh_ephemeral_keys() -> None:
    first, _ = run_pair()
    second, _ = run_pair()
    a, b = assert_ok(first), assert_ok(second)
    assert a.local_public != b.local_public
    assert a.key != b.key


def test_default_curve_is_x25519() -> None:
    client, _ = run_pair()
    assert assert_ok(client).curve == "X25519"


def test_info_label_mismatch_gives_different_keys() -> None:
    client, server = run_pair({"info_label": b"app A"}, {"info_label": b"app B"})
    assert assert_ok(client).key != assert_ok(server).key


def test_curve_mismatch_is_a_clear_error() -> None:
    client, server = run_pair({"curve": "X25519"}, {"curve": "P-256"})
    assert_error(client, r"curve mismatch: we use X25519, the peer uses 'P-256'")
    assert_error(server, r"curve mismatch: we use P-256, the peer uses 'X25519'")


@pytest.mark.parametrize("initiator", [True, False])
def test_role_mismatch_is_a_clear_error(initiator: bool) -> None:
    client, server = run_pair({"initiator": initiator}, {"initiator": initiator})
    role = "initiator" if initiator else "responder"
    assert_error(client, f"role mismatch: both sides claim to be the {role}")
    assert_error(server, f"role mismatch: both sides claim to be the {role}")


# --- authentication ------------------------------------------------------------------------------


def _ecdsa(curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve)


IDENTITY_FACTORIES: dict[str, Callable[[], Any]] = {
    "Ed25519": ed25519.Ed25519PrivateKey.generate,
    "ECDSA-P256": lambda: _ecdsa(ec.SECP256R1()),
    "ECDSA-P384": lambda: _ecdsa(ec.SECP384R1()),
}


@pytest.mark.parametrize(
    ("client_alg", "server_alg"),
    [("Ed25519", "Ed25519"), ("ECDSA-P256", "ECDSA-P256"), ("ECDSA-P384", "Ed25519")],
)
@pytest.mark.parametrize("curve", ["X25519", "P-256"])
def test_authenticated_exchange_succeeds(client_alg: str, server_alg: str, curve: Curve) -> None:
    client_id, server_id = IDENTITY_FACTORIES[client_alg](), IDENTITY_FACTORIES[server_alg]()
    client, server = run_pair(
        {"curve": curve, "identity": client_id, "peer_verify_key": server_id.public_key()},
        {"curve": curve, "identity": server_id, "peer_verify_key": client_id.public_key()},
    )
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated
    assert s.authenticated
    assert hmac.compare_digest(c.key, s.key)


def test_one_sided_authentication() -> None:
    server_id = ed25519.Ed25519PrivateKey.generate()
    client, server = run_pair({"peer_verify_key": server_id.public_key()}, {"identity": server_id})
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated  # the client verified the server
    assert not s.authenticated  # the server has no idea who the client is
    assert c.key == s.key


def test_wrong_verify_key_is_rejected() -> None:
    server_id, impostor = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    client, server = run_pair({"peer_verify_key": impostor.public_key()}, {"identity": server_id})
    assert_error(client, r"signature .* man in the middle\?")
    assert isinstance(server, ExchangeResult | KeyExchangeError)


def test_missing_peer_signature_is_rejected() -> None:
    server_id = ed25519.Ed25519PrivateKey.generate()
    client, server = run_pair({"peer_verify_key": server_id.public_key()}, {})
    assert_error(client, r"peer sent no signature .* man in the middle\?")
    assert isinstance(server, ExchangeResult | KeyExchangeError)


@pytest.mark.parametrize(
    "bad_key",
    [
        pytest.param(lambda: ed448.Ed448PrivateKey.generate(), id="ed448"),
        pytest.param(lambda: _ecdsa(ec.SECP521R1()), id="ecdsa-p521"),
        pytest.param(lambda: x25519.X25519PrivateKey.generate(), id="x25519"),
    ],
)
@pytest.mark.parametrize("as_public", [False, True])
def test_unsupported_identity_keys_are_rejected_before_any_byte(
    bad_key: Callable[[], Any], as_public: bool
) -> None:
    key = bad_key()
    kwargs = {"peer_verify_key": key.public_key()} if as_public else {"identity": key}
    with pytest.raises(KeyExchangeError, match="unsupported"):
        KeyExchange(initiator=True, **kwargs)


def test_unknown_curve_and_long_label_are_rejected_before_any_byte() -> None:
    with pytest.raises(KeyExchangeError, match="unsupported curve 'P-192'"):
        KeyExchange(initiator=True, curve="P-192")  # type: ignore[arg-type]
    with pytest.raises(KeyExchangeError, match="too long"):
        KeyExchange(initiator=True, info_label=bytes(70_000))


# --- a scripted peer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "eof", "pattern"),
    [
        pytest.param(b"", True, r"truncated HELLO frame header: .* after 0 of 3 bytes", id="eof"),
        pytest.param(frame(AUTH, b""), False, r"expected a HELLO frame", id="auth-first"),
        pytest.param(
            hello("X25518", b"\x09" * 32),
            False,
            r"curve mismatch: we use X25519, the peer uses 'X25518'",
            id="unknown-curve",
        ),
        pytest.param(hello("X25519", bytes(range(1, 33))), True, r"truncated AUTH", id="no-auth"),
        pytest.param(
            hello("X25519", bytes(range(1, 33))) + frame(HELLO, b""),
            False,
            r"expected a AUTH frame, got message type 0x01",
            id="second-hello",
        ),
    ],
)
def test_framing_errors_reach_the_machine(script: bytes, eof: bool, pattern: str) -> None:
    """The codec's own fixtures are in test_ecdhe_wire.py; these pin that the machine uses it."""
    assert_error(against_script(script, eof=eof), pattern)


@pytest.mark.parametrize("curve", CURVES)
def test_invalid_peer_key_in_hello_is_rejected(curve: Curve) -> None:
    outcome = against_script(hello(curve, bytes(PUBLIC_KEY_LENGTHS[curve])), eof=False, curve=curve)
    assert_error(outcome, f"^{curve} peer public key is the identity")
    outcome = against_script(hello(curve, _valid_public(curve)[:-1]), eof=False, curve=curve)
    assert_error(outcome, f"^{curve} peer public key must be")


def test_low_order_peer_key_in_hello_is_rejected() -> None:
    outcome = against_script(hello("X25519", (1).to_bytes(32, "little")), eof=False)
    assert_error(outcome, "^X25519 peer public key is a low-order point")
    p448 = 2**448 - 2**224 - 1
    outcome = against_script(
        hello("X448", (p448 - 1).to_bytes(56, "little")), eof=False, curve="X448"
    )
    assert_error(outcome, "^X448 peer public key is a low-order point")


def test_reflected_public_key_is_rejected() -> None:
    machine = KeyExchange(initiator=True)
    ours = bytearray(machine.initiate())
    ours[3 + 1] = RESPONDER  # flip the role byte of the HELLO body, keep our public key
    with pytest.raises(RemoteExchangeError, match="echoed our own public key"):
        machine.receive_data(bytes(ours))


def test_reply_is_our_auth_and_trailing_data_is_kept() -> None:
    identity = ed25519.Ed25519PrivateKey.generate()
    machine = KeyExchange(initiator=True, identity=identity)
    machine.initiate()
    reply = machine.receive_data(hello("X25519", _valid_public("X25519")))
    assert reply[0] == AUTH
    assert int.from_bytes(reply[1:3], "big") == len(reply) - 3 == 64  # an Ed25519 signature
    assert machine.result is None
    assert machine.receive_data(frame(AUTH, b"") + b"app") == b""
    assert assert_ok(machine.result).authenticated is False
    assert machine.trailing_data == b"app"
    assert machine.bytes_needed == 0
    machine.receive_eof()  # fine after the exchange


def test_calls_out_of_order_are_local_errors() -> None:
    machine = KeyExchange(initiator=True)
    with pytest.raises(LocalExchangeError, match="call initiate"):
        machine.receive_data(hello("X25519", _valid_public("X25519")))
    with pytest.raises(LocalExchangeError, match="already failed"):  # and it stays failed
        machine.initiate()
    again = KeyExchange(initiator=True)
    again.initiate()
    with pytest.raises(LocalExchangeError, match="already called"):
        again.initiate()


def test_machine_stays_failed_and_forgets_its_secret() -> None:
    machine = KeyExchange(initiator=True)
    machine.initiate()
    machine.receive_data(hello("X25519", _valid_public("X25519")))  # shared secret computed
    with pytest.raises(RemoteExchangeError, match="oversized AUTH"):
        machine.receive_data(b"\x02\xff\xff")
    assert machine._shared is None
    for call in (lambda: machine.receive_data(frame(AUTH, b"")), machine.receive_eof):
        with pytest.raises(RemoteExchangeError, match="already failed: oversized AUTH"):
            call()
    assert repr(machine) == "<KeyExchange curve=X25519 role=initiator failed>"


def test_machine_cannot_be_copied_or_pickled() -> None:
    machine = KeyExchange(initiator=False)
    for dup in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            dup(machine)


@settings(max_examples=300, deadline=None)
@given(curve=st.sampled_from(CURVES), data=st.binary(max_size=300), eof=st.booleans())
def test_random_peer_bytes_raise_only_remote_errors(curve: Curve, data: bytes, eof: bool) -> None:
    machine = KeyExchange(initiator=True, curve=curve)
    machine.initiate()
    try:
        machine.receive_data(data)
        if eof:
            machine.receive_eof()
    except RemoteExchangeError:
        pass


@settings(max_examples=100, deadline=None)
@given(curve=st.sampled_from(CURVES), tail=st.binary(max_size=200))
def test_random_bytes_after_a_valid_hello_raise_only_remote_errors(
    curve: Curve, tail: bytes
) -> None:
    """Past the HELLO the machine holds a shared secret: the AUTH path meets junk too."""
    server_id = ed25519.Ed25519PrivateKey.generate()
    machine = KeyExchange(initiator=True, curve=curve, peer_verify_key=server_id.public_key())
    machine.initiate()
    machine.receive_data(hello(curve, _valid_public(curve)))
    try:
        machine.receive_data(tail)
    except RemoteExchangeError:
        pass


# --- man in the middle ---------------------------------------------------------------------------


def mitm(client: KeyExchange, server: KeyExchange, **mallory: Any) -> tuple[Outcome, ...]:
    """A MITM that runs its own, independent exchange with each side."""
    with_client = KeyExchange(initiator=False, **mallory)
    with_server = KeyExchange(initiator=True, **mallory)
    c, m1 = pump(client, with_client)
    m2, s = pump(with_server, server)
    return c, s, m1, m2


@pytest.mark.parametrize("curve", ["X25519", "P-384"])
def test_unauthenticated_exchange_is_open_to_mitm(curve: Curve) -> None:
    client, server, m_client, m_server = mitm(
        KeyExchange(initiator=True, curve=curve),
        KeyExchange(initiator=False, curve=curve),
        curve=curve,
    )
    c, s = assert_ok(client), assert_ok(server)
    mitm_with_client, mitm_with_server = assert_ok(m_client), assert_ok(m_server)
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
def identities() -> tuple[KeyExchange, KeyExchange]:
    """A client and a server that know each other's identity keys."""
    client_id = ed25519.Ed25519PrivateKey.generate()
    server_id = ec.generate_private_key(ec.SECP256R1())
    return (
        KeyExchange(initiator=True, identity=client_id, peer_verify_key=server_id.public_key()),
        KeyExchange(initiator=False, identity=server_id, peer_verify_key=client_id.public_key()),
    )


def test_mitm_without_identity_is_detected(identities: tuple[KeyExchange, KeyExchange]) -> None:
    client, server, _, _ = mitm(*identities)
    assert_error(client, r"peer sent no signature .* man in the middle\?")
    assert_error(server, r"peer sent no signature .* man in the middle\?")


def test_mitm_with_its_own_identity_is_detected(
    identities: tuple[KeyExchange, KeyExchange],
) -> None:
    client, server, _, _ = mitm(*identities, identity=ed25519.Ed25519PrivateKey.generate())
    assert_error(client, r"signature .* man in the middle\?")
    assert_error(server, r"signature .* man in the middle\?")


def test_mitm_forwarding_genuine_signatures_is_detected(
    identities: tuple[KeyExchange, KeyExchange],
) -> None:
    """A smarter MITM: substitutes its own ephemeral keys but forwards the genuine signatures."""
    client, server = identities
    client.initiate()
    server.initiate()
    to_client, to_server = _valid_public("X25519"), _valid_public("X25519")
    client_auth = client.receive_data(encode_message(Hello(Role.RESPONDER, "X25519", to_client)))
    server_auth = server.receive_data(encode_message(Hello(Role.INITIATOR, "X25519", to_server)))
    assert client_auth[0] == server_auth[0] == AUTH
    assert len(client_auth) > 3  # the client did sign
    pattern = r"signature over the exchange transcript is invalid.*man in the middle\?"
    with pytest.raises(RemoteExchangeError, match=pattern):
        client.receive_data(server_auth)
    with pytest.raises(RemoteExchangeError, match=pattern):
        server.receive_data(client_auth)


def test_relay_without_key_substitution_is_harmless(
    identities: tuple[KeyExchange, KeyExchange],
) -> None:
    """Harness sanity check: bytes relayed verbatim (here one at a time) are no attack."""
    client, server = pump(*identities, chunk=1)
    c, s = assert_ok(client), assert_ok(server)
    assert c.authenticated
    assert s.authenticated
    assert c.key == s.key
