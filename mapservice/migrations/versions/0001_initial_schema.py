"""Initial schema: reference geography, catalogue (sites, solutions), PSAD platforms and FOQUALE networks.

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 19:30:25.964193
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geography
from geoalchemy2 import Geometry

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


# solution.position mirrors its site's position, so that nearest search is a single KNN scan on solution.
SOLUTION_POSITION_TRIGGERS = """
CREATE FUNCTION solution_position_from_site() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT geom::geography INTO NEW.position FROM site WHERE id = NEW.site_id;
    RETURN NEW;
END $$;
CREATE TRIGGER solution_position_from_site BEFORE INSERT OR UPDATE OF site_id ON solution
    FOR EACH ROW EXECUTE FUNCTION solution_position_from_site();

CREATE FUNCTION site_position_to_solutions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE solution SET position = NEW.geom::geography WHERE site_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER site_position_to_solutions AFTER UPDATE OF geom ON site
    FOR EACH ROW WHEN (OLD.geom IS DISTINCT FROM NEW.geom) EXECUTE FUNCTION site_position_to_solutions();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('dataset_version',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_dataset_version'))
    )
    op.create_geospatial_table('region',
    sa.Column('code', sa.String(length=3), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_region'))
    )
    op.create_geospatial_index('idx_region_geom', 'region', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('academie',
    sa.Column('code', sa.String(length=2), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('region_code', sa.String(length=3), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], name=op.f('fk_academie_region_code_region')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_academie'))
    )
    op.create_geospatial_index('idx_academie_geom', 'academie', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('departement',
    sa.Column('code', sa.String(length=3), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('region_code', sa.String(length=3), nullable=False),
    sa.Column('academie_code', sa.String(length=2), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.ForeignKeyConstraint(['academie_code'], ['academie.code'], name=op.f('fk_departement_academie_code_academie')),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], name=op.f('fk_departement_region_code_region')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_departement'))
    )
    op.create_geospatial_index('idx_departement_geom', 'departement', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('commune',
    sa.Column('code', sa.String(length=5), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=3), nullable=False),
    sa.Column('parent_code', sa.String(length=5), nullable=True),
    sa.Column('departement_code', sa.String(length=3), nullable=False),
    sa.Column('region_code', sa.String(length=3), nullable=False),
    sa.Column('academie_code', sa.String(length=2), nullable=False),
    sa.Column('population', sa.Integer(), nullable=True),
    sa.Column('postcodes', sa.ARRAY(sa.String(length=5)), server_default='{}', nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('town_hall', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('town_hall_is_exact', sa.Boolean(), nullable=False),
    sa.Column('town_hall_address', sa.Text(), nullable=True),
    sa.CheckConstraint("kind IN ('COM', 'ARM')", name=op.f('ck_commune_kind')),
    sa.CheckConstraint('NOT ST_IsEmpty(town_hall)', name=op.f('ck_commune_town_hall_not_empty')),
    sa.ForeignKeyConstraint(['academie_code'], ['academie.code'], name=op.f('fk_commune_academie_code_academie')),
    sa.ForeignKeyConstraint(['departement_code'], ['departement.code'], name=op.f('fk_commune_departement_code_departement')),
    sa.ForeignKeyConstraint(['parent_code'], ['commune.code'], name=op.f('fk_commune_parent_code_commune')),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], name=op.f('fk_commune_region_code_region')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_commune'))
    )
    op.create_geospatial_index('idx_commune_geom', 'commune', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_commune_departement_code'), 'commune', ['departement_code'], unique=False)
    op.create_index(op.f('ix_commune_parent_code'), 'commune', ['parent_code'], unique=False)
    op.create_index('ix_commune_postcodes', 'commune', ['postcodes'], unique=False, postgresql_using='gin')
    op.create_table('psad_platform',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('departement_code', sa.String(length=3), nullable=False),
    sa.Column('contact_name', sa.Text(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('website', sa.Text(), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), server_default='draft', nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_key', sa.Text(), nullable=True),
    sa.Column('is_example', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name=op.f('ck_psad_platform_status')),
    sa.ForeignKeyConstraint(['departement_code'], ['departement.code'], name=op.f('fk_psad_platform_departement_code_departement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psad_platform'))
    )
    op.create_index(op.f('ix_psad_platform_departement_code'), 'psad_platform', ['departement_code'], unique=False)
    op.create_index('uq_psad_platform_source_key', 'psad_platform', ['source', 'source_key'], unique=True, postgresql_where='source_key IS NOT NULL')
    op.create_table('foquale_network',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('platform_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.Text(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), server_default='draft', nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_key', sa.Text(), nullable=True),
    sa.Column('is_example', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name=op.f('ck_foquale_network_status')),
    sa.ForeignKeyConstraint(['platform_id'], ['psad_platform.id'], name=op.f('fk_foquale_network_platform_id_psad_platform'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_foquale_network')),
    sa.UniqueConstraint('platform_id', name=op.f('uq_foquale_network_platform_id'))
    )
    op.create_index('uq_foquale_network_source_key', 'foquale_network', ['source', 'source_key'], unique=True, postgresql_where='source_key IS NOT NULL')
    op.create_table('psad_platform_commune',
    sa.Column('platform_id', sa.BigInteger(), nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.ForeignKeyConstraint(['commune_code'], ['commune.code'], name=op.f('fk_psad_platform_commune_commune_code_commune')),
    sa.ForeignKeyConstraint(['platform_id'], ['psad_platform.id'], name=op.f('fk_psad_platform_commune_platform_id_psad_platform'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('platform_id', 'commune_code', name=op.f('pk_psad_platform_commune')),
    sa.UniqueConstraint('commune_code', name=op.f('uq_psad_platform_commune_commune_code'))
    )
    op.create_geospatial_table('site',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('postcode', sa.String(length=5), nullable=True),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('position_precision', sa.String(length=10), nullable=False),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('website', sa.Text(), nullable=True),
    sa.Column('accessibility', sa.Text(), nullable=True),
    sa.Column('opening_hours', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), server_default='draft', nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_key', sa.Text(), nullable=True),
    sa.Column('is_example', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("kind IN ('lycee', 'micro_lycee', 'cfa', 'ufa', 'service_civique', 'mission_locale', 'cio', 'mlds', 'psad', 'e2c', 'epide', 'greta', 'organisme_formation')", name=op.f('ck_site_kind')),
    sa.CheckConstraint("position_precision IN ('address', 'commune')", name=op.f('ck_site_position_precision')),
    sa.CheckConstraint('NOT ST_IsEmpty(geom)', name=op.f('ck_site_geom_not_empty')),
    sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name=op.f('ck_site_status')),
    sa.ForeignKeyConstraint(['commune_code'], ['commune.code'], name=op.f('fk_site_commune_code_commune')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site'))
    )
    op.create_geospatial_index('idx_site_geom', 'site', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_site_commune_code'), 'site', ['commune_code'], unique=False)
    op.create_index('uq_site_source_key', 'site', ['source', 'source_key'], unique=True, postgresql_where='source_key IS NOT NULL')
    op.create_geospatial_table('solution',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('site_id', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('voie', sa.String(length=16), nullable=True),
    sa.Column('level', sa.Text(), nullable=True),
    sa.Column('domain', sa.Text(), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('vacant_places', sa.Integer(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('service_civique_formula', sa.String(length=16), nullable=True),
    sa.Column('hours_per_week', sa.SmallInteger(), nullable=True),
    sa.Column('school_hours_per_week', sa.SmallInteger(), nullable=True),
    sa.Column('min_age', sa.SmallInteger(), nullable=True),
    sa.Column('max_age', sa.SmallInteger(), nullable=True),
    sa.Column('eligibility', sa.Text(), nullable=True),
    sa.Column('how_to_apply', sa.Text(), nullable=True),
    sa.Column('position', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='draft', nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_key', sa.Text(), nullable=True),
    sa.Column('is_example', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_by', sa.Text(), server_default='system', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("(type = 'service_civique') = (service_civique_formula IS NOT NULL) AND (service_civique_formula IS NULL OR service_civique_formula IN ('plein_temps', 'combinee'))", name=op.f('ck_solution_service_civique_formula')),
    sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name=op.f('ck_solution_status')),
    sa.CheckConstraint("type IN ('places_lycee', 'structure_innovante', 'apprentissage', 'service_civique', 'formation_regionale', 'mission_locale', 'clause_sociale', 'greta', 'accueil_orientation', 'e2c', 'epide')", name=op.f('ck_solution_type')),
    sa.CheckConstraint("voie IS NULL OR voie IN ('professionnelle', 'generale', 'technologique')", name=op.f('ck_solution_voie')),
    sa.CheckConstraint('end_date IS NULL OR start_date IS NULL OR end_date >= start_date', name=op.f('ck_solution_dates')),
    sa.CheckConstraint('vacant_places IS NULL OR (vacant_places >= 0 AND (capacity IS NULL OR vacant_places <= capacity))', name=op.f('ck_solution_vacant_places')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_solution_site_id_site'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_solution'))
    )
    op.create_geospatial_index('idx_solution_position', 'solution', ['position'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_solution_site_id'), 'solution', ['site_id'], unique=False)
    op.create_index('uq_solution_source_key', 'solution', ['source', 'source_key'], unique=True, postgresql_where='source_key IS NOT NULL')
    op.execute(SOLUTION_POSITION_TRIGGERS)


def downgrade() -> None:
    op.execute("DROP TRIGGER site_position_to_solutions ON site")
    op.execute("DROP FUNCTION site_position_to_solutions()")
    op.execute("DROP TRIGGER solution_position_from_site ON solution")
    op.execute("DROP FUNCTION solution_position_from_site()")
    op.drop_index('uq_solution_source_key', table_name='solution', postgresql_where='source_key IS NOT NULL')
    op.drop_index(op.f('ix_solution_site_id'), table_name='solution')
    op.drop_geospatial_index('idx_solution_position', table_name='solution', postgresql_using='gist', column_name='position')
    op.drop_geospatial_table('solution')
    op.drop_index('uq_site_source_key', table_name='site', postgresql_where='source_key IS NOT NULL')
    op.drop_index(op.f('ix_site_commune_code'), table_name='site')
    op.drop_geospatial_index('idx_site_geom', table_name='site', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('site')
    op.drop_table('psad_platform_commune')
    op.drop_index('uq_foquale_network_source_key', table_name='foquale_network', postgresql_where='source_key IS NOT NULL')
    op.drop_table('foquale_network')
    op.drop_index('uq_psad_platform_source_key', table_name='psad_platform', postgresql_where='source_key IS NOT NULL')
    op.drop_index(op.f('ix_psad_platform_departement_code'), table_name='psad_platform')
    op.drop_table('psad_platform')
    op.drop_index('ix_commune_postcodes', table_name='commune', postgresql_using='gin')
    op.drop_index(op.f('ix_commune_parent_code'), table_name='commune')
    op.drop_index(op.f('ix_commune_departement_code'), table_name='commune')
    op.drop_geospatial_index('idx_commune_geom', table_name='commune', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('commune')
    op.drop_geospatial_index('idx_departement_geom', table_name='departement', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('departement')
    op.drop_geospatial_index('idx_academie_geom', table_name='academie', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('academie')
    op.drop_geospatial_index('idx_region_geom', table_name='region', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('region')
    op.drop_table('dataset_version')
