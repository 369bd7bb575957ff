"""Checks for HTMX routes: a full page, a fragment (a named block), or an HX-Location answer."""
from __future__ import annotations

import json

HX = {"HX-Request": "true"}


def full(response, status: int = 200) -> str:
    """The body of a full page (layout and navigation) with this status."""
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:2000]
    assert body.startswith("<!doctype html>") and '<nav aria-label="Main">' in body
    assert "HX-Request" in response.headers["Vary"]
    return body


def fragment(response, status: int = 200) -> str:
    """The body of a fragment (no layout) with this status."""
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:2000]
    assert "<html" not in body and '<nav aria-label="Main">' not in body
    assert "HX-Request" in response.headers["Vary"]
    return body


def location(response) -> str:
    """The path of a 204 + HX-Location answer."""
    assert response.status_code == 204, response.get_data(as_text=True)[:2000]
    return json.loads(response.headers["HX-Location"])["path"]
