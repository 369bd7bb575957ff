import pytest

from app.mail.html import html_to_text, sanitize_html, text_to_html


@pytest.mark.parametrize("dirty,forbidden", [
    ('<p onclick="steal()">x</p>', "onclick"),
    ("<script>alert(1)</script><p>x</p>", "alert"),
    ('<a href="javascript:alert(1)">x</a>', "javascript:"),
    ('<form action="https://evil.test"><input name=q></form>', "<form"),
    ('<iframe src="https://evil.test"></iframe>', "iframe"),
    ("<style>body{display:none}</style><p>x</p>", "display:none"),
    ('<p style="position:fixed;top:0">x</p>', "position"),
    ('<img src="x" onerror="alert(1)">', "onerror"),
    ('<svg><script>alert(1)</script></svg>', "alert"),
])
def test_sanitize_removes_active_content(dirty, forbidden):
    assert forbidden not in sanitize_html(dirty)


def test_sanitize_keeps_formatting_links_tables_and_images():
    html = ('<p style="color:#333"><b>Bold</b> <a href="https://example.com">link</a></p>'
            '<table><tr><td colspan="2">cell</td></tr></table><img src="cid:logo"><img src="https://img.test/a.png">')
    out = sanitize_html(html)
    for kept in ("<b>Bold</b>", 'href="https://example.com"', 'colspan="2"', 'src="cid:logo"',
                 'src="https://img.test/a.png"', "color:#333"):
        assert kept in out
    assert 'src="https://img.test/a.png"' not in sanitize_html(html, remote_images=False)


def test_sanitize_survives_junk():
    assert sanitize_html("") == ""
    assert "x" in sanitize_html("<p><<<>>x</b></i></table>")


def test_html_to_text_and_back():
    assert html_to_text("<p>Hello <b>there</b></p><p>Bye</p>") == "Hello there\n\nBye\n"
    assert html_to_text("  ") == ""
    assert text_to_html("a <b>\nb\n\nc") == "<p>a &lt;b&gt;<br>b</p><p>c</p>"
