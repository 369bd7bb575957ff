"""Forms of sign-in, the profile, password changes and Admin › Users."""
from flask_wtf import FlaskForm
from wtforms import (BooleanField, IntegerField, PasswordField, RadioField, SelectField, SelectMultipleField, StringField,
                     SubmitField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(message="Enter your email."), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])
    remember = BooleanField("Keep me signed in")
    submit = SubmitField("Sign in")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(message="Enter your current password.")])
    new_password = PasswordField("New password", validators=[DataRequired(message="Enter a new password.")])
    confirm_password = PasswordField("New password again", validators=[
        DataRequired(message="Enter the new password again."),
        EqualTo("new_password", message="The two new passwords differ.")])
    submit = SubmitField("Change Password")


class NewPasswordForm(FlaskForm):
    """The page a one-time reset link opens: the new password, twice."""

    new_password = PasswordField("New password", validators=[DataRequired(message="Enter a new password.")])
    confirm_password = PasswordField("New password again", validators=[
        DataRequired(message="Enter the new password again."),
        EqualTo("new_password", message="The two new passwords differ.")])
    submit = SubmitField("Set Password")


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Enter your name."), Length(max=200)])
    signature_html = TextAreaField("Signature", validators=[Length(max=20000)],
                                   description="Added under every reply you send. Simple HTML: <b>, <i>, <a>, <br>.")
    time_zone = SelectField("Time zone", validate_choice=False, description="Times in the app are shown in this zone. Browser's time zone follows the computer you sign in on.")
    landing_view = SelectField("Start page", validate_choice=False, description="Where you land after signing in.")
    submit = SubmitField("Save Profile")


class UserForm(FlaskForm):
    """An account as an admin sets it (Admin › Users)."""

    name = StringField("Name", validators=[DataRequired(message="Enter a name."), Length(max=200)])
    email = StringField("Email", validators=[DataRequired(message="Enter an email address."), Length(max=320)])
    role = SelectField("Role", choices=[SelectChoice("agent", "Agent"), SelectChoice("supervisor", "Supervisor"),
                                        SelectChoice("admin", "Admin")], validate_choice=False)
    queues = SelectMultipleField("Queues", coerce=int, validate_choice=False)
    email_capacity = IntegerField("Email capacity", default=5,
                                  validators=[InputRequired(message="Enter a number from 1 to 15.")],
                                  description="How many open conversations routing gives this agent at most (1–15).")
    submit = SubmitField("Save User")


class DeactivateForm(FlaskForm):
    conversations = RadioField("Their open conversations", default="release", choices=[
        SelectChoice("release", "Release them to their queues"), SelectChoice("reassign", "Reassign them to")],
        validate_choice=False)
    reassign_to = SelectField("Agent who takes them", coerce=int, validate_choice=False, default=0)
    submit = SubmitField("Deactivate")
