"""Catalogue change bookkeeping that lets writers run side by side: a change log ordered by transaction (no
shared version row), per-site summaries, and a cluster pyramid that writers only append signed deltas to.

Before (0003) every statement on site or solution updated the single row catalogue_state and rewrote the
pyramid cells around it, up to the cells shared by the whole country: each writer held those row locks until
its commit, so a bulk import in one long transaction stopped every curator's save until it ended.

Now a statement on site or solution
- takes the row lock of the sites it touches (writers of one site take turns; writers of different sites
  never wait for each other), recomputes their summaries (site_summary, one row per site),
- appends to site_cell_delta / site_type_cell_delta what those summaries added to or took from each cell of
  every level (inserts only: no shared row is updated);
- appends one row to catalogue_change: the transaction id, the sites and solutions it changed, the positions
  it touched.
A tile reads the pyramid through site_cell_live / site_type_cell_live (the folded cells plus the pending
deltas), so it is exact as soon as a writer commits, by MVCC alone. catalogue_fold() moves committed deltas
into site_cell / site_type_cell in a short transaction of its own (run by the tile cache, never by a writer).
A cell's first_id (its smallest site id) becomes id_sum (the sum of its site ids: the site's id when it holds
one), which deltas can add to and take from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 22:00:00
"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _sibling(name: str):
    """Another revision of this folder, as a module (its SQL is what the downgrade goes back to)."""
    spec = importlib.util.spec_from_file_location(f"mapservice_revision_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TILES = _sibling("0003_tiles")
TYPES, TYPE_ORDER, HALF_WORLD, CELL_SIZE = TILES.TYPES, TILES.TYPE_ORDER, TILES.HALF_WORLD, TILES.CELL_SIZE
TOP, BOTTOM = TILES.TOP_LEVEL, TILES.BOTTOM_LEVEL

# Folding and rebuilding the pyramid exclude each other (a rebuild must not meet a half-applied fold).
FOLD_LOCK = "pg_advisory_xact_lock('site_cell'::regclass::oid::bigint)"
TRY_FOLD_LOCK = "pg_try_advisory_xact_lock('site_cell'::regclass::oid::bigint)"

# What a cell adds up, in the order of site_cell's columns after (level, cx, cy) (or (level, type, cx, cy)).
CELL_COLUMNS = ["sites", "solutions", "vacant_sites", "sum_x_cm", "sum_y_cm", "id_sum"] + [f"n_{t}" for t in TYPES]
TYPE_CELL_COLUMNS = CELL_COLUMNS[:6]


def _sums(columns):
    return ", ".join(f"sum(c.{c})" for c in columns)


CHANGE_LOG = """
-- One row per statement that changed the catalogue. Ordered by transaction, not by a shared counter: a reader
-- keeps the snapshot it last read at and next asks for the rows of transactions that snapshot did not see
-- (pg_visible_in_snapshot), so a change that commits after another with a later id is never missed. A public
-- change feed can page through it the same way, with the snapshot as its cursor.
CREATE TABLE catalogue_change (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    changed_at timestamptz NOT NULL DEFAULT now(),
    site_ids bigint[],  -- the sites whose rows or solutions changed; NULL: all of them (TRUNCATE)
    solution_ids bigint[],  -- the solutions changed (empty for a statement on site); NULL: all of them
    -- Positions touched, EPSG:3857, before and after. NULL: too many to list: every tile may have changed.
    xs float8[],
    ys float8[]
);
CREATE INDEX ix_catalogue_change_txid ON catalogue_change (txid);
CREATE INDEX ix_catalogue_change_changed_at ON catalogue_change (changed_at);  -- to prune it

-- Changes of transactions up to `pruned_through` may have been deleted (catalogue_fold keeps a week): a reader
-- whose snapshot is older starts afresh.
CREATE TABLE catalogue_change_horizon (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    pruned_through xid8 NOT NULL DEFAULT '0'
);
INSERT INTO catalogue_change_horizon DEFAULT VALUES;
"""

CELL_TABLE = """
CREATE TABLE {name} (
    level smallint NOT NULL,{type}
    cx integer NOT NULL,
    cy integer NOT NULL,
    sites integer NOT NULL,
    solutions integer NOT NULL,
    vacant_sites integer NOT NULL,
    sum_x_cm bigint NOT NULL,  -- for the centroid: sum of the EPSG:3857 x of the sites, in centimetres
    sum_y_cm bigint NOT NULL,
    id_sum bigint NOT NULL{counts}{key}
);"""


def _cell_tables(name: str, per_type: bool) -> str:
    counts = "" if per_type else "".join(f",\n    n_{t} integer NOT NULL" for t in TYPES)
    key = "(level, type, cx, cy)" if per_type else "(level, cx, cy)"
    typed = "\n    type text NOT NULL," if per_type else ""
    return (CELL_TABLE.format(name=name, type=typed, counts=counts, key=f",\n    PRIMARY KEY {key}")
            + CELL_TABLE.format(name=f"{name}_delta", type=typed, counts=counts, key="")
            + f"\nCREATE INDEX ix_{name}_delta_cell ON {name}_delta {key};\n")


def _live_view(name: str, per_type: bool) -> str:
    key = "level, type, cx, cy" if per_type else "level, cx, cy"
    columns = TYPE_CELL_COLUMNS if per_type else CELL_COLUMNS
    sums = ", ".join(f"sum({c})::{'bigint' if c in ('sum_x_cm', 'sum_y_cm', 'id_sum') else 'int'} AS {c}"
                     for c in columns)
    return f"""
CREATE VIEW {name}_live AS
    SELECT {key}, {sums}
    FROM (SELECT * FROM {name} UNION ALL SELECT * FROM {name}_delta) c
    GROUP BY {key}
    HAVING sum(sites) > 0;
"""


SUMMARY_SOURCE = f"""
-- The summaries computed from the rows; a condition on id selects the sites before their solutions are read.
CREATE VIEW site_summary_source AS
    SELECT site.id, site.geom_3857,
           floor((ST_X(site.geom_3857) + {HALF_WORLD}) / {CELL_SIZE})::int AS cx,
           floor(({HALF_WORLD} - ST_Y(site.geom_3857)) / {CELL_SIZE})::int AS cy,
           site.name, site.kind, site.position_precision AS precision, site.is_example,
           t.types, t.type_solutions, t.type_vacancy, t.solutions, t.vacancy, t.vacant_places,
           coalesce(site.last_checked_at, t.last_checked_at) AS last_checked_at
    FROM site CROSS JOIN LATERAL (
        SELECT array_agg(per_type.type ORDER BY per_type.rank) AS types,
               array_agg(per_type.solutions ORDER BY per_type.rank) AS type_solutions,
               array_agg(per_type.vacancy ORDER BY per_type.rank) AS type_vacancy,
               sum(per_type.solutions)::int AS solutions, bool_or(per_type.vacancy) AS vacancy,
               sum(per_type.vacant_places) AS vacant_places, max(per_type.last_checked_at) AS last_checked_at
        FROM (
            SELECT s.type, array_position({TYPE_ORDER}, s.type::text) AS rank, count(*)::int AS solutions,
                   coalesce(bool_or(s.vacant_places > 0), false) AS vacancy, sum(s.vacant_places) AS vacant_places,
                   max(s.last_checked_at) AS last_checked_at
            FROM solution s
            WHERE s.site_id = site.id AND s.status = 'published'
            GROUP BY s.type
        ) per_type
    ) t
    WHERE site.status = 'published' AND t.types IS NOT NULL;
"""


# What the map shows when no filter applies (see 0003): one row per published site offering a published
# solution, with per type of its solutions their number and whether one has places vacant (what the site adds
# to the per-type pyramid).
SUMMARIES = f"""
CREATE TABLE site_summary (
    id bigint PRIMARY KEY,
    geom_3857 geometry(Point, 3857) NOT NULL,
    cx integer NOT NULL,  -- the level-{TOP} cell
    cy integer NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    precision text NOT NULL,
    is_example boolean NOT NULL,
    types text[] NOT NULL,  -- offered, in the order of the nomenclature
    type_solutions integer[] NOT NULL,  -- per type of `types`: its published solutions
    type_vacancy boolean[] NOT NULL,  -- per type of `types`: one of them has places vacant
    solutions integer NOT NULL,
    vacancy boolean NOT NULL,
    vacant_places bigint,
    last_checked_at timestamptz
);
CREATE INDEX idx_site_summary_geom_3857 ON site_summary USING gist (geom_3857);
CREATE INDEX ix_site_summary_cell ON site_summary (cx, cy);
""" + SUMMARY_SOURCE + _cell_tables("site_cell", per_type=False) + _cell_tables("site_type_cell", per_type=True) \
    + _live_view("site_cell", per_type=False) + _live_view("site_type_cell", per_type=True)

# What one summary row `p` adds to its cells; two rows equal on these add the same.
CONTRIBUTION = ("p.id, p.cx, p.cy, round(ST_X(p.geom_3857) * 100)::bigint AS x_cm, "
                "round(ST_Y(p.geom_3857) * 100)::bigint AS y_cm, p.solutions, p.vacancy, p.types, p.type_solutions, "
                "p.type_vacancy")
CELL_TERMS = (["c.sign", "c.sign * c.solutions", "CASE WHEN c.vacancy THEN c.sign ELSE 0 END",
               "c.sign * c.x_cm", "c.sign * c.y_cm", "c.sign * c.id"]
              + [f"CASE WHEN '{t}' = ANY(c.types) THEN c.sign ELSE 0 END" for t in TYPES])
TYPE_CELL_TERMS = ["c.sign", "c.sign * t.solutions", "CASE WHEN t.vacancy THEN c.sign ELSE 0 END",
                   "c.sign * c.x_cm", "c.sign * c.y_cm", "c.sign * c.id"]


def _explode(table: str, source: str, columns: list[str], per_type: bool) -> str:
    """Level-{TOP} sums `source` spread over every level of the pyramid, into `table`."""
    typed = "c.type, " if per_type else ""
    return f"""INSERT INTO {table}
        SELECT lvl, {typed}c.cx >> ({TOP} - lvl), c.cy >> ({TOP} - lvl), {_sums(columns)}
        FROM {source} c CROSS JOIN generate_series({BOTTOM}, {TOP}) AS lvl
        GROUP BY lvl, {typed}c.cx >> ({TOP} - lvl), c.cy >> ({TOP} - lvl)"""


def _fold(table: str, key: str, columns: list[str], count: str = "sites") -> str:
    """The committed deltas of `table` added into it; the cells left with no site (`count` 0) removed."""
    keys = key.split(", ")
    updates = ", ".join(f"{c} = t.{c} + excluded.{c}" for c in columns)
    return f"""WITH moved AS (DELETE FROM {table}_delta RETURNING *),
    summed AS (SELECT {key}, {", ".join(f"sum({c}) AS {c}" for c in columns)} FROM moved GROUP BY {key}),
    folded AS (
        INSERT INTO {table} AS t SELECT * FROM summed
        ON CONFLICT ({key}) DO UPDATE SET {updates}
        RETURNING {key}, {count}
    )
    SELECT n + count(*), {", ".join(f"array_agg({k}) FILTER (WHERE {count} = 0)" for k in keys)}
    INTO n, {", ".join(f"empty_{k}" for k in keys)} FROM folded;
    DELETE FROM {table} t USING unnest({", ".join(f"empty_{k}" for k in keys)}) AS e({key})
    WHERE ({", ".join(f"t.{k}" for k in keys)}) = ({", ".join(f"e.{k}" for k in keys)});"""


FUNCTIONS = f"""
-- The sites `ids` changed: their summaries are recomputed and what that changes in the pyramid is appended
-- to the delta tables. Planned once per session (generic plans): planning these statements anew for each
-- edit cost four times their running (~10 ms against 2.5 ms for a site edit).
CREATE FUNCTION site_cells_change(ids bigint[]) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    before site_summary[];
BEGIN
    -- Whoever changed these sites before has committed once the locks are ours, and (read committed) the
    -- next statements see what they did: summaries and deltas follow each other site by site.
    PERFORM 1 FROM site WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
    WITH gone AS (DELETE FROM site_summary WHERE id = ANY(ids) RETURNING *)
    SELECT array_agg(gone) INTO before FROM gone;
    WITH after AS (
        INSERT INTO site_summary SELECT * FROM site_summary_source WHERE id = ANY(ids) RETURNING *
    ), changed AS (  -- the contributions that differ: +1 the new ones, -1 the old ones
        SELECT 1 AS sign, * FROM (SELECT {CONTRIBUTION} FROM after p
                                  EXCEPT ALL SELECT {CONTRIBUTION} FROM unnest(before) p) added
        UNION ALL
        SELECT -1, * FROM (SELECT {CONTRIBUTION} FROM unnest(before) p
                           EXCEPT ALL SELECT {CONTRIBUTION} FROM after p) removed
    ), top_cells AS (
        SELECT c.cx, c.cy, {", ".join(f"sum({term}) AS {col}" for term, col in zip(CELL_TERMS, CELL_COLUMNS))}
        FROM changed c GROUP BY c.cx, c.cy
    ), top_type_cells AS (
        SELECT t.type, c.cx, c.cy,
               {", ".join(f"sum({term}) AS {col}" for term, col in zip(TYPE_CELL_TERMS, TYPE_CELL_COLUMNS))}
        FROM changed c CROSS JOIN unnest(c.types, c.type_solutions, c.type_vacancy) AS t(type, solutions, vacancy)
        GROUP BY t.type, c.cx, c.cy
    ), cells AS (
        {_explode("site_cell_delta", "top_cells", CELL_COLUMNS, per_type=False)}
    )
    {_explode("site_type_cell_delta", "top_type_cells", TYPE_CELL_COLUMNS, per_type=True)};
END $$;

-- Everything recomputed from the rows (migrations, TRUNCATE, checks).
CREATE FUNCTION site_cells_rebuild() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lvl int;
BEGIN
    PERFORM {FOLD_LOCK};
    DELETE FROM site_summary;
    INSERT INTO site_summary SELECT * FROM site_summary_source;
    DELETE FROM site_cell_delta;
    DELETE FROM site_type_cell_delta;
    DELETE FROM site_cell;
    DELETE FROM site_type_cell;
    INSERT INTO site_cell
    SELECT {TOP}, c.cx, c.cy, count(*), sum(c.solutions), count(*) FILTER (WHERE c.vacancy),
           sum(c.x_cm), sum(c.y_cm), sum(c.id), {", ".join(f"count(*) FILTER (WHERE '{t}' = ANY(c.types))" for t in TYPES)}
    FROM (SELECT {CONTRIBUTION} FROM site_summary p) c GROUP BY c.cx, c.cy;
    INSERT INTO site_type_cell
    SELECT {TOP}, t.type, c.cx, c.cy, count(*), sum(t.solutions), count(*) FILTER (WHERE t.vacancy),
           sum(c.x_cm), sum(c.y_cm), sum(c.id)
    FROM (SELECT {CONTRIBUTION} FROM site_summary p) c
    CROSS JOIN unnest(c.types, c.type_solutions, c.type_vacancy) AS t(type, solutions, vacancy)
    GROUP BY t.type, c.cx, c.cy;
    FOR lvl IN REVERSE {TOP - 1}..{BOTTOM} LOOP
        INSERT INTO site_cell
        SELECT lvl, c.cx / 2, c.cy / 2, {_sums(CELL_COLUMNS)}
        FROM site_cell c WHERE c.level = lvl + 1 GROUP BY c.cx / 2, c.cy / 2;
        INSERT INTO site_type_cell
        SELECT lvl, c.type, c.cx / 2, c.cy / 2, {_sums(TYPE_CELL_COLUMNS)}
        FROM site_type_cell c WHERE c.level = lvl + 1 GROUP BY c.type, c.cx / 2, c.cy / 2;
    END LOOP;
END $$;

-- Moves the committed deltas into the pyramid, in the caller's (short) transaction; returns how many cells
-- it changed. Changes older than `keep` leave the log. Does nothing on a standby or while another fold or a
-- rebuild runs.
CREATE FUNCTION catalogue_fold(keep interval DEFAULT '7 days') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;  -- cells changed
    empty_level smallint[];  -- the cells left with no site
    empty_type text[];
    empty_cx int[];
    empty_cy int[];
BEGIN
    IF pg_is_in_recovery() OR NOT {TRY_FOLD_LOCK} THEN
        RETURN 0;
    END IF;
    {_fold("site_cell", "level, cx, cy", CELL_COLUMNS)}
    {_fold("site_type_cell", "level, type, cx, cy", TYPE_CELL_COLUMNS)}
    WITH pruned AS (DELETE FROM catalogue_change WHERE changed_at < now() - keep RETURNING txid)
    UPDATE catalogue_change_horizon SET pruned_through = greatest(pruned_through, (SELECT max(txid) FROM pruned))
    WHERE EXISTS (SELECT FROM pruned);
    RETURN n;
END $$;

-- One statement on site or solution changed the rows `ids` of `tbl`, of the sites `site_ids`, at `xs`, `ys`.
CREATE FUNCTION catalogue_record_change(tbl text, ids bigint[], site_ids bigint[], xs float8[], ys float8[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    site_ids := ARRAY(SELECT DISTINCT unnest(site_ids) ORDER BY 1);
    PERFORM site_cells_change(site_ids);
    SELECT array_agg(x), array_agg(y) INTO xs, ys FROM (SELECT DISTINCT x, y FROM unnest(xs, ys) AS p(x, y)) touched;
    IF cardinality(xs) > 1000 THEN
        xs := NULL; ys := NULL;
    END IF;
    INSERT INTO catalogue_change (site_ids, solution_ids, xs, ys)
    VALUES (site_ids, CASE WHEN tbl = 'solution' THEN ARRAY(SELECT DISTINCT unnest(ids) ORDER BY 1) ELSE '{{}}' END,
            xs, ys);
END $$;
"""


# One template for both tables; `site_id` and `position` say how a row gives its site and its position.
TRIGGER_FUNCTION = """
CREATE FUNCTION {table}_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[] := '{{}}';
    site_ids bigint[] := '{{}}';
    xs float8[] := '{{}}';
    ys float8[] := '{{}}';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM site_cells_rebuild();
        INSERT INTO catalogue_change (site_ids, solution_ids, xs, ys) VALUES (NULL, NULL, NULL, NULL);
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN  -- the rows before
        SELECT ids || array_agg(id), site_ids || array_agg({site_id}), xs || array_agg(ST_X(p)),
               ys || array_agg(ST_Y(p))
        INTO ids, site_ids, xs, ys FROM (SELECT *, {position} AS p FROM old_rows) r;
    END IF;
    IF TG_OP <> 'DELETE' THEN  -- the rows after
        SELECT ids || array_agg(id), site_ids || array_agg({site_id}), xs || array_agg(ST_X(p)),
               ys || array_agg(ST_Y(p))
        INTO ids, site_ids, xs, ys FROM (SELECT *, {position} AS p FROM new_rows) r;
    END IF;
    PERFORM catalogue_record_change('{table}', ids, site_ids, xs, ys);
    RETURN NULL;
END $$;
"""
POSITIONS = {"site": ("id", "geom_3857"), "solution": ("site_id", "ST_Transform(position::geometry, 3857)")}

DROP_0003 = """
DROP FUNCTION site_changed();
DROP FUNCTION solution_changed();
DROP FUNCTION catalogue_record_change(float8[], float8[]);
DROP FUNCTION site_cells_refresh(float8[], float8[]);
DROP TABLE catalogue_change;
DROP TABLE catalogue_state;
DROP VIEW site_summary_source;
DROP VIEW site_type_source;
DROP TABLE site_cell;
DROP TABLE site_type_cell;
DROP TABLE site_summary;
"""

DROP_0006 = """
DROP FUNCTION site_changed();
DROP FUNCTION solution_changed();
DROP FUNCTION catalogue_record_change(text, bigint[], bigint[], float8[], float8[]);
DROP FUNCTION catalogue_fold(interval);
DROP FUNCTION site_cells_rebuild();
DROP FUNCTION site_cells_change(bigint[]);
DROP TABLE catalogue_change_horizon;
DROP TABLE catalogue_change;
DROP VIEW site_cell_live;
DROP VIEW site_type_cell_live;
DROP VIEW site_summary_source;
DROP TABLE site_cell_delta;
DROP TABLE site_type_cell_delta;
DROP TABLE site_cell;
DROP TABLE site_type_cell;
DROP TABLE site_summary;
"""


def _drop_triggers() -> None:
    for table in ("site", "solution"):
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_changed_{event} ON {table}")


def _analyze_catalogue() -> None:
    if op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM site)")):
        op.execute("ANALYZE site_summary; ANALYZE site_cell; ANALYZE site_type_cell")


def upgrade() -> None:
    _drop_triggers()
    op.execute(DROP_0003)
    op.execute(CHANGE_LOG)
    op.execute(SUMMARIES)
    op.execute(FUNCTIONS)
    for table, (site_id, position) in POSITIONS.items():
        op.execute(TRIGGER_FUNCTION.format(table=table, site_id=site_id, position=position))
        op.execute(TILES.TRIGGERS.format(table=table))
    op.execute("SELECT site_cells_rebuild()")  # a database that already holds a catalogue
    _analyze_catalogue()


def downgrade() -> None:
    _drop_triggers()
    op.execute(DROP_0006)
    op.execute(TILES.SUMMARIES)
    op.execute(TILES.CHANGE_LOG)
    for table in ("site", "solution"):
        op.execute(TILES.TRIGGERS.format(table=table))
    op.execute("SELECT site_cells_refresh(NULL, NULL)")
    _analyze_catalogue()
