"""What the zones blanches map draws: the scope's outline and the communes' town halls."""
from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .access import Place

OUTLINE = {
    "academie": "SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.005)) FROM academie WHERE code = :code",
    "departement": "SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.002)) FROM departement WHERE code = :code",
    "platform": """SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Union(c.geom), 0.002))
                   FROM psad_platform_commune pc JOIN commune c ON c.code = pc.commune_code
                   WHERE pc.platform_id = CAST(:code AS bigint)""",
}


def outline(conn: Connection, place: Place) -> dict | None:
    """The scope's outline as GeoJSON, simplified for drawing (None for the whole country)."""
    if place.scope.kind not in OUTLINE:
        return None
    shape = conn.scalar(text(OUTLINE[place.scope.kind]), {"code": place.scope.code})
    return json.loads(shape) if shape else None


def town_halls(conn: Connection, codes: list[str]) -> dict[str, tuple[float, float]]:
    """(lat, lon) of each commune's town hall."""
    return {code: (lat, lon) for code, lat, lon in conn.execute(text(
        "SELECT code, ST_Y(town_hall), ST_X(town_hall) FROM commune WHERE code = ANY(:codes)"), {"codes": codes})}
