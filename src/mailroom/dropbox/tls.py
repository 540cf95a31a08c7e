"""The drop server's TLS certificate for STARTTLS (RFC 3207).

`MAILROOM_DROPBOX_CERT` / `MAILROOM_DROPBOX_KEY` name a real certificate and key (PEM);
without them a self-signed one is made once in `DATA_DIR/dropbox-tls/` (key mode 0600).
Sending servers use opportunistic TLS and do not verify it; a self-signed certificate
still encrypts the mail in transit.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailroom.config import make_private_dir, open_private


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context with this certificate chain and key (PEM files)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def ensure_self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for `host` in `directory`, made if missing."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    make_private_dir(directory)
    write_self_signed(
        cert_path, key_path, common_name=host[:64], names=[x509.DNSName(host)], days=3650
    )
    return cert_path, key_path


def write_self_signed(
    cert_path: Path,
    key_path: Path,
    *,
    common_name: str,
    names: Sequence[x509.GeneralName],
    days: int,
    strict: bool = False,
) -> None:
    """Make a self-signed P-256 certificate for `names` and write it and its key (PEM).

    The key file is created with mode 0600. `strict` adds what clients that verify in
    X.509-strict mode require of a server certificate (the test servers' certificates):
    basic constraints, key usage, server auth and the key identifiers.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    )
    if strict:
        builder = _strict_server(builder, key.public_key())
    cert = builder.sign(key, hashes.SHA256())
    with open_private(key_path) as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open_private(cert_path) as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))


def _strict_server(
    builder: x509.CertificateBuilder, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )


def dropbox_context(data_dir: Path, host: str) -> ssl.SSLContext:
    """The drop server's STARTTLS context: the configured certificate, else a self-signed one."""
    cert = os.environ.get("MAILROOM_DROPBOX_CERT")
    key = os.environ.get("MAILROOM_DROPBOX_KEY")
    if cert and key:
        return server_context(Path(cert), Path(key))
    return server_context(*ensure_self_signed(data_dir / "dropbox-tls", host))
