"""One local certificate authority shared by every stand-in (Dataverse, Entra ID, Key Vault).

Real Dynamics, Entra ID and Key Vault are HTTPS-only and their clients (msal, the Dataverse SDK,
azure-core) refuse ``http://``. Each stand-in therefore serves HTTPS with a leaf certificate issued by
this CA (SAN ``IP:127.0.0.1`` and ``DNS:localhost``). Clients trust ``ca.pem``; libraries that build their
own ``requests.Session`` get ``bundle.pem`` (system roots + this CA) through ``REQUESTS_CA_BUNDLE``.

The CA lives in a folder (default ``.local/tls`` in the repository, or ``LOCAL_CA_DIR``); it is created on
first use under a file lock so several emulators starting at once agree on one CA.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CA_DIR = REPO_ROOT / ".local" / "tls"


@dataclass(frozen=True)
class LocalCA:
    directory: Path

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "ca.key"

    @property
    def bundle_path(self) -> Path:
        """System trust roots plus this CA: a value for REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""
        return self.directory / "bundle.pem"


def ca_dir_from_env() -> Path:
    return Path(os.environ.get("LOCAL_CA_DIR") or DEFAULT_CA_DIR)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _system_roots() -> str:
    paths = [ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"]
    try:
        import certifi

        paths.insert(0, certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with requests
        pass
    for candidate in paths:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_text()
    return ""


def ensure_ca(directory: Path | None = None) -> LocalCA:
    """Return the CA in ``directory``, creating it (atomically, under a lock) if missing."""
    ca = LocalCA(Path(directory) if directory else ca_dir_from_env())
    ca.directory.mkdir(parents=True, exist_ok=True)
    with open(ca.directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (ca.cert_path.exists() and ca.key_path.exists() and ca.bundle_path.exists()):
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dynamics integration local CA")])
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(_now() - dt.timedelta(days=1))
                .not_valid_after(_now() + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256())
            )
            cert_pem = cert.public_bytes(serialization.Encoding.PEM)
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _atomic_write(ca.key_path, key_pem, mode=0o600)
            _atomic_write(ca.cert_path, cert_pem)
            _atomic_write(ca.bundle_path, (_system_roots() + "\n").encode() + cert_pem)
    return ca


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def issue_server_cert(
    ca: LocalCA, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> tuple[bytes, bytes]:
    """A fresh leaf certificate (PEM cert chain, PEM key) for ``hosts``, signed by ``ca``."""
    ca_key = serialization.load_pem_private_key(ca.key_path.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.cert_path.read_bytes()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, key_pem


def server_ssl_context(
    ca: LocalCA | None = None, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> ssl.SSLContext:
    """An ``SSLContext`` for a stand-in server, with a leaf certificate from the local CA."""
    ca = ca or ensure_ca()
    chain, key_pem = issue_server_cert(ca, hosts)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory() as tmp:
        cert_file = Path(tmp) / "cert.pem"
        key_file = Path(tmp) / "key.pem"
        cert_file.write_bytes(chain)
        key_file.write_bytes(key_pem)
        os.chmod(key_file, 0o600)
        context.load_cert_chain(cert_file, key_file)
    return context


def trusting_session(ca: LocalCA | None = None):  # type: ignore[no-untyped-def]
    """A ``requests.Session`` that trusts the local CA and ignores REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE.

    While ``trust_env`` is on, requests lets those variables win over a session's ``verify`` (its
    ``merge_environment_settings``), and some environments set them; ``trust_env=False`` keeps ours.
    """
    import requests

    ca = ca or ensure_ca()
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca.bundle_path)
    return session
