"""The bimonthly report (issue 11): when solutions were published and archived and error reports resolved; the
platforms' activity figures and the académies' objectives; frozen snapshots of closed periods; and the
distances from every commune to the nearest published solution of each type, kept correct after edits.

Every statement that changes what a report says (catalogue, error reports, platforms' perimeters, figures,
objectives) appends one row to reporting_pending (appends only: writers never wait for each other here). For
sites and solutions the row lists where a published solution of which type appeared or went (NULL: too many,
or a TRUNCATE: anything may have changed). The report consumes those rows before it computes: it recomputes,
for those types, the distances of the communes within 60 km of those positions, and bumps
reporting_state.version, which its cache is keyed on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 22:15:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TYPES = ("places_lycee", "structure_innovante", "apprentissage", "service_civique", "formation_regionale",
         "mission_locale", "clause_sociale", "greta", "accueil_orientation", "e2c", "epide")
# Error report statuses that still wait for the local team (the workspace adds 'in_progress').
OPEN_REPORT_STATUSES = "('new', 'in_progress')"

DATES = f"""
CREATE FUNCTION reporting_solution_dates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'published' AND NEW.published_at IS NULL THEN
        NEW.published_at := now();
    END IF;
    IF NEW.status = 'archived' THEN
        IF TG_OP = 'INSERT' OR OLD.status <> 'archived' THEN
            NEW.archived_at := now();
        END IF;
    ELSE
        NEW.archived_at := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reporting_solution_dates BEFORE INSERT OR UPDATE OF status ON solution
    FOR EACH ROW EXECUTE FUNCTION reporting_solution_dates();

CREATE FUNCTION reporting_report_resolved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN {OPEN_REPORT_STATUSES} THEN
        NEW.resolved_at := NULL;
    ELSIF OLD.status IN {OPEN_REPORT_STATUSES} THEN
        NEW.resolved_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reporting_report_resolved BEFORE UPDATE OF status ON error_report
    FOR EACH ROW EXECUTE FUNCTION reporting_report_resolved();
"""

PENDING = """
CREATE TABLE reporting_state (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL DEFAULT 0,
    -- the reference geography the distances were computed on (NULL: never computed)
    reference_version text
);
INSERT INTO reporting_state (id) VALUES (true);

CREATE TABLE reporting_pending (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    positions boolean NOT NULL,  -- whether distances may have changed
    -- the positions (WGS84) where a published solution of the type appeared or went; NULL with positions:
    -- anywhere, any type
    lons float8[],
    lats float8[],
    types text[]
);

CREATE FUNCTION reporting_note(positions boolean, lons float8[], lats float8[], types text[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO reporting_pending (positions, lons, lats, types)
    SELECT positions, CASE WHEN small THEN lons END, CASE WHEN small THEN lats END, CASE WHEN small THEN types END
    FROM (SELECT cardinality(lons) <= 1000 AS small) s;
$$;

CREATE FUNCTION reporting_other_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM reporting_note(false, '{}', '{}', '{}');
    RETURN NULL;
END $$;

-- A site whose status changed: its solutions appear on or leave the map (moves reach the solutions' own
-- trigger, through solution_position_from_site; inserted sites have no solution yet; deleted ones take
-- theirs along).
CREATE FUNCTION reporting_site_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lons float8[]; lats float8[]; types text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM reporting_note(true, NULL, NULL, NULL);
        RETURN NULL;
    END IF;
    SELECT array_agg(ST_X(n.geom)), array_agg(ST_Y(n.geom)), array_agg(s.type) INTO lons, lats, types
    FROM old_rows o JOIN new_rows n ON n.id = o.id JOIN solution s ON s.site_id = n.id AND s.status = 'published'
    WHERE (o.status = 'published') <> (n.status = 'published');
    PERFORM reporting_note(lons IS NOT NULL, coalesce(lons, '{}'), coalesce(lats, '{}'), coalesce(types, '{}'));
    RETURN NULL;
END $$;

-- Published solutions that appeared, went, moved or changed type: where and of which type, before and after.
CREATE FUNCTION reporting_solution_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lons float8[]; lats float8[]; types text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM reporting_note(true, NULL, NULL, NULL);
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(ST_X(position::geometry)), array_agg(ST_Y(position::geometry)), array_agg(type)
        INTO lons, lats, types FROM new_rows WHERE status = 'published';
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(ST_X(position::geometry)), array_agg(ST_Y(position::geometry)), array_agg(type)
        INTO lons, lats, types FROM old_rows WHERE status = 'published';
    ELSE
        SELECT array_agg(ST_X(v.pt)), array_agg(ST_Y(v.pt)), array_agg(v.type) INTO lons, lats, types
        FROM (SELECT o.position::geometry AS p, o.type AS t, o.status = 'published' AS was,
                     n.position::geometry AS q, n.type AS u, n.status = 'published' AS is
              FROM old_rows o JOIN new_rows n ON n.id = o.id
              WHERE o.status <> n.status OR o.type <> n.type
                 OR NOT ST_Equals(o.position::geometry, n.position::geometry)) changed
        CROSS JOIN LATERAL (SELECT changed.p, changed.t WHERE changed.was
                            UNION ALL SELECT changed.q, changed.u WHERE changed.is) v(pt, type);
    END IF;
    PERFORM reporting_note(lons IS NOT NULL, coalesce(lons, '{}'), coalesce(lats, '{}'), coalesce(types, '{}'));
    RETURN NULL;
END $$;
"""

WATCHED = {
    "site": "reporting_site_changed", "solution": "reporting_solution_changed",
    "error_report": "reporting_other_changed", "psad_platform": "reporting_other_changed",
    "psad_platform_commune": "reporting_other_changed", "reporting_activity": "reporting_other_changed",
    "reporting_objective": "reporting_other_changed",
}


def _watch(table: str, function: str) -> str:
    if function == "reporting_other_changed":
        return f"""
CREATE TRIGGER reporting_{table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {function}();"""
    if table == "site":
        return f"""
CREATE TRIGGER reporting_site_update AFTER UPDATE ON site
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER reporting_site_truncate AFTER TRUNCATE ON site
    FOR EACH STATEMENT EXECUTE FUNCTION {function}();"""
    return f"""
CREATE TRIGGER reporting_{table}_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER reporting_{table}_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER reporting_{table}_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER reporting_{table}_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {function}();"""


def upgrade() -> None:
    op.add_column('solution', sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('solution', sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('error_report', sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE solution SET published_at = created_at WHERE status = 'published'")
    op.execute("UPDATE solution SET archived_at = updated_at WHERE status = 'archived'")
    op.execute(f"UPDATE error_report SET resolved_at = created_at WHERE status NOT IN {OPEN_REPORT_STATUSES}")
    for t in TYPES:
        op.create_index(f'ix_solution_published_{t}', 'solution', ['position'], postgresql_using='gist',
                        postgresql_where=sa.text(f"status = 'published' AND type = '{t}'"))

    # Which communes lie within reach of a changed position (mapservice.reporting.distances).
    op.create_index('ix_commune_town_hall_geography', 'commune', [sa.text('geography(town_hall)')],
                    postgresql_using='gist')
    op.create_table(
        'reporting_activity',
        sa.Column('platform_id', sa.BigInteger(), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('contacted', sa.Integer(), nullable=False),
        sa.Column('met', sa.Integer(), nullable=False),
        sa.Column('proposed', sa.Integer(), nullable=False),
        sa.Column('entered', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_by', sa.Text(), nullable=False),
        sa.Column('validated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('validated_by', sa.Text(), nullable=True),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.CheckConstraint('contacted >= 0 AND met >= 0 AND proposed >= 0 AND entered >= 0',
                           name=op.f('ck_reporting_activity_counts')),
        sa.ForeignKeyConstraint(['platform_id'], ['psad_platform.id'], ondelete='CASCADE',
                                name=op.f('fk_reporting_activity_platform_id_psad_platform')),
        sa.PrimaryKeyConstraint('platform_id', 'period', name=op.f('pk_reporting_activity')),
    )
    op.create_table(
        'reporting_objective',
        sa.Column('academie_code', sa.String(length=2), nullable=False),
        sa.Column('year', sa.SmallInteger(), nullable=False),
        sa.Column('contacted', sa.Integer(), nullable=True),
        sa.Column('met', sa.Integer(), nullable=True),
        sa.Column('proposed', sa.Integer(), nullable=True),
        sa.Column('entered', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_by', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.ForeignKeyConstraint(['academie_code'], ['academie.code'],
                                name=op.f('fk_reporting_objective_academie_code_academie')),
        sa.PrimaryKeyConstraint('academie_code', 'year', name=op.f('pk_reporting_objective')),
    )
    op.create_table(
        'reporting_snapshot',
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('frozen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('scopes', sa.dialects.postgresql.JSONB(), nullable=False),
        sa.Column('zones_blanches', sa.dialects.postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint('period', name=op.f('pk_reporting_snapshot')),
    )
    op.create_table(
        'reporting_commune_distance',
        sa.Column('commune_code', sa.String(length=5), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('distance_m', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('commune_code', 'type', name=op.f('pk_reporting_commune_distance')),
    )
    op.execute(DATES)
    op.execute(PENDING)
    for table, function in WATCHED.items():
        op.execute(_watch(table, function))


def downgrade() -> None:
    for table, function in WATCHED.items():
        if function == "reporting_other_changed":
            op.execute(f"DROP TRIGGER reporting_{table}_changed ON {table}")
        else:
            for event in ("update", "truncate") if table == "site" else ("insert", "update", "delete", "truncate"):
                op.execute(f"DROP TRIGGER reporting_{table}_{event} ON {table}")
    op.execute("DROP FUNCTION reporting_site_changed(), reporting_solution_changed(), reporting_other_changed(), "
               "reporting_note(boolean, float8[], float8[], text[])")
    op.execute("DROP TABLE reporting_pending, reporting_state")
    op.execute("DROP TRIGGER reporting_report_resolved ON error_report")
    op.execute("DROP TRIGGER reporting_solution_dates ON solution")
    op.execute("DROP FUNCTION reporting_report_resolved(), reporting_solution_dates()")
    op.drop_table('reporting_commune_distance')
    op.drop_table('reporting_snapshot')
    op.drop_table('reporting_objective')
    op.drop_table('reporting_activity')
    for t in TYPES:
        op.drop_index(f'ix_solution_published_{t}', table_name='solution')
    op.drop_index('ix_commune_town_hall_geography', table_name='commune')
    op.drop_column('error_report', 'resolved_at')
    op.drop_column('solution', 'archived_at')
    op.drop_column('solution', 'published_at')
