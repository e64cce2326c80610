"""Signatures on alerts, the pure parts: keys, sign/verify, both transports, key files, keygen."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
import structlog
from cryptography.hazmat.primitives import serialization

from alertsim.cli import main
from alertsim.domain.publication import Publication
from alertsim.errors import InputError
from alertsim.signing import (
    REASON_MALFORMED,
    REASON_TAMPERED,
    REASON_UNSIGNED,
    Claims,
    MalformedEnvelope,
    Signature,
    TrustedKeys,
    check,
    envelope,
    generate,
    load_signing_key,
    load_trusted,
    needs_signature,
    save_key_pair,
    sign_publication,
    unwrap,
    verify,
)

PAYLOAD = '{"identifier":"id-1","headline":"ミサイル発射"}'.encode()
ALERT = Publication("alertsim/v1/exercise/alerts/47", PAYLOAD, qos=1,
                    content_type="application/json",
                    user_properties=(("kind", "alert"), ("identifier", "id-1")),
                    expiry_s=600, sent_ms=1_700_000_000_000)
CLAIMS = Claims(ALERT.topic, 1_700_000_000_000, 1_700_000_600_000)


def _envelope(**changes: object) -> bytes:
    key = generate()
    body = json.loads(envelope(PAYLOAD, CLAIMS, key))
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v != "DROP"}).encode()


def test_key_id_is_sha256_of_the_raw_public_key() -> None:
    """The key id is the first 16 hex characters of SHA-256 over the raw 32-byte public key."""
    key = generate()
    raw = key.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert key.trusted().key_ids() == [key.key_id]


def test_sign_verify_round_trip() -> None:
    """A signature over the exact bytes verifies with the trusted key."""
    key = generate()
    key_id, sig = key.sign(PAYLOAD)
    verdict = verify(key.trusted(), PAYLOAD, Signature(key_id, sig))
    assert (verdict.ok, verdict.reason, verdict.key_id) == (True, None, key.key_id)
    assert len(base64.b64decode(sig)) == 64


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_transport_round_trip(protocol: str) -> None:
    """Signed (v2) for MQTT 5 (properties) or 3.1.1 (envelope), unwrapped and verified
    intact, with the claims it binds."""
    key = generate()
    signed = sign_publication(ALERT, key, "5" if protocol == "5" else "3.1.1")
    original, verdict = check(signed.payload, signed.user_properties, key.trusted())
    assert (verdict.ok, verdict.version, verdict.claims) == (True, 2, CLAIMS)
    assert original == PAYLOAD
    if protocol == "5":
        assert signed.payload == PAYLOAD
        props = dict(signed.user_properties)
        assert (props["sig-v"], props["sig-alg"], props["sig-key"]) == ("2", "ed25519",
                                                                       key.key_id)
        assert (props["sig-topic"], props["sig-sent"], props["sig-expires"]) == (
            ALERT.topic, "1700000000000", "1700000600000")
        assert props["kind"] == "alert"
    else:
        body = json.loads(signed.payload)
        assert set(body) == {"alertsim_signed", "key_id", "alg", "sig", "topic", "sent",
                             "expires", "payload"}
        assert (body["alertsim_signed"], body["alg"], body["key_id"]) == (2, "ed25519",
                                                                          key.key_id)
        assert (body["topic"], body["sent"], body["expires"]) == (
            ALERT.topic, 1_700_000_000_000, 1_700_000_600_000)
        assert base64.b64decode(body["payload"]) == PAYLOAD


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_empty_payload_is_signed_too(protocol: str) -> None:
    """A cleared retained state (empty payload) carries the signature of b""."""
    key = generate()
    cleared = Publication("root/exercise/state/47", b"", retain=True,
                          user_properties=(("kind", "state"),))
    signed = sign_publication(cleared, key, "5" if protocol == "5" else "3.1.1")
    original, verdict = check(signed.payload, signed.user_properties, key.trusted())
    assert (original, verdict.ok) == (b"", True)
    assert verdict.claims is not None
    assert (verdict.claims.topic, verdict.claims.expires_ms) == (cleared.topic, None)


def test_tampered_payload_is_rejected() -> None:
    """One changed byte, under either transport, fails as a bad signature."""
    key = generate()
    signed = sign_publication(ALERT, key, "5")
    _, verdict = check(PAYLOAD.replace(b"id-1", b"id-2"), signed.user_properties,
                       key.trusted())
    assert (verdict.ok, verdict.reason) == (False, REASON_TAMPERED)
    body = json.loads(envelope(PAYLOAD, CLAIMS, key))
    body["payload"] = base64.b64encode(PAYLOAD + b" ").decode()
    _, verdict = check(json.dumps(body).encode(), (), key.trusted())
    assert (verdict.ok, verdict.reason) == (False, REASON_TAMPERED)


def test_wrong_key_is_rejected() -> None:
    """Another key's signature: unknown key (naming it), or bad when it claims a trusted id."""
    mine, theirs = generate(), generate()
    signed = sign_publication(ALERT, theirs, "5")
    _, verdict = check(signed.payload, signed.user_properties, mine.trusted())
    assert (verdict.ok, verdict.reason) == (False, f"unknown key {theirs.key_id}")
    _, sig = theirs.sign(PAYLOAD)
    claimed = Signature(mine.key_id, sig)  # their signature under my key id
    assert verify(mine.trusted(), PAYLOAD, claimed).reason == REASON_TAMPERED


def test_missing_signature_is_rejected() -> None:
    """A plain payload with no properties and no envelope is unsigned."""
    original, verdict = check(PAYLOAD, (("kind", "alert"),), generate().trusted())
    assert (original, verdict.ok, verdict.reason) == (PAYLOAD, False, REASON_UNSIGNED)
    assert check(b"", (), TrustedKeys())[1].reason == REASON_UNSIGNED


@pytest.mark.parametrize("payload", [
    _envelope(alertsim_signed=3),
    _envelope(alertsim_signed=True),
    _envelope(alertsim_signed=1),  # a v1 mark with v2 fields
    _envelope(topic="DROP"),
    _envelope(topic=""),
    _envelope(sent="1700000000000"),
    _envelope(sent=-5),
    _envelope(sent=True),
    _envelope(expires=1.5),
    _envelope(alg="rsa"),
    _envelope(key_id="NOT-HEX-AT-ALL!!"),
    _envelope(key_id="\x1b[31mred"),
    _envelope(sig="not base64!"),
    _envelope(sig=base64.b64encode(b"short").decode()),
    _envelope(payload="@@@"),
    _envelope(payload="DROP"),
    _envelope(extra="field"),
], ids=["version", "bool-version", "v1-mark-v2-fields", "no-topic", "empty-topic",
        "sent-text", "sent-negative", "sent-bool", "expires-fraction", "alg", "key-id", "escape", "sig-b64", "sig-length",
        "payload-b64", "no-payload", "extra-field"])
def test_malformed_envelope_is_rejected(payload: bytes) -> None:
    """An envelope that does not follow the format is rejected as malformed."""
    with pytest.raises(MalformedEnvelope):
        unwrap(payload)
    _, verdict = check(payload, (), generate().trusted())
    assert (verdict.ok, verdict.reason) == (False, REASON_MALFORMED)


def test_malformed_properties_are_rejected() -> None:
    """Signature properties that are partial, repeated or not base64 are malformed."""
    key = generate()
    props = dict(sign_publication(ALERT, key, "5").user_properties)
    partial = (("sig", props["sig"]), ("sig-key", key.key_id))
    repeated = (*partial, ("sig-alg", "ed25519"), ("sig", props["sig"]))
    garbled = (("sig", "%%%"), ("sig-key", key.key_id), ("sig-alg", "ed25519"))
    for given in (partial, repeated, garbled):
        assert check(PAYLOAD, given, key.trusted())[1].reason == REASON_MALFORMED


def test_payload_mentioning_the_mark_is_not_an_envelope() -> None:
    """Only a JSON object with the top-level mark is an envelope; other payloads pass as is."""
    text = b'{"note": "alertsim_signed"}'
    assert unwrap(text) == (text, None)
    assert unwrap(b"alertsim_signed, not json") == (b"alertsim_signed, not json", None)


def test_only_alerts_and_states_need_a_signature() -> None:
    """`alert` and `state` are signed; `error` and the unmarked status message are not."""
    def kind(value: str) -> Publication:
        return Publication("t", b"x", user_properties=(("kind", value),))

    assert needs_signature(kind("alert"))
    assert needs_signature(kind("state"))
    assert not needs_signature(kind("error"))
    assert not needs_signature(Publication("t", b'{"status":"online"}'))


def test_key_files_round_trip(tmp_path: Path) -> None:
    """Saved PEM files load back; the private key is 0600; a private key file is trusted too."""
    key = generate()
    private, public = save_key_pair(key, tmp_path / "keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in private.read_bytes()
    assert b"BEGIN PUBLIC KEY" in public.read_bytes()
    assert load_signing_key(private).key_id == key.key_id
    other = generate()
    other_public = tmp_path / "other.pub"
    other_public.write_bytes(other.public_pem())
    trusted = load_trusted([public, other_public, private])
    assert trusted.key_ids() == sorted({key.key_id, other.key_id})
    with pytest.raises(FileExistsError):
        save_key_pair(generate(), tmp_path / "keys")
    assert load_signing_key(private).key_id == key.key_id  # untouched


def test_bad_key_files_are_input_errors(tmp_path: Path) -> None:
    """A missing, garbled or public-only file is an InputError naming the file."""
    missing, garbled = tmp_path / "missing.key", tmp_path / "garbled.pem"
    garbled.write_text("not a key")
    public = tmp_path / "k.pub"
    public.write_bytes(generate().public_pem())
    for path in (missing, garbled, public):
        with pytest.raises(InputError) as info:
            load_signing_key(path)
        assert info.value.source == str(path)
    with pytest.raises(InputError):
        load_trusted([garbled])


def test_keygen_writes_a_pair_and_refuses_to_overwrite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim keygen --out DIR` writes both files and prints the key id; again: exit 2."""
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    key = load_signing_key(out / "signing.key")
    assert f"key id {key.key_id}" in printed
    assert "--signing-key" in printed
    assert "--trust" in printed
    assert stat.S_IMODE((out / "signing.key").stat().st_mode) == 0o600
    assert load_trusted([out / "signing.pub"]).key_ids() == [key.key_id]
    before = (out / "signing.key").read_bytes()
    assert main(["keygen", "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (out / "signing.key").read_bytes() == before


def test_flags_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --help` shows --signing-key, `subscribe --help` shows --trust."""
    assert main(["serve", "--help"]) == 0
    assert "--signing-key" in capsys.readouterr().out
    assert main(["subscribe", "--help"]) == 0
    assert "--trust" in capsys.readouterr().out


def test_serve_refuses_a_bad_signing_key(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --signing-key` on a file that is no key exits 2 naming it, before connecting."""
    bad = tmp_path / "bad.key"
    bad.write_text("nope")
    saved = structlog.get_config()
    try:
        code = main(["serve", "--signing-key", str(bad), "--broker", "mqtt://127.0.0.1:1",
                     "--log-level", "error"])
    finally:
        structlog.configure(**saved)
    assert code == 2
    assert str(bad) in capsys.readouterr().err
