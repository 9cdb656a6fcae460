"""Imports from the official sources and partners' files: the history of imports, what each changed (to revert
it), and the values last imported for each record (to tell a team's edit from the source's).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 22:30:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# solution.position follows its site's position (0001). Per row, that trigger ran one UPDATE of solution per
# moved site, each firing the statement-level catalogue triggers again: an import moving 5,000 lycées from
# their town hall to their real address ran them 5,000 times. Per statement, they run once.
SOLUTION_POSITIONS_PER_STATEMENT = """
DROP TRIGGER site_position_to_solutions ON site;
CREATE OR REPLACE FUNCTION site_position_to_solutions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE solution s SET position = n.geom::geography
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE s.site_id = n.id AND o.geom IS DISTINCT FROM n.geom;
    RETURN NULL;
END $$;
CREATE TRIGGER site_position_to_solutions AFTER UPDATE ON site
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION site_position_to_solutions();
"""

SOLUTION_POSITIONS_PER_ROW = """
DROP TRIGGER site_position_to_solutions ON site;
CREATE OR REPLACE FUNCTION site_position_to_solutions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE solution SET position = NEW.geom::geography WHERE site_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER site_position_to_solutions AFTER UPDATE OF geom ON site
    FOR EACH ROW WHEN (OLD.geom IS DISTINCT FROM NEW.geom) EXECUTE FUNCTION site_position_to_solutions();
"""


def upgrade() -> None:
    op.execute(SOLUTION_POSITIONS_PER_STATEMENT)
    # The annuaire's Onisep sheet: what the school teaches, for a young person to read before calling.
    op.add_column('site', sa.Column('onisep_url', sa.Text(), nullable=True))
    op.create_table(
        'import_run',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('file_name', sa.Text(), nullable=False),
        sa.Column('checksum', sa.Text(), nullable=False),
        sa.Column('territory', postgresql.ARRAY(sa.String(length=3)), nullable=True),
        sa.Column('imported_by', sa.Text(), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('status', sa.String(length=10), server_default='applied', nullable=False),
        sa.Column('reverted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reverted_by', sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('applied', 'reverted')", name=op.f('ck_import_run_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_run')),
    )
    op.create_index('ix_import_run_source_imported_at', 'import_run', ['source', 'imported_at'], unique=False)
    op.create_table(
        'import_record',
        sa.Column('record_table', sa.String(length=16), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_key', sa.Text(), nullable=False),
        sa.Column('record_id', sa.BigInteger(), nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('fields', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint("record_table IN ('site', 'solution')", name=op.f('ck_import_record_record_table')),
        sa.ForeignKeyConstraint(['run_id'], ['import_run.id'], name=op.f('fk_import_record_run_id_import_run')),
        sa.PrimaryKeyConstraint('record_table', 'source', 'source_key', name=op.f('pk_import_record')),
    )
    op.create_index(op.f('ix_import_record_run_id'), 'import_record', ['run_id'], unique=False)
    op.create_table(
        'import_change',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('record_table', sa.String(length=16), nullable=False),
        sa.Column('record_id', sa.BigInteger(), nullable=False),
        sa.Column('source_key', sa.Text(), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('record_before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('version_after', sa.Integer(), nullable=False),
        sa.CheckConstraint("record_table IN ('site', 'solution')", name=op.f('ck_import_change_record_table')),
        sa.CheckConstraint("action IN ('insert', 'update')", name=op.f('ck_import_change_action')),
        sa.ForeignKeyConstraint(['run_id'], ['import_run.id'], name=op.f('fk_import_change_run_id_import_run'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_change')),
    )
    op.create_index(op.f('ix_import_change_run_id'), 'import_change', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_import_change_run_id'), table_name='import_change')
    op.drop_table('import_change')
    op.drop_index(op.f('ix_import_record_run_id'), table_name='import_record')
    op.drop_table('import_record')
    op.drop_index('ix_import_run_source_imported_at', table_name='import_run')
    op.drop_table('import_run')
    op.drop_column('site', 'onisep_url')
    op.execute(SOLUTION_POSITIONS_PER_ROW)
