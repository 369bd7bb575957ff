"""Forms of the ops area."""
from flask_wtf import FlaskForm
from wtforms import SearchField
from wtforms.validators import Length, Optional


class OutboxFilterForm(FlaskForm):
    """The Outbox page's search (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    q = SearchField("Search", validators=[Optional(), Length(max=200, message="Use at most 200 characters.")])


class SuppressionFilterForm(OutboxFilterForm):
    """Ops › Suppressions' search: an address, a status code or words of the reason (a GET form)."""
