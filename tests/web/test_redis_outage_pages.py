"""Redis outage: the pages that need no Redis keep working (inbox, conversation, composer, Send stores the reply
as queued for cron to hand over later), and /healthz says Redis is what is down."""
from __future__ import annotations

import time

from app.models.inbox import Draft, Message
from tests.factories import make_address, make_conversation, make_message, make_queue
from tests.helpers import csrf_token
from tests.servers import RedisServer


def test_an_agent_reads_and_replies_while_redis_is_down(app, client, db, login_as, htmx_headers, tmp_path):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Billing", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    conv = make_conversation(queue=queue, address=address, contact_email="carol@example.com")
    make_message(conv, text="Where is my parcel?")
    token = csrf_token(client, "/inbox/")

    server = RedisServer(tmp_path / "redis")
    app.config["REDIS_URL"] = server.url
    server.stop()  # Redis goes away
    started = time.monotonic()
    assert client.get("/inbox/").status_code == 200
    page = client.get(f"/inbox/c/{conv.id}")
    assert page.status_code == 200 and "Where is my parcel?" in page.get_data(as_text=True)

    headers = {**htmx_headers, "X-CSRFToken": token}
    assert client.post(f"/inbox/c/{conv.id}/compose", data={"kind": "reply"}, headers=headers).status_code == 200
    draft = db.session.scalar(db.select(Draft))
    sent = client.post(f"/inbox/drafts/{draft.id}/send", headers=headers,
                       data={"to": "carol@example.com", "subject": "Re: parcel", "body": "<p>On its way.</p>"})
    assert sent.status_code == 200, sent.get_data(as_text=True)
    db.session.expire_all()
    reply = db.session.scalar(db.select(Message).where(Message.direction == "out"))
    assert reply.delivery_status == "queued"  # stored; cron's sweep hands it to a worker once Redis is back
    assert time.monotonic() - started < 20, "pages must not hang on a dead Redis"

    health = client.get("/healthz")
    report = health.get_json()
    assert health.status_code == 503
    assert report["redis"]["ok"] is False and report["database"]["ok"] is True
