"""Every time a user sees is in their profile's time zone: the inbox rows and message tiles (cached per
process, kept per zone), drafts, the composer, Forward's quoted date, and the admins' pages; and the
composer's preview of the signature sending will add. Through the real routes, with two agents of two
zones looking at the same conversation one after the other."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from app import web
from app.models.auth import AuditEntry, User
from app.models.channels import PublishRecord
from app.models.inbox import Draft
from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_queue, make_user
from tests.helpers import csrf_token
from tests.pages import HX

#: 15:04 UTC is 10:04 in New York (EST, UTC-5 in January) and 20:34 in Kolkata (IST, UTC+5:30).
RECEIVED = datetime(2025, 1, 2, 15, 4, tzinfo=timezone.utc)
SENT = datetime(2025, 1, 2, 16, 10, tzinfo=timezone.utc)
LOCAL = {"America/New_York": ("2025-01-02 10:04", "2025-01-02 11:10 EST"),
         "Asia/Kolkata": ("2025-01-02 20:34", "2025-01-02 21:40 IST")}


def _signed_in(app, user, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    answer = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def _user(db, role, zone, **values):
    user = make_user(role)
    user.time_zone = zone
    for key, value in values.items():
        setattr(user, key, value)
    db.session.commit()
    return user


@pytest.fixture
def world(app, db):
    web._fragments.clear()  # other tests' rows must not make these hits or misses
    new_york = _user(db, "agent", "America/New_York")
    kolkata = _user(db, "agent", "Asia/Kolkata", signature_html="<p>Priya, <b>Billing team</b></p>")
    queue = make_queue("Billing", members=[new_york, kolkata])
    conv = make_conversation(queue=queue, address=make_address(queues=[queue]), contact_email="carol@example.com",
                             when=RECEIVED)
    received = make_message(conv, text="Where is my parcel?", when=RECEIVED)
    answer = make_message(conv, direction="out", text="On its way.", author=new_york, delivery_status="sent",
                          when=SENT)
    answer.sent_at = SENT
    db.session.commit()
    return {"conv": conv, "received": received, "answer": answer,
            "clients": {"America/New_York": _signed_in(app, new_york, "10.1.1.1"),
                        "Asia/Kolkata": _signed_in(app, kolkata, "10.1.1.2")}}


def _row_time(html: str, conversation_id: int) -> str:
    row = re.search(rf'<tr id="conv-{conversation_id}".*?</tr>', html, re.S)
    assert row, html
    return re.search(r'<time datetime="([^"]+)" title="([^"]+)" class="relative">([^<]+)</time>', row.group(0)).groups()


def test_two_agents_of_two_zones_see_the_same_row_and_tiles_each_in_their_own_zone(world):
    conv = world["conv"]
    # New York first, Kolkata next, then both again: the second of each is served from the cache.
    for zone in ("America/New_York", "Asia/Kolkata", "America/New_York", "Asia/Kolkata"):
        client = world["clients"][zone]
        received, sent = LOCAL[zone]
        others = [text for other, texts in LOCAL.items() if other != zone for text in texts]

        inbox = client.get("/inbox/?view=all").get_data(as_text=True)
        iso, title, shown = _row_time(inbox, conv.id)  # the last activity: the answer
        assert (iso, title, shown) == ("2025-01-02T16:10:00+00:00", sent, sent[:-4])
        assert f"Last activity ({'EST' if zone == 'America/New_York' else 'IST'})" in inbox
        polled = client.get("/inbox/?view=all&after=2000-01-01T00:00:00%2B00:00~0", headers=HX).get_data(as_text=True)
        assert _row_time(polled, conv.id)[2] == sent[:-4]  # the polled rows too

        page = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
        tile = re.search(rf'<article[^>]* id="message-{world["received"].id}".*?</article>', page, re.S).group(0)
        assert f'datetime="2025-01-02T15:04:00+00:00" title="{received} {sent[-3:]}">{received}</time>' in tile
        sent_tile = re.search(rf'<article[^>]* id="message-{world["answer"].id}".*?</article>', page, re.S).group(0)
        assert f">{sent}</time>" in sent_tile  # "Sent" with its zone named
        for text in others:
            text = text[:16]
            assert text not in inbox and text not in page and text not in polled
        assert "UTC" not in tile + sent_tile


def test_the_delivery_status_alone_and_the_drafts_follow_the_zone(world, db):
    conv, answer = world["conv"], world["answer"]
    for zone, client in world["clients"].items():
        status = client.get(f"/inbox/m/{answer.id}/status", headers=HX).get_data(as_text=True)
        assert f">{LOCAL[zone][1]}</time>" in status, status

        token = csrf_token(client, "/inbox/")
        composer = client.post(f"/inbox/c/{conv.id}/compose", data={"kind": "forward", "message": world["received"].id},
                               headers={**HX, "X-CSRFToken": token}).get_data(as_text=True)
        draft = db.session.scalar(select(Draft).order_by(Draft.id.desc()).limit(1))
        client.post(f"/inbox/drafts/{draft.id}", data={"to": "warehouse@example.com"},  # written: listed in Drafts
                    headers={**HX, "X-CSRFToken": token})
        db.session.refresh(draft)
        saved = draft.updated_at.astimezone(timezone.utc)
        assert re.search(r'Saved <time datetime="[^"]+" title="[^"]+ (EST|IST)">\d\d:\d\d:\d\d</time>', composer)
        # Forward quotes the message's date in the author's zone, naming it.
        day, clock = LOCAL[zone][0].split()
        abbreviation = "EST" if zone == "America/New_York" else "IST"
        assert f"Date: Thu, 02 Jan 2025 {clock} {abbreviation}<br>" in draft.body

        drafts = client.get("/inbox/drafts/").get_data(as_text=True)
        assert f"Saved ({abbreviation})" in drafts
        assert web.local_time(saved, "%Y-%m-%d %H:%M", zone) in drafts


def test_the_composer_shows_the_signature_sending_will_add(world, db):
    conv = world["conv"]
    with_signature, without = world["clients"]["Asia/Kolkata"], world["clients"]["America/New_York"]
    for client, expected in ((with_signature, True), (without, False)):
        token = csrf_token(client, "/inbox/")
        html = client.post(f"/inbox/c/{conv.id}/compose", data={"kind": "reply"},
                           headers={**HX, "X-CSRFToken": token}).get_data(as_text=True)
        assert ('class="signature-preview"' in html) is expected
        assert ("<p>Priya, <b>Billing team</b></p>" in html) is expected
        if expected:
            preview = re.search(r'<figure class="signature-preview".*?</figure>', html, re.S).group(0)
            assert "will be added below your message" in preview and 'href="/profile"' in preview
            # A preview, not part of the text: the editor and the saved body hold no signature.
            editor = re.search(r'<div id="editor-\d+".*?</div>', html, re.S).group(0)
            assert "Priya" not in editor
            draft = db.session.scalar(select(Draft).order_by(Draft.id.desc()).limit(1))
            assert "Priya" not in (draft.body or "")
            page = client.get(f"/inbox/c/{conv.id}?draft={draft.id}").get_data(as_text=True)
            assert 'class="signature-preview"' in page  # the composer within the full page too


def test_admin_pages_write_times_in_the_admins_zone(app, db):
    admin = _user(db, "admin", "Asia/Kolkata")
    make_address()
    record = db.session.scalar(select(PublishRecord).order_by(PublishRecord.id.desc()).limit(1))
    record.created_at = RECEIVED
    db.session.commit()
    client = _signed_in(app, admin, "10.1.1.3")
    for path in ("/channels/publish/", "/channels/publish/history"):
        html = client.get(path).get_data(as_text=True)
        assert 'When (IST)' in html and ">2025-01-02 20:34</time>" in html, path
        assert "15:04 UTC" not in html


#: The same moments in Tokyo (JST, UTC+9): the next day.
TOKYO = ("2025-01-03 00:04", "2025-01-03 01:10 JST")
ZONE_SCRIPT = re.compile(r'<script src="[^"]*/zone\.js" defer data-zone="([^"]+)"\s+data-browser-zone-url="([^"]+)">')


def _tell(client, zone: str, token: str):
    return client.post("/profile/browser-zone", data={"zone": zone}, headers={"X-CSRFToken": token})


def test_a_user_who_chose_no_zone_gets_their_browsers_zone_from_the_next_page(app, db, world):
    conv = world["conv"]
    kiyo = _user(db, "agent", None)
    world["conv"].queue.members.append(kiyo)
    db.session.commit()
    client = _signed_in(app, kiyo, "10.1.1.4")

    first = client.get("/inbox/?view=all").get_data(as_text=True)
    assert _row_time(first, conv.id)[1:] == ("2025-01-02 16:10 UTC", "2025-01-02 16:10")  # UTC until told, named
    assert "Last activity (UTC)" in first
    zone, url = ZONE_SCRIPT.search(first).groups()  # the page's script, told the page's zone
    assert (zone, url) == ("UTC", "/profile/browser-zone")
    token = csrf_token(client, "/inbox/")

    # Junk is refused with no page and nothing kept.
    for junk in ("Mars/Olympus", "../../etc/passwd", "", "Asia/Tokyo<script>", "x" * 300):
        refused = _tell(client, junk, token)
        assert (refused.status_code, refused.get_data(as_text=True)) == (400, ""), junk
    db.session.refresh(kiyo)
    assert (kiyo.time_zone, kiyo.browser_time_zone) == (None, None)
    assert _tell(client, "Asia/Tokyo", "not-the-token").status_code == 400  # CSRF as every POST
    db.session.refresh(kiyo)
    assert kiyo.browser_time_zone is None

    told = _tell(client, "Asia/Tokyo", token)
    assert told.status_code == 204
    db.session.refresh(kiyo)
    assert (kiyo.time_zone, kiyo.browser_time_zone, kiyo.shown_time_zone) == (None, "Asia/Tokyo", "Asia/Tokyo")

    inbox = client.get("/inbox/?view=all").get_data(as_text=True)
    assert _row_time(inbox, conv.id)[1:] == (TOKYO[1], TOKYO[1][:-4])  # the cached row, in Tokyo's copy
    assert "Last activity (JST)" in inbox
    assert ZONE_SCRIPT.search(inbox).group(1) == "Asia/Tokyo"  # the script has nothing more to tell
    page = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
    assert f'title="{TOKYO[0]} JST">{TOKYO[0]}</time>' in page
    # The Forward's quoted date too (the author's zone, wherever it comes from).
    client.post(f"/inbox/c/{conv.id}/compose", data={"kind": "forward", "message": world["received"].id},
                headers={**HX, "X-CSRFToken": token})
    draft = db.session.scalar(select(Draft).order_by(Draft.id.desc()).limit(1))
    assert "Date: Fri, 03 Jan 2025 00:04 JST<br>" in draft.body

    # The Profile offers the browser's zone first, chosen; picking it again keeps following the browser.
    profile = client.get("/profile").get_data(as_text=True)
    select_html = re.search(r'<select[^>]*id="time_zone".*?</select>', profile, re.S).group(0)
    first_option = re.search(r"<option[^>]*>[^<]*</option>", select_html).group(0)
    assert first_option == '<option selected value="">Browser&#39;s time zone (Asia/Tokyo)</option>'
    assert select_html.count("selected") == 1


def test_a_chosen_zone_is_never_replaced_by_the_browsers(app, db, world):
    conv, client = world["conv"], world["clients"]["America/New_York"]
    page = client.get("/inbox/?view=all").get_data(as_text=True)
    assert "zone.js" not in page  # nothing to tell for a chosen zone
    token = csrf_token(client, "/inbox/")
    assert _tell(client, "Asia/Tokyo", token).status_code == 204  # said, and ignored
    user = db.session.scalar(select(User).where(User.time_zone == "America/New_York"))
    assert (user.time_zone, user.browser_time_zone) == ("America/New_York", None)
    assert _row_time(client.get("/inbox/?view=all").get_data(as_text=True), conv.id)[2] == LOCAL["America/New_York"][1][:-4]


def test_choosing_in_the_profile_and_going_back_to_the_browsers_zone(app, db):
    user = _user(db, "agent", None, browser_time_zone="Asia/Tokyo")
    client = _signed_in(app, user, "10.1.1.5")
    token = csrf_token(client, "/profile")
    form = {"name": "Kiyo", "signature_html": "", "landing_view": "inbox", "csrf_token": token}
    assert client.post("/profile", data={**form, "time_zone": "Europe/Paris"}).status_code == 303
    db.session.refresh(user)
    assert (user.time_zone, user.shown_time_zone) == ("Europe/Paris", "Europe/Paris")
    assert "(CET)" in client.get("/profile").get_data(as_text=True)
    _tell(client, "Asia/Tokyo", token)
    db.session.refresh(user)
    assert user.shown_time_zone == "Europe/Paris"

    assert client.post("/profile", data={**form, "time_zone": ""}).status_code == 303  # Browser's time zone
    db.session.refresh(user)
    assert (user.time_zone, user.shown_time_zone) == (None, "Asia/Tokyo")
    page = client.get("/profile").get_data(as_text=True)
    assert "(JST)" in page and ZONE_SCRIPT.search(page).group(1) == "Asia/Tokyo"
    fields = [e.details["fields"] for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.target_user_id == user.id, AuditEntry.action == "profile_edit")
        .order_by(AuditEntry.id))]
    assert ["time_zone" in f for f in fields] == [True, True]  # both choices audited (0040 reads them)
