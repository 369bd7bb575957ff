"""Small helpers for tests that talk to the app through its test client."""
from __future__ import annotations

import re


def csrf_token(client, url: str = "/login") -> str:
    """The CSRF token a page gives this client (from its hidden field or hx-headers)."""
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)
