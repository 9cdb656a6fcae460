"""Who may see which report and enter which figures, following the workspace's roles and territories.

The actor is the workspace's account (mapservice.accounts Actor: a role, académies, départements, platforms):
- national administrator: every report, every figure, every objective;
- académie administrator: the reports of its académie(s) and of their départements and platforms; validates
  the platforms' figures and sets the académie's objectives;
- territory curator: the reports of its départements and of its platforms (and of the platforms lying in its
  départements); enters the figures of those platforms;
- partner contributor: no report."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..accounts import audit
from ..accounts.values import ACADEMIE_ADMIN, CURATOR, NATIONAL_ADMIN, Actor
from ..errors import Forbidden, InvalidParameter, NotFound

SCOPE_KINDS = ("national", "academie", "departement", "platform")
NONE_SUCH = {"academie": "d'académie", "departement": "de département", "platform": "de plateforme"}
SCOPE_WORDS = {"national": "la France entière", "academie": "l'académie", "departement": "le département",
               "platform": "la plateforme"}


@dataclass(frozen=True)
class ReportScope:
    """What a report is about: the whole country, one académie, one département or one PSAD platform."""

    kind: str
    code: str = ""

    @property
    def key(self) -> str:
        return "national" if self.kind == "national" else f"{self.kind}:{self.code}"

    @classmethod
    def from_key(cls, key: str) -> ReportScope:
        kind, _, code = key.partition(":")
        return cls(kind, code)


@dataclass(frozen=True)
class Place:
    """Where a scope lies: its académie and département (None above that level)."""

    scope: ReportScope
    name: str
    academie: str | None
    departement: str | None


PLACE_SQL = {
    "academie": "SELECT name, code AS academie, NULL AS departement FROM academie WHERE code = :code",
    "departement": "SELECT name, academie_code AS academie, code AS departement FROM departement WHERE code = :code",
    "platform": """SELECT p.name, d.academie_code AS academie, d.code AS departement
                   FROM psad_platform p JOIN departement d ON d.code = p.departement_code
                   WHERE p.id = CAST(:code AS bigint) AND p.status <> 'archived'""",
}


def place_of(conn: Connection, scope: ReportScope) -> Place:
    if scope.kind == "national":
        return Place(scope, "France entière", None, None)
    if scope.kind not in PLACE_SQL:
        raise InvalidParameter("Le rapport porte sur national, une académie, un département ou une plateforme.",
                               parameter="scope")
    if scope.kind == "platform" and not scope.code.isdigit():
        raise InvalidParameter(f"« {scope.code} » n'est pas un identifiant de plateforme.", parameter="code")
    row = conn.execute(text(PLACE_SQL[scope.kind]), {"code": scope.code}).mappings().first()
    if row is None:
        raise NotFound(f"Il n'y a pas {NONE_SUCH[scope.kind]} de code {scope.code}.", parameter="code")
    return Place(scope, row["name"], row["academie"], row["departement"])


def may_read(actor: Actor, place: Place) -> bool:
    if actor.role == NATIONAL_ADMIN:
        return True
    if actor.role == ACADEMIE_ADMIN:
        return place.academie is not None and place.academie in actor.academies
    if actor.role == CURATOR:
        if place.scope.kind == "platform":
            return int(place.scope.code) in actor.platforms or place.departement in actor.departements
        return place.scope.kind == "departement" and place.departement in actor.departements
    return False


def may_enter_figures(actor: Actor, place: Place) -> bool:
    """The platform's own team (a curator of it or of its département), its académie, or national."""
    return place.scope.kind == "platform" and may_read(actor, place)


def may_validate(actor: Actor, place: Place) -> bool:
    """Validating a platform's figures, setting an académie's objectives: its académie administrator."""
    if actor.role == NATIONAL_ADMIN:
        return True
    return actor.role == ACADEMIE_ADMIN and place.academie in actor.academies


def check(conn: Connection, actor: Actor, allowed: bool, what: str, place: Place) -> None:
    """Forbidden (written to the workspace's audit log) unless `allowed`."""
    if not allowed:
        audit.record(conn, "forbidden", account_id=actor.account_id, email=actor.email, address=actor.address,
                     detail=f"rapport : {what} ({place.scope.key})")
        raise Forbidden(f"Votre compte ne permet pas de {what} pour {SCOPE_WORDS[place.scope.kind]} "
                        f"« {place.name} » : c'est hors de votre territoire ou de votre rôle.")


def readable_scopes(conn: Connection, actor: Actor) -> list[Place]:
    """The reports an actor may open, for the workspace's index page: national first, then académies,
    départements and platforms by name."""
    rows = conn.execute(text("""
        SELECT 'academie' AS kind, code, name, code AS academie, NULL AS departement FROM academie
        UNION ALL SELECT 'departement', code, name, academie_code, code FROM departement
        UNION ALL SELECT 'platform', p.id::text, p.name, d.academie_code, d.code
                  FROM psad_platform p JOIN departement d ON d.code = p.departement_code WHERE p.status <> 'archived'
        ORDER BY 1, 2""")).mappings()
    places = [Place(ReportScope("national"), "France entière", None, None)]
    places += [Place(ReportScope(r["kind"], r["code"]), r["name"], r["academie"], r["departement"]) for r in rows]
    return [p for p in places if may_read(actor, p)]
