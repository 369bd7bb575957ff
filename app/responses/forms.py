"""Forms of the Standard Responses management page."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class GroupForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the group a name."), Length(max=200)])
    shortcut = StringField("Shortcut Command", validators=[Optional(), Length(max=50)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    visible_to_all = BooleanField("Visible to all")
    queue_ids = SelectMultipleField("Visible to these queues", coerce=int, validate_choice=False)
    submit = SubmitField("Save group")


class ResponseForm(FlaskForm):
    group_id = SelectField("Group", coerce=int, validate_choice=False)
    title = StringField("Title", validators=[DataRequired(message="Give the response a title."), Length(max=200)])
    subject = StringField("Subject (optional)", validators=[Optional(), Length(max=998)])
    body = TextAreaField("Body", validators=[DataRequired(message="Write the response.")],
                         render_kw={"data-rich-editor": "", "data-rich-label": "Response text"})
    submit = SubmitField("Save response")
