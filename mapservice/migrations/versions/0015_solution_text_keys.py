"""The API's free-text filters (level, domain) on indexed keys (issue 14).

`unaccent(lower(level)) = unaccent(lower(:level))` had no statistics and no index: PostgreSQL guessed that
0.5 % of the solutions match, so a nearest search walked the solutions in distance order until it had found
its 20. For a level that no solution has, that walk read the whole catalogue: 1.3 s at 200k sites (175 ms for a
level and a domain). Each filter now compares a key that an index holds (`solution_text_key`: unaccent of
lower, as before, so the same solutions match), and ANALYZE gathers the keys' statistics through those
indexes: the planner knows how rare a level is and starts from the index when it is rare (2 ms).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 15:00:00
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# unaccent() is only STABLE (its dictionary could change): naming the dictionary makes an IMMUTABLE wrapper,
# as search_normalise (0002) does.
SOLUTION_TEXT_KEY = """
CREATE FUNCTION solution_text_key(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT public.unaccent('public.unaccent'::regdictionary, lower(value))
$$;
"""


def upgrade() -> None:
    op.execute(SOLUTION_TEXT_KEY)
    op.execute("CREATE INDEX ix_solution_level_key ON solution (solution_text_key(level))")
    # Trigrams: the domain filter matches a part of the domain (ILIKE '%…%').
    op.execute("CREATE INDEX ix_solution_domain_key ON solution USING gin (solution_text_key(domain) gin_trgm_ops)")
    op.execute("ANALYZE solution")


def downgrade() -> None:
    op.execute("DROP INDEX ix_solution_domain_key")
    op.execute("DROP INDEX ix_solution_level_key")
    op.execute("DROP FUNCTION solution_text_key(text)")
