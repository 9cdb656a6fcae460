"""The catalogue announces its changes (issue 14): NOTIFY catalogue_changed when a transaction commits.

The tile cache of each process read the catalogue's changes on every request (one round trip, mapservice.tiles:
CACHE_STATE), which halved the throughput of cached tiles. It now LISTENs on `catalogue_changed` and reads the
changes only once one was announced (or its own process committed, or a second has passed). The announcement
rides on what every catalogue change already writes:
- a row of `catalogue_change` (0006's triggers on site and solution, TRUNCATE included);
- the reference geography's version in `dataset_version` (a reload empties the basemap tiles).
PostgreSQL delivers a notification when, and only if, the transaction commits, and sends one per transaction
whatever the number of statements (identical notifications are folded).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 10:00:00
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

TABLES = ("catalogue_change", "dataset_version")


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION catalogue_announce() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('catalogue_changed', '');
            RETURN NULL;
        END $$;
    """)
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_announce AFTER INSERT OR UPDATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION catalogue_announce()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_announce ON {table}")
    op.execute("DROP FUNCTION catalogue_announce()")
