"""What every blueprint of the workspace's pages shares: forms checked for their CSRF token (Flask-WTF) and
private answers that no cache keeps. The other security headers are the app's (web/security.py), whose
Referrer-Policy (no-referrer) also keeps the one-time links of invitations out of other sites' logs."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request


def private_forms(bp: Blueprint) -> None:
    """Register both on `bp` (after any hook that must run before the form is read)."""

    @bp.before_request
    def check_csrf():
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            current_app.extensions["csrf"].protect()

    @bp.after_request
    def private_pages(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        return response
