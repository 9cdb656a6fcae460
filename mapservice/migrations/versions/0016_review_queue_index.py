"""The partners' proposals waiting for review, indexed (issue 14).

The review queue lists a territory's proposed sites: a handful of drafts among all the sites. Without an index,
each listing read every site of the territory, or of the country for the national administrator: 50 to 95 ms at
200k sites for an empty queue (bench/workspace.py). A partial index holds only the waiting proposals.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 15:00:00
"""
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_site_review_requested ON site (review_requested_at) "
               "WHERE review_requested_at IS NOT NULL AND status = 'draft'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_site_review_requested")
