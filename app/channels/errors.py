"""What the channel setup services raise when a rule refuses a change.

Every one is a `ValueError` carrying a sentence for the admin and, when it concerns
one form field, that field's name, so a view can show it beside the field.
"""
from __future__ import annotations


class ChannelError(ValueError):
    """A setup rule refused a change. `field` names the form field concerned, if one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class DomainError(ChannelError):
    """The domain name is invalid, taken, or the platform's."""


class DomainInUse(ChannelError):
    """The domain still holds addresses."""


class AddressError(ChannelError):
    """The address values break a rule (format, domain, uniqueness, missing password, ...)."""


class AddressErrors(AddressError):
    """Several fields break a rule at once: `errors` holds one `AddressError` per problem, so a form shows
    them all together (the message and field are the first one's)."""

    def __init__(self, errors: list[AddressError]) -> None:
        super().__init__(errors[0].message, errors[0].field)
        self.errors = errors

    @staticmethod
    def raise_any(errors: list[AddressError]) -> None:
        """Raise the one error, or all of them together; nothing when the list is empty."""
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise AddressErrors(errors)


class AddressLimitReached(AddressError):
    """The custom domain already has `MAX_ADDRESSES_PER_CUSTOM_DOMAIN` addresses."""
