"""The signer's key pair, in memory and in PEM files.

The private key file is PKCS#8 (unencrypted, so 0600: `load_signing_key` refuses one that
group or others may read or write), the public key file SubjectPublicKeyInfo.
`load_trusted` also accepts a private key file (its public half; its mode is not checked:
only its public half is used).
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from alertsim.errors import InputError
from alertsim.signing.signature import key_id_of
from alertsim.signing.trust import TrustedKeys

__all__ = [
    "SigningKey",
    "generate",
    "load_signing_key",
    "load_trusted",
    "save_key_pair",
]


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


def generate() -> SigningKey:
    """A fresh key pair (in memory)."""
    return SigningKey.of(Ed25519PrivateKey.generate())


# ---- key files ----------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(source=str(path), problems=[f"cannot read: {exc.strerror or exc}"]
                         ) from exc


def _check_mode(path: Path) -> None:
    """InputError when group or others have any access to the private key file `path`."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise InputError(source=str(path), problems=[
            f"a private key must be readable by its owner only (mode is {mode:04o}): "
            f"run `chmod 600 {path}`, and make a new key if others may have copied it"])


def load_signing_key(path: Path) -> SigningKey:
    """The Ed25519 private key in the PEM file `path` (mode 0600 or stricter); InputError
    naming the file if not."""
    data = _read(path)
    _check_mode(path)
    return _private(path, data)


def _private(path: Path, data: bytes) -> SigningKey:
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
        return _private(path, data).public
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
