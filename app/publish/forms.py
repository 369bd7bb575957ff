"""The Publish dialog's form."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, Length


class PublishForm(FlaskForm):
    """Publish: the selected items arrive as repeated `item` fields ("address:3", "flow:1")."""

    comment = TextAreaField("Comments", validators=[DataRequired(message="Write a comment: why are you publishing?"),
                                                    Length(max=2000)])


class ApprovalSettingsForm(FlaskForm):
    """"Publish approvals": a second admin approves each Publish before it goes live."""

    approvals_required = BooleanField("Publish approvals: another admin approves each Publish before it goes live")


class DeclineForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired(message="Write why you decline this Publish request."),
                                                 Length(max=2000)])


class ActionForm(FlaskForm):
    """A button that changes something (Approve, Withdraw, Restore as draft): its CSRF token only."""
