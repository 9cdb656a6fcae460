"""The nearest search walks Web Mercator indexes of the published solutions (issue 14).

The nearest search's KNN walk read the geography index of solution.position (and its per-type partial indexes,
migration 0007). That index keeps 3D boxes around the globe, which overlap in dense places: the walk from a
point in Paris read ~200 to 330 index pages at 1M sites (5 to 9 ms), against ~40 elsewhere, and ~180 with the
index rebuilt. The same points as Web Mercator (EPSG:3857) geometries make an index with flat 2D boxes: 20
pages from the same point, 0.26 ms, whether the index was built on the full table or grew row by row. The
search then ranks on the spheroid as before (mapservice.search): the index only finds the candidates.

One partial index for all published solutions, and one per type (as 0007's), for a walk filtered by a rare
type. Expression indexes: nothing to keep in step with the rows. Built inside the migration's transaction
(not CONCURRENTLY), they hold writes to solution while they build: ~20 s for the 12 at 1M sites here.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 18:00:00
"""
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# A copy of mapservice.taxonomy's solution types as they are in this revision.
TYPES = ("places_lycee", "structure_innovante", "apprentissage", "service_civique", "formation_regionale",
         "mission_locale", "clause_sociale", "greta", "accueil_orientation", "e2c", "epide")
MERCATOR = "(ST_Transform(position::geometry, 3857))"


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_solution_published_mercator ON solution USING gist {MERCATOR} "
               "WHERE status = 'published'")
    for t in TYPES:
        op.execute(f"CREATE INDEX ix_solution_published_{t}_mercator ON solution USING gist {MERCATOR} "
                   f"WHERE status = 'published' AND type = '{t}'")


def downgrade() -> None:
    for t in TYPES:
        op.execute(f"DROP INDEX ix_solution_published_{t}_mercator")
    op.execute("DROP INDEX ix_solution_published_mercator")
