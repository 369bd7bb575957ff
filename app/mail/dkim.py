"""DKIM keys and signatures (RFC 6376): key generation and checks, the DNS record, signing.

* `generate_private_key()` makes an RSA 2048 key (PEM, PKCS#8) with cryptography;
* `check_private_key(pem)` reads a pasted key and raises `InvalidKey` with words for the admin
  unless it is an RSA key of 1024 to 2048 bits (receivers ignore shorter keys; longer ones do
  not fit in the TXT records most DNS hosting panels accept);
* `record_name(selector, domain)` and `record_value(pem)` are what to publish
  (`<selector>._domainkey.<domain>` TXT `v=DKIM1; k=rsa; p=...`), and `txt_strings(value)`
  splits a value into the 255-byte character-strings one TXT record is made of;
* `sign(message, selector, domain, pem)` returns the message with a `DKIM-Signature` header
  prepended (dkimpy; relaxed/relaxed, rsa-sha256), signing the headers of `SIGNED_HEADERS`
  the message has and From once more than it has ("over-signing": a second From added on
  the way breaks the signature instead of being shown to the reader).
"""
from __future__ import annotations

import base64
import re

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

#: Headers signed when the message has them, in this order.
SIGNED_HEADERS = ("From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
                  "MIME-Version", "Content-Type")
MIN_BITS, MAX_BITS, GENERATED_BITS = 1024, 2048, 2048
SELECTOR_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


class InvalidKey(ValueError):
    """The private key cannot be used; the text says why, in words for the admin."""


def generate_private_key() -> str:
    """A new RSA 2048 private key, PEM (PKCS#8)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_BITS)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def check_private_key(pem: str) -> str:
    """The key as stored (PEM, PKCS#8, trimmed). Raises `InvalidKey` for anything but an RSA key of 1024-2048 bits."""
    text = (pem or "").strip()
    if not text:
        raise InvalidKey("Paste a private key in PEM format (-----BEGIN PRIVATE KEY----- ...), or press Generate.")
    if "-----BEGIN" not in text:
        raise InvalidKey("This is not a PEM private key: it should start with -----BEGIN PRIVATE KEY----- "
                         "or -----BEGIN RSA PRIVATE KEY-----.")
    if "ENCRYPTED" in text:
        raise InvalidKey("This private key is protected by a passphrase; paste it without one.")
    try:
        key = serialization.load_pem_private_key(text.encode("ascii", "replace"), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"This private key cannot be read: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidKey("DKIM keys here are RSA keys (k=rsa); this is another kind of key.")
    if not MIN_BITS <= key.key_size <= MAX_BITS:
        raise InvalidKey(f"This RSA key has {key.key_size} bits; use {MIN_BITS} to {MAX_BITS} bits "
                         f"({GENERATED_BITS} recommended).")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def check_selector(selector: str) -> str:
    """The selector, lower-cased. Raises `ValueError` unless it is a DNS label (or labels)."""
    value = (selector or "").strip().lower()
    if not value or len(value) > 63 or not SELECTOR_RE.match(value):
        raise ValueError("A selector is a DNS name part: letters, digits and hyphens (for example s1 or 2026a).")
    return value


def public_key_b64(pem: str) -> str:
    """The `p=` value: the public key (SubjectPublicKeyInfo, DER) in base64."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def record_value(pem: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key_b64(pem)}"


def txt_strings(value: str, size: int = 255) -> list[str]:
    """A TXT value as the character-strings of one record: at most 255 bytes each (RFC 1035 3.3.14)."""
    data = value.encode("ascii")
    return [data[i:i + size].decode("ascii") for i in range(0, len(data), size)] or [""]


def record_tags(value: str) -> dict[str, str]:
    """The tags of a DKIM record (`v=DKIM1; k=rsa; p=...`), names lower-cased, whitespace removed from values."""
    tags = {}
    for part in value.split(";"):
        name, sep, tag_value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = re.sub(r"\s+", "", tag_value)
    return tags


def sign(message: bytes, selector: str, domain: str, pem: str) -> bytes:
    """The message with a DKIM-Signature header in front (same line endings as the message)."""
    linesep = b"\r\n" if b"\r\n" in message[:2000] else b"\n"
    header_block = message.split(linesep + linesep, 1)[0].lower()
    present = [h for h in SIGNED_HEADERS
               if header_block.startswith(h.lower().encode() + b":") or (linesep + h.lower().encode() + b":") in header_block]
    include = [h.encode() for h in present] + [b"From"]  # From once more: over-signed
    signature = dkim.sign(message, selector.encode("ascii"), domain.encode("ascii"), pem.encode("ascii"),
                          canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=b"rsa-sha256",
                          include_headers=include, linesep=linesep)
    return signature + message
