"""What a signed message carries: the algorithm, the key id, the signature itself and,
from signature v2 on, the claims it binds (`Claims`: topic, sent, expiry).

A key is named by its key id: the first 16 hex characters of the SHA-256 of the raw
32-byte public key. A signature travels as standard base64 of its 64 bytes; a message
that claims one but does not carry it properly raises `MalformedEnvelope`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "ALG",
    "Claims",
    "MalformedEnvelope",
    "Signature",
    "decode_signature",
    "key_id_of",
    "parse_signature",
]

ALG = "ed25519"

_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_SIGNATURE_BYTES = 64


class MalformedEnvelope(ValueError):
    """A message claims a signature (envelope or properties) but does not carry one properly."""


def key_id_of(public: Ed25519PublicKey) -> str:
    """The first 16 hex characters of the SHA-256 of the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Claims:
    """What a v2 signature binds besides the payload (`layout.signed_bytes`): the topic it
    was published on, when it was sent and when it expires (wall-clock ms since the epoch;
    `expires_ms` None: it never does, as a retained state)."""

    topic: str
    sent_ms: int
    expires_ms: int | None = None


@dataclass(frozen=True)
class Signature:
    """A signature as carried by a message: key id, algorithm, the signature's base64, and
    its `claims` (v2); None for a v1 signature, over the payload alone."""

    key_id: str
    sig: str
    alg: str = ALG
    claims: Claims | None = None

    @property
    def version(self) -> int:
        return 1 if self.claims is None else 2


def decode_signature(text: str) -> bytes:
    """The 64 signature bytes in the base64 `text`; MalformedEnvelope if it is not that."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope("signature is not base64") from exc
    if len(raw) != _SIGNATURE_BYTES:
        raise MalformedEnvelope("signature is not 64 bytes")
    return raw


def parse_signature(key_id: object, alg: object, sig: object,
                    claims: Claims | None = None) -> Signature:
    """The `Signature` made of the values a message carries; MalformedEnvelope if any is
    not what it must be."""
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise MalformedEnvelope("key id is not 16 hex characters")
    if alg != ALG:
        raise MalformedEnvelope("algorithm is not ed25519")
    if not isinstance(sig, str):
        raise MalformedEnvelope("signature is not a string")
    decode_signature(sig)
    return Signature(key_id=key_id, sig=sig, alg=ALG, claims=claims)
