"""Flask-WTF forms: they carry the CSRF token and first-line validation.

Limits come from the services, which check them again for every caller.
"""

import secrets

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FileField,
    HiddenField,
    MultipleFileField,
    PasswordField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from .services import accounts, passwords


def _name_field() -> StringField:
    return StringField(
        "Full name",
        validators=[
            DataRequired("Enter your name."),
            Length(
                max=accounts.NAME_MAX,
                message=f"Your name can be at most {accounts.NAME_MAX} characters.",
            ),
        ],
    )


def _new_password_field(label: str) -> PasswordField:
    # The strength rule itself is the service's (passwords.check_strength).
    return PasswordField(
        label,
        validators=[
            DataRequired("Choose a password."),
            Length(
                min=passwords.PASSWORD_MIN,
                max=passwords.PASSWORD_MAX,
                message=f"Choose a password of at least {passwords.PASSWORD_MIN} characters.",
            ),
        ],
    )


class EmptyForm(FlaskForm):
    """For POST-only buttons: carries the CSRF token and nothing else."""


class RegisterForm(FlaskForm):
    name = _name_field()
    email = EmailField(
        "Email",
        validators=[DataRequired("Enter your email address.")],
    )
    password = _new_password_field("Password")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address.")])


class ResetPasswordForm(FlaskForm):
    password = _new_password_field("New password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password.")]
    )
    new_password = _new_password_field("New password")


class ProfileForm(FlaskForm):
    name = _name_field()
    avatar = FileField("Profile picture", description="PNG, JPEG, GIF or WebP, up to 10 MB.")
    remove_avatar = BooleanField("Remove my picture")
    headline = StringField(
        "Headline",
        description="Your role and where you work, e.g. “Product designer at Acme”.",
        validators=[
            Optional(),
            Length(
                max=accounts.HEADLINE_MAX,
                message=f"Your headline can be at most {accounts.HEADLINE_MAX} characters.",
            ),
        ],
    )
    location = StringField(
        "Location",
        validators=[
            Optional(),
            Length(
                max=accounts.LOCATION_MAX,
                message=f"Your location can be at most {accounts.LOCATION_MAX} characters.",
            ),
        ],
    )
    about = TextAreaField(
        "About",
        validators=[
            Optional(),
            Length(
                max=accounts.ABOUT_MAX,
                message=f"Your about section can be at most {accounts.ABOUT_MAX:,} characters.",
            ),
        ],
    )


class InviteForm(FlaskForm):
    note = TextAreaField(
        "Add a note (optional)",
        description="Say how you know them, in up to 300 characters.",
        # The length is checked by the service, after line breaks are normalised.
        validators=[Optional()],
    )


class SettingsForm(FlaskForm):
    show_active = BooleanField("Show when I'm active")
    email_notifications = BooleanField("Email me about new messages when I'm away")
    accepts_inmail = BooleanField("Accept InMail from members outside my network")


class MessageForm(FlaskForm):
    """A message. `idempotency_key` is new for every rendered form, so a double submit or
    a retried request of the same form sends one message."""

    body = TextAreaField("Write a message")
    files = MultipleFileField("Attach files")
    idempotency_key = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.idempotency_key.data:
            self.idempotency_key.data = new_idempotency_key()


def new_idempotency_key() -> str:
    """The key a new message form sends its message with (one message per key)."""
    return secrets.token_urlsafe(16)


class InMailForm(MessageForm):
    subject = StringField("Subject")


class LabelForm(FlaskForm):
    # Length and uniqueness are the service's rules (services.organise).
    name = StringField("Label name", validators=[Optional()])


class GroupMessageForm(MessageForm):
    """The New message page: the people picked (`member`, read by the view), an optional
    group name and the first message. The name's length is the service's rule."""

    name = StringField("Group name", validators=[Optional()])


class GroupNameForm(FlaskForm):
    name = StringField("Group name", validators=[Optional()])
