"""Vector tiles: sites in Web Mercator, the catalogue change log that keeps the tile cache exact, and the
basemap (régions, académies, départements, communes) simplified per zoom band.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


# Tiles are cut in EPSG:3857: storing the site's position there once spares a transform per row per tile.
SITE_MERCATOR = """
ALTER TABLE site ADD COLUMN geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
CREATE INDEX idx_site_geom_3857 ON site USING gist (geom_3857);
"""

# Every statement that changes sites or solutions bumps catalogue_state.version and records, under that
# version, the Web Mercator positions it touched (before and after). A tile server compares the version with
# the one its cache is at and evicts exactly the tiles around those positions. The single-row update also
# orders the versions like the commits that made them (the row lock is held until commit).
CHANGE_LOG = """
CREATE TABLE catalogue_state (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO catalogue_state (id, version) VALUES (true, 0);

CREATE TABLE catalogue_change (
    version bigint PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    -- Positions touched, EPSG:3857. NULL: too many to list (bulk load, TRUNCATE): every tile may have changed.
    xs float8[],
    ys float8[]
);

CREATE FUNCTION catalogue_record_change(xs float8[], ys float8[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE catalogue_state SET version = version + 1 RETURNING version INTO v;
    IF xs IS NULL OR cardinality(xs) > 1000 THEN
        xs := NULL; ys := NULL;
    END IF;
    PERFORM site_cells_refresh(xs, ys);
    INSERT INTO catalogue_change (version, xs, ys) VALUES (v, xs, ys);
    -- A server further behind than this clears its whole cache instead.
    DELETE FROM catalogue_change WHERE version <= v - 1000;
END $$;

CREATE FUNCTION site_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    xs float8[]; ys float8[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM catalogue_record_change(NULL, NULL);
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(ST_X(p)), array_agg(ST_Y(p)) INTO xs, ys
        FROM (SELECT DISTINCT geom_3857 AS p FROM new_rows) touched;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(ST_X(p)), array_agg(ST_Y(p)) INTO xs, ys
        FROM (SELECT DISTINCT geom_3857 AS p FROM old_rows) touched;
    ELSE
        SELECT array_agg(ST_X(p)), array_agg(ST_Y(p)) INTO xs, ys
        FROM (SELECT geom_3857 AS p FROM old_rows UNION SELECT geom_3857 FROM new_rows) touched;
    END IF;
    IF xs IS NOT NULL THEN
        PERFORM catalogue_record_change(xs, ys);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION solution_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    xs float8[]; ys float8[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM catalogue_record_change(NULL, NULL);
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(ST_X(p)), array_agg(ST_Y(p)) INTO xs, ys
        FROM (SELECT DISTINCT ST_Transform(position::geometry, 3857) AS p FROM new_rows) touched;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(ST_X(p)), array_agg(ST_Y(p)) INTO xs, ys
        FROM (SELECT DISTINCT ST_Transform(position::geometry, 3857) AS p FROM old_rows) touched;
    ELSE
        SELECT array_agg(ST_X(p)), array_agg(ST_Y(p)) INTO xs, ys
        FROM (SELECT ST_Transform(position::geometry, 3857) AS p FROM old_rows
              UNION SELECT ST_Transform(position::geometry, 3857) FROM new_rows) touched;
    END IF;
    IF xs IS NOT NULL THEN
        PERFORM catalogue_record_change(xs, ys);
    END IF;
    RETURN NULL;
END $$;
"""

# What the map shows when no filter applies (its default view), kept ready so that a tile reads it instead
# of aggregating the catalogue:
# - site_summary: one row per published site offering at least one published solution, with what a tile
#   says about it;
# - site_cell, the cluster pyramid: per cell of the grid of every clustering zoom, what its sites add up to.
#   Level L holds the cells of zoom-L tiles, i.e. the 8 x 8 cells of a zoom L-3 tile; every figure is a sum
#   (or a min), so a cell is its four children added up;
# - site_type_cell, the same per solution type, for the map filtered on one type.
# The catalogue triggers keep both exact: the summaries of the sites in the level-14 cells around the touched
# positions are recomputed from the rows, then those cells, then their ancestors from their children; a bulk
# change rebuilds everything.
TYPES = ("places_lycee", "structure_innovante", "apprentissage", "service_civique", "formation_regionale",
         "mission_locale", "clause_sociale", "greta", "accueil_orientation", "e2c", "epide")
TYPE_ORDER = "ARRAY[" + ", ".join(f"'{t}'" for t in TYPES) + "]"
TOP_LEVEL, BOTTOM_LEVEL = 14, 3
HALF_WORLD = 20037508.342789244
CELL_SIZE = f"({2 * HALF_WORLD} / {1 << TOP_LEVEL})"
# Positions are summed in whole centimetres: integer sums are exact whatever the order, so a cell recomputed
# after an edit and undo is the very same cell.
CELL_SUMS = ("count(*), sum(p.solutions), count(*) FILTER (WHERE p.vacancy), "
             "sum(round(ST_X(p.geom_3857) * 100)::bigint), sum(round(ST_Y(p.geom_3857) * 100)::bigint), min(p.id), "
             + ", ".join(f"count(*) FILTER (WHERE '{t}' = ANY(p.types))" for t in TYPES))
PARENT_SUMS = ("sum(c.sites), sum(c.solutions), sum(c.vacant_sites), sum(c.sum_x_cm), sum(c.sum_y_cm), min(c.first_id), "
               + ", ".join(f"sum(c.n_{t})" for t in TYPES))
TYPE_CELL_SUMS = ("count(*), sum(p.solutions), count(*) FILTER (WHERE p.vacancy), "
                  "sum(round(ST_X(p.geom_3857) * 100)::bigint), sum(round(ST_Y(p.geom_3857) * 100)::bigint), min(p.id)")
TYPE_PARENT_SUMS = ("sum(c.sites), sum(c.solutions), sum(c.vacant_sites), sum(c.sum_x_cm), sum(c.sum_y_cm), "
                    "min(c.first_id)")

SUMMARIES = f"""
CREATE TABLE site_summary (
    id bigint PRIMARY KEY,
    geom_3857 geometry(Point, 3857) NOT NULL,
    cx integer NOT NULL,  -- the level-{TOP_LEVEL} cell
    cy integer NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    precision text NOT NULL,
    is_example boolean NOT NULL,
    types text[] NOT NULL,  -- offered, in the order of the nomenclature
    solutions integer NOT NULL,
    vacancy boolean NOT NULL,
    vacant_places bigint,
    last_checked_at timestamptz
);
CREATE INDEX idx_site_summary_geom_3857 ON site_summary USING gist (geom_3857);
CREATE INDEX ix_site_summary_cell ON site_summary (cx, cy);

CREATE TABLE site_cell (
    level smallint NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    sites integer NOT NULL,
    solutions integer NOT NULL,
    vacant_sites integer NOT NULL,
    sum_x_cm bigint NOT NULL,  -- for the centroid: sum of the EPSG:3857 x of the sites, in centimetres
    sum_y_cm bigint NOT NULL,
    first_id bigint NOT NULL,
    {", ".join(f"n_{t} integer NOT NULL" for t in TYPES)},
    PRIMARY KEY (level, cx, cy)
);

-- The same pyramid per solution type, for the map filtered on one type (its usual filter): the sites
-- offering that type, their solutions of that type, those with places vacant in it.
CREATE TABLE site_type_cell (
    level smallint NOT NULL,
    type text NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    sites integer NOT NULL,
    solutions integer NOT NULL,
    vacant_sites integer NOT NULL,
    sum_x_cm bigint NOT NULL,
    sum_y_cm bigint NOT NULL,
    first_id bigint NOT NULL,
    PRIMARY KEY (level, type, cx, cy)
);

-- One row per published site and type of its published solutions (a condition on id is applied before
-- grouping)
CREATE VIEW site_type_source AS
    SELECT site.id, s.type, site.geom_3857,
           floor((ST_X(site.geom_3857) + {HALF_WORLD}) / {CELL_SIZE})::int AS cx,
           floor(({HALF_WORLD} - ST_Y(site.geom_3857)) / {CELL_SIZE})::int AS cy,
           count(*)::int AS solutions, coalesce(bool_or(s.vacant_places > 0), false) AS vacancy
    FROM site JOIN solution s ON s.site_id = site.id
    WHERE site.status = 'published' AND s.status = 'published'
    GROUP BY site.id, s.type;

-- The summaries, computed from the rows (a condition on id is applied before grouping)
CREATE VIEW site_summary_source AS
    SELECT g.id, g.geom_3857,
           floor((ST_X(g.geom_3857) + {HALF_WORLD}) / {CELL_SIZE})::int AS cx,
           floor(({HALF_WORLD} - ST_Y(g.geom_3857)) / {CELL_SIZE})::int AS cy,
           g.name, g.kind, g.position_precision AS precision, g.is_example,
           ARRAY(SELECT t FROM unnest({TYPE_ORDER}) WITH ORDINALITY u(t, i) WHERE t = ANY(g.all_types) ORDER BY i)
               AS types,
           g.solutions, g.vacancy, g.vacant_places, g.last_checked_at
    FROM (
        SELECT site.id, site.geom_3857, site.name, site.kind, site.position_precision, site.is_example,
               array_agg(s.type) AS all_types, count(*)::int AS solutions,
               coalesce(bool_or(s.vacant_places > 0), false) AS vacancy, sum(s.vacant_places) AS vacant_places,
               coalesce(site.last_checked_at, max(s.last_checked_at)) AS last_checked_at
        FROM site JOIN solution s ON s.site_id = site.id
        WHERE site.status = 'published' AND s.status = 'published'
        GROUP BY site.id
    ) g;

CREATE FUNCTION site_cells_refresh(xs float8[], ys float8[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lvl int;
    tcx int[];  -- the cells to recompute at the current level
    tcy int[];
    ids bigint[];  -- the sites in the touched level-{TOP_LEVEL} cells
BEGIN
    IF xs IS NULL THEN
        DELETE FROM site_summary;
        INSERT INTO site_summary SELECT * FROM site_summary_source;
        DELETE FROM site_cell;
        INSERT INTO site_cell SELECT {TOP_LEVEL}, p.cx, p.cy, {CELL_SUMS} FROM site_summary p GROUP BY p.cx, p.cy;
        FOR lvl IN REVERSE {TOP_LEVEL - 1}..{BOTTOM_LEVEL} LOOP
            INSERT INTO site_cell
            SELECT lvl, c.cx / 2, c.cy / 2, {PARENT_SUMS}
            FROM site_cell c WHERE c.level = lvl + 1 GROUP BY c.cx / 2, c.cy / 2;
        END LOOP;
        DELETE FROM site_type_cell;
        INSERT INTO site_type_cell
        SELECT {TOP_LEVEL}, p.type, p.cx, p.cy, {TYPE_CELL_SUMS} FROM site_type_source p GROUP BY p.type, p.cx, p.cy;
        FOR lvl IN REVERSE {TOP_LEVEL - 1}..{BOTTOM_LEVEL} LOOP
            INSERT INTO site_type_cell
            SELECT lvl, c.type, c.cx / 2, c.cy / 2, {TYPE_PARENT_SUMS}
            FROM site_type_cell c WHERE c.level = lvl + 1 GROUP BY c.type, c.cx / 2, c.cy / 2;
        END LOOP;
        RETURN;
    END IF;

    SELECT array_agg(cx), array_agg(cy) INTO tcx, tcy FROM (
        SELECT DISTINCT floor((x + {HALF_WORLD}) / {CELL_SIZE})::int AS cx,
                        floor(({HALF_WORLD} - y) / {CELL_SIZE})::int AS cy
        FROM unnest(xs, ys) AS p(x, y)) touched;
    ids := ARRAY(
        SELECT site.id FROM unnest(tcx, tcy) AS t(cx, cy) JOIN site ON site.geom_3857 && ST_MakeEnvelope(
            -{HALF_WORLD} + t.cx * {CELL_SIZE}, {HALF_WORLD} - (t.cy + 1) * {CELL_SIZE},
            -{HALF_WORLD} + (t.cx + 1) * {CELL_SIZE}, {HALF_WORLD} - t.cy * {CELL_SIZE}, 3857));
    DELETE FROM site_summary p USING unnest(tcx, tcy) AS t(cx, cy) WHERE p.cx = t.cx AND p.cy = t.cy;
    INSERT INTO site_summary
    SELECT p.* FROM site_summary_source p
    WHERE p.id = ANY(ids) AND (p.cx, p.cy) IN (SELECT * FROM unnest(tcx, tcy));
    DELETE FROM site_cell c USING unnest(tcx, tcy) AS t(cx, cy)
    WHERE c.level = {TOP_LEVEL} AND c.cx = t.cx AND c.cy = t.cy;
    INSERT INTO site_cell
    SELECT {TOP_LEVEL}, p.cx, p.cy, {CELL_SUMS}
    FROM unnest(tcx, tcy) AS t(cx, cy) JOIN site_summary p ON p.cx = t.cx AND p.cy = t.cy
    GROUP BY p.cx, p.cy;
    DELETE FROM site_type_cell c USING unnest(tcx, tcy) AS t(cx, cy)
    WHERE c.level = {TOP_LEVEL} AND c.cx = t.cx AND c.cy = t.cy;
    INSERT INTO site_type_cell
    SELECT {TOP_LEVEL}, p.type, p.cx, p.cy, {TYPE_CELL_SUMS}
    FROM site_type_source p
    WHERE p.id = ANY(ids) AND (p.cx, p.cy) IN (SELECT * FROM unnest(tcx, tcy))
    GROUP BY p.type, p.cx, p.cy;

    FOR lvl IN REVERSE {TOP_LEVEL - 1}..{BOTTOM_LEVEL} LOOP
        SELECT array_agg(cx), array_agg(cy) INTO tcx, tcy FROM (
            SELECT DISTINCT cx / 2 AS cx, cy / 2 AS cy FROM unnest(tcx, tcy) AS t(cx, cy)) parents;
        DELETE FROM site_cell c USING unnest(tcx, tcy) AS t(cx, cy)
        WHERE c.level = lvl AND c.cx = t.cx AND c.cy = t.cy;
        INSERT INTO site_cell
        SELECT lvl, t.cx, t.cy, {PARENT_SUMS}
        FROM unnest(tcx, tcy) AS t(cx, cy)
        JOIN site_cell c ON c.level = lvl + 1 AND c.cx BETWEEN 2 * t.cx AND 2 * t.cx + 1
                        AND c.cy BETWEEN 2 * t.cy AND 2 * t.cy + 1
        GROUP BY t.cx, t.cy;
        DELETE FROM site_type_cell c USING unnest(tcx, tcy) AS t(cx, cy)
        WHERE c.level = lvl AND c.cx = t.cx AND c.cy = t.cy;
        INSERT INTO site_type_cell
        SELECT lvl, c.type, t.cx, t.cy, {TYPE_PARENT_SUMS}
        FROM unnest(tcx, tcy) AS t(cx, cy)
        JOIN site_type_cell c ON c.level = lvl + 1 AND c.cx BETWEEN 2 * t.cx AND 2 * t.cx + 1
                             AND c.cy BETWEEN 2 * t.cy AND 2 * t.cy + 1
        GROUP BY c.type, t.cx, t.cy;
    END LOOP;
END $$;
"""

# Transition tables allow one event per trigger, hence three triggers (plus TRUNCATE) per table.
TRIGGERS = """
CREATE TRIGGER {table}_changed_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_changed();
CREATE TRIGGER {table}_changed_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_changed();
CREATE TRIGGER {table}_changed_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_changed();
CREATE TRIGGER {table}_changed_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_changed();
"""

# The basemap, precomputed once per reference load (REFRESH MATERIALIZED VIEW at the end of the load).
# Each outline is stored once per zoom band, simplified to about one tile pixel (1/4096 of a tile) at the
# band's deepest zoom: 1.2 km at z3, 306 m at z5, 38 m at z8; communes keep their source outlines.
BASEMAP = """
CREATE MATERIALIZED VIEW basemap_area AS
WITH source AS (
    SELECT 'regions' AS layer, code, name, NULL::text AS kind, geom FROM region
    UNION ALL SELECT 'academies', code, name, NULL, geom FROM academie
    UNION ALL SELECT 'departements', code, name, NULL, geom FROM departement
    UNION ALL SELECT 'communes', code, name, kind, geom FROM commune
), bands (layers, minzoom, maxzoom, tolerance) AS (VALUES
    ('{regions,academies,departements}'::text[], 0, 3, 1223.0),
    ('{regions,academies,departements}', 4, 5, 306.0),
    ('{regions,academies,departements}', 6, 8, 38.0),
    ('{regions,academies,departements}', 9, 22, 0.0),
    ('{communes}', 9, 22, 0.0)
)
SELECT s.layer, s.code, s.name, s.kind, b.minzoom, b.maxzoom,
       ST_Multi(ST_Simplify(ST_Transform(s.geom, 3857), b.tolerance, true))::geometry(MultiPolygon, 3857) AS geom
FROM source s JOIN bands b ON s.layer = ANY(b.layers)
WHERE s.geom IS NOT NULL;
CREATE INDEX idx_basemap_area_geom ON basemap_area USING gist (geom);
CREATE INDEX ix_basemap_area_layer ON basemap_area (layer, minzoom);

-- One label per area, on its largest part, and the zoom from which it is shown.
CREATE MATERIALIZED VIEW basemap_label AS
WITH source AS (
    SELECT 'region' AS layer, code, name, NULL::text AS kind, NULL::int AS population, 0 AS minzoom, geom
    FROM region
    UNION ALL SELECT 'academie', code, name, NULL, NULL, 4, geom FROM academie
    UNION ALL SELECT 'departement', code, name, NULL, NULL, 6, geom FROM departement
    UNION ALL SELECT 'commune', code, name, kind, population, 10, geom FROM commune
)
SELECT s.layer, s.code, s.name, s.kind, s.population, s.minzoom,
       ST_Transform(ST_PointOnSurface(largest.geom), 3857)::geometry(Point, 3857) AS geom
FROM source s
CROSS JOIN LATERAL (SELECT d.geom FROM ST_Dump(s.geom) d ORDER BY ST_Area(d.geom) DESC LIMIT 1) largest
WHERE s.geom IS NOT NULL;
CREATE INDEX idx_basemap_label_geom ON basemap_label USING gist (geom);
"""


def upgrade() -> None:
    op.execute(SITE_MERCATOR)
    op.execute(SUMMARIES)
    op.execute(CHANGE_LOG)
    for table in ("site", "solution"):
        op.execute(TRIGGERS.format(table=table))
    op.execute(BASEMAP)
    op.execute("SELECT site_cells_refresh(NULL, NULL)")  # a database that already holds a catalogue
    # The planner needs statistics on the new column to see that a national tile covers every site.
    if op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM site)")):
        op.execute("ANALYZE site")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW basemap_label")
    op.execute("DROP MATERIALIZED VIEW basemap_area")
    for table in ("site", "solution"):
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_changed_{event} ON {table}")
        op.execute(f"DROP FUNCTION {table}_changed()")
    op.execute("DROP FUNCTION catalogue_record_change(float8[], float8[])")
    op.execute("DROP TABLE catalogue_change")
    op.execute("DROP TABLE catalogue_state")
    op.execute("DROP FUNCTION site_cells_refresh(float8[], float8[])")
    op.execute("DROP VIEW site_summary_source")
    op.execute("DROP TABLE site_cell")
    op.execute("DROP VIEW site_type_source")
    op.execute("DROP TABLE site_type_cell")
    op.execute("DROP TABLE site_summary")
    op.execute("DROP INDEX idx_site_geom_3857")
    op.execute("ALTER TABLE site DROP COLUMN geom_3857")
