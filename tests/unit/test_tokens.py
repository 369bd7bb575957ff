from app.mail.tokens import make_message_id, new_conversation_token, tokens_in


def test_message_id_carries_the_token():
    token = new_conversation_token()
    mid = make_message_id(token, "mail.pigeonhole.test")
    assert mid.startswith(f"<ph.{token}.") and mid.endswith("@mail.pigeonhole.test>")
    assert tokens_in(mid) == [token]
    assert make_message_id(token, "x.test") != make_message_id(token, "x.test")


def test_tokens_in_references_newest_first_and_foreign_ids_ignored():
    a, b = new_conversation_token(), new_conversation_token()
    refs = f"<CAF123@mail.gmail.com> {make_message_id(a, 'd.test')}\r\n {make_message_id(b, 'd.test')}"
    assert tokens_in(None, refs) == [b, a]
    assert tokens_in("<1234@example.com>", "") == []
