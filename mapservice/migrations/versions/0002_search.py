"""Public search: a normalised form of place names (accents, case, punctuation, "saint", ordinals) with its
indexes, and the published catalogue as one view (read by the OGC API and by peers such as tipg).

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# unaccent() is only STABLE (its dictionary could change), so it cannot appear in an index expression.
# This wrapper names the dictionary explicitly and is declared IMMUTABLE: the usual pattern.
# "Saint-Étienne", "ST ETIENNE", "saint etienne" -> "st etienne" (so do "sainte", "ste");
# "Paris 6e", "paris 6eme" -> "paris 6".
SEARCH_NORMALISE = r"""
CREATE FUNCTION search_normalise(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT btrim(
        regexp_replace(
            regexp_replace(
                regexp_replace(
                    lower(public.unaccent('public.unaccent'::regdictionary, value)),
                    '[^a-z0-9]+', ' ', 'g'),
                '\m(saint|sainte|ste)\M', 'st', 'g'),
            '\m([0-9]+) ?(er|ere|eme|e)\M', '\1', 'g'))
$$;
"""

# A commune's postcodes as one string (" 69001 69002"), so that a trigram index finds them by prefix.
POSTCODES_TEXT = """
CREATE FUNCTION postcodes_text(postcodes text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT ' ' || array_to_string(postcodes, ' ') $$;
"""

PUBLISHED_SOLUTION_VIEW = """
CREATE VIEW published_solution AS
SELECT s.id, s.status, s.type, s.title, s.voie, s.level, s.domain, s.capacity, s.vacant_places, s.start_date,
       s.end_date, s.service_civique_formula, s.min_age, s.max_age, s.is_example, s.last_checked_at,
       s.site_id, site.name AS site_name, site.kind AS site_kind, site.address, site.postcode,
       site.commune_code, c.name AS commune_name, site.position_precision, site.geom
FROM solution s JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code
WHERE s.status = 'published' AND site.status = 'published';
"""


def upgrade() -> None:
    op.execute(SEARCH_NORMALISE)
    # Stored, so that index rechecks and ranking read it instead of normalising again.
    op.execute("ALTER TABLE commune ADD COLUMN name_search text GENERATED ALWAYS AS (search_normalise(name)) STORED")
    # Exact and prefix matches (btree), then typo-tolerant matches (trigrams).
    op.execute("CREATE INDEX ix_commune_name_search ON commune (name_search text_pattern_ops)")
    op.execute("CREATE INDEX ix_commune_name_search_trgm ON commune USING gin (name_search gin_trgm_ops)")
    op.execute(POSTCODES_TEXT)
    op.execute("CREATE INDEX ix_commune_postcodes_trgm ON commune USING gin (postcodes_text(postcodes) gin_trgm_ops)")
    # Areas are summed up (population) and represented (most populous commune) from their communes.
    for area in ("departement_code", "region_code"):
        op.execute(f"CREATE INDEX ix_commune_{area}_population ON commune ({area}, population DESC NULLS LAST) "
                   "INCLUDE (town_hall) WHERE kind = 'COM'")
    op.execute(PUBLISHED_SOLUTION_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW published_solution")
    op.execute("DROP INDEX ix_commune_region_code_population")
    op.execute("DROP INDEX ix_commune_departement_code_population")
    op.execute("DROP INDEX ix_commune_postcodes_trgm")
    op.execute("DROP FUNCTION postcodes_text(text[])")
    op.execute("ALTER TABLE commune DROP COLUMN name_search")  # and its indexes
    op.execute("DROP FUNCTION search_normalise(text)")
