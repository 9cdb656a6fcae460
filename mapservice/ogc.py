"""OGC API - Features, Part 1 (Core, GeoJSON): the published catalogue as the collection 'solutions', so that
GDAL, QGIS and other standard clients read it unchanged. A page's features are written by PostgreSQL
(feature_sql, as the nearest search's); one item is read from the view published_solution (migration 0002)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import feature_sql
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

# A page: the published solutions (as the view published_solution has them) in id order, each written as the
# API's GeoJSON Feature; `picked` chooses its properties (?properties=). The page's ids are found first: written
# before the LIMIT, the features of every solution in the box were computed, then sorted (at 1M sites, more
# than the Python it saved).
ITEMS = """
WITH page AS (
    SELECT s.id FROM solution s JOIN site ON site.id = s.site_id
    WHERE site.status = 'published' AND {where}
    ORDER BY s.id
    LIMIT :limit
)
SELECT r.id, {feature} AS feature
FROM (
    SELECT {columns}, {point} AS geometry_
    FROM page JOIN solution s ON s.id = page.id JOIN site ON site.id = s.site_id
    JOIN commune c ON c.code = site.commune_code
) r,
LATERAL (SELECT {picked}) p
ORDER BY r.id
"""
ITEM_PROPERTIES = dict(feature_sql.SOLUTION_LIST_PROPERTIES)
# A page is planned for its own bbox (its best plan depends on how much of the catalogue the bbox holds), and
# without parallel workers: for a city's bbox the planner chose to walk the whole catalogue in id order with
# two workers, which took 5 to 15 times longer than the same walk alone (bench/README, OGC items).
ITEMS_PLANNER = {"plan_cache_mode": "force_custom_plan", "max_parallel_workers_per_gather": "0"}


def items(conn: Connection, query: ItemsQuery) -> tuple[list[dict], bool]:
    """A page of published solutions in id order (keyset paging) and whether more follow: id and feature (the
    GeoJSON Feature's UTF-8 bytes, with the query's properties)."""
    where, binds = solution_filter_sql(query.filters)
    if query.bbox is not None:
        where += " AND site.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326)"
        binds.update(west=query.bbox.west, south=query.bbox.south, east=query.bbox.east, north=query.bbox.north)
    if query.after_id is not None:
        where += " AND s.id > :after_id"
        binds["after_id"] = query.after_id
    chosen = [(name, ITEM_PROPERTIES[name]) for name in query.properties or ITEM_PROPERTIES]
    sql = ITEMS.format(where=where, picked=feature_sql.picked(chosen, "r"), **feature_sql.SOLUTION_LIST_FEATURE)
    found = fetch_prepared(conn, sql, {**binds, "limit": query.limit + 1}, text_as_bytes=True,
                           planner=ITEMS_PLANNER)
    return found[:query.limit], len(found) > query.limit


# One item: the view's row, shaped by web.features as the detail routes shape theirs.
ITEM_COLUMNS = f"""{OFFER_COLUMNS}, s.is_example, s.site_id, s.site_name, s.site_kind, s.address,
       s.postcode, s.commune_code, s.commune_name, s.position_precision, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat"""


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
