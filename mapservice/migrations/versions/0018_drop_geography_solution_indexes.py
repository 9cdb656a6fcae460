"""The geography indexes of solution.position go: nothing reads them any more.

The nearest search walks the Web Mercator indexes since 0017, and now the report's distances do too
(mapservice.reporting.distances: exact on the ellipsoid, from the first solution of the walk and the Mercator box
of its distance). The geography index (0001) and its per-type partial indexes (0007) only cost every write
to solution, and their disk.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 20:00:00
"""
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# A copy of mapservice.taxonomy's solution types as they are in this revision.
TYPES = ("places_lycee", "structure_innovante", "apprentissage", "service_civique", "formation_regionale",
         "mission_locale", "clause_sociale", "greta", "accueil_orientation", "e2c", "epide")


def upgrade() -> None:
    op.drop_index('idx_solution_position', table_name='solution')
    for t in TYPES:
        op.drop_index(f'ix_solution_published_{t}', table_name='solution')


def downgrade() -> None:
    op.execute("CREATE INDEX idx_solution_position ON solution USING gist (position)")
    for t in TYPES:
        op.execute(f"CREATE INDEX ix_solution_published_{t} ON solution USING gist (position) "
                   f"WHERE status = 'published' AND type = '{t}'")
