"""Dependency audit against the package index: each pin of requirements.txt checked for known vulnerabilities.

    python scripts/audit_requirements.py [REQUIREMENTS ...] [--index-json URL] [--strict] [--timeout S]

Run by `scripts/test` (standard library only, a few seconds). It asks the package index's
JSON API (`<index-json>/<name>/json`, default https://pypi.org/pypi) for each `name==version`
pin. PyPI publishes there, with every project, the known vulnerabilities (PyPA advisory
database / OSV) of the project's latest release, so:

* a pin that is the latest release is **audited**: any vulnerability listed for it is a
  finding, printed with its ids and fixed versions, and the exit status is 1;
* a pin older (or newer) than the index's latest release cannot be audited this way (the
  per-version endpoint is not served everywhere) and is listed as **not audited here**;
* an unreachable index (offline, proxy down) is a warning and the audit is incomplete, not
  failed: exit 0, unless `--strict` (or PIGEONHOLE_AUDIT_STRICT=1), which makes it exit 2.

A full audit of every pin and every transitive dependency needs a vulnerability service
(OSV), which this checker does not call; the README's "Dependency audit" says how ops run
`pip-audit` where the internet is reachable.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


@dataclass
class Result:
    name: str
    pinned: str
    status: str  # "audited", "finding", "not-audited", "not-on-index", "unreachable"
    detail: str = ""
    vulnerabilities: list[dict] = field(default_factory=list)


def read_pins(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The `name==version` pins of a requirements file (following `-r`), and the lines that are not pins."""
    pins, loose = [], []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            more_pins, more_loose = read_pins(path.parent / line.split(None, 1)[1])
            pins += more_pins
            loose += more_loose
            continue
        match = PIN.match(line)
        if match:
            pins.append((match.group(1), match.group(3)))
        else:
            loose.append(line)
    return pins, loose


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check(index: str, name: str, pinned: str, timeout: float) -> Result:
    url = f"{index.rstrip('/')}/{normalize(name)}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            data = json.load(answer)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return Result(name, pinned, "not-on-index", f"{url} answers 404")
        return Result(name, pinned, "unreachable", f"{url} answers {error.code}")
    except (OSError, ValueError) as error:  # URLError, timeouts, refused connections, a broken answer
        return Result(name, pinned, "unreachable", f"{url}: {getattr(error, 'reason', error)}")
    latest = str(data.get("info", {}).get("version", ""))
    if latest != pinned:
        return Result(name, pinned, "not-audited", f"the index's latest release is {latest}")
    found, seen = [], set()
    for vulnerability in data.get("vulnerabilities") or []:
        names = {vulnerability.get("id"), *vulnerability.get("aliases", [])}
        if not vulnerability.get("withdrawn") and not names & seen:  # one advisory under several ids once
            found.append(vulnerability)
        seen |= names
    return Result(name, pinned, "finding" if found else "audited", vulnerabilities=found)


def describe(vulnerability: dict) -> str:
    ids = [vulnerability.get("id", "?"), *vulnerability.get("aliases", [])]
    fixed = ", ".join(vulnerability.get("fixed_in") or []) or "no fixed release"
    summary = (vulnerability.get("summary") or vulnerability.get("details") or "").strip().splitlines()
    return f"{' / '.join(ids)} (fixed in {fixed}){': ' + summary[0][:120] if summary else ''}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("requirements", nargs="*", type=Path, default=[ROOT / "requirements.txt"])
    ap.add_argument("--index-json", default=os.environ.get("PIGEONHOLE_AUDIT_INDEX", "https://pypi.org/pypi"),
                    help="base URL of the index's JSON API (default https://pypi.org/pypi)")
    ap.add_argument("--strict", action="store_true", default=os.environ.get("PIGEONHOLE_AUDIT_STRICT") == "1",
                    help="an unreachable index fails the audit (exit 2) instead of a warning")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    args = ap.parse_args(argv)

    pins, loose = [], []
    for path in args.requirements:
        more_pins, more_loose = read_pins(path)
        pins += more_pins
        loose += more_loose
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda pin: check(args.index_json, pin[0], pin[1], args.timeout), pins))

    by_status: dict[str, list[Result]] = {}
    for result in results:
        by_status.setdefault(result.status, []).append(result)
    for result in by_status.get("finding", []):
        print(f"VULNERABLE {result.name}=={result.pinned}:")
        for vulnerability in result.vulnerabilities:
            print(f"    {describe(vulnerability)}")
    for status, label in (("not-audited", "not audited here"), ("not-on-index", "not on the index"),
                          ("unreachable", "could not ask the index")):
        for result in by_status.get(status, []):
            print(f"{label}: {result.name}=={result.pinned} ({result.detail})")
    for line in loose:
        print(f"not a pin, not audited: {line}")
    counts = {status: len(found) for status, found in by_status.items()}
    print(f"dependency audit: {len(pins)} pins, {counts.get('audited', 0)} audited clean, "
          f"{counts.get('finding', 0)} vulnerable, {counts.get('not-audited', 0) + counts.get('not-on-index', 0)} "
          f"not auditable here, {counts.get('unreachable', 0)} unreachable (index {args.index_json})")
    if by_status.get("finding"):
        return 1
    if by_status.get("unreachable"):
        if args.strict:
            print("the index could not be asked and --strict is set: failing", file=sys.stderr)
            return 2
        print("WARNING: the index could not be asked for every pin; the audit is incomplete (not a finding)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
