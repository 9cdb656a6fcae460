"""Who may do what, where: the one check every read and write of the workspace and of its API goes through.

- national administrator: everything, and manages the académie administrators;
- académie administrator: the catalogue, the PSAD platforms and FOQUALE networks, and the curators' and partners'
  accounts of its académie(s);
- territory curator: the sites (and their solutions, reports) whose commune lies in its départements or in its
  PSAD platform's perimeter; publishes, reviews partners' proposals, handles the error reports;
- partner contributor: only the sites it was granted (their fields, their solutions, their vacant places); it
  may propose a new site in the départements of its sites, which waits as a draft for the curator's review.

A refusal raises Forbidden (403) with a French message and is written to the audit log."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..errors import Forbidden, NotFound
from . import audit
from .values import (
    ACADEMIE_ADMIN, CURATOR, PARTNER, AccountTarget, Action, Actor, Ref, Territory,
)

CATALOGUE = {Action.READ, Action.EDIT_SITE, Action.CREATE_SITE, Action.PUBLISH_SITE, Action.EDIT_SOLUTION,
             Action.STAMP, Action.HANDLE_REPORT}
ROLE_ACTIONS = {
    ACADEMIE_ADMIN: CATALOGUE | {Action.EDIT_TERRITORY},
    CURATOR: CATALOGUE,
    PARTNER: {Action.READ, Action.EDIT_SITE, Action.CREATE_SITE, Action.EDIT_SOLUTION, Action.STAMP},
}
ACTION_LABELS = {
    Action.READ: "consulter", Action.EDIT_SITE: "modifier ce lieu", Action.CREATE_SITE: "créer un lieu ici",
    Action.PUBLISH_SITE: "changer le statut de ce lieu", Action.EDIT_SOLUTION: "modifier les solutions de ce lieu",
    Action.STAMP: "marquer ce lieu « toujours exact »", Action.HANDLE_REPORT: "traiter ce signalement",
    Action.EDIT_TERRITORY: "modifier ce territoire", Action.MANAGE_ACCOUNT: "gérer ce compte",
}


def allows(actor: Actor, action: Action, target: Territory | AccountTarget) -> bool:
    if actor.is_national:
        return True
    if isinstance(target, AccountTarget):
        # Académie administrators manage curators and partners whose whole territory is in their académies.
        return (action is Action.MANAGE_ACCOUNT and actor.role == ACADEMIE_ADMIN
                and target.role in (CURATOR, PARTNER) and bool(target.academies)
                and target.academies <= actor.academies)
    if action not in ROLE_ACTIONS.get(actor.role, ()):
        return False
    if actor.role == ACADEMIE_ADMIN:
        return target.academie in actor.academies
    if actor.role == CURATOR:
        return target.departement in actor.departements or bool(target.platforms & actor.platforms)
    if actor.role == PARTNER:
        if action is Action.CREATE_SITE:
            return target.departement in actor.departements
        return target.site is not None and target.site in actor.sites
    return False


# Where a commune lies; a city's platform may list the city itself, not its arrondissements.
TERRITORY_COLUMNS = """c.code AS commune, c.departement_code AS departement, c.academie_code AS academie,
       ARRAY(SELECT pc.platform_id FROM psad_platform_commune pc
             WHERE pc.commune_code IN (c.code, c.parent_code)) AS platforms"""
TERRITORY_SQL = {
    "commune": f"SELECT {TERRITORY_COLUMNS}, NULL::bigint AS site FROM commune c WHERE c.code = :id",
    "site": f"""SELECT {TERRITORY_COLUMNS}, site.id AS site
                FROM site JOIN commune c ON c.code = site.commune_code WHERE site.id = :id""",
    "solution": f"""SELECT {TERRITORY_COLUMNS}, site.id AS site FROM solution s JOIN site ON site.id = s.site_id
                    JOIN commune c ON c.code = site.commune_code WHERE s.id = :id""",
    "report": f"""SELECT {TERRITORY_COLUMNS}, site.id AS site FROM error_report r
                  JOIN solution s ON s.id = r.solution_id JOIN site ON site.id = s.site_id
                  JOIN commune c ON c.code = site.commune_code WHERE r.id = :id""",
    # A platform lies in its département: its perimeter's communes all belong there.
    "platform": """SELECT NULL AS commune, d.code AS departement, d.academie_code AS academie,
                          ARRAY[p.id] AS platforms, NULL::bigint AS site
                   FROM psad_platform p JOIN departement d ON d.code = p.departement_code WHERE p.id = :id""",
    "departement": """SELECT NULL AS commune, d.code AS departement, d.academie_code AS academie,
                             '{}'::bigint[] AS platforms, NULL::bigint AS site FROM departement d WHERE d.code = :id""",
}
WHAT = {"commune": "commune", "site": "lieu", "solution": "solution", "report": "signalement",
        "platform": "plateforme", "departement": "département", "account": "compte"}
NONE_SUCH = {"commune": "Aucune commune", "site": "Aucun lieu", "solution": "Aucune solution",
             "report": "Aucun signalement", "platform": "Aucune plateforme", "departement": "Aucun département"}

ACCOUNT_TARGET = text("""
SELECT a.role, ARRAY(
    SELECT DISTINCT coalesce(sc.academie_code, d.academie_code, pd.academie_code, c.academie_code)
    FROM account_scope sc
    LEFT JOIN departement d ON d.code = sc.departement_code
    LEFT JOIN psad_platform p ON p.id = sc.platform_id LEFT JOIN departement pd ON pd.code = p.departement_code
    LEFT JOIN site ON site.id = sc.site_id LEFT JOIN commune c ON c.code = site.commune_code
    WHERE sc.account_id = a.id) AS academies
FROM account a WHERE a.id = :id
""")


def territory_of(conn: Connection, ref: Ref) -> Territory:
    """Where the record lies; NotFound when there is no such record."""
    if ref.kind not in TERRITORY_SQL:
        raise ValueError(f"no territory for {ref.kind}")
    row = conn.execute(text(TERRITORY_SQL[ref.kind]), {"id": ref.id}).mappings().first()
    if row is None:
        raise NotFound(f"{NONE_SUCH[ref.kind]} n'a l'identifiant {ref.id}.", parameter="id")
    return Territory(commune=row["commune"], departement=row["departement"], academie=row["academie"],
                     platforms=frozenset(row["platforms"] or ()), site=row["site"])


def account_target(conn: Connection, account_id: int) -> AccountTarget:
    row = conn.execute(ACCOUNT_TARGET, {"id": account_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucun compte n'a l'identifiant {account_id}.", parameter="id")
    return AccountTarget(role=row["role"], academies=frozenset(a for a in row["academies"] if a),
                         account_id=account_id)


def authorize(conn: Connection, actor: Actor, action: Action,
              target: Ref | Territory | AccountTarget) -> Territory | AccountTarget:
    """The target's territory when `actor` may do `action` to it; otherwise logs the refusal and raises
    Forbidden (NotFound when the record does not exist)."""
    resolved = target
    if isinstance(target, Ref):
        resolved = account_target(conn, int(target.id)) if target.kind == "account" else territory_of(conn, target)
    if allows(actor, action, resolved):
        return resolved
    described = f"{WHAT[target.kind]} {target.id}" if isinstance(target, Ref) else _describe(resolved)
    audit.record(conn, "forbidden", account_id=actor.account_id, email=actor.email, address=actor.address,
                 detail=f"{action.value} {described}")
    raise Forbidden(f"Votre compte ne permet pas de {ACTION_LABELS[action]} ({described}) : c'est hors de votre "
                    "territoire ou de votre rôle. Demandez à l'administrateur de votre académie si besoin.")


def _describe(target: Territory | AccountTarget) -> str:
    if isinstance(target, AccountTarget):
        return f"compte {target.account_id or 'nouveau'} ({target.role})"
    return f"commune {target.commune}" if target.commune else f"département {target.departement}"


def territory_filter(actor: Actor, commune: str = "c", site: str = "site") -> tuple[str, dict]:
    """A SQL condition (and its binds) true for the rows of `actor`'s territory, given the aliases of the
    site's commune and of the site: the lists of the workspace use the same rule as `allows`.

    A territory is given as the codes of its communes, found first: the sites are then reached through their
    commune's index. (A condition on each site's commune, with an EXISTS for the perimeters, read every site
    and solution of the country: 2 s for a curator's dashboard at 200k sites; bench/workspace.py.)"""
    if actor.is_national:
        return "true", {}
    if actor.role == ACADEMIE_ADMIN:
        return (f"{commune}.code IN (SELECT in_academie.code FROM commune in_academie "
                "WHERE in_academie.academie_code = ANY(:scope_academies))",
                {"scope_academies": list(actor.academies)})
    if actor.role == CURATOR:
        # A perimeter names communes; a commune's arrondissements (Paris, Lyon, Marseille) are in it with it.
        return (f"{commune}.code IN (SELECT in_departement.code FROM commune in_departement "
                "WHERE in_departement.departement_code = ANY(:scope_departements) "
                "UNION ALL SELECT in_perimeter.code FROM psad_platform_commune spc JOIN commune in_perimeter "
                "ON spc.commune_code IN (in_perimeter.code, in_perimeter.parent_code) "
                "WHERE spc.platform_id = ANY(:scope_platforms))",
                {"scope_departements": list(actor.departements), "scope_platforms": list(actor.platforms)})
    if actor.role == PARTNER:
        return f"{site}.id = ANY(:scope_sites)", {"scope_sites": list(actor.sites)}
    return "false", {}
