"""Live updates (issue 16, "Live"): each agent's event stream (`/inbox/events`, server-sent events fed by Redis
pub/sub) carries the changes of the conversations they may see, after the commit, and nothing else; it ends
when its sign-in ends. The fragments a page refreshes on an event (`/panel`, `/row`) answer as they are now."""
from __future__ import annotations

import re
import time

import pytest

from app.extensions import db as _db
from app.blobs import blob_store
from app.flows import runner
from app.models.auth import User
from app.runtime.ingest import RawItem, ingest
from app.runtime.outbound import send_reply
from app.runtime.changes import publish_change
from tests.factories import PASSWORD, make_address, make_sending_address, make_conversation, make_message, make_queue, make_user
from tests.helpers import csrf_token


def _signed_in(app, user):
    client = app.test_client()
    token = csrf_token(client)
    assert client.post("/login", data={"email": user.email, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return client


class Stream:
    """An open event stream: its chunks, read one at a time (each blocks at most a heartbeat)."""

    def __init__(self, client) -> None:
        self.response = client.get("/inbox/events", buffered=False)
        assert self.response.status_code == 200
        assert self.response.mimetype == "text/event-stream"
        self.chunks = iter(self.response.response)
        assert b": connected" in next(self.chunks)  # subscribed: what is published from now on is heard

    def read(self, seconds: float) -> str:
        """What the stream sends for about `seconds` (stops early at the end of the stream)."""
        out, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                out.append(next(self.chunks).decode())
            except StopIteration:
                break
        return "".join(out)

    def next_event(self, seconds: float = 3.0) -> str:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            chunk = next(self.chunks).decode()
            if chunk.startswith("event:"):
                return chunk
        raise AssertionError("no event within %s s" % seconds)

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def team(app, db):
    app.config["LIVE_HEARTBEAT_SECONDS"] = 0.3
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Agent")
    carl = make_user("agent", email="carl@example.test", name="Carl Agent")
    boss = make_user("supervisor", email="boss@example.test", name="Sue Supervisor")
    support = make_queue("Support", members=[alex, bea])
    billing = make_queue("Billing", members=[carl, bea])
    conv = make_conversation(queue=support, address=make_address("help@mail.pigeonhole.test", queues=[support]),
                             contact_email="carol@example.com", contact_name="Carol Customer")
    make_message(conv)
    streams = []

    def stream(user):
        s = Stream(_signed_in(app, user))
        streams.append(s)
        return s

    yield {"alex": alex, "bea": bea, "carl": carl, "boss": boss, "support": support, "billing": billing,
           "conv": conv, "stream": stream, "app": app}
    for s in streams:
        s.close()


def _bea(team):
    client = _signed_in(team["app"], team["bea"])
    token = csrf_token(client, f"/inbox/c/{team['conv'].id}")
    return client, {"HX-Request": "true", "X-CSRFToken": token}


def test_a_change_reaches_the_agents_who_may_see_it_and_no_one_else(team):
    alex, carl, boss = team["stream"](team["alex"]), team["stream"](team["carl"]), team["stream"](team["boss"])
    client, headers = _bea(team)
    conv = team["conv"]
    assert client.post(f"/inbox/c/{conv.id}/status", data={"status": "pending"}, headers=headers).status_code == 200

    event = alex.next_event()
    assert event.startswith("event: change\n")
    assert re.search(rf'"id":{conv.id},"kind":"status"', event)
    assert f'"id":{conv.id}' in boss.next_event()  # a supervisor sees every queue
    heard = carl.read(1.0)  # three heartbeats, and not a word of Support's conversation
    assert ": heartbeat" in heard and "event:" not in heard


def test_a_transfer_reaches_the_queue_it_left_and_the_queue_it_joined(team):
    alex, carl = team["stream"](team["alex"]), team["stream"](team["carl"])
    client, headers = _bea(team)
    conv = team["conv"]
    assert client.post(f"/inbox/c/{conv.id}/transfer", data={"queue": team["billing"].id},
                       headers=headers).status_code == 200
    assert '"kind":"transfer"' in alex.next_event()  # it left Alex's queue: his row must go
    assert '"kind":"transfer"' in carl.next_event()  # and arrived in Carl's


def test_nothing_is_announced_for_a_change_rolled_back(team, db):
    alex = team["stream"](team["alex"])
    conv = team["conv"]
    publish_change(conv.id, "status")
    db.session.rollback()
    heard = alex.read(0.8)
    assert ": heartbeat" in heard and "event:" not in heard
    publish_change(conv.id, "tags")
    db.session.commit()
    assert '"kind":"tags"' in alex.next_event()


def test_the_stream_ends_when_its_user_signs_out_or_is_deactivated(team, app):
    client = _signed_in(app, team["alex"])
    stream = Stream(client)
    token = csrf_token(client, "/inbox/")
    assert client.post("/logout", data={"csrf_token": token}).status_code in (302, 303)
    assert "event: signed-out" in stream.read(2.0)
    assert stream.read(0.5) == ""  # and the stream is over

    carl = team["stream"](team["carl"])
    user = _db.session.get(User, team["carl"].id)
    user.active = False
    _db.session.commit()
    assert "event: signed-out" in carl.read(2.0)
    # Signed out, the stream is not opened again.
    assert client.get("/inbox/events").status_code in (302, 401)


def test_the_stream_recycles_after_its_maximum_age(team, app):
    app.config["LIVE_MAX_AGE_SECONDS"] = 0.5
    stream = team["stream"](team["alex"])
    started = time.monotonic()
    stream.read(3.0)
    assert time.monotonic() - started < 2.0  # ended by itself; the browser opens a new one after `retry:`


def test_panel_and_row_answer_the_conversation_as_it_is_now(team, app):
    conv = team["conv"]
    client, headers = _bea(team)
    assert client.post(f"/inbox/c/{conv.id}/assign", data={"assignee": "me"}, headers=headers).status_code == 200
    alex = _signed_in(app, team["alex"])
    panel = alex.get(f"/inbox/c/{conv.id}/panel", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.search(r'id="arrival-assignee" hx-swap-oob="true"><dt>Assignee</dt><dd>Bea Agent</dd>', panel)
    assert 'id="status-badge" hx-swap-oob="true"' in panel
    assert "composer" not in panel and "note-body" not in panel  # never what the agent is typing
    row = alex.get(f"/inbox/c/{conv.id}/row", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'id="conv-{conv.id}"' in row and "Bea Agent" in row
    # Plain GETs (a reload of the address) go to the pages they belong to.
    assert alex.get(f"/inbox/c/{conv.id}/panel").status_code == 303
    assert alex.get(f"/inbox/c/{conv.id}/row").status_code == 303
    # Carl may not see it: no panel, and an empty row (the row goes from his list).
    carl = _signed_in(app, team["carl"])
    assert carl.get(f"/inbox/c/{conv.id}/panel", headers={"HX-Request": "true"}).status_code == 404
    empty = carl.get(f"/inbox/c/{conv.id}/row", headers={"HX-Request": "true"})
    assert empty.status_code == 200 and empty.get_data(as_text=True).strip() == ""


def test_the_row_answers_for_the_lists_view_and_filters(team, app):
    """The list passes its own view and filters: a row that stops matching them comes back empty (it goes)."""
    conv = team["conv"]
    client, headers = _bea(team)
    assert client.post(f"/inbox/c/{conv.id}/assign", data={"assignee": "me"}, headers=headers).status_code == 200
    alex = _signed_in(app, team["alex"])
    hx = {"HX-Request": "true"}

    def row(query):
        return alex.get(f"/inbox/c/{conv.id}/row?{query}", headers=hx).get_data(as_text=True)

    assert f'id="conv-{conv.id}"' in row("view=all&status=open")
    assert row("view=mine&status=open").strip() == ""  # Bea's now, not Alex's
    assert row("view=unassigned&status=open").strip() == ""
    assert row("view=all&status=resolved").strip() == ""
    assert row("view=all&status=open&priority=2").strip() == ""
    assert f'id="conv-{conv.id}"' in row("view=all&status=")


def test_a_note_a_reply_a_new_inbound_message_and_its_routing_are_announced(team, app, db):
    alex, boss = team["stream"](team["alex"]), team["stream"](team["boss"])
    conv = team["conv"]
    client, headers = _bea(team)
    assert client.post(f"/inbox/c/{conv.id}/notes", data={"body": "Called the carrier."},
                       headers=headers).status_code == 200
    assert '"kind":"note"' in alex.next_event()
    assert '"kind":"note"' in boss.next_event()

    address = make_sending_address("support@mail.pigeonhole.test")
    raw = (b"From: Dan Customer <dan@example.com>\r\nTo: support@mail.pigeonhole.test\r\n"
           b"Subject: Broken lid\r\nMessage-ID: <lid-1@example.com>\r\n\r\nThe lid is broken.\r\n")
    stored = ingest(address.id, [RawItem(blob_store().put(raw), len(raw), "smtp", raw=raw)])[0]
    assert stored.status == "created"
    assert f'"id":{stored.conversation_id},"kind":"message"' in boss.next_event()
    runner.run_flow(stored.conversation_id, stored.message_row_id)
    db.session.commit()
    assert f'"id":{stored.conversation_id},"kind":"routed"' in boss.next_event()

    send_reply(conv.id, team["alex"].id, "<p>It left our warehouse this morning.</p>")
    db.session.commit()
    assert f'"id":{conv.id},"kind":"message"' in alex.next_event()


def test_without_redis_the_stream_answers_503_and_the_pages_poll_on(team, app):
    from tests.servers import free_port

    client = _signed_in(app, team["alex"])
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    answer = client.get("/inbox/events")
    assert answer.status_code == 503
    page = client.get(f"/inbox/c/{team['conv'].id}").get_data(as_text=True)
    assert 'id="live"' in page and 'hx-trigger="every 10s, ph-live"' in page  # the thread's polling is kept
