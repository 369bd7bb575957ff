"""Writes the winmail.dat (TNEF) fixtures of tests/unit/test_parse_walk.py byte for byte.

A TNEF stream is binary (a signature, then attributes: level, id, length, data, checksum; the message
body in a MAPI property block), so it is built here rather than typed. Run from the repository root:

    .venv/bin/python tests/data/mail/make_tnef.py

and commit the .eml files it writes (one case each, a few hundred bytes).
"""
from __future__ import annotations

import base64
import struct
from pathlib import Path

from compressed_rtf import compress

HERE = Path(__file__).parent
SIGNATURE = 0x223E9F78
LVL_MESSAGE = 1
ATT_TNEF_VERSION = 0x00089006  # (atpDword << 16) | attTnefVersion; each id is (type << 16) | name
ATT_MESSAGE_CLASS = 0x00078008  # (atpString << 16) | attMessageClass
ATT_OEM_CODEPAGE = 0x00069007
ATT_MAPI_PROPS = 0x00069003
PT_BINARY = 0x0102
PR_BODY_HTML = 0x1013
PR_RTF_COMPRESSED = 0x1009


def attribute(level: int, ident: int, data: bytes) -> bytes:
    return struct.pack("<BII", level, ident, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def mapi_binary(prop: int, value: bytes) -> bytes:
    """One PT_BINARY property, as a MAPI property block of one."""
    padded = value + b"\x00" * (-len(value) % 4)
    return struct.pack("<IHHII", 1, PT_BINARY, prop, 1, len(value)) + padded


def tnef(*attributes: bytes) -> bytes:
    return struct.pack("<IH", SIGNATURE, 0x0001) + attribute(LVL_MESSAGE, ATT_TNEF_VERSION,
                                                              struct.pack("<I", 0x00010000)) + attribute(
        LVL_MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0)) + b"".join(attributes)


def message(subject: str, data: bytes) -> bytes:
    body = base64.encodebytes(data).decode("ascii")
    return (
        f"From: Outlook User <outlook@example.test>\nTo: desk@example.test\nSubject: {subject}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="tnef"\n\n--tnef\nContent-Type: text/plain\n\nSee attached.\n'
        '--tnef\nContent-Type: application/ms-tnef; name="winmail.dat"\nContent-Transfer-Encoding: base64\n'
        'Content-Disposition: attachment; filename="winmail.dat"\n\n' + body + "--tnef--\n"
    ).encode("ascii")


RTF = rb"{\rtf1\ansi\deff0 {\fonttbl {\f0 Arial;}}\f0\fs20 The heater in room 12 is broken.\par}"

FIXTURES = {
    # Outlook's HTML body in winmail.dat, no files: the body is the message's HTML.
    "tnef-html-body.eml": message("TNEF with an HTML body", tnef(
        attribute(LVL_MESSAGE, ATT_MAPI_PROPS,
                  mapi_binary(PR_BODY_HTML, b"<html><body><p>The heater in room 12 is broken.</p></body></html>")))),
    # Only a compressed RTF body: kept as body.rtf, decompressed.
    "tnef-rtf-body.eml": message("TNEF with an RTF body", tnef(
        attribute(LVL_MESSAGE, ATT_MAPI_PROPS, mapi_binary(PR_RTF_COMPRESSED, compress(RTF))))),
    # Message properties only (an appointment's class): no file, no body.
    "tnef-properties-only.eml": message("TNEF with properties only", tnef(
        attribute(LVL_MESSAGE, ATT_MESSAGE_CLASS, b"IPM.Appointment\x00"))),
}

if __name__ == "__main__":
    for name, data in FIXTURES.items():
        (HERE / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)")
