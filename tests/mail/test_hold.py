"""A disabled address: "Hold new mail" accepts and keeps mail unrouted until it is published enabled again,
when it is routed exactly once; "Refuse new mail" answers 550 saying the address is disabled (issue 20, defect 5)."""
from __future__ import annotations

import smtplib

from sqlalchemy import func, select

from app.extensions import db as _db
from app.models.channels import EmailAddress
from app.models.inbound import InboundRaw
from app.models.inbox import Conversation, Message
from app.publish.services import publish_addresses
from app.queues import get_queue
from app.runtime.hold import held_counts, release_held
from app.runtime.idle.supervisor import idle_candidates
from app.runtime.live import published_address, receiving_address
from app.runtime.poll import poll_address, requeue_stale_pending, schedule_due_polls
from tests.mail.conftest import make_address, message
from tests.mail.test_ingress import running, work_ingest_queue
from tests.mail.test_mailboxes import append, imap_address

HELD = "held@mail.pigeonhole.test"
REFUSING = "closed@mail.pigeonhole.test"


def rcpt_and_send(controller, recipient: str, subject: str) -> tuple[int, bytes]:
    with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("carla@example.com")
        code, reply = smtp.rcpt(recipient)
        if code == 250:
            smtp.data(message(to=recipient, subject=subject))
        return code, reply


def count(model) -> int:
    _db.session.expire_all()
    return _db.session.scalar(select(func.count()).select_from(model))


def enable_and_publish(address_id: int) -> None:
    row = _db.session.get(EmailAddress, address_id)
    row.enabled = True
    row.touch_draft()
    publish_addresses([address_id], None, "enable again")
    _db.session.commit()


def test_ingress_accepts_and_holds_mail_for_a_disabled_address_then_routes_it_once_when_enabled(app, db):
    address = make_address(HELD, enabled=False)  # "When disabled" is "Hold new mail" unless chosen otherwise
    assert address.when_disabled == "hold" and published_address(address.id) is None
    assert receiving_address(address.id).holds_mail
    with running(app) as controller:
        for subject in ("Parcel one", "Parcel two"):
            code, reply = rcpt_and_send(controller, HELD, subject)
            assert code == 250, reply
    work_ingest_queue(app)
    rows = _db.session.scalars(select(InboundRaw).order_by(InboundRaw.id)).all()
    assert [r.status for r in rows] == ["held", "held"]
    assert count(Message) == 0 and count(Conversation) == 0  # no agent sees it, no flow runs
    assert get_queue("flows").job_ids == []
    assert held_counts() == {address.id: 2}
    assert requeue_stale_pending() == []  # held is not pending: cron leaves it alone

    enable_and_publish(address.id)
    assert get_queue("ingest").job_ids == [f"ingest-raws-{rows[0].id}-{rows[1].id}"]  # one job for the batch
    assert release_held([address.id]) == []  # a second release (or publish) finds nothing held
    publish_addresses([address.id], None, "publish again")
    _db.session.commit()
    work_ingest_queue(app)
    work_ingest_queue(app)
    assert sorted(_db.session.scalars(select(Conversation.subject))) == ["Parcel one", "Parcel two"]
    assert count(Message) == 2 and held_counts() == {}
    first, second = sorted(_db.session.scalars(select(Message.id)))
    assert get_queue("flows").job_ids == [f"flow-messages-{first}-{second}"]  # one flow job for the batch
    # Enqueued again (cron's safety net, a lost job): nothing is routed twice.
    for row in rows:
        assert _db.session.get(InboundRaw, row.id).status == "created"
    from app.runtime.ingest import ingest_pending
    assert [ingest_pending(r.id) for r in rows] == [None, None]
    assert count(Message) == 2


def test_refuse_answers_550_saying_the_address_is_disabled(app, db):
    make_address(REFUSING, enabled=False, when_disabled="refuse")
    with running(app) as controller:
        code, reply = rcpt_and_send(controller, REFUSING, "Anyone there?")
        assert code == 550 and reply.startswith(b"5.2.1") and b"disabled" in reply, reply
        code, reply = rcpt_and_send(controller, "nobody@mail.pigeonhole.test", "Anyone?")
        assert code == 550 and reply.startswith(b"5.1.1")
    assert count(InboundRaw) == 0


def test_a_snapshot_published_before_the_choice_existed_still_refuses(app, db):
    address = make_address(REFUSING, enabled=False)
    snap = dict(address.published)
    snap.pop("when_disabled")
    address.published = snap
    _db.session.commit()
    assert receiving_address(address.id) is None
    with running(app) as controller:
        assert rcpt_and_send(controller, REFUSING, "Old snapshot")[0] == 550


def test_the_draft_choice_is_not_live_until_published(app, db):
    address = make_address(HELD, enabled=False, when_disabled="refuse")
    row = _db.session.get(EmailAddress, address.id)
    row.when_disabled = "hold"
    row.touch_draft()
    _db.session.commit()
    with running(app) as controller:
        assert rcpt_and_send(controller, HELD, "Draft says hold")[0] == 550
    publish_addresses([address.id], None, "hold now")
    _db.session.commit()
    with running(app) as controller:
        assert rcpt_and_send(controller, HELD, "Published hold")[0] == 250


def test_polling_and_idle_hold_a_disabled_mailbox_and_enabling_routes_it(tls_app, db, dovecot, mailbox_user):
    tls_app.config["MAILBOX_BACKFILL"] = "7"
    login, password = mailbox_user
    address = imap_address(dovecot, login, password, enabled=False)
    assert address.id in idle_candidates()  # IDLE keeps watching it, to hold what arrives
    assert address.id in schedule_due_polls()
    append(dovecot, login, password, [message(to=login, subject="While disabled")])
    result = poll_address(address.id)
    assert result.error is None and result.statuses == {"held": 1}
    assert count(Conversation) == 0 and held_counts() == {address.id: 1}
    assert poll_address(address.id).statuses == {}  # the watermark moved: held once, not again

    enable_and_publish(address.id)
    work_ingest_queue(tls_app)
    assert _db.session.scalars(select(Conversation.subject)).all() == ["While disabled"]
    assert held_counts() == {}
