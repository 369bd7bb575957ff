"""TLS for our connections to mail servers (IMAP, POP3, SMTP).

Certificates are always verified; `cafile` adds a CA bundle to the system's (an
internal CA, or the throwaway certificate of the tests' servers), and `cadata` an
address's own private CA (PEM text, uploaded in the wizard). The runtime passes the
app's `MAIL_TLS_CA_FILE` and the address's CA (`app.runtime.tls`). `read_ca_pem()`
checks an uploaded CA before it is kept.
"""
from __future__ import annotations

import ssl
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

#: An uploaded CA file larger than this is refused (a bundle of a few dozen certificates fits).
MAX_CA_BYTES = 256 * 1024


def client_context(cafile: str | None = None, cadata: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    if cadata:
        context.load_verify_locations(cadata=cadata)
    return context


def read_ca_pem(data: bytes | str) -> str:
    """The PEM text of an uploaded CA, checked; raises `ValueError` with a sentence for the admin.

    It must be PEM (not DER), hold one or more certificates and nothing else that
    OpenSSL would refuse, each valid today and allowed to sign (a CA, or a self-signed
    server certificate without the CA:FALSE mark).
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if len(data) > MAX_CA_BYTES:
        raise ValueError(f"The CA file is larger than {MAX_CA_BYTES // 1024} KB; upload only the CA certificate.")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError("This is not a PEM certificate: upload the CA certificate as PEM text "
                         "(it begins with -----BEGIN CERTIFICATE-----).")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError("The CA file could not be read: a certificate in it is damaged or incomplete.") from None
    now = datetime.now(timezone.utc)
    for cert in certificates:
        name = cert.subject.rfc4514_string() or "(no name)"
        if cert.not_valid_after_utc < now:
            raise ValueError(f"The certificate {name} expired on {cert.not_valid_after_utc:%Y-%m-%d}.")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is not None and not constraints.ca:
            raise ValueError(f"The certificate {name} is not a CA certificate (it cannot sign server certificates).")
    pem = "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certificates)
    try:
        ssl.create_default_context().load_verify_locations(cadata=pem)
    except ssl.SSLError as exc:
        raise ValueError(f"The CA certificate cannot be used: {exc.reason or exc}.") from None
    return pem


def describe_ca_pem(pem: str | None) -> str:
    """"CN=Acme Root CA (valid until 2030-01-01)", one per certificate, for the wizard and the review."""
    if not pem:
        return ""
    return "; ".join(f"{c.subject.rfc4514_string()} (valid until {c.not_valid_after_utc:%Y-%m-%d})"
                     for c in x509.load_pem_x509_certificates(pem.encode("ascii")))
