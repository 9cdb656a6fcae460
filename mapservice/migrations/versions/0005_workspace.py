"""The teams' workspace: accounts, their roles and scopes, one-time and API tokens, the auth/audit log, the history
of every change, partner proposals waiting for review, and the error-report inbox's statuses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:30:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Copies of mapservice.taxonomy's lists as they are in this revision (a migration never imports the live code).
ROLES = ('national_admin', 'academie_admin', 'curator', 'partner')
TOKEN_PURPOSES = ('invitation', 'reset', 'api')
REPORT_STATUSES = ('new', 'in_progress', 'resolved', 'rejected')


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        'account',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('email', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=True),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=True),
        sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
        sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('created_by', sa.Text(), server_default='system', nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.CheckConstraint(_in('role', ROLES), name=op.f('ck_account_role')),
        sa.CheckConstraint('email = lower(email)', name=op.f('ck_account_email_lower')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
        sa.UniqueConstraint('email', name=op.f('uq_account_email')),
    )
    op.create_table(
        'account_scope',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('account_id', sa.BigInteger(), nullable=False),
        sa.Column('academie_code', sa.String(length=2), nullable=True),
        sa.Column('departement_code', sa.String(length=3), nullable=True),
        sa.Column('platform_id', sa.BigInteger(), nullable=True),
        sa.Column('site_id', sa.BigInteger(), nullable=True),
        sa.CheckConstraint('num_nonnulls(academie_code, departement_code, platform_id, site_id) = 1',
                           name=op.f('ck_account_scope_one_target')),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_account_scope_account_id_account'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['academie_code'], ['academie.code'],
                                name=op.f('fk_account_scope_academie_code_academie')),
        sa.ForeignKeyConstraint(['departement_code'], ['departement.code'],
                                name=op.f('fk_account_scope_departement_code_departement')),
        sa.ForeignKeyConstraint(['platform_id'], ['psad_platform.id'],
                                name=op.f('fk_account_scope_platform_id_psad_platform'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_account_scope_site_id_site'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account_scope')),
    )
    op.create_index(op.f('ix_account_scope_account_id'), 'account_scope', ['account_id'], unique=False)
    op.create_table(
        'account_token',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('account_id', sa.BigInteger(), nullable=False),
        sa.Column('purpose', sa.String(length=10), nullable=False),
        sa.Column('token_hash', sa.Text(), nullable=False),
        sa.Column('label', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in('purpose', TOKEN_PURPOSES), name=op.f('ck_account_token_purpose')),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_account_token_account_id_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account_token')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_account_token_token_hash')),
    )
    op.create_index(op.f('ix_account_token_account_id'), 'account_token', ['account_id'], unique=False)
    op.create_table(
        'audit_event',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.BigInteger(), nullable=True),
        sa.Column('email', sa.Text(), nullable=True),
        sa.Column('address', sa.Text(), nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    )
    op.create_index('ix_audit_event_email_at', 'audit_event', ['email', 'at'], unique=False)
    op.create_index('ix_audit_event_address_at', 'audit_event', ['address', 'at'], unique=False)
    op.create_table(
        'change_log',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('account_id', sa.BigInteger(), nullable=True),
        sa.Column('actor', sa.Text(), nullable=False),
        sa.Column('entity', sa.String(length=20), nullable=False),
        sa.Column('entity_id', sa.BigInteger(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('fields', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
        sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('reverts', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_change_log_account_id_account'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['reverts'], ['change_log.id'], name=op.f('fk_change_log_reverts_change_log')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_change_log')),
    )
    op.create_index('ix_change_log_entity_entity_id', 'change_log', ['entity', 'entity_id', 'id'], unique=False)
    op.add_column('site', sa.Column('review_requested_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f('ck_error_report_status'), 'error_report', type_='check')
    op.execute("UPDATE error_report SET status = 'resolved' WHERE status = 'handled'")
    op.create_check_constraint(op.f('ck_error_report_status'), 'error_report', _in('status', REPORT_STATUSES))
    op.add_column('error_report', sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('error_report', sa.Column('updated_by', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('error_report', 'updated_by')
    op.drop_column('error_report', 'updated_at')
    op.drop_constraint(op.f('ck_error_report_status'), 'error_report', type_='check')
    op.execute("UPDATE error_report SET status = 'handled' WHERE status IN ('in_progress', 'resolved')")
    op.create_check_constraint(op.f('ck_error_report_status'), 'error_report', "status IN ('new', 'handled', 'rejected')")
    op.drop_column('site', 'review_requested_at')
    op.drop_index('ix_change_log_entity_entity_id', table_name='change_log')
    op.drop_table('change_log')
    op.drop_index('ix_audit_event_address_at', table_name='audit_event')
    op.drop_index('ix_audit_event_email_at', table_name='audit_event')
    op.drop_table('audit_event')
    op.drop_index(op.f('ix_account_token_account_id'), table_name='account_token')
    op.drop_table('account_token')
    op.drop_index(op.f('ix_account_scope_account_id'), table_name='account_scope')
    op.drop_table('account_scope')
    op.drop_table('account')
