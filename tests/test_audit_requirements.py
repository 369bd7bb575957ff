"""The dependency audit of `scripts/test` (scripts/audit_requirements.py), run as the script it is.

The index is a real HTTP server on loopback answering the JSON API's shape (`/<name>/json` with
`info.version` and `vulnerabilities`), so each outcome (a finding, clean, not auditable,
not on the index, unreachable) is decided on purpose; `scripts/test` runs it against PyPI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers import free_port
from tests.subprocess_env import ROOT

SCRIPT = ROOT / "scripts" / "audit_requirements.py"
ADVISORY = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"], "fixed_in": ["1.0.1"],
            "summary": "Remote code execution in the parser", "withdrawn": None}
INDEX = {
    "vulnerable": {"info": {"version": "1.0.0"},
                   "vulnerabilities": [ADVISORY, dict(ADVISORY, id="GHSA-aaaa-bbbb-cccc",
                                                      aliases=["CVE-2099-0001", "PYSEC-2099-1"])]},
    "clean": {"info": {"version": "2.0.0"}, "vulnerabilities": []},
    "withdrawn": {"info": {"version": "1.0.0"}, "vulnerabilities": [dict(ADVISORY, withdrawn="2099-02-01")]},
    "old-pin": {"info": {"version": "3.0.0"}, "vulnerabilities": [ADVISORY]},  # the latest's, not our pin's
}


@pytest.fixture(scope="module")
def index():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.strip("/").removesuffix("/json").rpartition("/")[2]
            body = json.dumps(INDEX[name]).encode() if name in INDEX else None
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/pypi"
    server.shutdown()
    server.server_close()


def audit(tmp_path, lines, *args):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\n" + "\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, str(SCRIPT), str(requirements), *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    return done.returncode, done.stdout + done.stderr


def test_a_known_vulnerability_of_a_pin_fails_the_audit_and_names_it_once(index, tmp_path):
    code, out = audit(tmp_path, ["clean==2.0.0   # why", "Vulnerable[extra]==1.0.0"], "--index-json", index)
    assert code == 1
    assert "VULNERABLE Vulnerable==1.0.0" in out
    assert "PYSEC-2099-1 / CVE-2099-0001 / GHSA-aaaa-bbbb-cccc (fixed in 1.0.1): Remote code execution" in out
    assert out.count("CVE-2099-0001") == 1  # one advisory under three ids is listed once
    assert "2 pins, 1 audited clean, 1 vulnerable" in out


def test_clean_pins_pass_and_what_cannot_be_audited_is_said(index, tmp_path):
    code, out = audit(tmp_path, ["clean==2.0.0", "withdrawn==1.0.0", "old-pin==2.9.0", "private-thing==1.0",
                                 "unpinned>=1.0"], "--index-json", index)
    assert code == 0
    assert "not audited here: old-pin==2.9.0 (the index's latest release is 3.0.0)" in out
    assert "not on the index: private-thing==1.0" in out
    assert "not a pin, not audited: unpinned>=1.0" in out
    assert "4 pins, 2 audited clean, 0 vulnerable, 2 not auditable here, 0 unreachable" in out


def test_an_unreachable_index_warns_and_passes_unless_strict(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/pypi"  # nothing listens there
    code, out = audit(tmp_path, ["clean==2.0.0"], "--index-json", dead, "--timeout", "2")
    assert code == 0
    assert "could not ask the index: clean==2.0.0" in out and "WARNING" in out and "incomplete" in out
    code, out = audit(tmp_path, ["clean==2.0.0"], "--index-json", dead, "--timeout", "2", "--strict")
    assert code == 2 and "--strict" in out


def test_requirements_included_with_dash_r_are_audited_too(index, tmp_path):
    (tmp_path / "base.txt").write_text("vulnerable==1.0.0\n")
    code, out = audit(tmp_path, ["-r base.txt", "clean==2.0.0"], "--index-json", index)
    assert code == 1 and "VULNERABLE vulnerable==1.0.0" in out


def test_scripts_test_runs_the_audit_on_requirements_txt_before_the_suite():
    script = (ROOT / "scripts" / "test").read_text()
    command = '"$PY" "$ROOT/scripts/audit_requirements.py" "$ROOT/requirements.txt"'
    assert command in script
    assert script.index(command) < script.index('"$PY" -m pytest')
    assert "set -euo pipefail" in script  # its exit status 1 stops the run
