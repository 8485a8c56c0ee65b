"""The TLS material a lab generates (pure): one CA per lab, and for every `kubernetes.io/tls`
Secret an Ingress names, a server certificate for the hosts its `tls` entries list, signed
by that CA.

Lab keys are derived from names (the lab, the Secret), not drawn at random: Ed25519 keys
from a hash, Ed25519 signatures (deterministic by design), fixed serials and validity. So a
plan is the same every time it is printed, `netlab check` can verify a server against the
lab's CA without reading any state, and nothing secret is stored. These keys protect
nothing: they only make the lab's HTTPS real (SNI, certificate names) inside its own
namespaces, and must never be used anywhere else.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc)


@dataclass(frozen=True)
class TlsSecret:
    """A `kubernetes.io/tls` Secret: `tls.crt` (the server certificate, then the CA) and `tls.key`."""

    namespace: str
    name: str
    hosts: tuple[str, ...]
    crt: str
    key: str

    def manifest(self) -> dict:
        return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "data": {"tls.crt": base64.b64encode(self.crt.encode()).decode(),
                         "tls.key": base64.b64encode(self.key.encode()).decode()}}


def _key(*parts: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256("/".join(("netlab",) + parts).encode()).digest())


def _serial(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:16], "big") >> 1


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netlab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common[:64])])


@cache
def _ca(lab: str) -> tuple[Ed25519PrivateKey, x509.Certificate]:
    key = _key(lab, "ca")
    name = _name(f"netlab lab {lab} CA")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(_serial(lab, "ca")).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, None))
    return key, cert


def ca_pem(lab: str) -> str:
    """The lab's CA certificate (what a client trusts)."""
    return _ca(lab)[1].public_bytes(serialization.Encoding.PEM).decode()


@cache
def tls_secret(lab: str, cluster: str, namespace: str, name: str, hosts: tuple[str, ...]) -> TlsSecret:
    ca_key, ca = _ca(lab)
    key = _key(lab, cluster, namespace, name)
    sans = [x509.DNSName(h) for h in hosts] or [x509.DNSName(f"{name}.{namespace}.invalid")]
    cert = (x509.CertificateBuilder().subject_name(_name(hosts[0] if hosts else name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(_serial(lab, cluster, namespace, name, *hosts))
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, None))
    crt = cert.public_bytes(serialization.Encoding.PEM).decode() + ca_pem(lab)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return TlsSecret(namespace=namespace, name=name, hosts=hosts, crt=crt, key=pem)
