"""Standard Responses: groups of canned replies with placeholders."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class ResponseGroup(db.Model):
    __tablename__ = "response_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    shortcut: Mapped[str] = mapped_column(String(50), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    visible_to_all: Mapped[bool] = mapped_column(default=True)
    queue_ids: Mapped[list] = mapped_column(JSON, default=list)  # when not visible to all
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    responses: Mapped[list["StandardResponse"]] = relationship(
        back_populates="group", order_by="StandardResponse.title"
    )


class StandardResponse(db.Model):
    __tablename__ = "standard_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("response_groups.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    shortcut: Mapped[str] = mapped_column(String(50), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    group: Mapped[ResponseGroup] = relationship(back_populates="responses")
