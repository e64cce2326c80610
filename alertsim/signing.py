"""Ed25519 signatures on what the service publishes: a receiver can tell a forged alert
from a real one.

The service signs the EXACT payload bytes of every `alert` and `state` message (an empty
payload, a cleared retained state, is signed too: the signature of b""); `error` and the
service status are not signed. A key is named by its key id: the first 16 hex characters
of the SHA-256 of the raw 32-byte public key.

Transport
    MQTT 5     three user properties are added: `sig-alg=ed25519`, `sig-key=KEYID`,
               `sig=BASE64` (standard base64 of the 64-byte signature); the payload is
               unchanged.
    MQTT 3.1.1 (no properties) the payload is replaced by a JSON envelope:

        {"alertsim_signed": 1, "key_id": "KEYID", "alg": "ed25519", "sig": "BASE64",
         "payload": "BASE64 of the original bytes"}

`unwrap(payload, user_properties)` gives back the original bytes and the signature (from
the properties, else from the envelope; None when the message carries neither);
`TrustedKeys.verify` judges it. A rejected `Verdict` says why: `unsigned`,
`unknown key KEYID`, `bad signature (tampered or wrong key)` or `malformed envelope`.

Keys are PEM files: the private key PKCS#8 (unencrypted, keep it 0600), the public key
SubjectPublicKeyInfo. `load_trusted` also accepts a private key file (its public half).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from alertsim.domain.publication import Publication
from alertsim.errors import InputError
from alertsim.mqtt.client import Protocol

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

ALG = "ed25519"
ENVELOPE_MARK = "alertsim_signed"
PROP_ALG, PROP_KEY, PROP_SIG = "sig-alg", "sig-key", "sig"
SIGNED_KINDS = frozenset({"alert", "state"})

REASON_UNSIGNED = "unsigned"
REASON_TAMPERED = "bad signature (tampered or wrong key)"
REASON_MALFORMED = "malformed envelope"

_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_ENVELOPE_FIELDS = frozenset({ENVELOPE_MARK, "key_id", "alg", "sig", "payload"})
_SIGNATURE_BYTES = 64

UserProperties = Sequence[tuple[str, str]]


class MalformedEnvelope(ValueError):
    """A message claims a signature (envelope or properties) but does not carry one properly."""


def key_id_of(public: Ed25519PublicKey) -> str:
    """The first 16 hex characters of the SHA-256 of the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signature:
    """A signature as carried by a message: key id, algorithm, the signature's base64."""

    key_id: str
    sig: str
    alg: str = ALG


@dataclass(frozen=True)
class Verdict:
    """The judgement on one message: `ok`, or not with a `reason` for people to read."""

    ok: bool
    reason: str | None = None
    key_id: str | None = None


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key and its key id."""

    private: Ed25519PrivateKey
    key_id: str

    @classmethod
    def of(cls, private: Ed25519PrivateKey) -> SigningKey:
        return cls(private, key_id_of(private.public_key()))

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, payload: bytes) -> tuple[str, str]:
        """(key id, base64 signature) over exactly `payload`."""
        return self.key_id, base64.b64encode(self.private.sign(payload)).decode("ascii")

    def trusted(self) -> TrustedKeys:
        """A `TrustedKeys` holding this key's public half alone."""
        return TrustedKeys([self.public])

    def private_pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)


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
        """Whether `signature` is a valid signature over exactly `payload` by a trusted key."""
        if signature is None:
            return Verdict(False, REASON_UNSIGNED)
        public = self._keys.get(signature.key_id)
        if public is None:
            return Verdict(False, f"unknown key {signature.key_id}", signature.key_id)
        try:
            public.verify(_decode_signature(signature.sig), payload)
        except MalformedEnvelope:
            return Verdict(False, REASON_MALFORMED, signature.key_id)
        except InvalidSignature:
            return Verdict(False, REASON_TAMPERED, signature.key_id)
        return Verdict(True, None, signature.key_id)


def generate() -> SigningKey:
    """A fresh key pair (in memory)."""
    return SigningKey.of(Ed25519PrivateKey.generate())


def verify(trusted: TrustedKeys, payload: bytes, signature: Signature | None) -> Verdict:
    """`trusted.verify(payload, signature)`."""
    return trusted.verify(payload, signature)


# ---- key files ----------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(source=str(path), problems=[f"cannot read: {exc.strerror or exc}"]
                         ) from exc


def load_signing_key(path: Path) -> SigningKey:
    """The Ed25519 private key in the PEM file `path`; InputError naming the file if not."""
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(source=str(path), problems=[
            f"not an unencrypted PEM private key ({exc})"]) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(source=str(path), problems=["not an Ed25519 key"])
    return SigningKey.of(key)


def _load_public(path: Path) -> Ed25519PublicKey:
    data = _read(path)
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(source=str(path), problems=[
            f"not a PEM public key ({exc})"]) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(source=str(path), problems=["not an Ed25519 key"])
    return key


def load_trusted(paths: Iterable[Path]) -> TrustedKeys:
    """The public keys in the PEM files `paths` (a private key file gives its public half)."""
    return TrustedKeys(_load_public(Path(path)) for path in paths)


def save_key_pair(key: SigningKey, directory: Path) -> tuple[Path, Path]:
    """Write `signing.key` (mode 0600) and `signing.pub` in `directory`; never overwrite.

    FileExistsError when either file is there already (nothing is written then).
    """
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / "signing.key", directory / "signing.pub"
    for path in (private, public):
        if path.exists():
            raise FileExistsError(f"{path} exists")
    _write_new(private, key.private_pem(), 0o600)
    _write_new(public, key.public_pem(), 0o644)
    return private, public


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    path.chmod(mode)  # the umask may have taken bits from a public key's mode


# ---- transport ----------------------------------------------------------------------------


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


def _decode_signature(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope("signature is not base64") from exc
    if len(raw) != _SIGNATURE_BYTES:
        raise MalformedEnvelope("signature is not 64 bytes")
    return raw


def _signature(key_id: object, alg: object, sig: object) -> Signature:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise MalformedEnvelope("key id is not 16 hex characters")
    if alg != ALG:
        raise MalformedEnvelope("algorithm is not ed25519")
    if not isinstance(sig, str):
        raise MalformedEnvelope("signature is not a string")
    _decode_signature(sig)
    return Signature(key_id=key_id, sig=sig, alg=ALG)


def _from_properties(user_properties: UserProperties) -> Signature | None:
    found = [(name, value) for name, value in user_properties
             if name in (PROP_ALG, PROP_KEY, PROP_SIG)]
    if not found:
        return None
    values = dict(found)
    if len(values) != len(found) or len(values) != 3:
        raise MalformedEnvelope("sig-alg, sig-key and sig must each be given once")
    return _signature(values[PROP_KEY], values[PROP_ALG], values[PROP_SIG])


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
    signature = _signature(body["key_id"], body["alg"], body["sig"])
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
