"""The deployment's C2PA signing credentials: a self-signed development CA + ES256 leaf, made on first use.

C2PA validators require a leaf with KeyUsage digitalSignature, an ExtendedKeyUsage other than anyEKU
(emailProtection is accepted) and an AuthorityKeyIdentifier, and a chain (leaf + issuer): a bare self-signed
leaf is rejected, hence the small CA. Users who hold a real certificate point `label_cert_path` /
`label_key_path` at their PEM files (chain first leaf, then intermediates) and nothing is generated.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from zhike.core.errors import InvalidInput


@dataclass(frozen=True)
class SigningCredentials:
    chain_pem: bytes  # leaf first, then its issuers
    key_pem: bytes
    ca_pem: bytes | None  # the development CA (trust anchor for our own reader); None for user certificates
    self_signed: bool


def _name(common: str, org: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]
    )


def generate_dev_chain(producer: str) -> tuple[bytes, bytes, bytes]:
    """(leaf+CA chain PEM, leaf key PEM, CA PEM) for development signing; valid 10 years."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    org = producer or "Zhike"
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{org} development C2PA CA", org)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{org} content credentials (development)", org))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )  # digitalSignature
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return leaf.public_bytes(pem) + ca_pem, key_pem, ca_pem


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_or_create(
    folder: Path, *, cert_path: Path | None = None, key_path: Path | None = None, producer: str = "Zhike"
) -> SigningCredentials:
    """The user's certificate and key when configured, else the development ones under `folder` (made once)."""
    if cert_path or key_path:
        if not (cert_path and key_path):
            raise InvalidInput("set both label_cert_path and label_key_path", field="label_cert_path")
        for p, name in ((cert_path, "label_cert_path"), (key_path, "label_key_path")):
            if not p.is_file():
                raise InvalidInput(f"{name}: no file at {p}", field=name)
        return SigningCredentials(cert_path.read_bytes(), key_path.read_bytes(), None, self_signed=False)
    chain, key, ca = folder / "c2pa-chain.pem", folder / "c2pa-key.pem", folder / "c2pa-ca.pem"
    if not (chain.is_file() and key.is_file() and ca.is_file()):
        c, k, a = generate_dev_chain(producer)
        _write_private(key, k)  # key first: a chain without its key would be unusable
        _write_private(ca, a)
        _write_private(chain, c)
    return SigningCredentials(chain.read_bytes(), key.read_bytes(), ca.read_bytes(), self_signed=True)
