"""Images uploaded in the rich-text editor (Email Template Design's header and footer).

The bytes live in the blob store under their sha256; this row says the blob is an image an
admin uploaded for mail (so it may be served to the editor and attached to outgoing mail),
with its type and name. Stored HTML refers to it as `cid:` + `content_id(sha256)`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class TemplateImage(db.Model):
    __tablename__ = "template_images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
