"""Security headers on every response of the service, set in one place: pages, API, tiles, errors, docs,
and the pages of every blueprint added later; and the `safe_link` filter of the templates."""
from __future__ import annotations

from flask import Flask, Response

from ..links import safe_link

# Only our own origin, for everything; no inline script or style (the map's script is /carte.js); no framing.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
    "connect-src 'self'", "worker-src 'self'", "manifest-src 'self'", "object-src 'none'", "base-uri 'none'",
    "form-action 'self'", "frame-ancestors 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    app.after_request(security_headers)
    # Templates show a link from data or settings only through `| safe_link` (http(s), tel, mailto).
    app.jinja_env.filters["safe_link"] = safe_link
