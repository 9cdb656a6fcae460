"""Offline bundles of the mobile app: one gzipped JSON file per area (département, région, France), kept by
content digest so that a URL never changes meaning.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 22:30:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'app_bundle',
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('area_kind', sa.String(length=12), nullable=False),
        sa.Column('area_code', sa.String(length=3), nullable=False),
        sa.Column('cursor', sa.BigInteger(), nullable=False),
        sa.Column('checked_cursor', sa.BigInteger(), nullable=False),
        sa.Column('reference_version', sa.Text(), nullable=True),
        sa.Column('coverage_digest', sa.String(length=64), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('build_ms', sa.Integer(), nullable=False),
        sa.Column('solutions', sa.Integer(), nullable=False),
        sa.Column('sites', sa.Integer(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('body', postgresql.BYTEA(), nullable=False),
        sa.CheckConstraint("area_kind IN ('departement', 'region', 'france')", name=op.f('ck_app_bundle_area_kind')),
        sa.PrimaryKeyConstraint('digest', name=op.f('pk_app_bundle')),
    )
    op.create_index('ix_app_bundle_area', 'app_bundle', ['area_kind', 'area_code', 'built_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_app_bundle_area', table_name='app_bundle')
    op.drop_table('app_bundle')
