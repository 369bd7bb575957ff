"""Forms of the flows area (the "Update" dialog that picks the addresses a flow serves)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField


class FlowAddressesForm(FlaskForm):
    """The selected addresses arrive as repeated `address` fields (ids)."""

    move = BooleanField("Move these addresses to this flow")
