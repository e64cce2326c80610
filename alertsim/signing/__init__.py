"""Ed25519 signatures on what the service publishes: a receiver can tell a forged alert
from a real one.

    signature  what a message carries: algorithm, key id (`key_id_of`), the signature;
               `MalformedEnvelope` when it is carried badly
    trust      the receiver's `TrustedKeys` and its `Verdict` (with the reasons)
    keys       the signer's `SigningKey`, `generate`, and the PEM key files
    transport  the wire format per protocol: `sign_publication`, `unwrap`, `check`

This package re-exports the names its callers use, so they import from `alertsim.signing`.
"""

from __future__ import annotations

from alertsim.signing.keys import (
    SigningKey,
    generate,
    load_signing_key,
    load_trusted,
    save_key_pair,
)
from alertsim.signing.signature import ALG, MalformedEnvelope, Signature, key_id_of
from alertsim.signing.transport import (
    ENVELOPE_MARK,
    SIGNED_KINDS,
    check,
    envelope,
    needs_signature,
    sign_publication,
    unwrap,
)
from alertsim.signing.trust import (
    REASON_MALFORMED,
    REASON_TAMPERED,
    REASON_UNSIGNED,
    TrustedKeys,
    Verdict,
    verify,
)

__all__ = [
    "ALG",
    "ENVELOPE_MARK",
    "REASON_MALFORMED",
    "REASON_TAMPERED",
    "REASON_UNSIGNED",
    "SIGNED_KINDS",
    "MalformedEnvelope",
    "Signature",
    "SigningKey",
    "TrustedKeys",
    "Verdict",
    "check",
    "envelope",
    "generate",
    "key_id_of",
    "load_signing_key",
    "load_trusted",
    "needs_signature",
    "save_key_pair",
    "sign_publication",
    "unwrap",
    "verify",
]
