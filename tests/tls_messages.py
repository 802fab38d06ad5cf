"""TLS handshake messages for the guide's parser tests: builders and captured bytes.

The builders make hand-crafted messages (each with its 4-byte handshake header); the
``CAPTURED_*`` values were recorded from a real handshake between our TLSServer and client
(via ``_msg_callback``).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

# --- builders for hand-made messages ------------------------------------------------------------


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def vec(data: bytes, size: int) -> bytes:
    return len(data).to_bytes(size, "big") + data


def hs(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def ext(ext_type: int, data: bytes) -> bytes:
    return u16(ext_type) + vec(data, 2)


def key_share_entry(group: int, size: int) -> bytes:
    return u16(group) + vec(bytes([0x42]) * size, 2)


def client_hello(extensions: bytes | None, suites: tuple[int, ...] = (0x1301,)) -> bytes:
    body = (
        u16(0x0303)
        + bytes(32)
        + vec(bytes(32), 1)
        + vec(b"".join(map(u16, suites)), 2)
        + vec(b"\x00", 1)
    )
    if extensions is not None:
        body += vec(extensions, 2)
    return hs(1, body)


def server_hello(extensions: bytes, *, random: bytes = bytes(32), suite: int = 0x1301) -> bytes:
    body = u16(0x0303) + random + vec(bytes(32), 1) + u16(suite) + b"\x00" + vec(extensions, 2)
    return hs(2, body)


def der(path: object) -> bytes:
    """The DER bytes of the PEM certificate at *path*."""
    with open(str(path), "rb") as fh:
        cert = x509.load_pem_x509_certificate(fh.read())
    return cert.public_bytes(serialization.Encoding.DER)


def certificate13(*ders: bytes) -> bytes:
    entries = b"".join(vec(d, 3) + vec(b"", 2) for d in ders)
    return hs(11, vec(b"", 1) + vec(entries, 3))


def certificate12(*ders: bytes) -> bytes:
    return hs(11, vec(b"".join(vec(d, 3) for d in ders), 3))


# --- captured from a real handshake (our TLSServer and client, via _msg_callback) ---------------

CAPTURED_CH13 = bytes.fromhex(
    "010000f203030f70e48de2846d4063639b656590fa1b749f46ee93a7884f50bf500b65c2b2aa20390f9c3065"
    "e86c6f4da28ac0b6d4305628ce828db90f46194600ddbc92d3989d0014130213031301c02bc02fc02cc030cc"
    "a9cca800ff010000950000000e000c0000096c6f63616c686f7374000b000403000102000a00080006001d00"
    "1700180016000000170000000d002a0028040305030603080708080809080a080b0804080508060401050106"
    "01030303010302040205020602002b00050403040303002d00020101003300260024001d0020c93bc9847e29"
    "8ce12c176904535d5c01bc8553133bbf82f6363bd2821df78355"
)
CAPTURED_SH13 = bytes.fromhex(
    "02000076030325e88ded0a4bbf44546b84f64195efd21c7f6cabeed5c2dbcd8803dd580b6d7520390f9c3065"
    "e86c6f4da28ac0b6d4305628ce828db90f46194600ddbc92d3989d130200002e002b0002030400330024001d"
    "00207b3f800c5f9b3c424f35b6c8dbb33d4fd48f9aec052cb6c20a5df3315b90c647"
)
CAPTURED_CV13 = bytes.fromhex(
    "0f00004a040300463044022009e5b8bd14a20b5199de62c2ac7780d5c76e058910868a9b1834ef82e91c1b84"
    "022049677e85a459b759c24d66c047d9a24dc8395719edf99e1cc1cb3df47564f702"
)
CAPTURED_CH12 = bytes.fromhex(
    "0100009303034a65ddf74ed64a73c2f812ab1f496877b8a253e7b09c1e5c889932c2a2b4745b00000ec02bc0"
    "2fc02cc030cca9cca800ff0100005c0000000e000c0000096c6f63616c686f7374000b000403000102000a00"
    "080006001d001700180016000000170000000d002a0028040305030603080708080809080a080b0804080508"
    "06040105010601030303010302040205020602"
)
CAPTURED_SH12 = bytes.fromhex(
    "020000590303281f8a3c1d3f647df91f2b99f20a1fa3a9ac52a26c4b6ec4444f574e475244012092d874d508"
    "db80835db66cea8411629b25f463e6837340cf32107922455a1a30c02b000011ff01000100000b0004030001"
    "0200170000"
)
CAPTURED_SKE12 = bytes.fromhex(
    "0c00006f03001d20228a535588e45ac4dd15e4f9201d510d9eba58df8222b08a9496e7514413016604030047"
    "3045022100e7d088b053ed9204d51ed8578b7a95222dd170e32a40027d4146aca677689ec20220421442ada6"
    "ccb99148e21a470ce994573e91324ff4302d6052e0465f8f8a17a2"
)
CAPTURED_CKE12 = bytes.fromhex(
    "10000021205b054881b0955af49d079abc8ae39c943b92a86a2b597ab0d205f4a6b9941160"
)

X25519, P256, P384, FFDHE2048 = 0x001D, 0x0017, 0x0018, 0x0100
