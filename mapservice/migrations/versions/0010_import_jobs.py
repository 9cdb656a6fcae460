"""Imports from the workspace: an uploaded file's import, from its dry run to its application, with the
progress the page shows while it runs in the background. A PSAD platform's team imports for its communes:
an import's territory may list communes (5 characters) as well as départements.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 01:10:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

JOB_STATUSES = ('planning', 'planned', 'applying', 'applied', 'failed', 'abandoned')


def upgrade() -> None:
    op.alter_column('import_run', 'territory', type_=postgresql.ARRAY(sa.String(length=5)),
                    existing_type=postgresql.ARRAY(sa.String(length=3)))
    op.create_table(
        'import_job',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('account_id', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('source', sa.Text(), nullable=True),
        sa.Column('file_name', sa.Text(), nullable=False),
        sa.Column('stored_name', sa.Text(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('territory', postgresql.ARRAY(sa.String(length=5)), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('phase', sa.Text(), nullable=True),
        sa.Column('done', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=True),
        sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('fingerprint', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('run_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("status IN ('planning', 'planned', 'applying', 'applied', 'failed', 'abandoned')",
                           name=op.f('ck_import_job_status')),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_import_job_account_id_account')),
        sa.ForeignKeyConstraint(['run_id'], ['import_run.id'], name=op.f('fk_import_job_run_id_import_run')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job')),
    )
    op.create_index(op.f('ix_import_job_account_id'), 'import_job', ['account_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_import_job_account_id'), table_name='import_job')
    op.drop_table('import_job')
    # A platform team's import listed communes: its territory becomes their départements' codes.
    op.execute("""UPDATE import_run SET territory = ARRAY(
                      SELECT DISTINCT coalesce(c.departement_code, t) FROM unnest(territory) t
                      LEFT JOIN commune c ON length(t) = 5 AND c.code = t)
                  WHERE EXISTS (SELECT 1 FROM unnest(territory) t WHERE length(t) = 5)""")
    op.alter_column('import_run', 'territory', type_=postgresql.ARRAY(sa.String(length=3)),
                    existing_type=postgresql.ARRAY(sa.String(length=5)))
