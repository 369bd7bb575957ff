"""Sender authentication of inbound mail: SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489) verdicts.

Two ways to a `Verdict`:

* `check(raw, client_ip=, helo=, mail_from=, resolver=)` for mail that reached our own
  ingress: SPF of the envelope sender (or the HELO name for a null sender) for the
  connecting address (pyspf), every DKIM signature verified (dkimpy), then DMARC: the
  policy at `_dmarc.<From domain>` (or at the organisational domain, from the Public
  Suffix List) and whether a passing SPF or DKIM domain is aligned with the From domain
  (relaxed or strict, as `aspf` / `adkim` say). All lookups go through the `Resolver`
  given (`DNS_RESOLVER`, `DNS_TIMEOUT_SECONDS`); a DNS that does not answer makes the
  result `temperror`, never an exception.
* `from_authentication_results(raw, trusted)` for polled mail, which the provider received
  and checked: the topmost `Authentication-Results` header whose authserv-id matches one
  of the `trusted` host patterns (`mx.google.com`, `*.prod.outlook.com`) is read; without
  one every result is `none` (a header anyone could have written proves nothing).

`sender_authentication(dmarc, lookalike)` folds a verdict into the one word flows and
the inbox use: `fail` (DMARC failed, or the From domain imitates one of ours), `pass`
(DMARC passed) or `none` (no policy, not checked, or the DNS did not answer).
"""
from __future__ import annotations

import contextvars
import fnmatch
import functools
import logging
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

import authres
import dkim
import spf
from publicsuffixlist import PublicSuffixList

from app.mail.dkim import record_tags
from app.mail.dnscheck import Resolver, TemporaryDNSFailure

log = logging.getLogger(__name__)

#: What each method's result may be; anything else a provider writes is read as "none".
SPF_RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")
DKIM_RESULTS = ("pass", "fail", "neutral", "none", "policy", "temperror", "permerror")
DMARC_RESULTS = ("pass", "fail", "none", "temperror", "permerror")
SENDER_AUTH = ("pass", "fail", "none")
MAX_SIGNATURES = 5  # DKIM signatures verified per message (each may cost a lookup)
DEFAULT_TRUSTED_HOSTS = ("mx.google.com", "*.prod.outlook.com", "spf.protection.outlook.com")


@dataclass
class Verdict:
    spf: str = "none"
    spf_domain: str = ""
    dkim: str = "none"
    dkim_domain: str = ""
    dmarc: str = "none"
    from_domain: str = ""
    reason: str = ""


def sender_authentication(dmarc: str | None, lookalike: str | None = None) -> str:
    """`fail` when DMARC failed or the From domain imitates one of ours, `pass` when DMARC passed, else `none`."""
    if dmarc == "fail" or lookalike:
        return "fail"
    return "pass" if dmarc == "pass" else "none"


@functools.lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list the package ships: no download


def organizational_domain(domain: str) -> str:
    """The registered domain (`mail.bank.example` -> `bank.example`, `a.b.co.uk` -> `b.co.uk`)."""
    domain = (domain or "").strip().lower().rstrip(".")
    return _psl().privatesuffix(domain) or domain


def aligned(domain: str, from_domain: str, mode: str = "r") -> bool:
    """DMARC identifier alignment: the same domain (strict, `s`) or the same organisational domain (relaxed)."""
    a, b = (domain or "").lower().rstrip("."), (from_domain or "").lower().rstrip(".")
    if not a or not b:
        return False
    return a == b if mode == "s" else organizational_domain(a) == organizational_domain(b)


def _headers(raw: bytes):
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def from_domain_of(raw: bytes) -> str:
    """The domain of the (first) From address, lower-cased; "" without one."""
    values = [str(v) for v in _headers(raw).get_all("From") or []]
    for _name, address in getaddresses(values):
        if "@" in address:
            return address.rpartition("@")[2].strip().lower().rstrip(".>")
    return ""


# --- SPF -------------------------------------------------------------------------------------------

_SPF_RESOLVER: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar("spf_resolver", default=None)


def _spf_lookup(name, qtype, strict=True, timeout=30):
    """pyspf's `DNSLookup`, through the resolver of the check running in this context (else pyspf's own)."""
    resolver = _SPF_RESOLVER.get()
    if resolver is None:
        return _spf_lookup.original(name, qtype, strict, timeout)
    try:
        answers = resolver.records(name, qtype)
    except TemporaryDNSFailure as exc:
        raise spf.TempError(f"DNS {exc}") from None
    out = []
    for r in answers:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), r.address))
        elif qtype == "MX":
            out.append(((name, qtype), (r.preference, r.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), r.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), r.strings))
    return out


def _install_spf_lookup() -> None:
    if spf.DNSLookup is not _spf_lookup:
        _spf_lookup.original = spf.DNSLookup
        spf.DNSLookup = _spf_lookup


def check_spf(resolver: Resolver, client_ip: str, helo: str, mail_from: str) -> tuple[str, str, str]:
    """(result, domain checked, pyspf's explanation). A null sender is checked as its HELO name."""
    sender = (mail_from or "").strip().strip("<>")
    domain = sender.rpartition("@")[2].lower() if "@" in sender else (helo or "").lower()
    if not client_ip or client_ip == "unknown":
        return "none", domain, "no connecting address"
    if not domain:
        return "none", "", "no envelope sender or HELO name"
    _install_spf_lookup()
    token = _SPF_RESOLVER.set(resolver)
    try:
        result, explanation = spf.check2(i=client_ip, s=sender, h=helo or domain, timeout=resolver.timeout,
                                         querytime=0)
    except Exception as exc:  # noqa: BLE001 - a bad record or address must not lose the mail
        log.warning("SPF check of %s failed: %s", domain, exc)
        result, explanation = "temperror", str(exc)
    finally:
        _SPF_RESOLVER.reset(token)
    result = result if result in SPF_RESULTS else "none"
    return result, domain, explanation


# --- DKIM ------------------------------------------------------------------------------------------

def check_dkim(resolver: Resolver, raw: bytes, from_domain: str = "") -> tuple[str, str, list[str], str]:
    """(result, domain, every domain whose signature passed, reason) over the message's DKIM signatures.

    `pass` when one signature verifies (its domain is the one aligned with From when there is
    one), else `temperror` when a key could not be looked up, else `fail`; `none` unsigned.
    """
    verifier = dkim.DKIM(raw, logger=log, timeout=resolver.timeout)
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    if not count:
        return "none", "", [], "no DKIM signature"
    passed, domains, timed_out, why = [], [], False, ""
    for idx in range(min(count, MAX_SIGNATURES)):
        lookup_failed = []

        def dnsfunc(name, timeout=5):
            try:
                return resolver.dkim_txt(name)
            except dkim.DnsTimeoutError:
                lookup_failed.append(name)
                raise

        verifier.domain = None
        try:
            ok = verifier.verify(idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as exc:
            ok, why = False, str(exc)
        domain = (verifier.domain or b"").decode("ascii", "replace").lower()
        domains.append(domain)
        timed_out = timed_out or bool(lookup_failed)
        if ok:
            passed.append(domain)
    if passed:
        best = next((d for d in passed if aligned(d, from_domain)), passed[0])
        return "pass", best, passed, f"signature of {best} verified"
    first = next((d for d in domains if d), "")
    if timed_out:
        return "temperror", first, [], f"the DNS did not answer for the key of {first}"
    return "fail", first, [], f"signature of {first} did not verify" + (f" ({why})" if why else "")


# --- DMARC -----------------------------------------------------------------------------------------

def dmarc_policy(resolver: Resolver, from_domain: str) -> dict[str, str] | None:
    """The DMARC record's tags for `from_domain` (its own, else its organisational domain's, whose `sp=`
    then counts as `p=`), values lower-cased; None without one. Raises `TemporaryDNSFailure`."""
    org = organizational_domain(from_domain)
    for name in dict.fromkeys((from_domain, org)):
        records = [r for r in resolver.txt(f"_dmarc.{name}") if r.replace(" ", "").upper().startswith("V=DMARC1")]
        if len(records) == 1:
            tags = {k: v.lower() for k, v in record_tags(records[0]).items()}
            if name != from_domain and tags.get("sp"):
                tags["p"] = tags["sp"]
            return tags
    return None


def evaluate_dmarc(resolver: Resolver, from_domain: str, spf_result: str, spf_domain: str,
                   dkim_result: str, dkim_passed: list[str]) -> tuple[str, str]:
    """(result, reason): `pass` when an aligned SPF or DKIM domain passed, else `fail` under a policy."""
    if not from_domain:
        return "none", "the mail has no From domain"
    try:
        tags = dmarc_policy(resolver, from_domain)
    except TemporaryDNSFailure as exc:
        return "temperror", f"the DMARC policy could not be looked up: {exc}"
    if tags is None:
        return "none", f"{from_domain} publishes no DMARC policy"
    policy = tags.get("p", "")
    if policy not in ("none", "quarantine", "reject"):
        return "permerror", f"the DMARC record of {from_domain} has no valid policy"
    if any(aligned(d, from_domain, tags.get("adkim", "r")) for d in dkim_passed):
        return "pass", f"DKIM aligned with {from_domain} (p={policy})"
    if spf_result == "pass" and aligned(spf_domain, from_domain, tags.get("aspf", "r")):
        return "pass", f"SPF aligned with {from_domain} (p={policy})"
    if "temperror" in (spf_result, dkim_result):
        return "temperror", f"SPF or DKIM could not be checked for {from_domain} (p={policy})"
    return "fail", f"neither SPF nor DKIM passed aligned with {from_domain} (p={policy})"


def check(raw: bytes, *, client_ip: str, helo: str, mail_from: str, resolver: Resolver) -> Verdict:
    """The SPF, DKIM and DMARC verdict of a message received from `client_ip` (see the module's text)."""
    from_domain = from_domain_of(raw)
    spf_result, spf_domain, _explanation = check_spf(resolver, client_ip, helo, mail_from)
    dkim_result, dkim_domain, dkim_passed, dkim_reason = check_dkim(resolver, raw, from_domain)
    dmarc, dmarc_reason = evaluate_dmarc(resolver, from_domain, spf_result, spf_domain, dkim_result, dkim_passed)
    reason = f"SPF {spf_result}{' for ' + spf_domain if spf_domain else ''}; DKIM {dkim_result}: {dkim_reason}; " \
             f"DMARC {dmarc}: {dmarc_reason}"
    return Verdict(spf_result, spf_domain, dkim_result, dkim_domain, dmarc, from_domain, reason[:1000])


# --- Authentication-Results of a provider ----------------------------------------------------------

def trusted(authserv_id: str, patterns) -> bool:
    """Whether an authserv-id matches one of the host patterns (`*` wildcards, case-insensitive)."""
    host = (authserv_id or "").strip().lower()
    return bool(host) and any(fnmatch.fnmatchcase(host, p.strip().lower()) for p in patterns if p.strip())


def _domain_of(value: str | None) -> str:
    return (value or "").strip().strip("<>").rpartition("@")[2].lower().rstrip(".")


def from_authentication_results(raw: bytes, trusted_hosts) -> Verdict:
    """The verdict the topmost `Authentication-Results` header of a trusted authserv-id reports; all `none`
    (and the reason says so) when there is none."""
    headers = _headers(raw)
    from_domain = from_domain_of(raw)
    for value in headers.get_all("Authentication-Results") or []:
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
        except Exception:  # noqa: BLE001 - unreadable (or no authserv-id, as some servers write): not used
            continue
        if not trusted(parsed.authserv_id, trusted_hosts):
            continue
        verdict = Verdict(from_domain=from_domain)
        for result in parsed.results:
            method, outcome = (result.method or "").lower(), (result.result or "").lower()
            props = {f"{p.type}.{p.name}".lower(): p.value for p in result.properties}
            if method == "spf" and verdict.spf == "none":
                verdict.spf = outcome if outcome in SPF_RESULTS else "none"
                verdict.spf_domain = _domain_of(props.get("smtp.mailfrom") or props.get("smtp.helo"))
            elif method == "dkim" and verdict.dkim != "pass":
                verdict.dkim = outcome if outcome in DKIM_RESULTS else "none"
                verdict.dkim_domain = _domain_of(props.get("header.d") or props.get("header.i"))
            elif method == "dmarc" and verdict.dmarc == "none":
                verdict.dmarc = outcome if outcome in DMARC_RESULTS else "none"
                verdict.from_domain = _domain_of(props.get("header.from")) or from_domain
        verdict.reason = (f"as {parsed.authserv_id} reported: SPF {verdict.spf}, DKIM {verdict.dkim}, "
                          f"DMARC {verdict.dmarc}")[:1000]
        return verdict
    return Verdict(from_domain=from_domain, reason="no Authentication-Results header from a trusted host "
                                                   "(AUTH_RESULTS_TRUSTED_HOSTS): not checked")
