"""The rules of the email channel setup, service by service (domains, addresses, wizard, delete, publish, flows)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.channels import addresses, connection_test, domains, wizard
from app.channels.errors import AddressError, AddressLimitReached, DomainError, DomainInUse
from app.channels.preview import render_preview
from app.publish import services as publishing
from app.runtime.live import published_address, published_addresses
from app.crypto import decrypt_secret
from app.flows import editing
from app.models.channels import AddressSetup, Domain, EmailAddress, MailboxState, PublishRecord
from app.models.flows import Flow
from app.models.inbox import Conversation, Draft
from tests.channel_factories import (
    custom_values, make_address, make_conversation, make_domain, platform_values,
)
from tests.factories import make_user


@pytest.fixture
def admin(db):
    return make_user("admin")


# --- domains ------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, stored", [
    ("acme.com", "acme.com"), ("  Acme.COM. ", "acme.com"), ("mail.acme.co.uk", "mail.acme.co.uk"),
    ("bücher.de", "xn--bcher-kva.de"),
])
def test_domain_names_are_normalised(db, typed, stored):
    assert domains.create_domain(typed).name == stored


@pytest.mark.parametrize("bad, words", [
    ("", "Enter a domain name"), ("acme", "period"), ("-acme.com", "hyphen"), ("a@acme.com", "only the domain"),
    ("acme .com", "only the domain"), ("acme.local", "special-use"), ("1.2.3.4", "domain name"),
])
def test_invalid_domain_names_are_refused_with_a_reason(db, bad, words):
    with pytest.raises(DomainError, match=words) as exc:
        domains.create_domain(bad)
    assert exc.value.field == "name"


def test_domain_names_are_unique_and_never_the_platform_domain(db):
    domains.create_domain("acme.com")
    with pytest.raises(DomainError, match="already exists"):
        domains.create_domain("ACME.com")
    for name in ("mail.pigeonhole.test", "eu.mail.pigeonhole.test"):
        with pytest.raises(DomainError, match="platform email domain"):
            domains.create_domain(name)


def test_a_domain_is_deleted_only_when_it_holds_no_address(db, admin):
    domain = make_domain("acme.test")
    address = make_address(admin, domain)
    with pytest.raises(DomainInUse, match="still has 1 email address"):
        domains.delete_domain(domain.id)

    make_conversation(address)
    assert addresses.delete_address(address.id) == "archived"
    db.session.commit()
    with pytest.raises(DomainInUse, match="archived"):
        domains.delete_domain(domain.id)

    empty = make_domain("empty.test")
    assert domains.delete_domain(empty.id) == "empty.test"
    db.session.commit()
    assert db.session.get(Domain, empty.id) is None


def test_the_platform_domain_cannot_be_deleted(db):
    platform = domains.ensure_platform_domain()
    with pytest.raises(DomainError, match="cannot be deleted"):
        domains.delete_domain(platform.id)


# --- the per-domain limit -------------------------------------------------------------------------

def test_three_addresses_per_custom_domain_the_fourth_is_refused(db, admin):
    domain = make_domain("acme.test")
    for n in range(3):
        make_address(admin, domain, custom_values(f"box{n}@acme.test"))
    with pytest.raises(AddressLimitReached, match="has its 3 email addresses, the most"):
        wizard.start_setup(domain.id, admin.id)
    # The platform domain has no limit.
    for n in range(4):
        make_address(admin, values=platform_values(f"p{n}"))


def test_the_limit_is_a_setting_and_archived_addresses_do_not_count(app, db, admin):
    app.config["MAX_ADDRESSES_PER_CUSTOM_DOMAIN"] = 1
    domain = make_domain("acme.test")
    first = make_address(admin, domain, custom_values("one@acme.test"))
    with pytest.raises(AddressLimitReached, match="has its 1 email address,"):
        wizard.start_setup(domain.id, admin.id)
    make_conversation(first)
    addresses.delete_address(first.id)  # archived: it keeps its conversations but no longer counts
    db.session.commit()
    assert wizard.start_setup(domain.id, admin.id).domain_id == domain.id


def test_the_limit_holds_for_wizards_opened_before_the_domain_filled_up(db, admin):
    domain = make_domain("acme.test")
    make_address(admin, domain, custom_values("one@acme.test"))
    make_address(admin, domain, custom_values("two@acme.test"))
    late = [wizard.start_setup(domain.id, admin.id) for _ in range(2)]
    for setup, name in zip(late, ("three", "four")):
        wizard.update_address_step(setup, custom_values(f"{name}@acme.test"), "pw")
    db.session.commit()
    addresses.save_setup(late[0])
    db.session.commit()
    with pytest.raises(AddressLimitReached):
        addresses.save_setup(late[1])
    db.session.rollback()
    assert domains.live_address_count(domain) == 3


# --- the "Email Address" step: validation and uniqueness ------------------------------------------

def test_platform_address_is_the_local_part_on_the_platform_domain(db, admin):
    setup = wizard.start_setup(domains.ensure_platform_domain().id, admin.id)
    wizard.update_address_step(setup, platform_values("Sales.Team", forwarded_from="Sales@Acme.Example"))
    assert setup.values["address"] == "sales.team@mail.pigeonhole.test"
    assert setup.values["forwarded_from"] == "sales@acme.example"
    wizard.update_address_step(setup, platform_values("help@mail.pigeonhole.test"))
    assert setup.values["address"] == "help@mail.pigeonhole.test"
    with pytest.raises(AddressError, match="only the part before @mail.pigeonhole.test"):
        wizard.update_address_step(setup, platform_values("help@acme.com"))
    with pytest.raises(AddressError) as exc:
        wizard.update_address_step(setup, platform_values("two..dots"))
    assert exc.value.field == "address"


@pytest.mark.parametrize("forwarded, words", [
    ("", "Enter an email address"), ("not an address", "must have an @"),
    ("loop@mail.pigeonhole.test", "outside the platform domain"),
])
def test_forwarded_from_is_required_valid_and_outside_the_platform_domain(db, admin, forwarded, words):
    setup = wizard.start_setup(domains.ensure_platform_domain().id, admin.id)
    with pytest.raises(AddressError, match=words) as exc:
        wizard.update_address_step(setup, platform_values("help", forwarded_from=forwarded))
    assert exc.value.field == "forwarded_from"


def test_addresses_are_unique(db, admin):
    make_address(admin, values=platform_values("help"))
    setup = wizard.start_setup(domains.ensure_platform_domain().id, admin.id)
    with pytest.raises(AddressError, match="help@mail.pigeonhole.test already exists"):
        wizard.update_address_step(setup, platform_values("HELP"))


def test_custom_address_must_be_on_its_domain_and_needs_a_password(db, admin):
    domain = make_domain("acme.test")
    setup = wizard.start_setup(domain.id, admin.id)
    with pytest.raises(AddressError, match="must be on acme.test"):
        wizard.update_address_step(setup, custom_values("help@other.test"), "pw")
    with pytest.raises(AddressError, match="password") as exc:
        wizard.update_address_step(setup, custom_values("help@acme.test"), "")
    assert exc.value.field == "password"


def test_custom_servers_are_validated_and_ports_default_by_protocol_and_security(db, admin):
    domain = make_domain("acme.test")
    setup = wizard.start_setup(domain.id, admin.id)
    values = custom_values("help@acme.test", incoming_protocol="pop3", incoming_security="starttls",
                           outgoing_security="ssl", incoming_host="POP.Acme.Test.")
    wizard.update_address_step(setup, values, "pw")
    assert (setup.values["incoming_host"], setup.values["incoming_port"], setup.values["outgoing_port"]) == \
        ("pop.acme.test", 110, 465)
    wizard.update_address_step(setup, custom_values("help@acme.test", incoming_port=1993,
                                                      incoming_host="127.0.0.1"), "")
    assert (setup.values["incoming_host"], setup.values["incoming_port"]) == ("127.0.0.1", 1993)
    for bad, field in ((dict(incoming_host="imap acme"), "incoming_host"), (dict(outgoing_port=70000), "outgoing_port"),
                       (dict(incoming_protocol="ftp"), "incoming_protocol"), (dict(incoming_host=""), "incoming_host")):
        with pytest.raises(AddressError) as exc:
            wizard.update_address_step(setup, custom_values("help@acme.test", **bad), "")
        assert exc.value.field == field
    # An inbound-only address needs no outgoing server.
    wizard.update_address_step(setup, custom_values("help@acme.test", usage="inbound", outgoing_host=""), "")
    assert setup.values["outgoing_host"] is None


def test_password_is_encrypted_at_rest_never_in_wizard_values_and_blank_keeps_it(db, admin):
    domain = make_domain("acme.test")
    address = make_address(admin, domain, custom_values("help@acme.test"), password="pässword-1")
    assert b"p\xc3\xa4ssword" not in address.password_encrypted
    assert decrypt_secret(address.password_encrypted) == "pässword-1"

    setup = wizard.start_edit(address.id, admin.id)
    # No password field among the values (auth_method "password" names the kind of mailbox, not a secret).
    assert not [k for k in setup.values if "password" in k] and "pässword" not in str(setup.values)
    wizard.update_address_step(setup, custom_values("help@acme.test", display_name="Renamed"), "")
    addresses.save_setup(setup)
    db.session.commit()
    assert decrypt_secret(address.password_encrypted) == "pässword-1"  # blank kept it

    setup = wizard.start_edit(address.id, admin.id)
    wizard.update_address_step(setup, custom_values("help@acme.test"), "new-secret")
    assert decrypt_secret(setup.password_encrypted) == "new-secret"
    addresses.save_setup(setup)
    db.session.commit()
    assert decrypt_secret(address.password_encrypted) == "new-secret"
    assert db.session.scalar(select(func.count(AddressSetup.id))) == 0  # saving closed the wizard


# --- Email Template Design ---------------------------------------------------------------------

def test_template_parts_are_checked_for_placeholders_and_sanitised(db, admin):
    setup = wizard.start_setup(domains.ensure_platform_domain().id, admin.id)
    wizard.update_address_step(setup, platform_values("help"))
    with pytest.raises(AddressError, match=r"Unknown placeholder: \{\{ custmer_name \}\}"):
        wizard.set_template_part(setup, "header", "<p>Hi {{ custmer_name }}</p>")
    stored = wizard.set_template_part(
        setup, "footer", '<p onclick="steal()">Bye {{ agent_name }}</p><script>alert(1)</script>'
                         '<form action="https://evil.example"><input name="x"></form><a href="javascript:x()">x</a>')
    assert stored.startswith("<p>Bye {{ agent_name }}</p>")
    for gone in ("onclick", "<script", "alert", "<form", "<input", "javascript:"):
        assert gone not in stored


def test_preview_renders_the_sample_reply_through_the_senders_renderer(db, admin):
    setup = wizard.start_setup(domains.ensure_platform_domain().id, admin.id)
    wizard.update_address_step(setup, platform_values("help", display_name="Acme Help"))
    wizard.update_design_step(setup, True)
    wizard.set_template_part(setup, "header", "<p>{{ display_name }} for {{ customer_name }}</p>")
    preview = render_preview(setup, {"footer_html": "<p>Ref {{ conversation_reference }} by {{ agent_name }}"
                                              " {{ oops }}</p>"})
    assert '<div class="ph-header"><p>Acme Help for Carol Customer</p></div>' in preview.html
    assert "Ref #1042 by Alex Agent" in preview.html and "Where is it?" in preview.html  # the quoted message
    assert preview.text.startswith("Acme Help for Carol Customer\n")
    assert "> Hello, I ordered a parcel" in preview.text
    assert "{{ oops }}" in preview.error
    assert setup.preview_html == preview.html and preview.version == 1
    assert setup.values["footer_html"] == ""  # the typed footer was not saved
    off = render_preview(setup, {"template_enabled": False}, store=False)
    assert "ph-header" not in off.html and off.version == 0


# --- saving, editing, drafts --------------------------------------------------------------------

def test_saving_creates_a_never_published_draft_and_edits_mark_unpublished_changes(db, admin):
    address = make_address(admin, values=platform_values("help"))
    assert address.publish_state == "Never published" and published_address(address.id) is None
    publishing.publish(admin.id, "go live", address_ids=[address.id])
    db.session.commit()

    setup = wizard.start_edit(address.id, admin.id)
    assert wizard.start_edit(address.id, admin.id).id == setup.id  # one open wizard per user and address
    wizard.update_address_step(setup, platform_values("help"))
    assert addresses.save_setup(setup)[1] == "unchanged"
    db.session.commit()
    assert address.publish_state == "Published"

    setup = wizard.start_edit(address.id, admin.id)
    wizard.update_address_step(setup, platform_values("help", display_name="New Name", enabled=False))
    assert addresses.save_setup(setup)[1] == "updated"
    db.session.commit()
    assert address.publish_state == "Unpublished changes"
    live = published_address("help@mail.pigeonhole.test")
    assert live is not None and live.display_name == "Acme Help"  # the unpublished edit is not live


def test_wizards_belong_to_their_user(db, admin):
    other = make_user("admin")
    setup = wizard.start_setup(domains.ensure_platform_domain().id, admin.id)
    db.session.commit()
    assert wizard.get_setup(setup.token, admin.id) is setup
    assert wizard.get_setup(setup.token, other.id) is None


def test_a_test_result_is_kept_only_for_the_settings_it_tested(db, admin):
    domain = make_domain("acme.test")
    setup = wizard.start_setup(domain.id, admin.id)
    values = custom_values("help@acme.test")
    wizard.update_address_step(setup, values, "pw")
    fingerprint = connection_test.connection_fingerprint(setup.values, "pw")
    setup.test_result = {"ok": True, "at": "2026-11-27T10:00:00+00:00", "fingerprint": fingerprint,
                         "results": [], "summary": "all good"}
    assert connection_test.setup_test_outcome(setup) is True
    address, _ = addresses.save_setup(setup)
    db.session.commit()
    assert address.last_test_ok is True and address.last_test_message == "all good"

    setup = wizard.start_edit(address.id, admin.id)
    wizard.update_address_step(setup, custom_values("help@acme.test", incoming_host="imap2.example.net"), "pw")
    assert connection_test.setup_test_outcome(setup) is None  # never tested with these settings
    addresses.save_setup(setup)
    db.session.commit()
    assert address.last_test_ok is None and address.last_test_at is None


# --- delete and archive -------------------------------------------------------------------------

def test_an_address_without_conversations_is_erased(db, admin):
    address = make_address(admin)
    db.session.add(MailboxState(address_id=address.id, folder="INBOX"))
    draft = Draft(key="k1", author_id=admin.id, from_address_id=address.id)
    db.session.add(draft)
    db.session.commit()
    assert addresses.delete_address(address.id) == "deleted"
    db.session.commit()
    assert db.session.get(EmailAddress, address.id) is None
    assert db.session.scalar(select(func.count(MailboxState.id))) == 0
    assert db.session.get(Draft, draft.id).from_address_id is None


def test_an_address_with_conversations_is_archived_readable_and_out_of_traffic(db, admin):
    address = make_address(admin, values=platform_values("help"))
    publishing.publish(admin.id, "live", address_ids=[address.id])
    conversation = make_conversation(address)
    assert published_address(address.id) is not None
    assert addresses.delete_address(address.id) == "archived"
    db.session.commit()
    assert db.session.get(Conversation, conversation.id).address.address == "help@mail.pigeonhole.test"
    assert published_address(address.id) is None
    assert published_addresses() == []
    assert address.published is None
    with pytest.raises(AddressError, match="already archived"):
        addresses.delete_address(address.id)
    with pytest.raises(AddressError):
        wizard.start_edit(address.id, admin.id)
    assert address not in editing.assignable_addresses()
    assert all(p.id != address.id for p in publishing.pending_changes())


def test_creating_an_archived_address_again_restores_it_with_its_conversations(db, admin):
    address = make_address(admin, values=platform_values("help"))
    conversation = make_conversation(address)
    addresses.delete_address(address.id)
    db.session.commit()
    setup = wizard.start_setup(address.domain_id, admin.id)
    wizard.update_address_step(setup, platform_values("help", display_name="Back Again"))
    assert wizard.setup_restores(setup).id == address.id
    restored, what = addresses.save_setup(setup)
    db.session.commit()
    assert what == "restored" and restored.id == address.id and restored.archived_at is None
    assert restored.display_name == "Back Again" and restored.publish_state == "Never published"
    assert db.session.get(Conversation, conversation.id).address_id == address.id


# --- publish ------------------------------------------------------------------------------------

def test_pending_changes_list_addresses_and_flows_with_what_changed(db, admin):
    flow = editing.ensure_flow("Route to default queue")
    address = make_address(admin, values=platform_values("help"))
    db.session.commit()
    pending = {p.key: p for p in publishing.pending_changes()}
    assert pending[f"address:{address.id}"].summary == "New address (Inbound and Outbound, enabled)"
    assert pending[f"flow:{flow.id}"].summary == "New flow"
    publishing.publish(admin.id, "first", address_ids=[address.id], flow_ids=[flow.id])
    db.session.commit()
    assert publishing.pending_changes() == []

    setup = wizard.start_edit(address.id, admin.id)
    wizard.update_address_step(setup, platform_values("help", display_name="Help Desk", usage="inbound",
                                                        forwarded_from="desk@acme.example"))
    wizard.update_design_step(setup, True)
    wizard.set_template_part(setup, "header", "<p>Hi</p>")
    addresses.save_setup(setup)
    editing.set_flow_addresses(flow.id, [address.id])
    flow.rules = [{"if": "any", "then": "queue:General"}]
    flow.draft_updated_at = flow.draft_updated_at.replace(year=2099)
    db.session.commit()
    pending = {p.key: p for p in publishing.pending_changes()}
    assert pending[f"address:{address.id}"].summary == (
        'Display Name: Acme Help → Help Desk; Usage: Inbound and Outbound → Inbound; Forwarded from: '
        'help@acme.example → desk@acme.example; Email Template Design: off → on; Flow: none → Route to default '
        'queue; Header changed')
    assert pending[f"flow:{flow.id}"].summary == "Rules changed"


def test_publish_copies_drafts_records_who_what_why_and_flows_get_their_rules(db, admin):
    flow = editing.ensure_flow("Route to default queue", rules=[{"route": "General"}])
    address = make_address(admin, values=platform_values("help"))
    editing.set_flow_addresses(flow.id, [address.id])
    db.session.commit()
    pending = {p.key: p.version for p in publishing.pending_changes()}
    record = publishing.publish(admin.id, "  launch  ", address_ids=[address.id], flow_ids=[flow.id], expected=pending)
    db.session.commit()
    assert record.comment == "launch" and record.user_id == admin.id
    assert [c["kind"] for c in record.changes] == ["address", "flow"]
    assert record.changes[0]["summary"] == "New address (Inbound and Outbound, enabled)"
    live = published_address(address.id)
    assert live.flow_id == flow.id and live.forwarded_from == "help@acme.example" and live.is_platform
    assert flow.published_rules == [{"route": "General"}] and editing.published_flow_rules(flow.id) == \
        [{"route": "General"}]
    assert flow.publish_state == "Published"
    assert publishing.publish_history()[0].id == record.id


def test_publish_is_all_or_nothing(db, admin):
    good = make_address(admin, values=platform_values("good"))
    gone = make_address(admin, values=platform_values("gone"))
    make_conversation(gone)
    addresses.delete_address(gone.id)
    db.session.commit()
    with pytest.raises(publishing.PublishError, match="Archived addresses cannot be published: gone@"):
        publishing.publish(admin.id, "both", address_ids=[good.id, gone.id])
    db.session.rollback()
    with pytest.raises(publishing.PublishError, match="deleted in the meantime"):
        publishing.publish(admin.id, "missing", address_ids=[good.id, 99999])
    db.session.rollback()
    assert good.published is None and db.session.scalar(select(func.count(PublishRecord.id))) == 0


def test_publish_refuses_a_draft_changed_after_review(db, admin):
    address = make_address(admin, values=platform_values("help"))
    reviewed = {p.key: p.version for p in publishing.pending_changes()}
    setup = wizard.start_edit(address.id, admin.id)
    wizard.update_address_step(setup, platform_values("help", display_name="Changed meanwhile"))
    addresses.save_setup(setup)
    db.session.commit()
    with pytest.raises(publishing.StaleDraft, match="Changed since you reviewed it: help@"):
        publishing.publish(admin.id, "go", address_ids=[address.id], expected=reviewed)
    db.session.rollback()
    assert published_address(address.id) is None


def test_publish_needs_a_comment_and_a_selection(db, admin):
    address = make_address(admin)
    with pytest.raises(ValueError, match="comment"):
        publishing.publish(admin.id, " ", address_ids=[address.id])
    with pytest.raises(publishing.NothingToPublish):
        publishing.publish(admin.id, "why", address_ids=[], flow_ids=[])


def test_a_password_change_is_live_only_after_publish(db, admin):
    domain = make_domain("acme.test")
    address = make_address(admin, domain, custom_values("help@acme.test"), password="old-pw")
    publishing.publish(admin.id, "live", address_ids=[address.id])
    db.session.commit()
    setup = wizard.start_edit(address.id, admin.id)
    wizard.update_address_step(setup, custom_values("help@acme.test"), "new-pw")
    addresses.save_setup(setup)
    db.session.commit()
    assert published_address(address.id).password() == "old-pw"
    assert "Password changed" in publishing.describe_changes(address)
    publishing.publish(admin.id, "rotate", address_ids=[address.id])
    db.session.commit()
    assert published_address(address.id).password() == "new-pw"


# --- flows --------------------------------------------------------------------------------------

def test_an_address_has_one_flow_and_moving_it_is_explicit(db, admin):
    first = editing.ensure_flow("First")
    second = editing.ensure_flow("Second")
    a = make_address(admin, values=platform_values("a"))
    b = make_address(admin, values=platform_values("b"))
    publishing.publish(admin.id, "live", address_ids=[a.id, b.id])
    db.session.commit()
    assert editing.set_flow_addresses(first.id, [a.id, b.id]) == (
        ["a@mail.pigeonhole.test", "b@mail.pigeonhole.test"], [])
    db.session.commit()
    assert a.publish_state == "Unpublished changes"  # attaching a flow is an address draft change
    assert published_address(a.id).flow_id is None

    with pytest.raises(editing.FlowError, match=r"Another flow serves a@mail.pigeonhole.test \(First\)") as exc:
        editing.set_flow_addresses(second.id, [a.id])
    assert exc.value.conflicts == [a]
    db.session.rollback()
    assert editing.set_flow_addresses(second.id, [a.id], move=True) == (["a@mail.pigeonhole.test"], [])
    assert editing.set_flow_addresses(first.id, []) == ([], ["b@mail.pigeonhole.test"])
    db.session.commit()
    assert (a.flow_id, b.flow_id) == (second.id, None)
    with pytest.raises(editing.FlowError, match="no longer exists"):
        editing.set_flow_addresses(first.id, [12345])


# --- the inbound side's state, and the demo -----------------------------------------------------

def test_mailbox_status_reads_the_pollers_state(db, admin):
    from datetime import datetime, timezone

    domain = make_domain("acme.test")
    address = make_address(admin, domain, custom_values("help@acme.test"))
    ok = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    db.session.add(MailboxState(address_id=address.id, folder="INBOX", last_success_at=ok, last_poll_at=ok,
                                last_error="LOGIN failed"))
    db.session.commit()
    status = addresses.mailbox_status([address.id])[address.id]
    assert (status.last_success_at, status.last_error) == (ok, "LOGIN failed")
    assert addresses.mailbox_status([]) == {}


def test_demo_seed_publishes_the_support_address_with_header_footer_and_flow(app, db):
    from app.demo import seed

    created = seed()
    db.session.commit()
    assert "address support@mail.pigeonhole.test (published, forwarded from support@demo.test)" in created
    live = published_address("support@mail.pigeonhole.test")
    flow = db.session.scalar(select(Flow).where(Flow.name == "Route by intent"))  # the demo flow of the flows area
    assert live.forwarded_from == "support@demo.test" and live.enabled and live.can_send and live.can_receive
    assert live.template_enabled and "{{ display_name }}" in live.header_html and "{{ agent_name }}" in live.footer_html
    assert live.flow_id == flow.id and flow.published_at is not None
    assert publishing.pending_changes() == []
    assert seed() == [] or all(not line.startswith("address") for line in seed())
    db.session.commit()
    assert db.session.scalar(select(func.count(EmailAddress.id))) == 1


def test_allow_unencrypted_sign_in_is_a_draft_published_like_the_rest(db, admin):
    domain = make_domain("acme.test")
    address = make_address(admin, domain, custom_values("help@acme.test"), password="pw")
    publishing.publish(admin.id, "live", address_ids=[address.id])
    db.session.commit()
    assert published_address(address.id).allow_plaintext_auth is False
    setup = wizard.start_edit(address.id, admin.id)
    wizard.update_address_step(setup, custom_values("help@acme.test", allow_plaintext_auth=True), "")
    addresses.save_setup(setup)
    db.session.commit()
    assert address.allow_plaintext_auth is True and published_address(address.id).allow_plaintext_auth is False
    assert "Allow unencrypted sign-in: No → Yes" in publishing.describe_changes(address)
    publishing.publish(admin.id, "old server", address_ids=[address.id])
    db.session.commit()
    assert published_address(address.id).allow_plaintext_auth is True


def test_a_stored_password_goes_only_to_the_servers_it_was_typed_for(db, admin):
    domain = make_domain("acme.test")
    address = make_address(admin, domain, custom_values("help@acme.test"), password="pw")
    setup = wizard.start_edit(address.id, admin.id)
    with pytest.raises(AddressError) as refused:
        wizard.update_address_step(setup, custom_values("help@acme.test", outgoing_host="smtp.attacker.example"), "")
    assert refused.value.field == "password" and "type the mailbox password again" in refused.value.message
    wizard.update_address_step(setup, custom_values("help@acme.test", outgoing_host="smtp2.example.net"), "pw")

    # An outbound-only address that starts receiving: its stored incoming server never had the password.
    sender = make_address(admin, domain, custom_values("desk@acme.test", usage="outbound",
                                                       incoming_host="imap.attacker.example"), password="pw")
    setup = wizard.start_edit(sender.id, admin.id)
    with pytest.raises(AddressError) as refused:
        wizard.update_address_step(setup, custom_values("desk@acme.test", incoming_host="imap.attacker.example"), "")
    assert "You changed the incoming server" in refused.value.message
