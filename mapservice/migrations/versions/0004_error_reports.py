"""Error reports from the public ("Signaler une erreur"), kept for the local teams.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 20:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

REASONS = ('n_existe_plus', 'adresse', 'contact', 'places', 'conditions', 'autre')


def upgrade() -> None:
    op.create_table(
        'error_report',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('solution_id', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('contact', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=10), server_default='new', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint(f"reason IN ({', '.join(repr(r) for r in REASONS)})", name=op.f('ck_error_report_reason')),
        sa.CheckConstraint("status IN ('new', 'handled', 'rejected')", name=op.f('ck_error_report_status')),
        sa.CheckConstraint('char_length(message) <= 2000', name=op.f('ck_error_report_message_length')),
        sa.CheckConstraint('char_length(contact) <= 200', name=op.f('ck_error_report_contact_length')),
        sa.ForeignKeyConstraint(['solution_id'], ['solution.id'], name=op.f('fk_error_report_solution_id_solution'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_error_report')),
    )
    op.create_index(op.f('ix_error_report_solution_id'), 'error_report', ['solution_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_error_report_solution_id'), table_name='error_report')
    op.drop_table('error_report')
