"""The public JSON API (GeoJSON, RFC 7946: lon/lat order, WGS84). Thin routes: mapservice.params validates,
the SQL modules read, mapservice.web.features formats. Documented in mapservice/openapi.yaml."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for

from .. import coverage, openapi, params, places, queries
from . import features, ogc
from .http import public_api, read_only_db

bp = Blueprint("api", __name__)
public_api(bp)
bp.register_blueprint(ogc.bp, url_prefix="/ogc")

GEOJSON = {"Content-Type": "application/geo+json"}


def _settings():
    return current_app.config["SETTINGS"]


def widened_radius(distances_m: list[float], limit: int, steps_km) -> float | None:
    """The radius an automatic widening 10 -> 30 -> 60 -> 100 km stops at: the first that holds `limit`
    solutions, i.e. the k-th nearest; None when even the largest does not (then the search is unbounded)."""
    if len(distances_m) < limit:
        return None
    farthest_km = max(distances_m) / 1000
    return next((step for step in steps_km if farthest_km <= step), None)


@bp.get("/solutions/nearest")
def nearest_solutions():
    settings = _settings()
    query = params.nearest(request.args, settings.nearest_default_limit, settings.nearest_max_limit,
                           settings.nearest_max_radius_km)
    conn = read_only_db()
    if isinstance(query.origin, params.Area):
        area = places.area_origin(conn, query.origin)
        lon, lat = area["lon"], area["lat"]
    else:
        area, lon, lat = None, query.origin.lon, query.origin.lat
    rows = queries.nearest_solutions(conn, query, lon, lat)
    if query.radius_km is not None:
        radius_km, automatic = query.radius_km, False
    else:
        radius_km = widened_radius([r["distance_m"] for r in rows], query.limit, settings.nearest_radius_steps_km)
        automatic = True
    links = [{"rel": "self", "type": "application/geo+json", "href": request.url}]
    if len(rows) == query.limit:
        args = {k: v for k, v in request.args.items() if k != "after"}
        if radius_km is not None:
            args["radius"] = f"{radius_km:g}"
        args["after"] = params.encode_cursor(rows[-1]["distance_m"], rows[-1]["id"])
        links.append({"rel": "next", "type": "application/geo+json",
                      "href": url_for("api.nearest_solutions", _external=True, **args)})
    body = {
        "type": "FeatureCollection",
        "features": [features.solution_feature(r) for r in rows],
        "origin": {
            "lat": lat, "lon": lon,
            "commune": rows[0]["origin_commune"] if rows else queries.commune_at(conn, lon, lat),
            "area": {k: area[k] for k in ("kind", "code", "name")} if area else None,
            "in_area": query.in_area,
        },
        "radius_km": radius_km,
        "radius_automatic": automatic,
        "numberReturned": len(rows),
        "links": links,
    }
    return body, 200, GEOJSON


@bp.get("/solutions/<solution_id>")
def solution(solution_id: str):
    params.known_only(request.args, ())
    row = queries.solution_by_id(read_only_db(), params.identifier(solution_id, "la solution"))
    return features.solution_detail_feature(row), 200, GEOJSON


@bp.get("/sites/<site_id>")
def site(site_id: str):
    params.known_only(request.args, ())
    row = queries.site_by_id(read_only_db(), params.identifier(site_id, "du lieu"))
    return features.site_feature(row), 200, GEOJSON


@bp.get("/places")
def place_search():
    query = params.place_search(request.args)
    rows = places.search(read_only_db(), query)
    body = {"type": "FeatureCollection", "features": [features.place_feature(r) for r in rows],
            "numberReturned": len(rows)}
    return body, 200, GEOJSON


@bp.get("/coverage")
def who_covers():
    origin = params.coverage(request.args)
    return features.coverage_document(coverage.who_covers(read_only_db(), origin))


@bp.get("/openapi.json")
def openapi_document():
    return openapi.document(), 200, {"Content-Type": "application/vnd.oai.openapi+json;version=3.0"}


@bp.get("/docs")
def api_docs():
    return render_template("api_docs.html", spec=openapi.document())
