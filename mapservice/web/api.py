"""The JSON API (GeoJSON, RFC 7946: lon/lat order, WGS84)."""
from flask import Blueprint, current_app, request

from .. import params, queries
from ..db import get_db
from ..taxonomy import SOLUTION_TYPES

bp = Blueprint("api", __name__)


def solution_feature(row: dict) -> dict:
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": {"type": "Point", "coordinates": [round(row["lon"], 6), round(row["lat"], 6)]},
        "properties": {
            "id": row["id"],
            "type": row["type"],
            "type_label": SOLUTION_TYPES[row["type"]],
            "title": row["title"],
            "voie": row["voie"],
            "level": row["level"],
            "domain": row["domain"],
            "capacity": row["capacity"],
            "vacant_places": row["vacant_places"],
            "service_civique_formula": row["service_civique_formula"],
            "site_id": row["site_id"],
            "site_name": row["site_name"],
            "site_kind": row["site_kind"],
            "commune_code": row["commune_code"],
            "commune_name": row["commune_name"],
            "position_precision": row["position_precision"],
            "last_checked_at": row["last_checked_at"].isoformat() if row["last_checked_at"] else None,
            "is_example": row["is_example"],
            "distance_km": round(row["distance_m"] / 1000, 3),
        },
    }


@bp.get("/solutions/nearest")
def nearest_solutions():
    settings = current_app.config["SETTINGS"]
    query = params.nearest(request.args, settings.nearest_default_limit, settings.nearest_max_limit)
    conn = get_db()
    rows = queries.nearest_solutions(conn, query)
    commune = queries.commune_at(conn, query.origin.lon, query.origin.lat)
    body = {
        "type": "FeatureCollection",
        "features": [solution_feature(r) for r in rows],
        "origin": {"lat": query.origin.lat, "lon": query.origin.lon, "commune": commune},
        "numberReturned": len(rows),
    }
    return body, 200, {"Content-Type": "application/geo+json"}
