"""Channels › DKIM Configuration: add (Generate, paste), errors at 422, Verify Domain, Make active, the checks."""
from __future__ import annotations

import pytest

from app.models.dkim import DkimKey
from tests.helpers import csrf_token

DOMAIN = "mail.pigeonhole.test"


@pytest.fixture
def dns(dns, app):
    app.config["MX_HOST"] = "in.pigeonhole.test"
    return dns


def test_generate_publish_verify_and_the_checks(client, db, login_as, dns):
    login_as("admin")
    page = client.get("/channels/dkim/new").get_data(as_text=True)
    assert '<label for="domain">Domain Name</label>' in page and '<label for="selector">Selector Name</label>' in page
    assert '<label for="private_key">DKIM Private Key</label>' in page and 'value="s1"' in page
    token = csrf_token(client, "/channels/dkim/new")
    made = client.post("/channels/dkim/new", data={"csrf_token": token, "domain": DOMAIN, "selector": "s1",
                                                     "generate": "1"})
    assert made.status_code == 302
    key = db.session.query(DkimKey).one()
    listing = client.get("/channels/dkim/").get_data(as_text=True)
    assert f"s1._domainkey.{DOMAIN}" in listing and "v=DKIM1; k=rsa; p=" in listing and "Pending" in listing
    assert "PRIVATE KEY" not in listing

    from app.runtime.dkim import record_of
    with client.application.app_context():
        record = record_of(db.session.get(DkimKey, key.id))
    dns.txt(record["name"], record["value"])
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject")
    verified = client.post(f"/channels/dkim/{key.id}/verify", data={"csrf_token": token}, follow_redirects=True)
    body = verified.get_data(as_text=True)
    assert 'data-status="Success"' in body and "Active: signs mail" in body
    assert "Policy: reject" in body and "No MX record" in body and "v=spf1" in body  # the domain's checks


def test_pasted_key_errors_answer_422_and_keep_the_form(client, db, login_as):
    login_as("admin")
    token = csrf_token(client, "/channels/dkim/new")
    bad = client.post("/channels/dkim/new", data={"csrf_token": token, "domain": DOMAIN, "selector": "s1",
                                                    "private_key": "hello", "save": "1"})
    assert bad.status_code == 422 and "not a PEM private key" in bad.get_data(as_text=True)
    empty = client.post("/channels/dkim/new", data={"csrf_token": token, "domain": DOMAIN, "selector": "s1",
                                                      "private_key": "", "save": "1"})
    assert empty.status_code == 422 and "or press Generate" in empty.get_data(as_text=True)
    assert db.session.query(DkimKey).count() == 0


def test_make_active_refuses_an_unverified_key(client, db, login_as):
    login_as("admin")
    token = csrf_token(client, "/channels/dkim/new")
    client.post("/channels/dkim/new", data={"csrf_token": token, "domain": DOMAIN, "selector": "s1", "generate": "1"})
    key = db.session.query(DkimKey).one()
    page = client.post(f"/channels/dkim/{key.id}/activate", data={"csrf_token": token}, follow_redirects=True)
    assert "only a key whose record was found" in page.get_data(as_text=True)
    db.session.expire_all()
    assert not db.session.get(DkimKey, key.id).active


def test_agents_cannot_see_it(client, login_as):
    login_as("agent")
    assert client.get("/channels/dkim/").status_code in (302, 403)
