"""Signatures on the wire: signing a `Publication` for a protocol, and opening one received.

The service signs the EXACT payload bytes of every `alert` and `state` message (an empty
payload, a cleared retained state, is signed too: the signature of b""); `error` and the
service status are not signed.

    MQTT 5     three user properties are added: `sig-alg=ed25519`, `sig-key=KEYID`,
               `sig=BASE64` (standard base64 of the 64-byte signature); the payload is
               unchanged.
    MQTT 3.1.1 (no properties) the payload is replaced by a JSON envelope:

        {"alertsim_signed": 1, "key_id": "KEYID", "alg": "ed25519", "sig": "BASE64",
         "payload": "BASE64 of the original bytes"}

`unwrap(payload, user_properties)` gives back the original bytes and the signature (from
the properties, else from the envelope; None when the message carries neither); `check`
unwraps and has `TrustedKeys` judge it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import replace

from alertsim.domain.publication import Publication
from alertsim.mqtt.protocol import Protocol
from alertsim.signing.keys import SigningKey
from alertsim.signing.signature import ALG, MalformedEnvelope, Signature, parse_signature
from alertsim.signing.trust import REASON_MALFORMED, TrustedKeys, Verdict

__all__ = [
    "ENVELOPE_MARK",
    "SIGNED_KINDS",
    "UserProperties",
    "check",
    "envelope",
    "needs_signature",
    "sign_publication",
    "unwrap",
]

ENVELOPE_MARK = "alertsim_signed"
PROP_ALG, PROP_KEY, PROP_SIG = "sig-alg", "sig-key", "sig"
SIGNED_KINDS = frozenset({"alert", "state"})

_ENVELOPE_FIELDS = frozenset({ENVELOPE_MARK, "key_id", "alg", "sig", "payload"})

UserProperties = Sequence[tuple[str, str]]


def needs_signature(message: Publication) -> bool:
    """True for the service's `alert` and `state` messages (user property `kind`)."""
    return any(name == "kind" and value in SIGNED_KINDS
               for name, value in message.user_properties)


def envelope(payload: bytes, key: SigningKey) -> bytes:
    """The MQTT 3.1.1 envelope carrying `payload` and its signature."""
    key_id, sig = key.sign(payload)
    body = {ENVELOPE_MARK: 1, "key_id": key_id, "alg": ALG, "sig": sig,
            "payload": base64.b64encode(payload).decode("ascii")}
    return json.dumps(body, separators=(",", ":")).encode()


def sign_publication(message: Publication, key: SigningKey, protocol: Protocol) -> Publication:
    """`message` signed: user properties under MQTT 5, the envelope under 3.1.1."""
    if protocol == "5":
        key_id, sig = key.sign(message.payload)
        props = (*message.user_properties, (PROP_ALG, ALG), (PROP_KEY, key_id), (PROP_SIG, sig))
        return replace(message, user_properties=props)
    return replace(message, payload=envelope(message.payload, key),
                   content_type="application/json")


def _from_properties(user_properties: UserProperties) -> Signature | None:
    found = [(name, value) for name, value in user_properties
             if name in (PROP_ALG, PROP_KEY, PROP_SIG)]
    if not found:
        return None
    values = dict(found)
    if len(values) != len(found) or len(values) != 3:
        raise MalformedEnvelope("sig-alg, sig-key and sig must each be given once")
    return parse_signature(values[PROP_KEY], values[PROP_ALG], values[PROP_SIG])


def _from_envelope(payload: bytes) -> tuple[bytes, Signature] | None:
    if ENVELOPE_MARK.encode() not in payload:
        return None
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON: an ordinary payload that happens to contain the word
    if not isinstance(body, dict) or ENVELOPE_MARK not in body:
        return None
    if set(body) != _ENVELOPE_FIELDS or body[ENVELOPE_MARK] != 1 \
            or isinstance(body[ENVELOPE_MARK], bool) or not isinstance(body["payload"], str):
        raise MalformedEnvelope("envelope fields")
    signature = parse_signature(body["key_id"], body["alg"], body["sig"])
    try:
        original = base64.b64decode(body["payload"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope("payload is not base64") from exc
    return original, signature


def unwrap(payload: bytes, user_properties: UserProperties = ()) -> tuple[bytes, Signature | None]:
    """The original payload and its signature: from MQTT 5 properties, else from the 3.1.1
    envelope, else (payload, None). MalformedEnvelope when a signature is claimed badly."""
    signature = _from_properties(user_properties)
    if signature is not None:
        return payload, signature
    opened = _from_envelope(payload)
    if opened is None:
        return payload, None
    return opened


def check(payload: bytes, user_properties: UserProperties,
          trusted: TrustedKeys) -> tuple[bytes, Verdict]:
    """`unwrap`, then `verify`: the original payload and the verdict on it."""
    try:
        original, signature = unwrap(payload, user_properties)
    except MalformedEnvelope:
        return payload, Verdict(False, REASON_MALFORMED)
    return original, trusted.verify(original, signature)
