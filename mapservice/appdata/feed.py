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

# The log's rows from the cursor's on, in order, with the size of their lists of ids (NULL: a statement that
# changed everything, TRUNCATE) and whether their positions (before and after, EPSG:3857) meet the followed box.
# Every row names at least one entity, so `limit` + 1 rows are enough for `limit` entries (the first may have
# nothing left after the cursor).
CHANGE_ROWS = text("""
SELECT c.txid::text::bigint AS txid, c.id AS change_id, c.site_ids IS NULL AS everything,
       coalesce(cardinality(c.site_ids), 0) AS sites, coalesce(cardinality(c.solution_ids), 0) AS solutions,
       (CAST(:box AS geometry) IS NULL OR c.xs IS NULL OR EXISTS (
            SELECT 1 FROM unnest(c.xs, c.ys) AS p(x, y)
            WHERE ST_Intersects(CAST(:box AS geometry), ST_SetSRID(ST_MakePoint(p.x, p.y), 3857)))) AS touches
FROM catalogue_change c
WHERE c.txid >= CAST(CAST(:txid AS text) AS xid8) AND c.txid < pg_snapshot_xmin(pg_current_snapshot())
  AND (c.txid::text::bigint, c.id) >= (:txid, :change_id)
ORDER BY c.txid, c.id
LIMIT :limit
""")
# Only the slices of the rows' lists a page needs: an import's row may name hundreds of thousands of sites.
ROW_SLICES = text("""
SELECT c.id, c.site_ids[w.sites_from:w.sites_to] AS site_ids, c.solution_ids[w.solutions_from:w.solutions_to]
       AS solution_ids
FROM jsonb_to_recordset(CAST(:wanted AS jsonb)) AS w(id bigint, sites_from int, sites_to int, solutions_from int,
                                                       solutions_to int)
JOIN catalogue_change c ON c.id = w.id
""")


@dataclass(frozen=True)
class Entry:
    """One entity named by the log, at its place in the feed's order."""

    cursor: FeedCursor
    kind: str  # 'site', 'solution'
    entity_id: int
    touches: bool


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
    """The page's entries (an upsert's `feature` is the feature's JSON text), the next cursor, whether more
    changes can already be read."""

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
    rows = conn.execute(CHANGE_ROWS, {"box": box, "txid": query.since.txid, "change_id": query.since.change_id,
                                      "limit": query.limit + 1}).all()
    entries, more, reload = _page_entries(conn, rows, query)
    if reload and not entries:
        raise Gone("Le catalogue a été rechargé en entier depuis ce curseur : téléchargez à nouveau le paquet de "
                   "la zone (/api/v1/bundles), puis suivez les changements à partir de son curseur.",
                   parameter="since")
    if not entries:
        # Caught up: every change of a transaction older than xmin has been given.
        return FeedPage([], max(query.since, FeedCursor(horizon.xmin, 0, 0)), False)
    following = entries[-1].cursor
    if not more:
        following = max(following, FeedCursor(horizon.xmin, 0, 0))
    return FeedPage(_entries(conn, entries, query, binds), following, more)


def _page_entries(conn: Connection, rows, query: ChangeQuery) -> tuple[list[Entry], bool, bool]:
    """The page's first `limit` entries after the cursor; whether more follow; whether the page stopped at a
    statement that changed everything (then the next page starts with it, and gets 410)."""
    since, room, wanted, reload = query.since, query.limit, [], False
    for row in rows:
        if row.everything:
            reload = True
            break
        # Positions 1..sites are the row's sites, then its solutions; skip what the cursor has given.
        first = since.position + 1 if (row.txid, row.change_id) == (since.txid, since.change_id) else 1
        last = min(row.sites + row.solutions, first + room - 1)
        if last >= first:
            wanted.append((row, first, last))
            room -= last - first + 1
        if room == 0:
            break
    slices = {r.id: r for r in conn.execute(ROW_SLICES, {"wanted": json.dumps([{
        "id": row.change_id, "sites_from": first, "sites_to": min(last, row.sites),
        "solutions_from": max(first - row.sites, 1), "solutions_to": last - row.sites,
    } for row, first, last in wanted])})} if wanted else {}
    entries = []
    for row, first, last in wanted:
        ids = [("site", i) for i in slices[row.change_id].site_ids or []] \
            + [("solution", i) for i in slices[row.change_id].solution_ids or []]
        entries += [Entry(FeedCursor(row.txid, row.change_id, position), kind, entity_id, row.touches)
                    for position, (kind, entity_id) in zip(range(first, last + 1), ids)]
    # A full page may be followed by more (or by nothing: the next page then says so); a page with room left
    # took every row before the horizon.
    more = reload or room == 0
    return entries, more, reload


def _area_binds(query: ChangeQuery) -> dict:
    if query.bbox:
        b = query.bbox
        return {"west": b.west, "south": b.south, "east": b.east, "north": b.north}
    return {"code": query.area.code} if query.area else {}


def _box_sql(query: ChangeQuery) -> str:
    return BBOX_BOX if query.bbox else AREA_BOX[query.area.kind]


def _in_area(query: ChangeQuery) -> str:
    return IN_AREA["bbox" if query.bbox else (query.area.kind if query.area else None)]


def _entries(conn: Connection, entries: list[Entry], query: ChangeQuery, binds: dict) -> list[dict]:
    # Each entity once, where it first comes; touched: whether any of its changes met the followed area.
    order: dict[tuple[str, int], bool] = {}
    for r in entries:
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

    # The features first (public and in the area): most entries are; then why the others are not.
    in_area = _in_area(query)
    features = _features(conn, [i for kind, i in order if kind == "solution"],
                         [i for kind, i in order if kind == "site"], in_area, binds)
    missing = [key for key in order if key not in features]
    states = {("solution", r.id): (r.status, r.site_status, r.in_area) for r in conn.execute(
        text(SOLUTION_STATES.format(in_area=in_area)),
        {"ids": [i for kind, i in missing if kind == "solution"], **binds})}
    states.update({("site", r.id): (r.status, "published" if r.offers else "unpublished", r.in_area)
                   for r in conn.execute(text(SITE_STATES.format(in_area=in_area)),
                                         {"ids": [i for kind, i in missing if kind == "site"], **binds})})

    entries = []
    for (kind, entity_id), touched in order.items():
        feature = features.get((kind, entity_id))
        if feature is not None:
            entries.append({"type": kind, "id": entity_id, "action": "upsert", "feature": feature})
            continue
        status, parent_status, inside = states[(kind, entity_id)]
        if inside and status == "published" and parent_status == "published":
            # Public now but not a moment ago: a writer changed it between the two reads. Its change is logged
            # after this page's horizon, so a later page gives its state.
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


FEATURE_START = '{"type":"Feature","id":'


def _features(conn: Connection, solution_ids: list[int], site_ids: list[int], in_area: str,
              binds: dict) -> dict[tuple[str, int], str]:
    """The public features among these, in the followed area, as the bundle writes them (the same SQL), as JSON
    text: PostgreSQL wrote it, so it is passed on as it is rather than parsed and written again."""
    found = {}
    for kind, sql, ids in (("solution", SOLUTIONS, solution_ids), ("site", SITES, site_ids)):
        if ids:
            alias = "s" if kind == "solution" else "site"
            condition = f"{alias}.id = ANY(CAST(:ids AS bigint[])) AND ({in_area})"
            for (feature,) in conn.execute(text(sql.format(area=condition)), {"ids": ids, **binds}):
                assert feature.startswith(FEATURE_START)
                found[(kind, int(feature[len(FEATURE_START):feature.index(",", len(FEATURE_START))]))] = feature
    return found
