"""Signatures on the wire: signing a `Publication` for a protocol, and opening one received.

The service signs every `alert` and `state` message (an empty payload, a cleared retained
state, is signed too); `error` and the service status are not signed. Signature v2 covers
the topic, the exact payload bytes, the sent time and the expiry (`layout.signed_bytes`):
a copy replayed on another topic or after its expiry no longer passes.

    sent     the publication's `sent_ms` (wall-clock ms since the epoch), else now
    expires  sent + its MQTT 5 message expiry (`expiry_s`); none when it has none (states)

    MQTT 5     user properties are added, the payload is unchanged:
               `sig-v=2`, `sig-alg=ed25519`, `sig-key=KEYID`, `sig-topic=TOPIC`,
               `sig-sent=MS`, `sig-expires=MS` (absent when it never expires) and
               `sig=BASE64` (standard base64 of the 64-byte signature)
    MQTT 3.1.1 (no properties) the payload is replaced by a JSON envelope:

        {"alertsim_signed": 2, "key_id": "KEYID", "alg": "ed25519", "sig": "BASE64",
         "topic": "TOPIC", "sent": MS, "expires": MS or null,
         "payload": "BASE64 of the original bytes"}

Signature v1 (the payload alone: properties without `sig-v`, envelope mark 1) is still
read, so that a receiver can say what it is; receivers refuse it unless told to accept it.
`unwrap(payload, user_properties)` gives back the original bytes and the signature (from
the properties, else from the envelope; None when the message carries neither); `check`
unwraps and has `TrustedKeys` judge it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from alertsim.domain.publication import Publication
from alertsim.mqtt.protocol import Protocol
from alertsim.signing.keys import SigningKey
from alertsim.signing.layout import parse_ms, signed_bytes
from alertsim.signing.signature import (
    ALG,
    Claims,
    MalformedEnvelope,
    Signature,
    parse_signature,
)
from alertsim.signing.trust import REASON_MALFORMED, TrustedKeys, Verdict

__all__ = [
    "ENVELOPE_MARK",
    "SIGNED_KINDS",
    "UserProperties",
    "check",
    "claims_of",
    "envelope",
    "envelope_v1",
    "needs_signature",
    "sign_publication",
    "sign_publication_v1",
    "unwrap",
]

ENVELOPE_MARK = "alertsim_signed"
PROP_V, PROP_ALG, PROP_KEY, PROP_SIG = "sig-v", "sig-alg", "sig-key", "sig"
PROP_TOPIC, PROP_SENT, PROP_EXPIRES = "sig-topic", "sig-sent", "sig-expires"
SIGNED_KINDS = frozenset({"alert", "state"})

_PROPS_V1 = frozenset({PROP_ALG, PROP_KEY, PROP_SIG})
_PROPS_V2 = _PROPS_V1 | {PROP_V, PROP_TOPIC, PROP_SENT}
_PROPS_ALL = _PROPS_V2 | {PROP_EXPIRES}
_ENVELOPE_V1 = frozenset({ENVELOPE_MARK, "key_id", "alg", "sig", "payload"})
_ENVELOPE_V2 = _ENVELOPE_V1 | {"topic", "sent", "expires"}

UserProperties = Sequence[tuple[str, str]]


def needs_signature(message: Publication) -> bool:
    """True for the service's `alert` and `state` messages (user property `kind`)."""
    return any(name == "kind" and value in SIGNED_KINDS
               for name, value in message.user_properties)


def claims_of(message: Publication) -> Claims:
    """What a v2 signature of `message` binds: its topic, sent (its own, else now) and
    expiry (sent + `expiry_s`, or none)."""
    sent = message.sent_ms if message.sent_ms is not None else time.time_ns() // 1_000_000
    expires = None if message.expiry_s is None else sent + message.expiry_s * 1000
    return Claims(topic=message.topic, sent_ms=sent, expires_ms=expires)


def envelope(payload: bytes, claims: Claims, key: SigningKey) -> bytes:
    """The MQTT 3.1.1 v2 envelope carrying `payload`, its claims and their signature."""
    key_id, sig = key.sign(signed_bytes(claims, payload))
    body = {ENVELOPE_MARK: 2, "key_id": key_id, "alg": ALG, "sig": sig,
            "topic": claims.topic, "sent": claims.sent_ms, "expires": claims.expires_ms,
            "payload": base64.b64encode(payload).decode("ascii")}
    return json.dumps(body, separators=(",", ":")).encode()


def sign_publication(message: Publication, key: SigningKey, protocol: Protocol) -> Publication:
    """`message` signed (v2): user properties under MQTT 5, the envelope under 3.1.1."""
    claims = claims_of(message)
    if protocol != "5":
        return replace(message, payload=envelope(message.payload, claims, key),
                       content_type="application/json")
    key_id, sig = key.sign(signed_bytes(claims, message.payload))
    props = [(PROP_V, "2"), (PROP_ALG, ALG), (PROP_KEY, key_id), (PROP_TOPIC, claims.topic),
             (PROP_SENT, str(claims.sent_ms))]
    if claims.expires_ms is not None:
        props.append((PROP_EXPIRES, str(claims.expires_ms)))
    return replace(message, user_properties=(*message.user_properties, *props, (PROP_SIG, sig)))


def envelope_v1(payload: bytes, key: SigningKey) -> bytes:
    """The legacy v1 envelope (payload alone signed): for `--accept-v1` and its tests."""
    key_id, sig = key.sign(payload)
    body = {ENVELOPE_MARK: 1, "key_id": key_id, "alg": ALG, "sig": sig,
            "payload": base64.b64encode(payload).decode("ascii")}
    return json.dumps(body, separators=(",", ":")).encode()


def sign_publication_v1(message: Publication, key: SigningKey,
                        protocol: Protocol) -> Publication:
    """`message` signed the legacy v1 way (payload alone): what older services sent."""
    if protocol != "5":
        return replace(message, payload=envelope_v1(message.payload, key),
                       content_type="application/json")
    key_id, sig = key.sign(message.payload)
    props = ((PROP_ALG, ALG), (PROP_KEY, key_id), (PROP_SIG, sig))
    return replace(message, user_properties=(*message.user_properties, *props))


def _claims(topic: object, sent: object, expires: object) -> Claims:
    if not isinstance(topic, str) or not topic:
        raise MalformedEnvelope("signed topic is not a non-empty string")
    return Claims(topic=topic, sent_ms=parse_ms(sent, "sent"),
                  expires_ms=None if expires is None else parse_ms(expires, "expires"))


def _from_properties(user_properties: UserProperties) -> Signature | None:
    found = [(name, value) for name, value in user_properties if name in _PROPS_ALL]
    if not found:
        return None
    values: Mapping[str, str] = dict(found)
    if len(values) != len(found):
        raise MalformedEnvelope("a signature property is given twice")
    if PROP_V not in values:
        if set(values) != _PROPS_V1:
            raise MalformedEnvelope("sig-alg, sig-key and sig must each be given once")
        return parse_signature(values[PROP_KEY], values[PROP_ALG], values[PROP_SIG])
    if values[PROP_V] != "2" or not set(values) >= _PROPS_V2:
        raise MalformedEnvelope("sig-v 2 with sig-alg, sig-key, sig-topic, sig-sent and sig")
    claims = _claims(values[PROP_TOPIC], values[PROP_SENT], values.get(PROP_EXPIRES))
    return parse_signature(values[PROP_KEY], values[PROP_ALG], values[PROP_SIG], claims)


def _envelope_signature(body: dict[str, object]) -> Signature:
    mark = body[ENVELOPE_MARK]
    fields = {1: _ENVELOPE_V1, 2: _ENVELOPE_V2}.get(mark) if type(mark) is int else None
    if fields is None or set(body) != fields or not isinstance(body["payload"], str):
        raise MalformedEnvelope("envelope fields")
    if mark == 2 and (type(body["sent"]) is not int
                      or not (body["expires"] is None or type(body["expires"]) is int)):
        raise MalformedEnvelope("sent and expires are integers (expires may be null)")
    claims = None if mark == 1 else _claims(body["topic"], body["sent"], body["expires"])
    return parse_signature(body["key_id"], body["alg"], body["sig"], claims)


def _from_envelope(payload: bytes) -> tuple[bytes, Signature] | None:
    if ENVELOPE_MARK.encode() not in payload:
        return None
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON: an ordinary payload that happens to contain the word
    if not isinstance(body, dict) or ENVELOPE_MARK not in body:
        return None
    signature = _envelope_signature(body)
    try:
        original = base64.b64decode(str(body["payload"]), validate=True)
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
    """`unwrap`, then `verify`: the original payload and the verdict on it (whose `claims`
    `replay.Guard` judges next: topic, expiry, order)."""
    try:
        original, signature = unwrap(payload, user_properties)
    except MalformedEnvelope:
        return payload, Verdict(False, REASON_MALFORMED)
    return original, trusted.verify(original, signature)
