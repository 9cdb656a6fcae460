"""The public JSON API (GeoJSON, RFC 7946: lon/lat order, WGS84). Thin routes: mapservice.params validates,
the SQL modules read, mapservice.web.features formats (the nearest search's features come written by PostgreSQL:
mapservice.feature_sql). Documented in mapservice/openapi.yaml."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for

from .. import catalogue, coverage, openapi, params, places, search
from . import features, ogc
from .connection import read_db
from .http import public_api, with_written_array
from .map_page import static_url

bp = Blueprint("api", __name__)
public_api(bp)
bp.register_blueprint(ogc.bp, url_prefix="/ogc")

GEOJSON = {"Content-Type": "application/geo+json"}


@bp.get("/solutions/nearest")
def nearest_solutions():
    settings = current_app.config["SETTINGS"].api
    query = params.nearest(request.args, settings.nearest_default_limit, settings.nearest_max_limit,
                           settings.nearest_max_radius_km)
    found = search.nearest(read_db(), query, settings.nearest_radius_steps_km)
    rows = found.rows
    links = [{"rel": "self", "type": "application/geo+json", "href": request.url}]
    if len(rows) == query.limit:
        args = {k: v for k, v in request.args.items() if k != "after"}
        if found.radius_km is not None:
            args["radius"] = f"{found.radius_km:g}"
        args["after"] = params.encode_cursor(rows[-1]["distance_m"], rows[-1]["id"])
        links.append({"rel": "next", "type": "application/geo+json",
                      "href": url_for("api.nearest_solutions", _external=True, **args)})
    body = with_written_array("features", b",".join(r["feature"] for r in rows), {
        "type": "FeatureCollection",
        "origin": {"lat": found.origin.lat, "lon": found.origin.lon, "commune": found.commune,
                   "area": found.area, "in_area": query.in_area},
        "radius_km": found.radius_km,
        "radius_automatic": found.radius_automatic,
        "numberReturned": len(rows),
        "links": links,
    })
    return body, 200, GEOJSON


@bp.get("/solutions/<solution_id>")
def solution(solution_id: str):
    params.known_only(request.args, ())
    row = catalogue.solution_by_id(read_db(), params.identifier(solution_id, "la solution"))
    return features.solution_detail_feature(row), 200, GEOJSON


@bp.get("/sites/<site_id>")
def site(site_id: str):
    params.known_only(request.args, ())
    row = catalogue.site_by_id(read_db(), params.identifier(site_id, "du lieu"))
    return features.site_feature(row), 200, GEOJSON


@bp.get("/places")
def place_search():
    query = params.place_search(request.args)
    rows = places.search(read_db(), query)
    body = {"type": "FeatureCollection", "features": [features.place_feature(r) for r in rows],
            "numberReturned": len(rows)}
    return body, 200, GEOJSON


@bp.get("/coverage")
def who_covers():
    origin = params.coverage(request.args)
    return features.coverage_document(coverage.who_covers(read_db(), origin))


@bp.get("/openapi.json")
def openapi_document():
    return openapi.document(), 200, {"Content-Type": "application/vnd.oai.openapi+json;version=3.0"}


@bp.get("/docs")
def api_docs():
    return render_template("api_docs.html", spec=openapi.document(), static_url=static_url)
