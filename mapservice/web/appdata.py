"""The mobile app's offline data: the bundles (/api/v1/bundles: the manifest, the area's up-to-date bundle, a
redirect to its content-addressed URL, rebuilt first only when the area changed, and the bundle's bytes,
immutable) and the change feed that keeps a bundle up to date (/api/v1/changes)."""
from __future__ import annotations

import gzip

from flask import Blueprint, Response, current_app, redirect, request, url_for

from .. import params
from ..appdata import bundles, changelog, feed
from ..values import FeedCursor
from .connection import read_db, write_db
from .http import allow_origins, with_written_array

bp = Blueprint("appdata", __name__)
allow_origins(bp)

IMMUTABLE = 365 * 24 * 3600


def bundle_url(bundle: bundles.Bundle) -> str:
    return url_for("appdata.bundle_file", kind=bundle.area.kind, code=bundle.area.code, digest=bundle.digest,
                   _external=True)


@bp.get("/bundles")
def manifest():
    params.known_only(request.args, ())
    entries = []
    for entry in bundles.manifest(read_db()):
        area, built = entry["area"], entry["bundle"]
        entries.append({
            "area": {"kind": area.kind, "code": area.code, "name": entry["name"]},
            # Always the area's current bundle (rebuilt first if the area changed since `url`).
            "latest": url_for("appdata.latest_bundle", kind=area.kind, code=area.code, _external=True),
            "url": bundle_url(built) if built else None,
            "digest": built.digest if built else None,
            "size": built.size if built else None,
            "built_at": built.built_at.isoformat() if built else None,
            "build_ms": built.build_ms if built else None,
            "cursor": changelog.token(FeedCursor(built.cursor, 0, 0)) if built else None,
            "solutions": built.solutions if built else None,
            "sites": built.sites if built else None,
        })
    response = current_app.json.response({"bundles": entries})
    response.cache_control.public = True
    response.cache_control.max_age = current_app.config["SETTINGS"].api.cache_max_age
    response.add_etag(weak=True)
    return response.make_conditional(request)


@bp.get("/bundles/<kind>/<code>")
def latest_bundle(kind: str, code: str):
    params.known_only(request.args, ())
    found = bundles.current_bundle(write_db(), bundles.BundleArea(kind, code))
    response = redirect(bundle_url(found), code=303)
    response.cache_control.no_cache = True
    return response


@bp.get("/bundles/<kind>/<code>/<digest>.json.gz")
def bundle_file(kind: str, code: str, digest: str):
    params.known_only(request.args, ())
    body = bundles.bundle_body(read_db(), bundles.BundleArea(kind, code), digest)
    response = Response(body, mimetype="application/gzip")
    response.headers["Content-Disposition"] = f'attachment; filename="masecondechance-{kind}-{code}.json.gz"'
    response.set_etag(digest)
    response.cache_control.public = True
    response.cache_control.max_age = IMMUTABLE
    response.cache_control.immutable = True
    return response.make_conditional(request, accept_ranges=True, complete_length=len(body))


@bp.get("/changes")
def catalogue_changes():
    """A page of the change feed (mapservice.appdata.feed)."""
    query = params.change_query(request.args)
    page = feed.changes(read_db(), query)
    following = changelog.token(page.next)
    args = {k: v for k, v in request.args.items() if k != "since"}
    links = [{"rel": "next", "type": "application/json",
              "href": url_for("appdata.catalogue_changes", since=following, **args, _external=True)}]
    body = with_written_array("changes", page.entries, {"next": following, "more": page.more, "links": links})
    if request.accept_encodings["gzip"]:
        # Gzipped here at the fastest level: a page is ~1.4 MB, which Flask-Compress's level 6 takes three times
        # longer to compress (~45 ms against ~15 ms) for a body only ~30 % smaller; it leaves an encoded one alone.
        response = Response(gzip.compress(body, compresslevel=1), mimetype="application/json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(body, mimetype="application/json")
    response.vary.add("Accept-Encoding")
    # A page a few seconds old is still right to apply (what changed since comes in a later page).
    response.cache_control.public = True
    response.cache_control.max_age = 5
    return response
