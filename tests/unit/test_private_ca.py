"""A private CA per address: what the wizard accepts, and the servers it lets us verify (real Dovecot, aiosmtpd)."""
from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.mail.tls import client_context, describe_ca_pem, read_ca_pem


def certificate(ca: bool | None = True, days: int = 30, name: str = "Acme Root CA") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=60))
               .not_valid_after(now + datetime.timedelta(days=days)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def test_a_ca_certificate_or_a_self_signed_server_certificate_is_kept_as_pem():
    root, self_signed = certificate(), certificate(ca=None, name="localhost")
    kept = read_ca_pem(b"# our CA\n" + pem(root) + pem(self_signed))
    assert kept == (pem(root) + pem(self_signed)).decode()  # normalised: the comment is gone
    assert "CN=Acme Root CA (valid until" in describe_ca_pem(kept) and "CN=localhost" in describe_ca_pem(kept)
    client_context(cadata=kept)  # loads


@pytest.mark.parametrize("data, words", [
    (b"hello", "not a PEM certificate"),
    (b"", "not a PEM certificate"),
    (pem(certificate())[:200], "damaged or incomplete"),
    (pem(certificate(days=-1)), "expired on"),
    (pem(certificate(ca=False, name="leaf.acme.test")), "CN=leaf.acme.test is not a CA certificate"),
    (b"-----BEGIN CERTIFICATE-----\n" + b"A" * 300_000, "larger than 256 KB"),
])
def test_what_is_no_usable_ca_is_refused_with_a_sentence(data, words):
    with pytest.raises(ValueError, match=words):
        read_ca_pem(data)


def test_der_is_refused():
    with pytest.raises(ValueError, match="PEM"):
        read_ca_pem(certificate().public_bytes(serialization.Encoding.DER))
