"""The sandbox's own certificate authority, so every TLS endpoint verifies for real.

One CA per state directory signs the ARM server certificate and the leaf
certificates of the processes the sandbox runs (redis-server, function hosts).
Clients pass the CA file explicitly (`connection_verify=`, `ssl_ca_certs=`,
`verify=`); nothing ever turns verification off. Leaf certificates name
`127.0.0.1` and `localhost`, which is what clients dial: there is no DNS here.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from requests.certs import where as public_roots

# redis-server's spelling of the same floor (its `tls-protocols` setting).
REDIS_TLS_PROTOCOLS = "TLSv1.2 TLSv1.3"

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
TRUST_BUNDLE_NAME = "trust-bundle.pem"
_VALIDITY = datetime.timedelta(days=825)


@dataclass(frozen=True)
class LeafCertificate:
    """A certificate/key pair on disk, signed by the sandbox CA."""

    cert_file: Path
    key_file: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertificateAuthority:
    """Loads the CA of a state directory, creating it on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cert_file = directory / CA_CERT_NAME
        self._key_file = directory / CA_KEY_NAME
        if not (self.cert_file.exists() and self._key_file.exists()):
            self._create()
        self._cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = serialization.load_pem_private_key(self._key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self._key_file} is not an EC private key")
        self._key = key

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mlcache-deploy sandbox"),
                x509.NameAttribute(NameOID.COMMON_NAME, "mlcache-deploy sandbox CA"),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self._key_file, _key_pem(key))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        cert_file: Path,
        key_file: Path,
        common_name: str = "localhost",
        dns_names: tuple[str, ...] = ("localhost",),
        ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> LeafCertificate:
        """Write a server certificate for the given names, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
            .sign(self._key, hashes.SHA256())
        )
        _write_private(key_file, _key_pem(key))
        cert_file.parent.mkdir(parents=True, exist_ok=True)
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return LeafCertificate(cert_file=cert_file, key_file=key_file)

    def trust_bundle(self) -> Path:
        """The public roots (requests' certifi bundle) and this CA in one file: a site's container
        trusts both, as a machine whose store holds a private CA does, so code that
        verifies with the default store (`requests`) reaches the sandbox's endpoints."""
        bundle = self.cert_file.parent / TRUST_BUNDLE_NAME
        wanted = Path(public_roots()).read_bytes() + b"\n" + self.cert_file.read_bytes()
        if not bundle.is_file() or bundle.read_bytes() != wanted:
            bundle.write_bytes(wanted)
        return bundle

    def issue_leaf(self, directory: Path, stem: str = "server") -> LeafCertificate:
        """Issue (or reuse, while valid) `<stem>.pem` / `<stem>-key.pem` in `directory`.

        For redis-server and function hosts: SANs are IP 127.0.0.1 and DNS localhost.
        """
        cert_file = directory / f"{stem}.pem"
        key_file = directory / f"{stem}-key.pem"
        if cert_file.exists() and key_file.exists():
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
            if cert.issuer == self._cert.subject and remaining > datetime.timedelta(days=7):
                return LeafCertificate(cert_file=cert_file, key_file=key_file)
        return self.issue(cert_file, key_file)
