"""An upload the blob store cannot take answers the agent in the composer and keeps the draft (issue 19, item 16).

Through the real upload route and the real directory blob store: once with the free-space
reserve (`BLOB_UPLOAD_MIN_FREE_BYTES`) larger than the disk has, once with the store's
folder made impossible (a file where its directory must be: the write fails with an OSError).
"""
from __future__ import annotations

import io

from app.models.inbox import Draft
from tests.web.test_inbox import ws  # noqa: F401


def upload(client, h, draft_id, name, data=b"hello"):
    return client.post(f"/inbox/drafts/{draft_id}/attachments", headers=h,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def reply_draft(client, ws, db) -> Draft:
    client.post(f"/inbox/c/{ws['conv'].id}/compose", data={"kind": "reply"}, headers=ws["h"])
    draft = db.session.scalar(db.select(Draft))
    saved = client.post(f"/inbox/drafts/{draft.id}", headers=ws["h"],
                        data={"to": "carol@example.com", "subject": "Re: parcel", "body": "<p>Here it is</p>"})
    assert saved.status_code == 200
    assert upload(client, ws["h"], draft.id, "first.txt").status_code == 200
    return draft


def kept(db, draft_id) -> tuple[str, list[str]]:
    db.session.expire_all()
    draft = db.session.get(Draft, draft_id)
    return draft.body, [a["filename"] for a in draft.attachments]


def test_a_full_store_tells_the_agent_and_keeps_the_draft_and_its_other_attachments(client, ws, db, app):
    draft = reply_draft(client, ws, db)
    app.config["BLOB_UPLOAD_MIN_FREE_BYTES"] = 1 << 62  # more than any disk has free

    refused = upload(client, ws["h"], draft.id, "second.pdf")

    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The file could not be stored (the file store is full)." in text and "“second.pdf” is not attached" in text
    assert "first.txt" in text  # the composer's list still shows the attachment it had
    assert kept(db, draft.id) == ("<p>Here it is</p>", ["first.txt"])
    app.config["BLOB_UPLOAD_MIN_FREE_BYTES"] = 0
    assert upload(client, ws["h"], draft.id, "second.pdf").status_code == 200  # room again: it works
    assert kept(db, draft.id)[1] == ["first.txt", "second.pdf"]


def test_a_store_that_cannot_be_written_tells_the_agent_and_keeps_the_draft(client, ws, db, app, tmp_path):
    draft = reply_draft(client, ws, db)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the blob store's folder must be")
    app.config["BLOB_DIR"] = str(blocker / "blobs")
    app.extensions.pop("blob_store", None)  # the store of the new folder

    refused = upload(client, ws["h"], draft.id, "second.pdf", data=b"other bytes")

    assert refused.status_code == 422
    assert "The file could not be stored (the file store cannot be written to)." in refused.get_data(as_text=True)
    assert kept(db, draft.id) == ("<p>Here it is</p>", ["first.txt"])
    assert client.get(f"/inbox/drafts/{draft.id}", headers=ws["h"]).status_code == 200
