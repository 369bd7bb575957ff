"""DKIM keys and signatures: generation, the checks of a pasted key, the record, signing that verifies."""
from __future__ import annotations

import subprocess

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.mail.dkim import (InvalidKey, check_private_key, check_selector, generate_private_key, record_name,
                           record_tags, record_value, sign, txt_strings)

MESSAGE = (b"From: Acme <help@acme.test>\r\nTo: carol@example.com\r\nSubject: Your order\r\n"
           b"Date: Thu, 01 Jan 2026 10:00:00 +0000\r\nMessage-ID: <1.abc@acme.test>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nIt ships today.\r\n")


def _pem(key, fmt=serialization.PrivateFormat.TraditionalOpenSSL) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def test_generated_key_is_rsa_2048_and_its_record_splits_into_255_byte_strings():
    pem = generate_private_key()
    assert check_private_key(pem) == pem
    value = record_value(pem)
    assert value.startswith("v=DKIM1; k=rsa; p=MIIB") and record_tags(value)["k"] == "rsa"
    strings = txt_strings(value)
    assert [len(s) for s in strings] == [255, len(value) - 255] and "".join(strings) == value
    assert record_name("s1", "acme.test") == "s1._domainkey.acme.test"


def test_pasted_keys_are_checked_with_clear_words():
    pkcs1_1024 = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    assert "BEGIN PRIVATE KEY" in check_private_key("  " + pkcs1_1024 + "\n")  # stored as PKCS#8
    with pytest.raises(InvalidKey, match="512 bits; use 1024 to 2048"):
        # cryptography refuses to make such a key; openssl (Debian's) still does, and admins paste them.
        check_private_key(subprocess.run(["openssl", "genrsa", "512"], capture_output=True, check=True).stdout.decode())
    with pytest.raises(InvalidKey, match="3072 bits"):
        check_private_key(_pem(rsa.generate_private_key(public_exponent=65537, key_size=3072)))
    with pytest.raises(InvalidKey, match="another kind of key"):
        check_private_key(_pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8))
    with pytest.raises(InvalidKey, match="not a PEM private key"):
        check_private_key("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ")
    with pytest.raises(InvalidKey, match="cannot be read"):
        check_private_key("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----")
    with pytest.raises(InvalidKey, match="Paste a private key"):
        check_private_key("   ")


def test_selectors_are_dns_labels():
    assert check_selector(" S1 ") == "s1" and check_selector("2026-a.mail") == "2026-a.mail"
    for bad in ("", "-x", "a b", "s1._domainkey", "x" * 64):
        with pytest.raises(ValueError):
            check_selector(bad)


def test_signature_is_relaxed_rsa_sha256_over_the_listed_headers_with_from_over_signed_and_verifies():
    pem = generate_private_key()
    signed = sign(MESSAGE, "s1", "acme.test", pem)
    assert signed.endswith(MESSAGE) and signed.startswith(b"DKIM-Signature: ")
    header = signed[:signed.index(b"From: Acme")].decode()
    tags = record_tags(header.split(":", 1)[1])
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == ("rsa-sha256", "relaxed/relaxed", "acme.test", "s1")
    assert tags["h"].split(":") == ["from", "to", "subject", "date", "message-id", "mime-version", "content-type",
                                    "from"]
    lookup = {b"s1._domainkey.acme.test.": record_value(pem).encode()}
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: lookup.get(name))
    # The over-signed From: a second From added on the way breaks the signature.
    assert not dkim.verify(b"From: evil@x.test\r\n" + signed, dnsfunc=lambda name, timeout=5: lookup.get(name))
    # Relaxed: refolded header whitespace still verifies; a changed body does not.
    assert dkim.verify(signed.replace(b"Subject: Your order", b"Subject:  Your   order"),
                       dnsfunc=lambda name, timeout=5: lookup.get(name))
    assert not dkim.verify(signed.replace(b"ships today", b"ships never"),
                           dnsfunc=lambda name, timeout=5: lookup.get(name))


def test_lf_messages_get_an_lf_signature_header():
    pem = generate_private_key()
    signed = sign(MESSAGE.replace(b"\r\n", b"\n"), "s1", "acme.test", pem)
    assert b"\r\n" not in signed
