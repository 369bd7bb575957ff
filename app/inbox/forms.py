"""Forms of the agent workspace (the composer saves field by field and needs none)."""
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired


class NoteForm(FlaskForm):
    body = HiddenField("Internal note", validators=[DataRequired(message="Write the note first.")])
    submit = SubmitField("Add note")


class StatusForm(FlaskForm):
    status = SelectField("Status", choices=[SelectChoice(s, s.title()) for s in ("open", "pending", "resolved", "closed")],
                         validators=[InputRequired()])
