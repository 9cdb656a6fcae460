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
it is, even when the same entity comes again in a later page. A change of sites (a statement on `site`) also
gives their solutions (their position, their site's status come from it). A change of solutions gives them and
their sites (a site's feature lists its published solutions), not the sites' other solutions: a statement on
`solution` changes no other solution's feature (the log tells them apart: a site's statement logs no solution).

An app that keeps one area (a département, a région, a box) gets the entries of entities in that area and a
tombstone for every changed entity now outside it whose change touched the area's box (one that moved out of
the area; a tombstone for an entity the app never had is simply ignored).

A page is one statement: PostgreSQL reads the log, the entities' features and states in one snapshot and writes
the page's entries as JSON text, which the web layer passes on as it is (no round trip per step, no list of ids
sent back and forth, nothing parsed and written again in Python). The features are read as stored at write time
(appdata.features), not written again for each page."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from ..db import fetch_prepared
from ..errors import Gone
from ..values import ChangeQuery, FeedCursor
from . import features

# The followed area's box in EPSG:3857 (where the change log keeps positions), as its bounds: the image of a
# longitude/latitude rectangle is a rectangle there, so a position touches the box when it lies within them (a
# comparison the planner costs as cheap as it is, unlike ST_Intersects). No row: the whole catalogue.
BOX = "SELECT ST_XMin(b) AS west, ST_YMin(b) AS south, ST_XMax(b) AS east, ST_YMax(b) AS north FROM ({envelope}) a(b)"
AREA_BOX = {
    None: "SELECT NULL::float8 AS west, NULL::float8 AS south, NULL::float8 AS east, NULL::float8 AS north "
          "WHERE false",
    "departement": BOX.format(envelope="SELECT ST_Transform(ST_Envelope(geom), 3857) FROM departement "
                                       "WHERE code = :code"),
    "region": BOX.format(envelope="SELECT ST_Transform(ST_Envelope(geom), 3857) FROM region WHERE code = :code"),
    "bbox": BOX.format(envelope="SELECT ST_Transform(ST_MakeEnvelope(:west, :south, :east, :north, 4326), 3857)"),
}

# Whether an entity lies in the followed area now (its site `site`, the site's commune `c`).
IN_AREA = {
    None: "true",
    "departement": "c.departement_code = :code",
    "region": "c.region_code = :code",
    "bbox": "site.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326)",
}

# The page's entities in the followed area, checked once on their sites and communes before any feature is read
# (most of a page may lie outside it): features.AREA_JOINS on the entities (alias f).
INSIDE = " UNION ALL ".join(
    f"SELECT f.kind, f.id FROM entities f{features.AREA_JOINS[kind]} WHERE f.kind = '{kind}' AND ({{in_area}})"
    for kind in features.KINDS)

# The page's entities of a kind in the area (`among`: inside, or all the entities for the whole catalogue), their
# ids sorted for an index scan that walks the index once.
WANTED = "f.id = ANY(ARRAY(SELECT id FROM {among} WHERE kind = '{kind}' ORDER BY id))"

# Which entities without a feature may get a tombstone: in the whole catalogue, all of them; in an area, those
# inside it or whose change touched its box (the others concern the app no more than they did).
MAY_LEAVE = {area: "e.touched OR (e.kind, e.id) IN (SELECT kind, id FROM inside)" if area else "true"
             for area in IN_AREA}

PAGE = """
WITH box AS MATERIALIZED ({box}),
-- The log's rows from the cursor's on, in order, with the size of their lists of ids (a NULL list: a statement
-- that changed everything, TRUNCATE) and whether their positions (before and after) meet the followed box.
-- Every row names at least one entity, so `limit` + 1 rows are enough for `limit` entries (the first may have
-- nothing left after the cursor).
log AS MATERIALIZED (
    SELECT c.txid::text::bigint AS txid, c.id AS change_id, c.site_ids IS NULL AS everything,
           coalesce(cardinality(c.site_ids), 0) AS sites, coalesce(cardinality(c.solution_ids), 0) AS solutions,
           (c.xs IS NULL OR NOT EXISTS (SELECT FROM box) OR EXISTS (
                SELECT FROM box, unnest(c.xs, c.ys) AS p(x, y)
                WHERE p.x BETWEEN box.west AND box.east AND p.y BETWEEN box.south AND box.north)) AS touches
    FROM catalogue_change c
    -- (the cursor's transaction typed where it first comes: the statement is prepared)
    WHERE c.txid >= CAST(CAST(CAST(:txid AS bigint) AS text) AS xid8)
      AND c.txid < pg_snapshot_xmin(pg_current_snapshot())
      AND (c.txid::text::bigint, c.id) >= (:txid, :change_id)
    ORDER BY c.txid, c.id
    LIMIT :limit + 1
),
-- Positions 1..sites of a row are its sites, then its solutions; in the cursor's row, those after it.
placed AS (
    SELECT l.*, f.first, greatest(l.sites + l.solutions - f.first + 1, 0) AS available
    FROM log l, LATERAL (SELECT CASE WHEN (l.txid, l.change_id) = (:txid, :change_id)
                                     THEN :position + 1 ELSE 1 END AS first) f
),
counted AS (
    SELECT p.*, coalesce(sum(p.available) OVER earlier, 0) AS before,
           coalesce(bool_or(p.everything) OVER earlier, false) AS after_everything
    FROM placed p
    WINDOW earlier AS (ORDER BY p.txid, p.change_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
-- The rows the page reaches: while room is left, up to the first that changed everything (the next page starts
-- with it, and gets 410).
reached AS MATERIALIZED (SELECT * FROM counted WHERE before < :limit AND NOT after_everything),
taken AS MATERIALIZED (
    SELECT r.*, (r.first + least(r.available, :limit - r.before) - 1)::int AS last
    FROM reached r WHERE NOT r.everything AND r.available > 0
),
-- The page's entities in the log's order, each with its cursor and n, its place in the page (the entities of
-- the rows before, then its place in its row's slice); only the slices of the rows' lists the page needs are read
-- (an import's row may name hundreds of thousands of sites).
logged AS MATERIALIZED (
    SELECT t.txid, t.change_id, e.position, e.kind, e.id, t.touches, t.before + e.position - t.first + 1 AS n,
           t.solutions = 0 AS site_statement
    FROM taken t JOIN catalogue_change c ON c.id = t.change_id, LATERAL (
        SELECT t.first - 1 + x.n AS position, 'site' AS kind, x.id
        FROM unnest(c.site_ids[t.first : least(t.last, t.sites)]) WITH ORDINALITY AS x(id, n)
        UNION ALL
        SELECT t.sites + greatest(t.first - t.sites, 1) - 1 + x.n, 'solution', x.id
        FROM unnest(c.solution_ids[greatest(t.first - t.sites, 1) : t.last - t.sites]) WITH ORDINALITY AS x(id, n)
    ) e
),
-- A change of a site by a statement on sites is also its solutions' (their position and their site's status come
-- from it): the site's solutions follow it. (A statement on solutions logs their sites too, but the sites' other
-- solutions did not change.)
named AS (
    SELECT kind, id, touches, n FROM logged
    UNION ALL
    SELECT 'solution', o.id, l.touches, l.n
    FROM logged l, unnest(ARRAY(SELECT s.id FROM solution s WHERE s.site_id = l.id)) AS o(id)
    WHERE l.kind = 'site' AND l.site_statement
),
-- Each entity once, where it first comes, placed by (n, after): a site before its solutions, these by id (a
-- solution logged itself is alone at its n); touched: whether any of its changes met the followed box.
entities AS MATERIALIZED (
    SELECT kind, id, min(n) AS n, CASE kind WHEN 'site' THEN 0 ELSE id END AS after, bool_or(touches) AS touched
    FROM named GROUP BY kind, id
),
-- Those in the followed area (not read for the whole catalogue: all of them are).
inside AS MATERIALIZED (
    {inside}
),
-- The public features among them, in the area, as the bundle writes them (stored at write time), read by id in
-- order.
solution_features AS (
    {solution_features}
),
site_features AS (
    {site_features}
),
-- Each entity's entry: the feature when it is public and in the area, else a tombstone saying why not (only
-- for an entity in the area, or one whose change touched the area's box: it may have moved out of it).
written AS (
    SELECT e.n, e.after, CASE e.kind
        WHEN 'solution' THEN coalesce(
            '{{"type":"solution","id":' || e.id || ',"action":"upsert","feature":' || sf.feature || '}}',
            (SELECT '{{"type":"solution","id":' || e.id || ',"action":"remove","reason":"' || CASE
                        WHEN st.status IS NULL THEN 'deleted' WHEN NOT st.inside THEN 'outside_area'
                        WHEN 'archived' IN (st.status, st.site_status) THEN 'archived' ELSE 'unpublished' END
                    || '"}}'
             FROM (SELECT s.status, site.status AS site_status,
                          coalesce(s.id IS NOT NULL AND ({in_area}), false) AS inside
                   FROM (SELECT e.id) want LEFT JOIN solution s ON s.id = want.id
                   LEFT JOIN site ON site.id = s.site_id LEFT JOIN commune c ON c.code = site.commune_code) st
             WHERE ({may_leave}) AND (st.inside OR e.touched)))
        ELSE coalesce(
            '{{"type":"site","id":' || e.id || ',"action":"upsert","feature":' || tf.feature || '}}',
            (SELECT '{{"type":"site","id":' || e.id || ',"action":"remove","reason":"' || CASE
                        WHEN st.status IS NULL THEN 'deleted' WHEN NOT st.inside THEN 'outside_area'
                        WHEN st.status = 'archived' THEN 'archived' ELSE 'unpublished' END
                    || '"}}'
             FROM (SELECT site.status, coalesce(site.id IS NOT NULL AND ({in_area}), false) AS inside
                   FROM (SELECT e.id) want LEFT JOIN site ON site.id = want.id
                   LEFT JOIN commune c ON c.code = site.commune_code) st
             WHERE ({may_leave}) AND (st.inside OR e.touched)))
        END AS entry
    FROM entities e
    LEFT JOIN solution_features sf ON e.kind = 'solution' AND sf.id = e.id
    LEFT JOIN site_features tf ON e.kind = 'site' AND tf.id = e.id
)
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
       (SELECT pruned_through::text::bigint FROM catalogue_change_horizon) AS pruned_through,
       EXISTS (SELECT FROM reached WHERE everything) AS reload,
       (SELECT count(*) FROM logged) AS logged,
       (SELECT ARRAY[txid, change_id, position] FROM logged ORDER BY n DESC LIMIT 1) AS last,
       (SELECT string_agg(entry, ',' ORDER BY n, after) FROM written) AS entries
"""

# The page's statement for the whole catalogue and for each kind of followed area.
PAGES = {area: PAGE.format(
    box=AREA_BOX[area], in_area=in_area,
    inside=INSIDE.format(in_area=in_area), may_leave=MAY_LEAVE[area],
    **{f"{kind}_features": features.stored(kind, "true", WANTED.format(
        kind=kind, among="entities" if area is None else "inside")) for kind in features.KINDS})
    for area, in_area in IN_AREA.items()}


@dataclass(frozen=True)
class FeedPage:
    """The page's entries as JSON (comma-separated objects, the UTF-8 bytes PostgreSQL wrote), the next cursor,
    whether more changes can already be read."""

    entries: bytes
    next: FeedCursor
    more: bool


def changes(conn: Connection, query: ChangeQuery) -> FeedPage:
    area = "bbox" if query.bbox else (query.area.kind if query.area else None)
    # Planned once per connection: the plan follows the page's own rows (the log's index, the slices, ids looked
    # up by key), not the values' selectivity; planning it each time cost ~3 ms of ~30.
    [page] = fetch_prepared(conn, PAGES[area], {
        "txid": query.since.txid, "change_id": query.since.change_id, "position": query.since.position,
        "limit": query.limit, **_area_binds(query)}, generic_plan=True, text_as_bytes=True)
    if query.since.txid <= page["pruned_through"]:
        raise Gone("Ce curseur est plus ancien que l'historique des changements conservé (une semaine) : "
                   "téléchargez à nouveau le paquet de la zone (/api/v1/bundles), puis suivez les changements "
                   "à partir de son curseur.", parameter="since")
    if page["reload"] and not page["logged"]:
        raise Gone("Le catalogue a été rechargé en entier depuis ce curseur : téléchargez à nouveau le paquet de "
                   "la zone (/api/v1/bundles), puis suivez les changements à partir de son curseur.",
                   parameter="since")
    caught_up = FeedCursor(page["xmin"], 0, 0)
    if not page["logged"]:
        # Caught up: every change of a transaction older than xmin has been given.
        return FeedPage(b"", max(query.since, caught_up), False)
    # A full page may be followed by more (or by nothing: the next page then says so); a page with room left
    # took every row before the horizon.
    more = page["reload"] or page["logged"] == query.limit
    following = FeedCursor(*page["last"])
    return FeedPage(page["entries"] or b"", following if more else max(following, caught_up), more)


def _area_binds(query: ChangeQuery) -> dict:
    if query.bbox:
        b = query.bbox
        return {"west": b.west, "south": b.south, "east": b.east, "north": b.north}
    return {"code": query.area.code} if query.area else {}
