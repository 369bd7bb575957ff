"""DKIM and DNS commands for scripts and ops (keep the output contract stable).

* `flask dkim generate DOMAIN [--selector S]`  adds a generated RSA 2048 key (selector s1, s2, ...
  when not given) and prints one JSON object `{domain, selector, name, value}`: the TXT record
  to publish. The private key is stored encrypted and never printed.
* `flask dkim records DOMAIN`  prints a JSON list of `{type, name, value, status}` (plus `detail`)
  for DKIM, SPF, DMARC and (platform domain) MX, checked now.
* `flask dkim verify DOMAIN`  runs the checks now, stores the DKIM result, prints them like
  `records`, and exits 1 unless DKIM is Success.
"""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.extensions import db
from app.mail.dnscheck import SUCCESS
from app.runtime.dkim import DkimError, add_key, clean_domain, domain_checks, next_selector, record_of

dkim_cli = AppGroup("dkim", help="DKIM keys and the DNS records of sending domains.")


def _domain(value: str) -> str:
    try:
        return clean_domain(value)
    except DkimError as exc:
        raise click.BadParameter(str(exc)) from None


@dkim_cli.command("generate")
@click.argument("domain")
@click.option("--selector", default=None, help="DNS selector (default: s1, s2, ... the first one free)")
def generate_command(domain: str, selector: str | None) -> None:
    """Add a generated key for DOMAIN and print the record to publish."""
    name = _domain(domain)
    try:
        key = add_key(name, selector or next_selector(name))
    except DkimError as exc:
        raise click.ClickException(str(exc)) from None
    record = record_of(key)
    db.session.commit()
    click.echo(json.dumps({k: record[k] for k in ("domain", "selector", "name", "value")}))


def _checks(domain: str) -> list:
    checks = domain_checks(_domain(domain))
    db.session.commit()
    return checks


@dkim_cli.command("records")
@click.argument("domain")
def records_command(domain: str) -> None:
    """Print the DKIM, SPF, DMARC and MX records of DOMAIN with their status."""
    click.echo(json.dumps([c.as_json() for c in _checks(domain)], indent=2))


@dkim_cli.command("verify")
@click.argument("domain")
def verify_command(domain: str) -> None:
    """Check DOMAIN's records now; exit status 1 unless its DKIM record is Success."""
    checks = _checks(domain)
    click.echo(json.dumps([c.as_json() for c in checks], indent=2))
    if checks[0].status != SUCCESS:
        raise SystemExit(1)


def init_app(app) -> None:
    app.cli.add_command(dkim_cli)
