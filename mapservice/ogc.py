"""OGC API - Features, Part 1 (Core, GeoJSON): the published catalogue as the collection 'solutions', so that
GDAL, QGIS and other standard clients read it unchanged. Reads the view published_solution (migration 0002)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .catalogue import OFFER_COLUMNS, solution_filter_sql
from .db import fetch_prepared
from .errors import NotFound
from .values import ItemsQuery

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
# Metropolitan France and the overseas départements.
FRANCE_EXTENT = [-63.2, -21.4, 55.9, 51.2]

COLLECTIONS = {
    "solutions": {
        "title": "Solutions de raccrochage",
        "description": "Solutions publiées pour les jeunes de 16 à 25 ans sortis de l'école sans diplôme : places "
                       "en lycée, micro-lycées, apprentissage, service civique, missions locales, CIO, MLDS, "
                       "E2C, EPIDE, GRETA… Position du lieu d'accueil.",
    },
}

ITEM_COLUMNS = f"""{OFFER_COLUMNS}, s.is_example, s.site_id, s.site_name, s.site_kind, s.address,
       s.postcode, s.commune_code, s.commune_name, s.position_precision, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat"""
# A page is planned for its own bbox (its best plan depends on how much of the catalogue the bbox holds), and
# without parallel workers: for a city's bbox the planner chose to walk the whole catalogue in id order with
# two workers, which took 5 to 15 times longer than the same walk alone (bench/README, OGC items).
ITEMS_PLANNER = {"plan_cache_mode": "force_custom_plan", "max_parallel_workers_per_gather": "0"}


def items(conn: Connection, query: ItemsQuery) -> tuple[list[dict], bool]:
    """A page of published solutions in id order (keyset paging) and whether more follow."""
    where, binds = solution_filter_sql(query.filters)
    if query.bbox is not None:
        where += " AND s.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326)"
        binds.update(west=query.bbox.west, south=query.bbox.south, east=query.bbox.east, north=query.bbox.north)
    if query.after_id is not None:
        where += " AND s.id > :after_id"
        binds["after_id"] = query.after_id
    found = fetch_prepared(conn, f"SELECT {ITEM_COLUMNS} FROM published_solution s WHERE {where} "
                                 "ORDER BY s.id LIMIT :limit", {**binds, "limit": query.limit + 1},
                           planner=ITEMS_PLANNER)
    return found[:query.limit], len(found) > query.limit


def item(conn: Connection, item_id: int) -> dict:
    row = conn.execute(text(f"SELECT {ITEM_COLUMNS} FROM published_solution s WHERE s.id = :id"),
                       {"id": item_id}).mappings().first()
    if row is None:
        raise NotFound(f"La collection 'solutions' n'a pas d'objet publié d'identifiant {item_id}.",
                       parameter="featureId")
    return dict(row)


def collection_or_404(collection_id: str) -> dict:
    if collection_id not in COLLECTIONS:
        raise NotFound(f"Collection inconnue : '{collection_id}'. Collections : {', '.join(COLLECTIONS)}.",
                       parameter="collectionId")
    return COLLECTIONS[collection_id]
