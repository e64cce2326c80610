"""Ed25519 signatures on what the service publishes: a receiver can tell a forged alert
from a real one, and a genuine one replayed out of place or out of time.

    signature    what a message carries: algorithm, key id (`key_id_of`), the signature,
                 its `Claims` (v2: topic, sent, expiry); `MalformedEnvelope`
    layout       the canonical bytes a v2 signature covers (`signed_bytes`)
    trust        the receiver's `TrustedKeys` and its `Verdict` (with the reasons)
    replay       what a receiver holds (`Memory`) and its `refusal` of a replayed copy
    memory_file  that memory in a JSON file across restarts, locked to one receiver
    keys         the signer's `SigningKey`, `generate`, and the PEM key files
    transport    the wire format per protocol: `sign_publication`, `unwrap`, `check`

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
from alertsim.signing.layout import VERSION_TAG, signed_bytes
from alertsim.signing.memory_file import claim, load_memory, release, save_memory
from alertsim.signing.replay import (
    REASON_V1,
    SKEW_S,
    Kind,
    Memory,
    Policy,
    refusal,
)
from alertsim.signing.signature import ALG, Claims, MalformedEnvelope, Signature, key_id_of
from alertsim.signing.transport import (
    ENVELOPE_MARK,
    SIGNED_KINDS,
    check,
    claims_of,
    envelope,
    envelope_v1,
    needs_signature,
    sign_publication,
    sign_publication_v1,
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
    "REASON_V1",
    "SIGNED_KINDS",
    "SKEW_S",
    "VERSION_TAG",
    "Claims",
    "Kind",
    "MalformedEnvelope",
    "Memory",
    "Policy",
    "Signature",
    "SigningKey",
    "TrustedKeys",
    "Verdict",
    "check",
    "claim",
    "claims_of",
    "envelope",
    "envelope_v1",
    "generate",
    "key_id_of",
    "load_memory",
    "load_signing_key",
    "load_trusted",
    "needs_signature",
    "refusal",
    "release",
    "save_key_pair",
    "save_memory",
    "sign_publication",
    "sign_publication_v1",
    "signed_bytes",
    "unwrap",
    "verify",
]
