"""The Publish dialog's form."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class PublishForm(FlaskForm):
    """Publish: the selected items arrive as repeated `item` fields ("address:3", "flow:1")."""

    comment = TextAreaField("Comments", validators=[DataRequired(message="Write a comment: why are you publishing?"),
                                                    Length(max=2000)])
