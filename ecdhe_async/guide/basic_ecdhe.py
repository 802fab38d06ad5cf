"""The guide's first part: a basic ECDHE key exchange, and a man in the middle against it.

Alice and Bob are two asyncio tasks running :func:`ecdhe_async.ecdhe.exchange` over a real
loopback TCP connection (:func:`~ecdhe_async.guide.loopback.loopback_pair`). Results carry public
keys and *fingerprints* of derived keys; the keys themselves are compared with
:func:`hmac.compare_digest` and never shown.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519

from .. import ecdhe
from ..ecdhe import Curve, ExchangeResult
from ..errors import KeyExchangeError
from .loopback import DEMO_TIMEOUT, loopback_pair

__all__ = ["MITMResult", "demonstrate_basic_ecdhe", "demonstrate_mitm", "exchange_pair"]

_T = TypeVar("_T")


async def _both(first: Coroutine[Any, Any, _T], second: Coroutine[Any, Any, _T]) -> tuple[_T, _T]:
    """Run two parties as tasks (bounded); the first failure cancels the other and is raised."""
    try:
        async with asyncio.timeout(DEMO_TIMEOUT), asyncio.TaskGroup() as tg:
            a = tg.create_task(first)
            b = tg.create_task(second)
    except* KeyExchangeError as group:
        raise group.exceptions[0] from None
    return a.result(), b.result()


async def exchange_pair(curve: Curve) -> tuple[ExchangeResult, ExchangeResult]:
    """Alice (initiator) and Bob (responder) as two tasks over one loopback connection."""
    async with loopback_pair() as ((a_reader, a_writer), (b_reader, b_writer)):
        alice, bob = await _both(
            ecdhe.exchange(a_reader, a_writer, curve=curve, initiator=True),
            ecdhe.exchange(b_reader, b_writer, curve=curve, initiator=False),
        )
    if not hmac.compare_digest(alice.key, bob.key):  # pragma: no cover - would be a bug
        raise KeyExchangeError(f"{curve}: the two parties derived different keys")
    return alice, bob


async def demonstrate_basic_ecdhe(curve: Curve = "X25519") -> bytes:
    """Two parties (tasks) exchange ephemeral public keys over loopback TCP; return the key.

    Each side generates a fresh key pair on *curve*, sends its public key, validates the peer's
    and runs HKDF over the raw shared secret (:func:`ecdhe_async.ecdhe.exchange`). Both keys are
    compared with :func:`hmac.compare_digest`; the 32-byte key is returned. It is a secret:
    show :func:`~ecdhe_async.ecdhe.fingerprint` of it, never the key.
    """
    alice, _ = await exchange_pair(curve)
    return alice.key


@dataclass(frozen=True, slots=True)
class MITMResult:
    """What a relaying man in the middle (Mallory) achieves, without and with authentication.

    Only fingerprints and error messages: the keys themselves never leave the demo.
    """

    curve: Curve
    #: Unauthenticated: both exchanges "succeed" but Alice's and Bob's keys differ...
    unauthenticated_alice_fingerprint: str
    unauthenticated_bob_fingerprint: str
    #: ...and Mallory holds each of them.
    mallory_knows_alice_key: bool
    mallory_knows_bob_key: bool
    #: Authenticated (signed transcripts, known verify keys): why Alice and Bob abort.
    alice_error: str | None
    bob_error: str | None

    @property
    def authenticated_detected(self) -> bool:
        """Whether both parties refused the authenticated run."""
        return self.alice_error is not None and self.bob_error is not None


async def _outcome(awaitable: Awaitable[ExchangeResult]) -> ExchangeResult | KeyExchangeError:
    try:
        return await awaitable
    except KeyExchangeError as exc:
        return exc


async def _relay_run(
    curve: Curve,
    alice_kwargs: dict[str, Any],
    bob_kwargs: dict[str, Any],
    mallory_kwargs: dict[str, Any],
) -> list[ExchangeResult | KeyExchangeError]:
    """Alice <-> Mallory <-> Bob on two loopback connections.

    Returns the outcomes of Alice, Mallory (facing Alice), Mallory (facing Bob) and Bob.
    """
    async with loopback_pair() as (alice_end, mallory_a), loopback_pair() as (mallory_b, bob_end):
        async with asyncio.timeout(DEMO_TIMEOUT):
            return list(
                await asyncio.gather(
                    _outcome(
                        ecdhe.exchange(*alice_end, curve=curve, initiator=True, **alice_kwargs)
                    ),
                    _outcome(
                        ecdhe.exchange(*mallory_a, curve=curve, initiator=False, **mallory_kwargs)
                    ),
                    _outcome(
                        ecdhe.exchange(*mallory_b, curve=curve, initiator=True, **mallory_kwargs)
                    ),
                    _outcome(ecdhe.exchange(*bob_end, curve=curve, initiator=False, **bob_kwargs)),
                )
            )


def _ok(outcome: ExchangeResult | KeyExchangeError) -> ExchangeResult:
    if isinstance(outcome, KeyExchangeError):  # pragma: no cover - unauthenticated never fails
        raise outcome
    return outcome


def _error(outcome: ExchangeResult | KeyExchangeError) -> str | None:
    return str(outcome) if isinstance(outcome, KeyExchangeError) else None


async def demonstrate_mitm(curve: Curve = "X25519") -> MITMResult:
    """Show that unauthenticated ECDHE is open to a relaying MITM and authenticated ECDHE is not.

    Mallory sits between Alice and Bob and runs his own exchange with each, with his own
    ephemeral keys. Unauthenticated, both exchanges complete: Alice and Bob hold different keys,
    both known to Mallory, and nothing tells them (only comparing fingerprints out of band
    would). Authenticated (each signs the transcript with a long-term Ed25519 key and checks the
    other's known public key), Mallory can only sign with his own key, and both refuse.
    """
    alice, mallory_a, mallory_b, bob = await _relay_run(curve, {}, {}, {})
    a, b, ma, mb = _ok(alice), _ok(bob), _ok(mallory_a), _ok(mallory_b)

    alice_id, bob_id = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    alice2, _, _, bob2 = await _relay_run(
        curve,
        {"identity": alice_id, "peer_verify_key": bob_id.public_key()},
        {"identity": bob_id, "peer_verify_key": alice_id.public_key()},
        {"identity": ed25519.Ed25519PrivateKey.generate()},
    )
    return MITMResult(
        curve=curve,
        unauthenticated_alice_fingerprint=a.key_fingerprint,
        unauthenticated_bob_fingerprint=b.key_fingerprint,
        mallory_knows_alice_key=hmac.compare_digest(a.key, ma.key),
        mallory_knows_bob_key=hmac.compare_digest(b.key, mb.key),
        alice_error=_error(alice2),
        bob_error=_error(bob2),
    )
