"""The change feed (GET /api/v1/changes): what left, entered or changed in the public catalogue since a cursor,
so that the app keeps its offline copy (a bundle) up to date without downloading it again.

It reads the catalogue's change log (migration 0006), one row per statement that changed sites or solutions,
with the writer's transaction id. A page holds only the changes of transactions older than every transaction
still running (the snapshot's xmin): those have all ended, so no change can later appear before a cursor
already handed out. Ordered by (transaction, row, position in the row's list of ids), the cursor being the last
of these, a page boundary may fall inside a bulk change (an import's thousands of sites) without missing or
repeating anything. A change waits for the older writers to end: a few milliseconds, the length of an import
at most.

Each entry gives the entity's current state, never a past one: the feature exactly as in the bundle (the same
SQL) for a published solution or site, else a tombstone saying why it left (deleted, archived, unpublished, or
outside the followed area). Applying the entries in order to a copy made at the cursor gives the catalogue as
it is, even when the same entity comes again in a later page. A site's change also gives its solutions (their
position, their site's status, come from it).

An app that keeps one area (a département, a région, a box) gets the entries of entities in that area and a
tombstone for every changed entity now outside it whose change touched the area's box (one that moved out of
the area; a tombstone for an entity the app never had is simply ignored)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..errors import Gone
from ..values import ChangeQuery, FeedCursor
from .bundles import SITES, SOLUTIONS
from .changelog import HORIZON

# The entries after the cursor, in order; a statement that changed everything (TRUNCATE) is one 'everything'
# entry. `touches` says whether the change's positions (before and after, EPSG:3857) meet the followed box.
ENTRIES = text("""
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT c.txid::text::bigint AS txid, c.id AS change_id, e.position, e.kind, e.entity_id,
       (CAST(:box AS geometry) IS NULL OR c.xs IS NULL OR EXISTS (
            SELECT 1 FROM unnest(c.xs, c.ys) AS p(x, y)
            WHERE ST_Intersects(CAST(:box AS geometry), ST_SetSRID(ST_MakePoint(p.x, p.y), 3857)))) AS touches
FROM catalogue_change c CROSS JOIN horizon
CROSS JOIN LATERAL (
    SELECT 0::bigint AS position, 'everything' AS kind, NULL::bigint AS entity_id WHERE c.site_ids IS NULL
    UNION ALL
    SELECT s.position, 'site', s.entity_id FROM unnest(c.site_ids) WITH ORDINALITY AS s(entity_id, position)
    UNION ALL
    SELECT coalesce(cardinality(c.site_ids), 0) + s.position, 'solution', s.entity_id
    FROM unnest(c.solution_ids) WITH ORDINALITY AS s(entity_id, position)
) e
WHERE c.txid < horizon.xmin AND c.txid >= CAST(CAST(:txid AS text) AS xid8)
  AND (c.txid::text::bigint, c.id, e.position) > (:txid, :change_id, :position)
ORDER BY c.txid, c.id, e.position
LIMIT :limit
""")

# The followed area's box in EPSG:3857 (where the change log keeps positions).
AREA_BOX = {
    "departement": "SELECT ST_Transform(ST_Envelope(geom), 3857) FROM departement WHERE code = :code",
    "region": "SELECT ST_Transform(ST_Envelope(geom), 3857) FROM region WHERE code = :code",
}
BBOX_BOX = "SELECT ST_Transform(ST_MakeEnvelope(:west, :south, :east, :north, 4326), 3857)"

# Where each entity stands now: its status and its site's, and whether it lies in the followed area.
IN_AREA = {
    None: "true",
    "departement": "c.departement_code = :code",
    "region": "c.region_code = :code",
    "bbox": "site.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326)",
}
SOLUTION_STATES = """
SELECT want.id, s.status, site.status AS site_status, s.id IS NOT NULL AND ({in_area}) AS in_area
FROM unnest(CAST(:ids AS bigint[])) AS want(id)
LEFT JOIN solution s ON s.id = want.id LEFT JOIN site ON site.id = s.site_id
LEFT JOIN commune c ON c.code = site.commune_code
"""
SITE_STATES = """
SELECT want.id, site.status, site.id IS NOT NULL AND ({in_area}) AS in_area,
       EXISTS (SELECT 1 FROM solution s WHERE s.site_id = site.id AND s.status = 'published') AS offers
FROM unnest(CAST(:ids AS bigint[])) AS want(id)
LEFT JOIN site ON site.id = want.id LEFT JOIN commune c ON c.code = site.commune_code
"""
SOLUTIONS_OF_SITES = text("SELECT site_id, id FROM solution WHERE site_id = ANY(CAST(:ids AS bigint[])) "
                          "ORDER BY site_id, id")


@dataclass(frozen=True)
class FeedPage:
    entries: list[dict]
    next: FeedCursor
    more: bool


def changes(conn: Connection, query: ChangeQuery) -> FeedPage:
    horizon = conn.execute(HORIZON).one()
    if query.since.txid <= horizon.pruned_through:
        raise Gone("Ce curseur est plus ancien que l'historique des changements conservé (une semaine) : "
                   "téléchargez à nouveau le paquet de la zone (/api/v1/bundles), puis suivez les changements "
                   "à partir de son curseur.", parameter="since")
    binds = _area_binds(query)
    box = conn.execute(text(_box_sql(query)), binds).scalar() if query.area or query.bbox else None
    rows = conn.execute(ENTRIES, {"box": box, "txid": query.since.txid, "change_id": query.since.change_id,
                                  "position": query.since.position, "limit": query.limit}).all()
    more = len(rows) == query.limit
    if rows and rows[0].kind == "everything":
        raise Gone("Le catalogue a été rechargé en entier depuis ce curseur : téléchargez à nouveau le paquet de "
                   "la zone (/api/v1/bundles), puis suivez les changements à partir de son curseur.",
                   parameter="since")
    everything = next((i for i, r in enumerate(rows) if r.kind == "everything"), None)
    if everything is not None:  # stop before it: the next page starts with it (410)
        rows, more = rows[:everything], True
    if not rows:
        # Caught up: every change of a transaction older than xmin has been given.
        return FeedPage([], max(query.since, FeedCursor(horizon.xmin, 0, 0)), False)
    last = rows[-1]
    following = FeedCursor(last.txid, last.change_id, last.position)
    if not more:
        following = max(following, FeedCursor(horizon.xmin, 0, 0))
    return FeedPage(_entries(conn, rows, query, binds), following, more)


def _area_binds(query: ChangeQuery) -> dict:
    if query.bbox:
        b = query.bbox
        return {"west": b.west, "south": b.south, "east": b.east, "north": b.north}
    return {"code": query.area.code} if query.area else {}


def _box_sql(query: ChangeQuery) -> str:
    return BBOX_BOX if query.bbox else AREA_BOX[query.area.kind]


def _in_area(query: ChangeQuery) -> str:
    return IN_AREA["bbox" if query.bbox else (query.area.kind if query.area else None)]


def _entries(conn: Connection, rows, query: ChangeQuery, binds: dict) -> list[dict]:
    # Each entity once, where it first comes; touched: whether any of its changes met the followed area.
    order: dict[tuple[str, int], bool] = {}
    for r in rows:
        key = (r.kind, r.entity_id)
        order[key] = order.get(key, False) or r.touches
    site_ids = [i for kind, i in order if kind == "site"]
    if site_ids:  # a site's change is also its solutions'
        expanded: dict[tuple[str, int], bool] = {}
        solutions_of: dict[int, list[int]] = {}
        for site_id, solution_id in conn.execute(SOLUTIONS_OF_SITES, {"ids": site_ids}):
            solutions_of.setdefault(site_id, []).append(solution_id)
        for (kind, entity_id), touched in order.items():
            expanded[(kind, entity_id)] = expanded.get((kind, entity_id), False) or touched
            for solution_id in solutions_of.get(entity_id, []) if kind == "site" else []:
                expanded[("solution", solution_id)] = expanded.get(("solution", solution_id), False) or touched
        order = expanded

    in_area = _in_area(query)
    solution_ids = [i for kind, i in order if kind == "solution"]
    site_ids = [i for kind, i in order if kind == "site"]
    states = {("solution", r.id): (r.status, r.site_status, r.in_area, True) for r in conn.execute(
        text(SOLUTION_STATES.format(in_area=in_area)), {"ids": solution_ids, **binds})}
    states.update({("site", r.id): (r.status, "published" if r.offers else "unpublished", r.in_area, True)
                   for r in conn.execute(text(SITE_STATES.format(in_area=in_area)), {"ids": site_ids, **binds})})
    public = {key: state[2] and state[0] == "published" and state[1] == "published"
              for key, state in states.items()}
    features = _features(conn, [i for (kind, i), shown in public.items() if shown and kind == "solution"],
                         [i for (kind, i), shown in public.items() if shown and kind == "site"])

    entries = []
    for (kind, entity_id), touched in order.items():
        status, parent_status, inside, _ = states[(kind, entity_id)]
        if public[(kind, entity_id)]:
            entries.append({"type": kind, "id": entity_id, "action": "upsert",
                            "feature": features[(kind, entity_id)]})
            continue
        if status is None:
            reason = "deleted"
        elif not inside:
            reason = "outside_area"
        elif "archived" in (status, parent_status if kind == "solution" else None):
            reason = "archived"
        else:
            reason = "unpublished"
        if inside or touched:
            entries.append({"type": kind, "id": entity_id, "action": "remove", "reason": reason})
    return entries


def _features(conn: Connection, solution_ids: list[int], site_ids: list[int]) -> dict[tuple[str, int], dict]:
    """The features as the bundle writes them (the same SQL)."""
    found = {}
    for kind, sql, ids in (("solution", SOLUTIONS, solution_ids), ("site", SITES, site_ids)):
        if ids:
            for (feature,) in conn.execute(text(sql.format(area=f"{'s' if kind == 'solution' else 'site'}.id "
                                                                "= ANY(CAST(:ids AS bigint[]))")), {"ids": ids}):
                parsed = json.loads(feature)
                found[(kind, parsed["id"])] = parsed
    return found
