"""The `NetPolicy` of the runtime's connections to an address's mail servers, from the app's settings.

`MAIL_ALLOW_PRIVATE_HOSTS` (default off) lets addresses use servers on loopback and private
networks; `MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK` (default on) lets them sign in without
encryption to a server on loopback; the address's own "Allow unencrypted sign-in"
(`allow_plaintext_auth`) lets it sign in without encryption anywhere. Polling, IDLE,
saving to Sent, sending and Test Connection all ask here, so they refuse the same servers.
"""
from __future__ import annotations

from flask import current_app

from app.mail.netguard import NetPolicy


def mail_policy(allow_plaintext: bool = False) -> NetPolicy:
    """The policy for one address's servers (`allow_plaintext`: its "Allow unencrypted sign-in")."""
    config = current_app.config
    return NetPolicy(allow_private=bool(config.get("MAIL_ALLOW_PRIVATE_HOSTS")),
                     allow_plaintext=bool(allow_plaintext),
                     plaintext_on_loopback=bool(config.get("MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK", True)))
