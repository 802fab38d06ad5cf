"""Sans-IO state machine of one side of the framed ECDHE exchange.

:class:`KeyExchange` holds everything one side needs: its single-use ephemeral key pair, its
optional identity key, the peer's verify key, and a :class:`~ecdhe_async.ecdhe.wire.MessageDecoder`
for the peer's bytes. It never touches a socket::

    machine = KeyExchange(curve="X25519", initiator=True)
    send(machine.initiate())                  # our HELLO
    while machine.result is None:
        data = receive(machine.bytes_needed)  # b"" when the peer closed
        if not data:
            machine.receive_eof()             # raises: the exchange was cut short
        send(machine.receive_data(data))      # our AUTH once the peer's HELLO is in, else b""
    key = machine.result.key

:func:`ecdhe_async.ecdhe.exchange` is exactly that loop on asyncio streams; tests drive the
machine with byte fixtures, and two machines can be wired to each other in memory.

Order of events, per side: send HELLO; on the peer's HELLO check its curve, its role and that it
did not echo our own key, validate its public key and compute the raw shared secret (the private
key is consumed here), then send AUTH (a transcript signature, or empty); on the peer's AUTH verify
its signature if a ``peer_verify_key`` was given, and derive the session key with HKDF. Anything
the peer gets wrong raises :class:`~ecdhe_async.ecdhe.wire.RemoteExchangeError`; calling the
machine out of order raises :class:`~ecdhe_async.ecdhe.wire.LocalExchangeError`; bad arguments
raise :class:`~ecdhe_async.errors.KeyExchangeError` from the constructor, before any byte exists.
After an error the machine stays failed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import NoReturn

from ecdhe_async.ecdhe import auth
from ecdhe_async.ecdhe.agreement import (
    DEFAULT_INFO_LABEL,
    Curve,
    EphemeralKeyPair,
    derive_key,
    fingerprint,
    length_prefixed,
)
from ecdhe_async.ecdhe.auth import SigningKey, VerifyKey
from ecdhe_async.ecdhe.wire import (
    Auth,
    Hello,
    LocalExchangeError,
    Message,
    MessageDecoder,
    RemoteExchangeError,
    Role,
    encode_message,
)
from ecdhe_async.errors import KeyExchangeError

__all__ = ["ExchangeResult", "KeyExchange"]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExchangeResult:
    """Outcome of an exchange. ``key`` is secret and never part of the ``repr``.

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


class KeyExchange:
    """One side of one ECDHE exchange, as a sans-IO state machine (see the module docstring).

    Exactly one side must pass ``initiator=True``. With ``identity`` we sign the transcript; with
    ``peer_verify_key`` we require and verify the peer's signature (the result is then
    ``authenticated``). Without ``peer_verify_key`` an active man in the middle cannot be detected.
    The constructor generates the ephemeral key pair and raises
    :class:`~ecdhe_async.errors.KeyExchangeError` for an unsupported curve or key type, or an
    ``info_label`` over 65535 bytes.
    """

    __slots__ = (
        "_curve",
        "_decoder",
        "_error",
        "_identity",
        "_keypair",
        "_label",
        "_peer_public",
        "_peer_verify_key",
        "_result",
        "_role",
        "_sent_hello",
        "_shared",
    )

    def __init__(
        self,
        *,
        curve: Curve = "X25519",
        initiator: bool,
        identity: SigningKey | None = None,
        peer_verify_key: VerifyKey | None = None,
        info_label: bytes = DEFAULT_INFO_LABEL,
    ) -> None:
        """Check the arguments and generate this exchange's ephemeral key pair."""
        self._keypair = EphemeralKeyPair.generate(curve)  # refuses an unsupported curve
        auth.check_identity(identity, peer_verify_key)
        self._label = bytes(info_label)
        length_prefixed(self._label)  # refuses a label too long for the transcript
        self._curve: Curve = curve
        self._role = Role.INITIATOR if initiator else Role.RESPONDER
        self._identity = identity
        self._peer_verify_key = peer_verify_key
        self._decoder = MessageDecoder()
        self._sent_hello = False
        self._peer_public: bytes | None = None
        self._shared: bytes | None = None
        self._result: ExchangeResult | None = None
        self._error: KeyExchangeError | None = None

    @property
    def curve(self) -> Curve:
        """The curve of this exchange."""
        return self._curve

    @property
    def role(self) -> Role:
        """Our role."""
        return self._role

    @property
    def result(self) -> ExchangeResult | None:
        """The outcome once the peer's AUTH was accepted, else ``None``."""
        return self._result

    @property
    def bytes_needed(self) -> int:
        """How many bytes to read next without reading past the exchange (0 when finished)."""
        return self._decoder.bytes_needed

    @property
    def trailing_data(self) -> bytes:
        """Bytes fed after the peer's AUTH: application data, not part of the exchange."""
        return self._decoder.trailing_data

    def initiate(self) -> bytes:
        """Return our HELLO, to be sent first. Call it once, before :meth:`receive_data`."""
        self._raise_if_failed()
        if self._sent_hello:
            self._fail(LocalExchangeError("initiate() was already called for this exchange"))
        self._sent_hello = True
        return encode_message(Hello(self._role, self._curve, self._keypair.public_bytes))

    def receive_data(self, data: bytes) -> bytes:
        """Feed bytes from the peer; return the bytes to send in reply (``b""`` if none).

        Raises :class:`~ecdhe_async.ecdhe.wire.RemoteExchangeError` for anything the peer got
        wrong; the machine is then failed.
        """
        self._raise_if_failed()
        if not self._sent_hello:
            self._fail(LocalExchangeError("call initiate() and send our HELLO before receiving"))
        try:
            return b"".join(self._handle(message) for message in self._decoder.feed(data))
        except KeyExchangeError as exc:
            self._fail(exc)

    def receive_eof(self) -> None:
        """Signal that the peer closed; raises unless the exchange had already finished."""
        self._raise_if_failed()
        try:
            self._decoder.eof()
        except KeyExchangeError as exc:
            self._fail(exc)

    def _handle(self, message: Message) -> bytes:
        if isinstance(message, Hello):
            return self._on_hello(message)
        self._on_auth(message)
        return b""

    def _on_hello(self, hello: Hello) -> bytes:
        local_public = self._keypair.public_bytes
        if hello.curve != self._curve:
            raise RemoteExchangeError(
                f"curve mismatch: we use {self._curve}, the peer uses {hello.curve!r}"
            )
        if hello.role != self._role.peer:
            both = self._role.label.decode()
            raise RemoteExchangeError(f"role mismatch: both sides claim to be the {both}")
        if hmac.compare_digest(hello.public_key, local_public):
            raise RemoteExchangeError(
                f"{self._curve} peer echoed our own public key (reflection attack?)"
            )
        try:
            self._shared = self._keypair.exchange(hello.public_key)
        except KeyExchangeError as exc:  # the peer's key is invalid: the peer's fault
            raise RemoteExchangeError(str(exc)) from exc
        self._peer_public = hello.public_key
        signature = b""
        if self._identity is not None:
            signed = auth.transcript(
                self._label, self._curve, self._role, local_public, hello.public_key
            )
            signature = auth.sign(self._identity, signed)
        return encode_message(Auth(signature))

    def _on_auth(self, message: Auth) -> None:
        shared, peer_public = self._shared, self._peer_public
        # The decoder delivers AUTH only after HELLO, and _on_hello set both.
        assert shared is not None
        assert peer_public is not None
        local_public = self._keypair.public_bytes
        if self._peer_verify_key is not None:
            if not message.signature:
                raise RemoteExchangeError(
                    "peer sent no signature although a peer_verify_key was given: "
                    "unauthenticated peer, or a man in the middle?"
                )
            signed = auth.transcript(
                self._label, self._curve, self._role.peer, peer_public, local_public
            )
            auth.verify(self._peer_verify_key, message.signature, signed)
        publics = (local_public, peer_public)
        initiator_public, responder_public = (
            publics if self._role is Role.INITIATOR else publics[::-1]
        )
        key = derive_key(
            shared,
            curve=self._curve,
            initiator_public=initiator_public,
            responder_public=responder_public,
            info_label=self._label,
        )
        self._shared = None
        self._result = ExchangeResult(
            curve=self._curve,
            key=key,
            local_public=local_public,
            peer_public=peer_public,
            authenticated=self._peer_verify_key is not None,
        )

    def _fail(self, exc: KeyExchangeError) -> NoReturn:
        self._error = exc
        self._shared = None
        raise exc

    def _raise_if_failed(self) -> None:
        error = self._error
        if error is not None:
            local = isinstance(error, LocalExchangeError)
            blame = LocalExchangeError if local else RemoteExchangeError
            raise blame(f"this key exchange already failed: {error}")

    def __repr__(self) -> str:
        """Show the curve, the role and the state; never key material."""
        state = "failed" if self._error else "done" if self._result else "running"
        return f"<KeyExchange curve={self._curve} role={self._role.name.lower()} {state}>"

    def __reduce__(self) -> NoReturn:
        """Refuse pickling and copying: the state holds a private key and a shared secret."""
        raise TypeError("KeyExchange cannot be pickled or copied")
