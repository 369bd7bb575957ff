"""Forms of the email channel setup: domains, the address wizard's steps, delete.

The forms check shape (required, lengths, choices); the setup's rules (uniqueness,
the per-domain limit, the platform domain) live in the services (`domains`, `wizard`,
`addresses`, `connection_test`), which raise errors naming the field they concern.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, IntegerField, PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.channels.validation import INCOMING_PROTOCOLS, USAGE_LABELS
from app.mail.tls import MAX_CA_BYTES
from app.models.channels import WHEN_DISABLED_LABELS, WhenDisabled


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


YES_NO = _choices([("yes", "Yes"), ("no", "No")])
SECURITY = _choices([("ssl", "Use SSL to connect"), ("starttls", "Use STARTTLS"),
                     ("none", "No encryption (not recommended)")])


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


class ExchangeAppForm(FlaskForm):
    """A custom domain's type, and for "Microsoft Exchange" its app-only sign-in (`domains.set_microsoft_exchange`)."""

    domain_type = RadioField("Type", choices=_choices([
        ("custom", "Custom domain: each mailbox signs in on its own (password, Google, Microsoft 365)"),
        ("exchange", "Microsoft Exchange (app-only): one app opens the domain's mailboxes, no user signs in")]),
        default="custom")
    tenant_id = StringField("Tenant ID", validators=[Optional(), Length(max=200)])
    client_id = StringField("Client ID", validators=[Optional(), Length(max=200)])
    client_secret = PasswordField("Client Secret", validators=[Optional(), Length(max=1000)])

    def exchange(self) -> tuple[str, str, str] | None:
        """(tenant, client id, client secret) for a Microsoft Exchange domain, None for a plain custom one."""
        if self.domain_type.data != "exchange":
            return None
        return self.tenant_id.data or "", self.client_id.data or "", self.client_secret.data or ""


class DomainForm(ExchangeAppForm):
    name = StringField("Domain Name", validators=[DataRequired(message="Enter a domain name, like acme.com."),
                                                   Length(max=253)])


class _AddressForm(FlaskForm):
    display_name = StringField("Display Name", validators=[DataRequired(message="Enter the display name customers see."),
                                                           Length(max=200)])
    usage = RadioField("Usage", choices=_choices(USAGE_LABELS.items()), validators=[InputRequired("Choose how the address is used.")])
    send_vcard = RadioField("Send contact card (.VCF)", choices=YES_NO, default="no",
                            validators=[InputRequired("Choose Yes or No.")])
    enabled = RadioField("Enable Channel", choices=YES_NO, default="yes", validators=[InputRequired("Choose Yes or No.")])
    when_disabled = RadioField("When disabled", choices=_choices(WHEN_DISABLED_LABELS.items()),
                               default=WhenDisabled.HOLD.value)  # left out: hold, the default
    # Session settings (DESIGN.md, inbound rules): who the customer is, and what makes a conversation.
    use_reply_to_identity = RadioField("Use Reply-To for User Identity", choices=YES_NO, default="no",
                                       validators=[InputRequired("Choose Yes or No.")])
    channel_sessions = RadioField("Channel-Based Sessions", choices=YES_NO, default="no",
                                  validators=[InputRequired("Choose Yes or No.")])

    def common_values(self) -> dict:
        return {"display_name": self.display_name.data, "usage": self.usage.data,
                "send_vcard": self.send_vcard.data == "yes", "enabled": self.enabled.data == "yes",
                "when_disabled": self.when_disabled.data,
                "use_reply_to_identity": self.use_reply_to_identity.data == "yes",
                "channel_sessions": self.channel_sessions.data == "yes"}

    def fill(self, values: dict) -> None:
        self.display_name.data = values.get("display_name") or ""
        self.usage.data = values.get("usage")
        self.send_vcard.data = yes_no(values.get("send_vcard"))
        self.enabled.data = yes_no(values.get("enabled", True))
        self.when_disabled.data = values.get("when_disabled") or WhenDisabled.HOLD.value
        self.use_reply_to_identity.data = yes_no(values.get("use_reply_to_identity"))
        self.channel_sessions.data = yes_no(values.get("channel_sessions"))


class PlatformAddressForm(_AddressForm):
    """Step 1 on the platform domain: the local part, and who forwards to it."""

    address = StringField("Email Address", validators=[DataRequired(message="Enter the part before the @."),
                                                       Length(max=64)])
    forwarded_from = StringField("Forwarded from", validators=[
        DataRequired(message="Enter the contact center's address that forwards here."), Length(max=320)])

    def values(self) -> dict:
        return {**self.common_values(), "address": self.address.data, "forwarded_from": self.forwarded_from.data}

    def fill(self, values: dict) -> None:
        super().fill(values)
        self.address.data = (values.get("address") or "").partition("@")[0]
        self.forwarded_from.data = values.get("forwarded_from") or ""


#: The fields Test Connection reads (the rest of the step is not needed to test).
CONNECTION_FIELDS = frozenset({
    "csrf_token", "address", "mailbox_kind", "username", "password", "incoming_protocol", "incoming_host",
    "incoming_port", "incoming_security", "outgoing_protocol", "outgoing_host", "outgoing_port", "outgoing_security",
    "smtp_no_auth", "smtp_username", "smtp_password", "tls_ca", "remove_tls_ca", "allow_plaintext_auth"})


class CustomAddressForm(_AddressForm):
    """Step 1 on a custom domain: the mailbox, its login and its servers."""

    address = StringField("Email Address", validators=[DataRequired(message="Enter the email address."),
                                                       Length(max=320)])
    # Choices come from the settings (`sign_in.mailbox_kinds()`, set by the view); "password" is today's kind.
    mailbox_kind = RadioField("Kind of mailbox", choices=_choices([("password", "IMAP/POP3 + SMTP with a password")]),
                              default="password", validate_choice=False)
    username = StringField("User Name", validators=[Optional(), Length(max=320)])
    password = PasswordField("Password", validators=[Optional(), Length(max=1000)])
    incoming_protocol = SelectField("Protocol", choices=_choices(INCOMING_PROTOCOLS.items()), default="imap")
    incoming_host = StringField("Server", validators=[Optional(), Length(max=253)])
    incoming_port = IntegerField("Port", validators=[Optional(), NumberRange(1, 65535, "A port is a number from 1 to 65535.")])
    incoming_security = RadioField("Security", choices=SECURITY, default="ssl")
    outgoing_protocol = SelectField("Protocol", choices=_choices([("smtp", "SMTP")]), default="smtp")
    outgoing_host = StringField("Server", validators=[Optional(), Length(max=253)])
    outgoing_port = IntegerField("Port", validators=[Optional(), NumberRange(1, 65535, "A port is a number from 1 to 65535.")])
    outgoing_security = RadioField("Security", choices=SECURITY, default="ssl")
    save_to_sent = RadioField("Save replies to the mailbox's Sent folder", choices=YES_NO, default="no")
    smtp_no_auth = BooleanField("Outgoing server needs no sign-in")
    smtp_username = StringField("SMTP User Name", validators=[Optional(), Length(max=320)])
    smtp_password = PasswordField("SMTP Password", validators=[Optional(), Length(max=1000)])
    tls_ca = FileField("Private CA certificate (PEM)", validators=[Optional()])
    remove_tls_ca = BooleanField("Remove the private CA")
    allow_plaintext_auth = BooleanField("Allow unencrypted sign-in")

    def offer_kinds(self, kinds) -> None:
        """The kinds of mailbox to choose from: (key, label) pairs (`sign_in.mailbox_kinds()`)."""
        self.mailbox_kind.choices = _choices(kinds)

    def values(self) -> dict:
        values = {**self.common_values(), "address": self.address.data, "username": self.username.data,
                  "incoming_protocol": self.incoming_protocol.data, "incoming_host": self.incoming_host.data,
                  "incoming_port": self.incoming_port.data, "incoming_security": self.incoming_security.data,
                  "outgoing_host": self.outgoing_host.data, "outgoing_port": self.outgoing_port.data,
                  "outgoing_security": self.outgoing_security.data, "smtp_username": self.smtp_username.data,
                  "smtp_no_auth": bool(self.smtp_no_auth.data),
                  "save_to_sent": self.save_to_sent.data == "yes",
                  "allow_plaintext_auth": bool(self.allow_plaintext_auth.data),
                  "mailbox_kind": self.mailbox_kind.data or "password"}
        upload = self.tls_ca.data
        if upload is not None and getattr(upload, "filename", None):
            upload.stream.seek(0)
            values["tls_ca_pem"] = upload.stream.read(MAX_CA_BYTES + 1)  # checked by the service
        elif self.remove_tls_ca.data:
            values["tls_ca_pem"] = ""
        return values

    def fill(self, values: dict) -> None:
        super().fill(values)
        self.address.data = values.get("address") or ""
        self.username.data = values.get("username") or ""
        self.smtp_username.data = values.get("smtp_username") or ""
        self.smtp_no_auth.data = bool(values.get("smtp_no_auth"))
        self.save_to_sent.data = yes_no(values.get("save_to_sent"))
        self.allow_plaintext_auth.data = bool(values.get("allow_plaintext_auth"))
        self.mailbox_kind.data = values["oauth_provider"] if values.get("auth_method") == "oauth" and \
            values.get("oauth_provider") else "password"
        for key in ("incoming_protocol", "incoming_host", "incoming_port", "incoming_security", "outgoing_host",
                    "outgoing_port", "outgoing_security"):
            getattr(self, key).data = values.get(key)
        self.incoming_protocol.data = self.incoming_protocol.data or "imap"
        self.incoming_security.data = self.incoming_security.data or "ssl"
        self.outgoing_security.data = self.outgoing_security.data or "ssl"


class DesignForm(FlaskForm):
    template_enabled = BooleanField("Email Template Design (Optional)")
    # The request's "action" says what to do: "toggle" saves the switch and stays, "next" goes on to Review.


class TemplatePartForm(FlaskForm):
    """The header or footer editor (a dialog)."""

    html = TextAreaField("HTML", validators=[Length(max=100_000)])


class PreviewForm(FlaskForm):
    """The live Preview: the header or footer as typed in its editor (nothing: the wizard's saved design)."""

    part = SelectField(choices=_choices([("", "none"), ("header", "Header"), ("footer", "Footer")]), default="")
    html = TextAreaField(validators=[Length(max=100_000)])


class SaveForm(FlaskForm):
    """The Review step's "Save" / "Update": nothing but its CSRF token."""


class ConfirmDeleteForm(FlaskForm):
    """The delete dialog's form: `confirm` must name what the dialog showed."""

    confirm = HiddenField(validators=[DataRequired()])


class DkimKeyForm(FlaskForm):
    """DKIM Configuration › + Add: a generated key ("Generate") or a pasted one ("Save Key")."""

    domain = StringField("Domain Name", validators=[DataRequired(), Length(max=253)])
    selector = StringField("Selector Name", validators=[DataRequired(), Length(max=63)])
    private_key = TextAreaField("DKIM Private Key", validators=[Optional(), Length(max=10000)])


class SendTestForm(FlaskForm):
    """Send test email: one recipient (checked again, with the reason, by the outbound service)."""

    recipient = StringField("Recipient", validators=[DataRequired(message="Enter the email address to send the test to."),
                                                     Length(max=320)])
