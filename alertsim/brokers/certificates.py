"""A private CA and a server certificate for a local TLS broker, made on the spot.

`write_tls_files(dir, host)` writes `ca.crt`, `ca.key`, `server.crt` and `server.key`
(PEM; keys unencrypted, mode 0600). The CA is self-signed (basicConstraints CA:TRUE,
keyCertSign); the server certificate names `localhost`, `127.0.0.1` and `host` in its
subjectAltName, so clients that check the host name (alertsim always does) accept it.
ECDSA P-256 keys. For simulators and tests: keep `ca.key` away from the repository.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "make_ca", "make_server_certificate", "write_tls_files"]

DEFAULT_DAYS: Final = 825
_CLOCK_SKEW: Final = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class TlsFiles:
    """Where `write_tls_files` put the CA and the server's certificate and key."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "alertsim"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=not ca, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False))


def make_ca(common_name: str = "alertsim local CA", *, days: int = DEFAULT_DAYS,
            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate (CA:TRUE, path length 0) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (_builder(name, name, key, days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(["localhost", "127.0.0.1", *hosts]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_server_certificate(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                            hosts: Sequence[str], *, days: int = DEFAULT_DAYS,
                            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate signed by the CA for localhost, 127.0.0.1 and `hosts`."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (_builder(_name(hosts[0] if hosts else "localhost"), ca_cert.subject, key, days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` created with `mode` (a key is never readable by others)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_tls_files(directory: Path, host: str, *, days: int = DEFAULT_DAYS) -> TlsFiles:
    """Make a CA and a server certificate for `host`; write the four PEM files."""
    ca_cert, ca_key = make_ca(days=days)
    server_cert, server_key = make_server_certificate(ca_cert, ca_key, [host], days=days)
    files = TlsFiles(ca_cert=directory / "ca.crt", ca_key=directory / "ca.key",
                     server_cert=directory / "server.crt",
                     server_key=directory / "server.key")
    _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(files.ca_key, _key_pem(ca_key), 0o600)
    _write(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(files.server_key, _key_pem(server_key), 0o600)
    return files
