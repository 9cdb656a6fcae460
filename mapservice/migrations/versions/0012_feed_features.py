"""The public catalogue's GeoJSON features stored pre-rendered, for the change feed (issue 12).

`solution_feature` and `site_feature` hold, for each published solution (of a published site) and each published
site offering a published solution, the feature text exactly as the bundles and the change feed write it
(mapservice.appdata.bundles: SOLUTIONS, SITES); nothing else has a row. A feed page then reads ~1,700 texts by id
instead of writing them (~35 µs each).

What a feature is made of, and what keeps it:
- a solution's: its row, its site's (name, kind, address, postcode, position, precision, status) and its
  commune's (code, name); a site's: its row, its commune's (code, name, département, académie) and the ids of its
  published solutions (ordered by type, title, id).
- Statement-level triggers on solution and site (transition tables, like 0006's) render again the features of
  the rows the statement touched: a solution's statement its solutions (before and after), and their sites when
  a solution came, went, or changed site, type, title or status (the site's list); a site's statement its sites,
  and all their solutions when a field those carry changed (not for contacts, hours, accessibility). A feature
  that no longer renders (deleted, unpublished, archived, site unpublished, site left with no published
  solution) loses its row; a text that did not change is not written again. TRUNCATE rebuilds both tables.
- The commune's name, département and académie: a row trigger on commune, only for the rows where one of them
  changed (a `WHEN` clause, evaluated without calling any function), renders the features of the commune's sites
  and their solutions. A reference reload (`mapservice load reference`) rewrites all 35k communes in one
  statement: a statement trigger's transition tables would copy every outline; this one renders only the
  communes whose name or attachment really changed (a statement-level rebuild of everything,
  catalogue_features_rebuild(), is what TRUNCATE and this migration use).
- Writers of one site take turns on its row lock (the site rendered, or the site of a solution rendered; as
  0006's site_cells_change does, taken again here so that these triggers do not depend on another's), and read
  committed gives each statement of the function a fresh snapshot: the last writer of a site renders its
  features from every committed change, never from a stale one.
- Nothing in a feature depends on the time (dates are written as they are stored, never as "days since"), nor on
  the session but the float output (`extra_float_digits`), set here to PostgreSQL's default.

The SQL is a copy of mapservice.appdata.bundles' as it is in this revision (a migration never imports the live
code): a change of a feature's properties or of a label in mapservice.taxonomy needs a new revision that
redefines catalogue_features_refresh/_rebuild and runs the rebuild (tests/test_appdata_features.py compares every
stored text with the live SQL's).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 07:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# Copies of mapservice.taxonomy's labels as they are in this revision.
SOLUTION_TYPES = {
    "places_lycee": "Places disponibles en lycée",
    "structure_innovante": "Structure innovante (micro-lycée, lycée de la nouvelle chance, pôle innovant lycéen…)",
    "apprentissage": "Apprentissage (CFA, UFA)",
    "service_civique": "Mission de service civique",
    "formation_regionale": "Formation de la Région",
    "mission_locale": "Accompagnement en mission locale",
    "clause_sociale": "Emploi en clause sociale (marchés publics)",
    "greta": "Formation ou bilan au GRETA",
    "accueil_orientation": "Accueil et orientation (CIO, MLDS, plateforme)",
    "e2c": "École de la 2e chance (E2C)",
    "epide": "EPIDE (établissement pour l'insertion dans l'emploi)",
}
SITE_KINDS = {
    "lycee": "Lycée",
    "micro_lycee": "Micro-lycée ou structure innovante",
    "cfa": "Centre de formation d'apprentis (CFA)",
    "ufa": "Unité de formation par apprentissage (UFA)",
    "service_civique": "Structure d'accueil de service civique",
    "mission_locale": "Mission locale",
    "cio": "Centre d'information et d'orientation (CIO)",
    "mlds": "Mission de lutte contre le décrochage scolaire (MLDS)",
    "psad": "Plateforme de suivi et d'appui aux décrocheurs (PSAD)",
    "e2c": "École de la 2e chance (E2C)",
    "epide": "Centre EPIDE",
    "greta": "GRETA",
    "organisme_formation": "Organisme de formation",
}
VOIES = {
    "professionnelle": "Voie professionnelle",
    "generale": "Voie générale",
    "technologique": "Voie technologique",
}
SERVICE_CIVIQUE_FORMULAS = {
    "plein_temps": "À plein temps, avec un tuteur de l'Éducation nationale",
    "combinee": "Combinée : 21 h de mission + une dizaine d'heures en lycée par semaine",
}


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _label(column: str, labels: dict[str, str]) -> str:
    return f"CASE {column} " + " ".join(f"WHEN {_quoted(code)} THEN {_quoted(label)}" for code, label in
                                         labels.items()) + " END"


def _utc_iso(column: str) -> str:
    return (f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
            f"to_char({column}, 'US') = '000000' THEN '' ELSE to_char({column}, '.US') END || '+00:00'")


SOLUTION_PROPERTIES = [
    ("id", "s.id"), ("type", "s.type"), ("type_label", _label("s.type", SOLUTION_TYPES)), ("title", "s.title"),
    ("voie", "s.voie"), ("voie_label", _label("s.voie", VOIES)), ("level", "s.level"), ("domain", "s.domain"),
    ("capacity", "s.capacity"), ("vacant_places", "s.vacant_places"), ("start_date", "s.start_date"),
    ("service_civique_formula", "s.service_civique_formula"),
    ("service_civique_formula_label", _label("s.service_civique_formula", SERVICE_CIVIQUE_FORMULAS)),
    ("min_age", "s.min_age"), ("max_age", "s.max_age"), ("site_id", "site.id"), ("site_name", "site.name"),
    ("site_kind", "site.kind"), ("address", "site.address"), ("postcode", "site.postcode"),
    ("commune_code", "c.code"), ("commune_name", "c.name"), ("position_precision", "site.position_precision"),
    ("last_checked_at", _utc_iso("s.last_checked_at")), ("is_example", "s.is_example"),
    ("description", "s.description"),
    ("end_date", "s.end_date"), ("hours_per_week", "s.hours_per_week"),
    ("school_hours_per_week", "s.school_hours_per_week"), ("eligibility", "s.eligibility"),
    ("how_to_apply", "s.how_to_apply"),
]
SOLUTION_SOURCE = """
    FROM solution s JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code
    WHERE s.status = 'published' AND site.status = 'published' AND {area}"""

SITE_PROPERTIES = [
    ("id", "site.id"), ("name", "site.name"), ("kind", "site.kind"), ("kind_label", _label("site.kind", SITE_KINDS)),
    ("address", "site.address"), ("postcode", "site.postcode"), ("commune_code", "c.code"),
    ("commune_name", "c.name"), ("departement_code", "c.departement_code"), ("academie_code", "c.academie_code"),
    ("contact", "json_build_object('phone', site.phone, 'email', site.email, 'website', site.website)"),
    ("opening_hours", "site.opening_hours"), ("accessibility", "site.accessibility"),
    ("position_precision", "site.position_precision"), ("last_checked_at", _utc_iso("site.last_checked_at")),
    ("is_example", "site.is_example"), ("solution_ids", "offered.ids"),
]
SITE_SOURCE = """
    FROM site JOIN commune c ON c.code = site.commune_code
    JOIN LATERAL (SELECT array_agg(s.id ORDER BY s.type, s.title, s.id) AS ids FROM solution s
                  WHERE s.site_id = site.id AND s.status = 'published') offered ON offered.ids IS NOT NULL
    WHERE site.status = 'published' AND {area}"""


def _features(properties: list[tuple[str, str]], source: str, area: str) -> str:
    """SQL: (id, feature) for each row of `source` selected by `area`, the feature written as the bundles do."""
    columns = ", ".join(f'{expression} AS "{name}"' for name, expression in properties)
    picked = ", ".join(f'r."{name}"' for name, _ in properties)
    return (f"""SELECT r.id, '{{"type":"Feature","id":' || r.id || ',"geometry":{{"type":"Point","coordinates":['
       || r.lon_ || ',' || r.lat_ || ']}},"properties":' || row_to_json(p)::text || '}}' AS feature
FROM (SELECT {columns}, ST_X(site.geom) AS lon_, ST_Y(site.geom) AS lat_ """ + source.replace("{area}", area)
            + f""") r,
     LATERAL (SELECT {picked}) p""")


TABLES = """
-- One row per public feature; updated in place by the triggers (room left on each page for HOT updates).
CREATE TABLE solution_feature (
    id bigint NOT NULL,
    feature text NOT NULL,
    CONSTRAINT pk_solution_feature PRIMARY KEY (id)
) WITH (fillfactor = 90);
CREATE TABLE site_feature (
    id bigint NOT NULL,
    feature text NOT NULL,
    CONSTRAINT pk_site_feature PRIMARY KEY (id)
) WITH (fillfactor = 90);
"""


def _refresh(table: str, properties, source: str, ids: str) -> str:
    """One statement: the features of `ids` rendered again; those that no longer render leave `table`; a text
    that did not change is not written."""
    alias = "s" if table == "solution_feature" else "site"
    return f"""
    WITH rendered AS MATERIALIZED ({_features(properties, source, f"{alias}.id = ANY({ids})")}),
    gone AS (DELETE FROM {table} f WHERE f.id = ANY({ids}) AND f.id NOT IN (SELECT id FROM rendered))
    INSERT INTO {table} AS f (id, feature) SELECT id, feature FROM rendered
    ON CONFLICT (id) DO UPDATE SET feature = excluded.feature WHERE f.feature <> excluded.feature;"""


FUNCTIONS = f"""
-- The features of the sites `changed_sites` and the solutions `changed_solutions` rendered again from the rows.
-- Generic plans, planned once per session, as 0006's functions (the statements are long to plan).
CREATE FUNCTION catalogue_features_refresh(changed_sites bigint[], changed_solutions bigint[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET extra_float_digits = 1 AS $$
BEGIN
    -- Writers of one site take turns (its own features and its solutions' carry its fields); from here on each
    -- statement sees what the previous ones committed.
    PERFORM 1 FROM site WHERE id = ANY(ARRAY(
        SELECT unnest(changed_sites) UNION SELECT site_id FROM solution WHERE id = ANY(changed_solutions)))
    ORDER BY id FOR NO KEY UPDATE;
    {_refresh("solution_feature", SOLUTION_PROPERTIES, SOLUTION_SOURCE, "changed_solutions")}
    {_refresh("site_feature", SITE_PROPERTIES, SITE_SOURCE, "changed_sites")}
END $$;

-- Every feature rendered again (this migration, TRUNCATE, a repair).
CREATE FUNCTION catalogue_features_rebuild() RETURNS void LANGUAGE plpgsql SET extra_float_digits = 1 AS $$
BEGIN
    DELETE FROM solution_feature;
    DELETE FROM site_feature;
    INSERT INTO solution_feature (id, feature) {_features(SOLUTION_PROPERTIES, SOLUTION_SOURCE, "true")};
    INSERT INTO site_feature (id, feature) {_features(SITE_PROPERTIES, SITE_SOURCE, "true")};
END $$;

CREATE FUNCTION solution_features_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    solutions bigint[] := '{{}}';
    sites bigint[] := '{{}}';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM catalogue_features_rebuild();
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        SELECT solutions || array_agg(id), sites || array_agg(site_id) INTO solutions, sites FROM old_rows;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT solutions || array_agg(id), sites || array_agg(site_id) INTO solutions, sites FROM new_rows;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- A site lists its published solutions by type and title: it is rendered again only when one of those
        -- changed (an import's update of places leaves every site as it was).
        sites := ARRAY(
            SELECT x FROM old_rows o FULL JOIN new_rows n ON n.id = o.id, unnest(ARRAY[o.site_id, n.site_id]) x
            WHERE o.id IS NULL OR n.id IS NULL
               OR (o.site_id, o.type, o.title, o.status) IS DISTINCT FROM (n.site_id, n.type, n.title, n.status));
    END IF;
    PERFORM catalogue_features_refresh(ARRAY(SELECT DISTINCT x FROM unnest(sites) x WHERE x IS NOT NULL ORDER BY 1),
                                       ARRAY(SELECT DISTINCT unnest(solutions) ORDER BY 1));
    RETURN NULL;
END $$;

CREATE FUNCTION site_features_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sites bigint[] := '{{}}';
    carried bigint[];  -- the sites whose fields their solutions carry changed
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM catalogue_features_rebuild();
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        SELECT sites || array_agg(id) INTO sites FROM old_rows;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT sites || array_agg(id) INTO sites FROM new_rows;
    END IF;
    sites := ARRAY(SELECT DISTINCT unnest(sites) ORDER BY 1);
    carried := sites;
    IF TG_OP = 'UPDATE' THEN
        -- A solution carries its site's name, kind, address, postcode, commune, position, precision and status
        -- (not its contacts, hours or accessibility).
        carried := ARRAY(
            SELECT coalesce(n.id, o.id) FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
            WHERE o.id IS NULL OR n.id IS NULL
               OR (o.name, o.kind, o.address, o.postcode, o.commune_code, o.position_precision, o.status,
                   ST_AsEWKB(o.geom))
                  IS DISTINCT FROM (n.name, n.kind, n.address, n.postcode, n.commune_code, n.position_precision,
                                    n.status, ST_AsEWKB(n.geom)));
    END IF;
    PERFORM catalogue_features_refresh(sites, ARRAY(SELECT id FROM solution WHERE site_id = ANY(carried) ORDER BY id));
    RETURN NULL;
END $$;

CREATE FUNCTION commune_features_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM catalogue_features_refresh(
        ARRAY(SELECT id FROM site WHERE commune_code = NEW.code ORDER BY id),
        ARRAY(SELECT s.id FROM site JOIN solution s ON s.site_id = site.id WHERE site.commune_code = NEW.code
              ORDER BY s.id));
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER {table}_features_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_features_changed();
CREATE TRIGGER {table}_features_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION {table}_features_changed();
CREATE TRIGGER {table}_features_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_features_changed();
CREATE TRIGGER {table}_features_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_features_changed();
"""

COMMUNE_TRIGGER = """
CREATE TRIGGER commune_features_update AFTER UPDATE OF name, departement_code, academie_code ON commune
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
                       OR OLD.departement_code IS DISTINCT FROM NEW.departement_code
                       OR OLD.academie_code IS DISTINCT FROM NEW.academie_code)
    EXECUTE FUNCTION commune_features_changed();
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(FUNCTIONS)
    for table in ("site", "solution"):
        op.execute(TRIGGERS.format(table=table))
    op.execute(COMMUNE_TRIGGER)
    op.execute("SELECT catalogue_features_rebuild()")  # a database that already holds a catalogue
    if op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM site)")):
        op.execute("ANALYZE solution_feature; ANALYZE site_feature")


def downgrade() -> None:
    op.execute("DROP TRIGGER commune_features_update ON commune")
    for table in ("site", "solution"):
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_features_{event} ON {table}")
    op.execute("""
        DROP FUNCTION commune_features_changed();
        DROP FUNCTION site_features_changed();
        DROP FUNCTION solution_features_changed();
        DROP FUNCTION catalogue_features_rebuild();
        DROP FUNCTION catalogue_features_refresh(bigint[], bigint[]);
        DROP TABLE site_feature;
        DROP TABLE solution_feature;
    """)
