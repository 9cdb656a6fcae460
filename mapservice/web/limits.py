"""Protection of the write paths: rate limits (Flask-Limiter) and the same-origin check of browser posts.

A write route is marked with `@write_route("error_reports")` (the name of its limit in LimitSettings): it then
gets the limit, answered with 429 + Retry-After and X-RateLimit-* headers, and refuses a post that a browser
sent from another site's page (Origin or Referer of another origin, or Sec-Fetch-Site: cross-site) with 403.
Clients that are not browsers (the mobile app, scripts) send no Origin and pass the origin check. The
workspace's login route, `workspace.login`, gets the `login` limit; every other write of the workspace and of
the report figures the `writes` limit (reads of those blueprints are not counted).

Counts are kept per client address (behind the shipped nginx, set MAPSERVICE_PROXIES=1 so that it is the
client's and not the proxy's), in memory for one machine or in Redis (MAPSERVICE_RATELIMIT_STORAGE_URL)
when several app servers share the load."""
from __future__ import annotations

import functools
from typing import Callable
from urllib.parse import urlsplit

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..errors import Forbidden

# Endpoints limited by name, for blueprints that do not mark their routes themselves.
LIMITED_ENDPOINTS = {"workspace.login": "login"}
# Blueprints whose every write (edits of the workspace, figures of the reports) gets the `writes` limit.
WRITING_BLUEPRINTS = ("workspace", "workspace_api", "imports_workspace", "reporting_api", "reporting_pages")
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


def write_route(limit_name: str) -> Callable:
    """Mark a view as a write path, limited by LimitSettings.<limit_name> and checked for same origin."""
    def mark(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args, **kwargs):
            same_origin()
            return view(*args, **kwargs)

        checked.mapservice_limit = limit_name
        return checked
    return mark


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin() -> None:
    """Refuse a browser's post made from another site's page (cross-site request forgery)."""
    ours = _origin(request.host_url)
    origin = request.headers.get("Origin")
    if origin is None and request.referrer:
        origin = _origin(request.referrer)
    if request.headers.get("Sec-Fetch-Site") == "cross-site" or (origin is not None and origin.lower() != ours):
        raise Forbidden("Ce formulaire ne peut être envoyé que depuis les pages du service.",
                        parameter="Origin")


def init_app(app: Flask) -> Limiter:
    """A limiter for `app`, applied to every marked write route and to LIMITED_ENDPOINTS."""
    settings = app.config["SETTINGS"].limits
    limiter = Limiter(get_remote_address, app=app, storage_uri=settings.storage_url, headers_enabled=True,
                      enabled=settings.enabled, strategy="fixed-window", swallow_errors=True,
                      in_memory_fallback_enabled=True)
    for endpoint, view in list(app.view_functions.items()):
        limit_name = getattr(view, "mapservice_limit", None) or LIMITED_ENDPOINTS.get(endpoint)
        if limit_name is None and endpoint.partition(".")[0] in WRITING_BLUEPRINTS:
            limit_name = "writes"
        if limit_name:
            # Only writes count: showing the login form (GET) is not an attempt.
            app.view_functions[endpoint] = limiter.limit(getattr(settings, limit_name), methods=WRITE_METHODS)(view)
    # Only writes are ever limited: a read skips the limiter's resolution of limits (a tenth of a cached tile).
    limiter.request_filter(lambda: request.method not in WRITE_METHODS)
    app.extensions["mapservice.limiter"] = limiter
    return limiter
