"""The figures only the platforms know (aggregates only, never a person): young people contacted, met, with a
solution proposed, entered in a solution, per period; entered by the platform's team, validated by the académie
administrator; and each académie's objectives for the year, set by its administrator.

Every write checks the actor's territory here, whoever calls (a page or the API); figures of a frozen period
cannot change any more (its report would no longer say what they were)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..accounts.values import Actor
from ..errors import Conflict, InvalidParameter, MapserviceError, NotFound, StaleVersion
from .access import Place, ReportScope, check, may_enter_figures, may_read, may_validate, place_of
from .periods import Period

FIGURES = ("contacted", "met", "proposed", "entered")
LABELS = {"contacted": "jeunes contactés", "met": "jeunes reçus en entretien",
          "proposed": "jeunes à qui une solution a été proposée", "entered": "jeunes entrés dans une solution"}
MAX_COUNT = 1_000_000


@dataclass(frozen=True)
class ActivityFigures:
    contacted: int
    met: int
    proposed: int
    entered: int

    def __post_init__(self):
        for name in FIGURES:
            value = getattr(self, name)
            if not 0 <= value <= MAX_COUNT:
                raise InvalidParameter(f"Le nombre de {LABELS[name]} doit être entre 0 et {MAX_COUNT}.",
                                       parameter=name)
        # Each step is a subset of the one before: a young person entered in a solution was proposed it, after
        # an interview.
        for smaller, larger in (("entered", "proposed"), ("proposed", "met")):
            if getattr(self, smaller) > getattr(self, larger):
                raise InvalidParameter(f"Le nombre de {LABELS[smaller]} ne peut pas dépasser celui de "
                                       f"{LABELS[larger]}.", parameter=smaller)


@dataclass(frozen=True)
class Objectives:
    """Targets for the year; None: no objective for that figure."""

    contacted: int | None
    met: int | None
    proposed: int | None
    entered: int | None

    def __post_init__(self):
        for name in FIGURES:
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_COUNT:
                raise InvalidParameter(f"L'objectif de {LABELS[name]} doit être entre 0 et {MAX_COUNT}.",
                                       parameter=name)


def closed(conn: Connection, period: Period) -> MapserviceError | None:
    """Why the figures of `period` can no longer (or not yet) be entered or validated; None when they can."""
    if period > Period.containing(conn.scalar(text("SELECT current_date"))):
        return InvalidParameter(f"La période {period.label} n'a pas commencé.", parameter="period")
    if conn.scalar(text("SELECT EXISTS (SELECT 1 FROM reporting_snapshot WHERE period = :p)"), {"p": period.name}):
        return Conflict(f"La période {period.label} est close et son rapport figé : ses chiffres ne changent plus.",
                        parameter="period")
    return None


def _open_period(conn: Connection, period: Period) -> None:
    if (refusal := closed(conn, period)) is not None:
        raise refusal


def _version_matches(row, expected: int | None, what: str) -> None:
    current = row["version"] if row else None
    if expected is not None and current != expected:
        raise StaleVersion(f"{what} ont été modifiés entre-temps (version {current}) : rechargez la page et "
                       "recommencez.", parameter="version")


def activity(conn: Connection, platform_id: int, period: Period) -> dict | None:
    row = conn.execute(text("""SELECT contacted, met, proposed, entered, updated_at, updated_by, validated_at,
                                      validated_by, version
                               FROM reporting_activity WHERE platform_id = :id AND period = :p"""),
                       {"id": platform_id, "p": period.name}).mappings().first()
    return dict(row) if row else None


def for_entry(conn: Connection, actor: Actor, platform_id: int, period: Period) -> tuple[Place, dict | None]:
    """The platform and its figures of the period, for the form where its team enters them (the same check as
    the save)."""
    place = place_of(conn, ReportScope("platform", str(platform_id)))
    check(conn, actor, may_enter_figures(actor, place), "saisir les chiffres d'activité", place)
    return place, activity(conn, platform_id, period)


def enter(conn: Connection, actor: Actor, platform_id: int, period: Period, figures: ActivityFigures,
          expected_version: int | None = None) -> int:
    """Saves a platform's figures for the period (to be validated again); returns the new version."""
    place = place_of(conn, ReportScope("platform", str(platform_id)))
    check(conn, actor, may_enter_figures(actor, place), "saisir les chiffres d'activité", place)
    _open_period(conn, period)
    current = conn.execute(text("""SELECT version FROM reporting_activity WHERE platform_id = :id AND period = :p
                                   FOR UPDATE"""), {"id": platform_id, "p": period.name}).mappings().first()
    _version_matches(current, expected_version, "Ces chiffres")
    return conn.scalar(text("""
        INSERT INTO reporting_activity (platform_id, period, contacted, met, proposed, entered, updated_by)
        VALUES (:id, :p, :contacted, :met, :proposed, :entered, :by)
        ON CONFLICT (platform_id, period) DO UPDATE SET
            contacted = EXCLUDED.contacted, met = EXCLUDED.met, proposed = EXCLUDED.proposed,
            entered = EXCLUDED.entered, updated_at = now(), updated_by = EXCLUDED.updated_by,
            validated_at = NULL, validated_by = NULL, version = reporting_activity.version + 1
        RETURNING version"""), {"id": platform_id, "p": period.name, "by": actor.email,
                                **{f: getattr(figures, f) for f in FIGURES}})


def validate(conn: Connection, actor: Actor, platform_id: int, period: Period, expected_version: int) -> None:
    """The académie administrator validates the figures as they were when read (`expected_version`)."""
    place = place_of(conn, ReportScope("platform", str(platform_id)))
    check(conn, actor, may_validate(actor, place), "valider les chiffres d'activité", place)
    _open_period(conn, period)
    row = conn.execute(text("""SELECT version FROM reporting_activity WHERE platform_id = :id AND period = :p
                               FOR UPDATE"""), {"id": platform_id, "p": period.name}).mappings().first()
    if row is None:
        raise NotFound(f"La plateforme n'a pas saisi de chiffres pour {period.label}.", parameter="period")
    _version_matches(row, expected_version, "Ces chiffres")
    conn.execute(text("""UPDATE reporting_activity SET validated_at = now(), validated_by = :by
                         WHERE platform_id = :id AND period = :p"""),
                 {"id": platform_id, "p": period.name, "by": actor.email})


def objectives(conn: Connection, academie: str, year: int) -> dict | None:
    row = conn.execute(text("""SELECT contacted, met, proposed, entered, updated_at, updated_by, version
                               FROM reporting_objective WHERE academie_code = :a AND year = :y"""),
                       {"a": academie, "y": year}).mappings().first()
    return dict(row) if row else None


def for_objectives(conn: Connection, actor: Actor, academie: str, year: int) -> tuple[Place, dict | None]:
    """The académie and its objectives of the year, for the form where its administrator sets them (the same
    check as the save)."""
    place = place_of(conn, ReportScope("academie", academie))
    check(conn, actor, may_validate(actor, place), "fixer les objectifs", place)
    return place, objectives(conn, academie, year)


def set_objectives(conn: Connection, actor: Actor, academie: str, year: int, targets: Objectives,
                   expected_version: int | None = None) -> int:
    place = place_of(conn, ReportScope("academie", academie))
    check(conn, actor, may_validate(actor, place), "fixer les objectifs", place)
    if not 2000 <= year <= 2100:
        raise InvalidParameter("L'année des objectifs doit être entre 2000 et 2100.", parameter="year")
    current = conn.execute(text("""SELECT version FROM reporting_objective WHERE academie_code = :a AND year = :y
                                   FOR UPDATE"""), {"a": academie, "y": year}).mappings().first()
    _version_matches(current, expected_version, "Ces objectifs")
    return conn.scalar(text("""
        INSERT INTO reporting_objective (academie_code, year, contacted, met, proposed, entered, updated_by)
        VALUES (:a, :y, :contacted, :met, :proposed, :entered, :by)
        ON CONFLICT (academie_code, year) DO UPDATE SET
            contacted = EXCLUDED.contacted, met = EXCLUDED.met, proposed = EXCLUDED.proposed,
            entered = EXCLUDED.entered, updated_at = now(), updated_by = EXCLUDED.updated_by,
            version = reporting_objective.version + 1
        RETURNING version"""), {"a": academie, "y": year, "by": actor.email,
                                **{f: getattr(targets, f) for f in FIGURES}})


def platforms_figures(conn: Connection, actor: Actor, place: Place, period: Period) -> list[dict]:
    """The platforms of a scope with their figures for the period, for the page where they are entered and
    validated; each says whether the actor may enter (`may_enter`) and validate (`may_validate`) them."""
    check(conn, actor, may_read(actor, place), "consulter les chiffres d'activité", place)
    where = {"national": "true", "academie": "d.academie_code = :code", "departement": "d.code = :code",
             "platform": "p.id = CAST(:code AS bigint)"}[place.scope.kind]
    rows = conn.execute(text(f"""
        SELECT p.id, p.name, d.code AS departement, d.academie_code AS academie, a.contacted, a.met, a.proposed,
               a.entered, a.updated_at, a.updated_by, a.validated_at, a.validated_by, a.version
        FROM psad_platform p JOIN departement d ON d.code = p.departement_code
        LEFT JOIN reporting_activity a ON a.platform_id = p.id AND a.period = :p
        WHERE p.status <> 'archived' AND {where} ORDER BY d.code, p.name"""),
                        {"code": place.scope.code, "p": period.name}).mappings()
    platforms = []
    for row in rows:
        platform = Place(ReportScope("platform", str(row["id"])), row["name"], row["academie"], row["departement"])
        platforms.append({**row, "may_enter": may_enter_figures(actor, platform),
                          "may_validate": may_validate(actor, platform)})
    return platforms


def today_period(conn: Connection) -> Period:
    return Period.containing(conn.scalar(text("SELECT current_date")))
