"""HTTP behaviour shared by the public API blueprints: conditional requests, caching, CORS."""
from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, current_app, request
from flask_cors import CORS


def cacheable(response: Response) -> Response:
    """Successful reads get a weak ETag (the same for the gzip and the plain body, which Flask-Compress leaves
    alone), Cache-Control, and a 304 when the client already has them."""
    if request.method in ("GET", "HEAD") and response.status_code == 200:
        response.headers["Cache-Control"] = f"public, max-age={current_app.config['SETTINGS'].api.cache_max_age}"
        response.add_etag(weak=True)
        return revalidated(response)
    return response


def revalidated(response: Response) -> Response:
    """A 304 when the client already has this representation, for answers that carry an ETag and no date: only
    a revalidation (If-None-Match) can get one, so the other requests skip Werkzeug's conditional checks."""
    return response.make_conditional(request) if request.if_none_match else response


def with_written_array(name: str, items: bytes, members: dict) -> bytes:
    """A JSON object: the array `name` of `items` (comma-separated JSON texts, the bytes PostgreSQL wrote, put in
    as they are: decoding, shaping and encoding them again costs more than the query that wrote them), then
    `members`."""
    rest = json.dumps(members, ensure_ascii=False, separators=(",", ":"))
    return b"".join((b'{"', name.encode(), b'":[', items, b"]", b"," if members else b"", rest[1:].encode()))


def allow_origins(bp: Blueprint) -> None:
    """CORS on every answer of `bp` for the configured origins (none by default): flask-cors answers an allowed
    origin with that origin, and leaves the responses' own caching headers alone. Every answer then carries
    `Vary: Origin` (flask-cors adds it only for several origins, but even with one a shared cache must not give a
    response without the header to the allowed origin)."""

    @bp.after_request
    def vary_on_origin(response: Response) -> Response:
        if current_app.config["SETTINGS"].api.cors_origins:
            response.vary.add("Origin")
        return response

    @bp.record_once
    def register_cors(state) -> None:
        app: Flask = state.app
        origins = app.config["SETTINGS"].api.cors_origins
        if origins:
            prefix = state.url_prefix or ""
            CORS(app, resources={f"{prefix}/*": {"origins": origins}}, vary_header=True,
                 expose_headers=["ETag", "Content-Length", "Content-Range", "Accept-Ranges"],
                 methods=["GET", "HEAD", "OPTIONS"])


def public_api(bp: Blueprint) -> None:
    """Conditional GETs and caching for every answer of `bp`; CORS for the configured origins."""
    bp.after_request(cacheable)
    allow_origins(bp)
