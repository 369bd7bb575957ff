from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length


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
