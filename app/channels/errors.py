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


class AddressLimitReached(AddressError):
    """The custom domain already has `MAX_ADDRESSES_PER_CUSTOM_DOMAIN` addresses."""
