"""The test mail client answers the way real clients do (what the round-trip tests rely on)."""
from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from app.mail.render import Draft, render_message
from tests.mua import customer_reply
from tests.unit.test_render import Sender as _RenderSender


def Sender(**kw):  # noqa: N802 - the render tests' sender, as a platform address without a template
    return _RenderSender(**{"address": "acme-support@mail.pigeonhole.test", "display_name": "Acme Support",
                            "template_enabled": False, **kw})


def _ours() -> bytes:
    draft = Draft(to=["Carol <carol@example.com>"], subject="Re: Order 1234", body_html="<p>It ships today.</p>",
                  message_id="<ph.tok1234567.abc@mail.pigeonhole.test>", in_reply_to="<c1@example.com>",
                  references=["<c1@example.com>"])
    return render_message(Sender(), draft).as_bytes()


@pytest.mark.parametrize("keep, irt, refs", [
    ("both", "<ph.tok1234567.abc@mail.pigeonhole.test>", "<c1@example.com> <ph.tok1234567.abc@mail.pigeonhole.test>"),
    ("in-reply-to", "<ph.tok1234567.abc@mail.pigeonhole.test>", None),
    ("references", None, "<c1@example.com> <ph.tok1234567.abc@mail.pigeonhole.test>"),
    ("subject", None, None),
])
def test_reply_keeps_what_the_client_keeps(keep, irt, refs):
    reply = message_from_bytes(customer_reply(_ours(), keep=keep), policy=policy.default)
    assert reply["In-Reply-To"] == irt
    assert reply["References"] == refs
    assert reply["Subject"] == "Re: Order 1234"  # no "Re: Re:"
    assert reply["To"] == "support@acme.test"  # the platform rule's Reply-To, not the platform address
    assert reply["From"].addresses[0].addr_spec == "carol@example.com"
    assert reply["Message-ID"].endswith("@example.com>") and reply["Message-ID"] != irt
    text = reply.get_body(("plain",)).get_content()
    assert text.startswith("Thank you") and "> It ships today." in text


def test_reply_without_reply_to_goes_to_from_and_prefix_is_the_clients():
    sender = Sender(forwarded_from=None, is_platform=False, address="help@acme.test")
    draft = Draft(to=["carol@example.com"], subject="Order 1234", body_html="<p>Hi</p>", message_id="<m@x>")
    original = render_message(sender, draft).as_bytes()
    reply = message_from_bytes(customer_reply(original, prefix="AW: ", sender="Carol <carol@example.com>"),
                               policy=policy.default)
    assert reply["To"] == "Acme Support <help@acme.test>" and reply["Subject"] == "AW: Order 1234"
    with pytest.raises(ValueError, match="keep must be one of"):
        customer_reply(original, keep="all")
