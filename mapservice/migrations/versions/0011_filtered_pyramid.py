"""A cluster pyramid for every filter the map page offers (types, voies, service civique formulas, places
vacant), instead of one for the unfiltered map and one per single type.

A solution falls in exactly one class: its type, its voie (or none) and, for service civique, its formula
(solution_class: 48 classes, each a bit of a bigint). The page's filters keep a set of classes, and a solution
passes them when its class is in the set (and, with « places libres », when it has places vacant). So:
- a site passes when the bits of its solutions' classes (`offered`, or `vacant` for those with places vacant)
  meet the filters' bits;
- site_profile_cell sums the sites of each cell per (offered, vacant): sites, centroid, id_sum;
- site_class_cell sums the solutions of each cell per class, and those with places vacant among them.
A filtered clustered tile adds up the groups of its cells whose bits meet the filters', and the solutions of
the kept classes, instead of aggregating the rows of every site of the tile. Both tables are kept like the
others of 0006: writers append signed deltas, catalogue_fold adds them in. site_type_cell (one type and
nothing else) is what they replace.

Every pyramid also goes two levels deeper (16: cells of ~600 m), so that the tiles of z12 and z13 can gather
the sites of a dense cell into a cluster: at 1M sites a z12 tile of Paris held 12,700 sites.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 07:30:00
"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"mapservice_revision_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHANGES = _sibling("0006_catalogue_changes")
TYPES, BOTTOM = CHANGES.TYPES, CHANGES.BOTTOM
# Two levels deeper than 0006 (14): cells of ~600 m, so that city tiles (z12, z13) can gather the sites of
# their densest cells too.
TOP = 16
CELL_SIZE = f"({2 * CHANGES.HALF_WORLD} / {1 << TOP})"
VOIES = ("professionnelle", "generale", "technologique")  # the check constraint of solution.voie
FORMULAS = ("plein_temps", "combinee")  # set for service civique, and only for it

# (type, voie, formula) of every class, in bit order.
CLASSES = [(t, v, f) for t in TYPES for f in (FORMULAS if t == "service_civique" else (None,))
           for v in (None, *VOIES)]
CLASS_KEY = "{type}::text || '/' || coalesce({voie}, '') || '/' || coalesce({formula}, '')"


def _literal(value):
    return "NULL" if value is None else f"'{value}'"


SOLUTION_CLASSES = """
CREATE TABLE solution_class (
    bit smallint CONSTRAINT pk_solution_class PRIMARY KEY CONSTRAINT ck_solution_class_bit CHECK (bit BETWEEN 0 AND 62),
    type text NOT NULL,
    voie text,
    service_civique_formula text,
    key text NOT NULL CONSTRAINT uq_solution_class_key UNIQUE  -- what a solution's own columns give (CLASS_KEY)
);
INSERT INTO solution_class (bit, type, voie, service_civique_formula, key) VALUES
""" + ",\n".join(
    f"    ({bit}, '{t}', {_literal(v)}, {_literal(f)}, '{t}/{v or ''}/{f or ''}')"
    for bit, (t, v, f) in enumerate(CLASSES)) + ";\n"

SUMMARY_COLUMNS = """
ALTER TABLE site_summary
    ADD COLUMN offered bigint NOT NULL DEFAULT 0,  -- the bits of its published solutions' classes
    ADD COLUMN vacant bigint NOT NULL DEFAULT 0,  -- the same for those with places vacant
    ADD COLUMN class_bits smallint[] NOT NULL DEFAULT '{}',  -- its classes, in bit order
    ADD COLUMN class_solutions integer[] NOT NULL DEFAULT '{}',  -- per class: its published solutions
    ADD COLUMN class_vacant_solutions integer[] NOT NULL DEFAULT '{}';  -- per class: those with places vacant
ALTER TABLE site_summary ALTER COLUMN offered DROP DEFAULT, ALTER COLUMN vacant DROP DEFAULT,
    ALTER COLUMN class_bits DROP DEFAULT, ALTER COLUMN class_solutions DROP DEFAULT,
    ALTER COLUMN class_vacant_solutions DROP DEFAULT;
"""

# 0006's view with the classes appended (a view can only grow at its end).
SUMMARY_SOURCE = CHANGES.SUMMARY_SOURCE.replace("CREATE VIEW", "CREATE OR REPLACE VIEW").replace(
    CHANGES.CELL_SIZE, CELL_SIZE).replace(
    "coalesce(site.last_checked_at, t.last_checked_at) AS last_checked_at",
    "coalesce(site.last_checked_at, t.last_checked_at) AS last_checked_at,\n"
    "           k.offered, k.vacant, k.class_bits, k.class_solutions, k.class_vacant_solutions",
).replace("    ) t\n", f"""    ) t
    CROSS JOIN LATERAL (
        SELECT bit_or(1::bigint << per_class.bit) AS offered,
               coalesce(bit_or(1::bigint << per_class.bit) FILTER (WHERE per_class.vacant_solutions > 0), 0)
                   AS vacant,
               array_agg(per_class.bit ORDER BY per_class.bit) AS class_bits,
               array_agg(per_class.solutions ORDER BY per_class.bit) AS class_solutions,
               array_agg(per_class.vacant_solutions ORDER BY per_class.bit) AS class_vacant_solutions
        FROM (
            SELECT c.bit, count(*)::int AS solutions, count(*) FILTER (WHERE s.vacant_places > 0)::int
                       AS vacant_solutions
            FROM solution s JOIN solution_class c
                ON c.key = {CLASS_KEY.format(type="s.type", voie="s.voie", formula="s.service_civique_formula")}
            WHERE s.site_id = site.id AND s.status = 'published'
            GROUP BY c.bit
        ) per_class
    ) k
""")
assert SUMMARY_SOURCE.count("per_class") > 5 and SUMMARY_SOURCE.count(CELL_SIZE) == 2, \
    "0006's view is not what this revision extends"

PROFILE_COLUMNS = ["sites", "sum_x_cm", "sum_y_cm", "id_sum"]
CLASS_COLUMNS = ["solutions", "vacant_solutions"]

CELLS = f"""
CREATE TABLE site_profile_cell (
    level smallint NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    offered bigint NOT NULL,
    vacant bigint NOT NULL,
    sites integer NOT NULL,
    sum_x_cm bigint NOT NULL,
    sum_y_cm bigint NOT NULL,
    id_sum bigint NOT NULL,
    PRIMARY KEY (level, cx, cy, offered, vacant)
);
CREATE TABLE site_profile_cell_delta (LIKE site_profile_cell);
CREATE INDEX ix_site_profile_cell_delta_cell ON site_profile_cell_delta (level, cx, cy, offered, vacant);
CREATE TABLE site_class_cell (
    level smallint NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    class smallint NOT NULL,
    solutions integer NOT NULL,
    vacant_solutions integer NOT NULL,
    PRIMARY KEY (level, cx, cy, class)
);
CREATE TABLE site_class_cell_delta (LIKE site_class_cell);
CREATE INDEX ix_site_class_cell_delta_cell ON site_class_cell_delta (level, cx, cy, class);

CREATE VIEW site_profile_cell_live AS
    SELECT level, cx, cy, offered, vacant, sum(sites)::int AS sites, sum(sum_x_cm)::bigint AS sum_x_cm,
           sum(sum_y_cm)::bigint AS sum_y_cm, sum(id_sum)::bigint AS id_sum
    FROM (SELECT * FROM site_profile_cell UNION ALL SELECT * FROM site_profile_cell_delta) c
    GROUP BY level, cx, cy, offered, vacant
    HAVING sum(sites) > 0;
CREATE VIEW site_class_cell_live AS
    SELECT level, cx, cy, class, sum(solutions)::int AS solutions, sum(vacant_solutions)::int AS vacant_solutions
    FROM (SELECT * FROM site_class_cell UNION ALL SELECT * FROM site_class_cell_delta) c
    GROUP BY level, cx, cy, class
    HAVING sum(solutions) > 0;
"""

CONTRIBUTION = CHANGES.CONTRIBUTION + ", p.offered, p.vacant, p.class_bits, p.class_solutions, p.class_vacant_solutions"
PROFILE_TERMS = ["c.sign", "c.sign * c.x_cm", "c.sign * c.y_cm", "c.sign * c.id"]
CLASS_TERMS = ["c.sign * k.solutions", "c.sign * k.vacant_solutions"]


def _sums(columns):
    return ", ".join(f"sum(c.{c})" for c in columns)


def _explode(table: str, source: str, columns: list[str], keys: str = "") -> str:
    """Level-{TOP} sums `source` (per cell and `keys`) spread over every level of the pyramid, into `table`."""
    keys = f", {keys}" if keys else ""
    return f"""INSERT INTO {table}
        SELECT lvl, c.cx >> ({TOP} - lvl), c.cy >> ({TOP} - lvl){keys}, {_sums(columns)}
        FROM {source} c CROSS JOIN generate_series({BOTTOM}, {TOP}) AS lvl
        GROUP BY lvl, c.cx >> ({TOP} - lvl), c.cy >> ({TOP} - lvl){keys}"""


FUNCTIONS = f"""
-- As in 0006, with the profile and class cells instead of the per-type ones, and two levels more.
CREATE OR REPLACE FUNCTION site_cells_change(ids bigint[]) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    before site_summary[];
BEGIN
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
        SELECT c.cx, c.cy,
               {", ".join(f"sum({term}) AS {col}" for term, col in zip(CHANGES.CELL_TERMS, CHANGES.CELL_COLUMNS))}
        FROM changed c GROUP BY c.cx, c.cy
    ), top_profile_cells AS (
        SELECT c.cx, c.cy, c.offered, c.vacant,
               {", ".join(f"sum({term}) AS {col}" for term, col in zip(PROFILE_TERMS, PROFILE_COLUMNS))}
        FROM changed c GROUP BY c.cx, c.cy, c.offered, c.vacant
    ), top_class_cells AS (
        SELECT c.cx, c.cy, k.bit,
               {", ".join(f"sum({term}) AS {col}" for term, col in zip(CLASS_TERMS, CLASS_COLUMNS))}
        FROM changed c
        CROSS JOIN unnest(c.class_bits, c.class_solutions, c.class_vacant_solutions) AS k(bit, solutions, vacant_solutions)
        GROUP BY c.cx, c.cy, k.bit
    ), cells AS (
        {_explode("site_cell_delta", "top_cells", CHANGES.CELL_COLUMNS)}
    ), profile_cells AS (
        {_explode("site_profile_cell_delta", "top_profile_cells", PROFILE_COLUMNS, keys="c.offered, c.vacant")}
    )
    {_explode("site_class_cell_delta", "top_class_cells", CLASS_COLUMNS, keys="c.bit")};
END $$;

CREATE OR REPLACE FUNCTION site_cells_rebuild() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lvl int;
BEGIN
    PERFORM {CHANGES.FOLD_LOCK};
    DELETE FROM site_summary;
    -- rows in the order tiles read them (a city tile reads its sparse cells' sites by cell)
    INSERT INTO site_summary SELECT * FROM site_summary_source ORDER BY cx, cy;
    DELETE FROM site_cell_delta;
    DELETE FROM site_profile_cell_delta;
    DELETE FROM site_class_cell_delta;
    DELETE FROM site_cell;
    DELETE FROM site_profile_cell;
    DELETE FROM site_class_cell;
    INSERT INTO site_cell
    SELECT {TOP}, c.cx, c.cy, count(*), sum(c.solutions), count(*) FILTER (WHERE c.vacancy),
           sum(c.x_cm), sum(c.y_cm), sum(c.id), {", ".join(f"count(*) FILTER (WHERE '{t}' = ANY(c.types))" for t in TYPES)}
    FROM (SELECT {CONTRIBUTION} FROM site_summary p) c GROUP BY c.cx, c.cy ORDER BY c.cx, c.cy;
    INSERT INTO site_profile_cell
    SELECT {TOP}, c.cx, c.cy, c.offered, c.vacant, count(*), sum(c.x_cm), sum(c.y_cm), sum(c.id)
    FROM (SELECT {CONTRIBUTION} FROM site_summary p) c GROUP BY c.cx, c.cy, c.offered, c.vacant
    ORDER BY c.cx, c.cy, c.offered, c.vacant;
    INSERT INTO site_class_cell
    SELECT {TOP}, c.cx, c.cy, k.bit, sum(k.solutions), sum(k.vacant_solutions)
    FROM site_summary c
    CROSS JOIN unnest(c.class_bits, c.class_solutions, c.class_vacant_solutions) AS k(bit, solutions, vacant_solutions)
    GROUP BY c.cx, c.cy, k.bit ORDER BY c.cx, c.cy, k.bit;
    FOR lvl IN REVERSE {TOP - 1}..{BOTTOM} LOOP
        INSERT INTO site_cell
        SELECT lvl, c.cx / 2, c.cy / 2, {_sums(CHANGES.CELL_COLUMNS)}
        FROM site_cell c WHERE c.level = lvl + 1 GROUP BY c.cx / 2, c.cy / 2 ORDER BY 2, 3;
        INSERT INTO site_profile_cell
        SELECT lvl, c.cx / 2, c.cy / 2, c.offered, c.vacant, {_sums(PROFILE_COLUMNS)}
        FROM site_profile_cell c WHERE c.level = lvl + 1 GROUP BY c.cx / 2, c.cy / 2, c.offered, c.vacant
        ORDER BY 2, 3, 4, 5;
        INSERT INTO site_class_cell
        SELECT lvl, c.cx / 2, c.cy / 2, c.class, {_sums(CLASS_COLUMNS)}
        FROM site_class_cell c WHERE c.level = lvl + 1 GROUP BY c.cx / 2, c.cy / 2, c.class ORDER BY 2, 3, 4;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION catalogue_fold(keep interval DEFAULT '7 days') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;  -- cells changed
    empty_level smallint[];  -- the cells left with no site (or no solution)
    empty_cx int[];
    empty_cy int[];
    empty_offered bigint[];
    empty_vacant bigint[];
    empty_class smallint[];
BEGIN
    IF pg_is_in_recovery() OR NOT {CHANGES.TRY_FOLD_LOCK} THEN
        RETURN 0;
    END IF;
    {CHANGES._fold("site_cell", "level, cx, cy", CHANGES.CELL_COLUMNS)}
    {CHANGES._fold("site_profile_cell", "level, cx, cy, offered, vacant", PROFILE_COLUMNS)}
    {CHANGES._fold("site_class_cell", "level, cx, cy, class", CLASS_COLUMNS, count="solutions")}
    WITH pruned AS (DELETE FROM catalogue_change WHERE changed_at < now() - keep RETURNING txid)
    UPDATE catalogue_change_horizon SET pruned_through = greatest(pruned_through, (SELECT max(txid) FROM pruned))
    WHERE EXISTS (SELECT FROM pruned);
    RETURN n;
END $$;
"""

DROP_TYPE_CELLS = """
DROP VIEW site_type_cell_live;
DROP TABLE site_type_cell_delta;
DROP TABLE site_type_cell;
"""

DROP_0011 = """
DROP VIEW site_profile_cell_live;
DROP VIEW site_class_cell_live;
DROP TABLE site_profile_cell_delta;
DROP TABLE site_profile_cell;
DROP TABLE site_class_cell_delta;
DROP TABLE site_class_cell;
DROP VIEW site_summary_source;
ALTER TABLE site_summary DROP COLUMN offered, DROP COLUMN vacant, DROP COLUMN class_bits,
    DROP COLUMN class_solutions, DROP COLUMN class_vacant_solutions;
DROP TABLE solution_class;
DROP FUNCTION site_cells_change(bigint[]);
DROP FUNCTION site_cells_rebuild();
DROP FUNCTION catalogue_fold(interval);
DROP FUNCTION catalogue_record_change(text, bigint[], bigint[], float8[], float8[]);
"""


def _analyze() -> None:
    if op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM site)")):
        op.execute("ANALYZE site_summary; ANALYZE site_cell; ANALYZE site_profile_cell; ANALYZE site_class_cell")


def upgrade() -> None:
    op.execute(SOLUTION_CLASSES)
    op.execute(SUMMARY_COLUMNS)
    op.execute(SUMMARY_SOURCE)
    op.execute(DROP_TYPE_CELLS)
    op.execute(CELLS)
    op.execute(FUNCTIONS)
    op.execute("SELECT site_cells_rebuild()")
    _analyze()


def downgrade() -> None:
    op.execute(DROP_0011)
    op.execute(CHANGES.SUMMARY_SOURCE)
    op.execute(CHANGES._cell_tables("site_type_cell", per_type=True) + CHANGES._live_view("site_type_cell", per_type=True))
    op.execute(CHANGES.FUNCTIONS)
    op.execute("SELECT site_cells_rebuild()")
    if op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM site)")):
        op.execute("ANALYZE site_summary; ANALYZE site_cell; ANALYZE site_type_cell")
