"""The receiver's side: the public keys it trusts and its verdict on a signed payload.

A rejected `Verdict` says why: `unsigned`, `unknown key KEYID`,
`bad signature (tampered or wrong key)` or `malformed envelope`. A good one carries the
signature's `claims` (v2: topic, sent, expiry), which `replay.Guard` then judges; a v1
signature (payload alone) has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from alertsim.signing.layout import signed_bytes
from alertsim.signing.signature import (
    Claims,
    MalformedEnvelope,
    Signature,
    decode_signature,
    key_id_of,
)

__all__ = [
    "REASON_MALFORMED",
    "REASON_TAMPERED",
    "REASON_UNSIGNED",
    "TrustedKeys",
    "Verdict",
    "verify",
]

REASON_UNSIGNED = "unsigned"
REASON_TAMPERED = "bad signature (tampered or wrong key)"
REASON_MALFORMED = "malformed envelope"


@dataclass(frozen=True)
class Verdict:
    """The judgement on one message: `ok`, or not with a `reason` for people to read."""

    ok: bool
    reason: str | None = None
    key_id: str | None = None
    version: int | None = None  # of a signature that verified: 1 or 2
    claims: Claims | None = None  # a good v2 signature's claims


class TrustedKeys:
    """The public keys a receiver trusts, by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            self.add(key)

    def add(self, public: Ed25519PublicKey) -> str:
        """Trust `public`; returns its key id."""
        key_id = key_id_of(public)
        self._keys[key_id] = public
        return key_id

    @property
    def keys(self) -> Mapping[str, Ed25519PublicKey]:
        return dict(self._keys)

    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def verify(self, payload: bytes, signature: Signature | None) -> Verdict:
        """Whether `signature` is a valid signature by a trusted key over exactly `payload`
        (v1) or over the v2 layout of its claims and `payload` (`layout.signed_bytes`)."""
        if signature is None:
            return Verdict(False, REASON_UNSIGNED)
        public = self._keys.get(signature.key_id)
        if public is None:
            return Verdict(False, f"unknown key {signature.key_id}", signature.key_id)
        claims = signature.claims
        signed = payload if claims is None else signed_bytes(claims, payload)
        try:
            public.verify(decode_signature(signature.sig), signed)
        except MalformedEnvelope:
            return Verdict(False, REASON_MALFORMED, signature.key_id)
        except InvalidSignature:
            return Verdict(False, REASON_TAMPERED, signature.key_id)
        return Verdict(True, None, signature.key_id, signature.version, claims)


def verify(trusted: TrustedKeys, payload: bytes, signature: Signature | None) -> Verdict:
    """`trusted.verify(payload, signature)`."""
    return trusted.verify(payload, signature)
