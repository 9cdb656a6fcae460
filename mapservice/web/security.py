"""Security headers on every response of the service, set in one place: pages, API, tiles, errors, docs,
and the pages of every blueprint added later; and the `safe_link` filter of the templates."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

from ..links import safe_link


def content_security_policy(street_basemap: str | None = None) -> str:
    """Only our own origin, for everything; no inline script or style (the map's script is /carte.js); no framing.
    The one exception an operator can make: the static host of its own street basemap archive, for range
    requests."""
    basemap_host = ""
    if street_basemap and street_basemap.startswith(("http://", "https://")):
        parts = urlsplit(street_basemap)
        basemap_host = f" {parts.scheme}://{parts.netloc}"
    return "; ".join((
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
        f"connect-src 'self'{basemap_host}", "worker-src 'self'", "manifest-src 'self'", "object-src 'none'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ))


CONTENT_SECURITY_POLICY = content_security_policy()
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    headers = {"Content-Security-Policy": content_security_policy(app.config["SETTINGS"].appdata.street_basemap),
               **HEADERS}

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Only those missing: a page with its own needs (the report's map frame) sets its policy itself. One
        # pass over the response's headers (a setdefault each would scan them six times, on every response).
        present = {name.lower() for name in response.headers.keys()}
        response.headers.extend([(name, value) for name, value in headers.items() if name.lower() not in present])
        return response

    # Templates show a link from data or settings only through `| safe_link` (http(s), tel, mailto).
    app.jinja_env.filters["safe_link"] = safe_link
