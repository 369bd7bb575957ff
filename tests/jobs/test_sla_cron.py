"""Service levels under two cron processes: each overdue conversation's agent gets exactly one notice."""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from app.models.organize import ConversationEvent
from app.models.notifications import Notification
from app.runtime import sla
from app.flows.sla_policies import add_policy
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user
from tests.subprocess_env import flask_cmd, flask_env

COUNT = 150  # enough rows that the two ticks overlap


def test_two_cron_ticks_at_once_notify_each_overdue_conversation_once(app, db, tmp_path):
    agent = make_user("agent", name="Alex Agent")
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    add_policy(queue.id, name="Fast", priority=None, tag=None, first_response_minutes=10,
               next_response_minutes=None, resolution_minutes=None, warning_minutes=None)
    db.session.commit()
    arrived = datetime.now(timezone.utc) - timedelta(hours=1)
    ids = []
    for n in range(COUNT):
        conversation = make_conversation(queue=queue, address=address, assignee=agent, when=arrived,
                                         subject=f"Parcel {n}")
        make_message(conversation, when=arrived)
        sla.customer_wrote(conversation, arrived)
        ids.append(conversation.id)
    db.session.commit()
    env = flask_env(app, tmp_path)
    runs = [subprocess.Popen(flask_cmd("cron", "--once"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    for run in runs:
        _out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    db.session.expire_all()
    per_conversation = dict(db.session.execute(
        select(Notification.conversation_id, func.count()).where(Notification.kind == "overdue")
        .group_by(Notification.conversation_id)).all())
    assert per_conversation == {cid: 1 for cid in ids}
    assert db.session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "at_risk")) == 0
    assert db.session.scalar(select(func.count()).select_from(ConversationEvent)
                             .where(ConversationEvent.kind == "sla")) == COUNT
    # A third tick (a restart) sends nothing more: the state is in the database
    run = subprocess.run(flask_cmd("cron", "--once"), env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert db.session.scalar(select(func.count()).select_from(Notification)) == COUNT
