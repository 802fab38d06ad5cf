"""Raw ECDHE key agreement and the framed exchange that carries it (outside TLS).

Four modules, one job each, dependencies pointing down:

* :mod:`~ecdhe_async.ecdhe.streams` — :func:`exchange`, the coroutine users call: a thin pump
  that moves bytes between asyncio streams and the state machine;
* :mod:`~ecdhe_async.ecdhe.protocol` — :class:`KeyExchange`, the sans-IO state machine of one
  side (checks, transcript signatures, key derivation) and :class:`ExchangeResult`;
* :mod:`~ecdhe_async.ecdhe.wire` and :mod:`~ecdhe_async.ecdhe.auth` — the sans-IO codec (frames,
  HELLO/AUTH, limits, errors by blame) and the transcript signatures;
* :mod:`~ecdhe_async.ecdhe.agreement` — the raw key agreement: single-use key pairs, peer-key
  validation, the shared secret and HKDF. Curve sizes come from :mod:`ecdhe_async.groups`.
"""

from __future__ import annotations

from ecdhe_async.ecdhe.agreement import CURVES as CURVES
from ecdhe_async.ecdhe.agreement import DEFAULT_INFO_LABEL as DEFAULT_INFO_LABEL
from ecdhe_async.ecdhe.agreement import PUBLIC_KEY_LENGTHS as PUBLIC_KEY_LENGTHS
from ecdhe_async.ecdhe.agreement import Curve as Curve
from ecdhe_async.ecdhe.agreement import EphemeralKeyPair as EphemeralKeyPair
from ecdhe_async.ecdhe.agreement import PeerPublicKey as PeerPublicKey
from ecdhe_async.ecdhe.agreement import derive_key as derive_key
from ecdhe_async.ecdhe.agreement import fingerprint as fingerprint
from ecdhe_async.ecdhe.agreement import load_peer_public_key as load_peer_public_key
from ecdhe_async.ecdhe.auth import SigningKey as SigningKey
from ecdhe_async.ecdhe.auth import VerifyKey as VerifyKey
from ecdhe_async.ecdhe.protocol import ExchangeResult as ExchangeResult
from ecdhe_async.ecdhe.protocol import KeyExchange as KeyExchange
from ecdhe_async.ecdhe.streams import exchange as exchange
from ecdhe_async.ecdhe.wire import MAX_FRAME_BODY as MAX_FRAME_BODY
from ecdhe_async.ecdhe.wire import PROTOCOL_VERSION as PROTOCOL_VERSION
from ecdhe_async.ecdhe.wire import Auth as Auth
from ecdhe_async.ecdhe.wire import Hello as Hello
from ecdhe_async.ecdhe.wire import LocalExchangeError as LocalExchangeError
from ecdhe_async.ecdhe.wire import MessageDecoder as MessageDecoder
from ecdhe_async.ecdhe.wire import RemoteExchangeError as RemoteExchangeError
from ecdhe_async.ecdhe.wire import Role as Role
from ecdhe_async.ecdhe.wire import encode_message as encode_message

__all__ = [
    "CURVES",
    "DEFAULT_INFO_LABEL",
    "MAX_FRAME_BODY",
    "PROTOCOL_VERSION",
    "PUBLIC_KEY_LENGTHS",
    "Auth",
    "Curve",
    "EphemeralKeyPair",
    "ExchangeResult",
    "Hello",
    "KeyExchange",
    "LocalExchangeError",
    "MessageDecoder",
    "PeerPublicKey",
    "RemoteExchangeError",
    "Role",
    "SigningKey",
    "VerifyKey",
    "derive_key",
    "encode_message",
    "exchange",
    "fingerprint",
    "load_peer_public_key",
]
