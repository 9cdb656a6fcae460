"""HTTP behaviour shared by the public API blueprints: conditional requests, caching, CORS."""
from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from flask_cors import CORS




def cacheable(response: Response) -> Response:
    """Successful reads get a weak ETag (the same for the gzip and the plain body, which Flask-Compress leaves
    alone), Cache-Control, and a 304 when the client already has them."""
    if request.method in ("GET", "HEAD") and response.status_code == 200:
        response.cache_control.public = True
        response.cache_control.max_age = current_app.config["SETTINGS"].api.cache_max_age
        response.add_etag(weak=True)
        response.make_conditional(request)
    return response


def public_api(bp: Blueprint) -> None:
    """Conditional GETs and caching for every answer of `bp`; CORS for the configured origins (none by default)."""
    bp.after_request(cacheable)

    @bp.record_once
    def allow_origins(state) -> None:
        app: Flask = state.app
        origins = app.config["SETTINGS"].api.cors_origins
        if origins:
            prefix = state.url_prefix or ""
            CORS(app, resources={f"{prefix}/*": {"origins": origins}}, expose_headers=["ETag"],
                 methods=["GET", "HEAD", "OPTIONS"])
