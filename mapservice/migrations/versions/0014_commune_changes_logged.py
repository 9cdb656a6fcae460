"""A commune renamed or attached elsewhere is a change of its sites and solutions in the catalogue's log (issue 12).

Their features carry the commune's name (and a site's, its département and académie): 0012's row trigger on
commune renders them again, but logged nothing, so an app following the change feed kept the old name until it
downloaded a new bundle. The trigger now also logs, in `catalogue_change`, the commune's sites and their
solutions at the sites' positions (as 0006 logs a statement on site or solution: ids sorted, positions given
once, none past 1,000 positions). The feed then gives them again, and the tile caches, told by the row (0013),
let go of the tiles around them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 10:30:00
"""
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

LOGGED = """
CREATE OR REPLACE FUNCTION commune_features_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    site_ids bigint[] := ARRAY(SELECT id FROM site WHERE commune_code = NEW.code ORDER BY id);
    solution_ids bigint[] := ARRAY(SELECT s.id FROM site JOIN solution s ON s.site_id = site.id
                                   WHERE site.commune_code = NEW.code ORDER BY s.id);
    xs float8[];
    ys float8[];
BEGIN
    PERFORM catalogue_features_refresh(site_ids, solution_ids);
    IF cardinality(site_ids) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(x), array_agg(y) INTO xs, ys FROM (
        SELECT DISTINCT ST_X(geom_3857) AS x, ST_Y(geom_3857) AS y FROM site WHERE commune_code = NEW.code) touched;
    IF cardinality(xs) > 1000 THEN
        xs := NULL; ys := NULL;
    END IF;
    INSERT INTO catalogue_change (site_ids, solution_ids, xs, ys) VALUES (site_ids, solution_ids, xs, ys);
    RETURN NULL;
END $$;
"""

# 0012's, as it was.
RENDERED_ONLY = """
CREATE OR REPLACE FUNCTION commune_features_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM catalogue_features_refresh(
        ARRAY(SELECT id FROM site WHERE commune_code = NEW.code ORDER BY id),
        ARRAY(SELECT s.id FROM site JOIN solution s ON s.site_id = site.id WHERE site.commune_code = NEW.code
              ORDER BY s.id));
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(LOGGED)


def downgrade() -> None:
    op.execute(RENDERED_ONLY)
