"""Issue 18, fault 6: a transient disk error while ingesting (ENOSPC writing an attachment or the raw message)
leaves the arrival pending, to be ingested again once space returns: never stored as an unparseable message."""
from __future__ import annotations

import errno
import time

import pytest
from sqlalchemy import select

from app.blobs import DirectoryBlobStore, blob_store
from app.models.inbound import InboundRaw
from app.models.inbox import Attachment, Message
from app.runtime.ingest import ingest_pending
from app.queues import get_queue
from app.runtime.ingress import Arrival, store_group
from app.runtime.poll import requeue_stale_pending
from tests.mail.conftest import make_address, message


class FullDisk(DirectoryBlobStore):
    """A directory store whose file system is full until `full` is set to False."""

    full = True

    def _refuse(self):
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")

    def put(self, data):
        self._refuse()
        return super().put(data)

    def put_many(self, datas):
        self._refuse()
        return super().put_many(datas)


@pytest.fixture
def full_disk(app, tmp_path):
    store = FullDisk(tmp_path / "blobs")
    app.extensions["blob_store"] = store
    yield store
    app.extensions.pop("blob_store", None)


def test_an_arrival_that_meets_a_full_disk_stays_pending_and_is_ingested_once_space_returns(app, db, full_disk):
    support = make_address("support@mail.pigeonhole.test")
    raw = message(subject="Invoice attached", attachments=[("invoice.pdf", "application/pdf", b"%PDF-1.4 " * 400)])
    [[raw_id]] = store_group(app, [Arrival(data=raw, mail_from="carla@example.com", address_ids=[support.id])])

    result = ingest_pending(raw_id)
    assert result is not None and result.status == "pending"
    row = db.session.get(InboundRaw, raw_id)
    db.session.refresh(row)
    assert row.status == "pending" and "No space left" in row.error and row.attempts == 1
    assert db.session.scalar(select(Message.id).where(Message.address_id == support.id)) is None

    app.config["INGEST_RETRY_SECONDS"] = 0
    time.sleep(0.01)
    assert raw_id in requeue_stale_pending()  # cron's sweep queues it again, and again while the disk is full
    assert get_queue("ingest").get_job_ids() == [f"ingest-raw-{raw_id}"]

    full_disk.full = False  # space returns: the queued job ingests it
    result = ingest_pending(raw_id)
    assert result.status == "created"
    db.session.refresh(row)
    assert (row.status, row.error) == ("created", None)
    [attachment] = db.session.scalars(select(Attachment).where(Attachment.message_id == result.message_row_id)).all()
    assert blob_store().get(attachment.sha256) == b"%PDF-1.4 " * 400
