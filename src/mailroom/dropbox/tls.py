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
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
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
    return cert_path, key_path


def dropbox_context(data_dir: Path, host: str) -> ssl.SSLContext:
    """The drop server's STARTTLS context: the configured certificate, else a self-signed one."""
    cert = os.environ.get("MAILROOM_DROPBOX_CERT")
    key = os.environ.get("MAILROOM_DROPBOX_KEY")
    if cert and key:
        return server_context(Path(cert), Path(key))
    return server_context(*ensure_self_signed(data_dir / "dropbox-tls", host))
