"""Accounts and their scopes: created by invitation (a one-time, expiring link to set a password), changed by an
administrator of their territory, every change recorded in the history."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import history
from ..errors import InvalidParameter, NotFound, StaleVersion
from ..taxonomy import ROLES
from . import permissions
from .secrets import hash_password, new_secret, secret_hash
from .values import ACADEMIE_ADMIN, CURATOR, NATIONAL_ADMIN, PARTNER, AccountTarget, Action, Actor, Scope

# Which kinds of scope each role takes.
ROLE_SCOPES = {NATIONAL_ADMIN: set(), ACADEMIE_ADMIN: {"academie"}, CURATOR: {"departement", "platform"},
               PARTNER: {"site"}}
SCOPE_LABELS = {"academie": "académie", "departement": "département", "platform": "plateforme PSAD", "site": "lieu"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class AccountSpec:
    """What an administrator sets on an account: e-mail, role, scopes, name."""

    email: str
    role: str
    scopes: tuple[Scope, ...] = ()
    name: str | None = None


def scope_kind(scope: Scope) -> str:
    return next(k for k in ("academie", "departement", "platform", "site") if getattr(scope, k) is not None)


def scope_value(scope: Scope):
    return getattr(scope, scope_kind(scope))


def scope_label(scope: Scope) -> str:
    return f"{SCOPE_LABELS[scope_kind(scope)]} {scope_value(scope)}"


ACADEMIE_OF_SCOPE = {
    "academie": "SELECT code FROM academie WHERE code = :v",
    "departement": "SELECT academie_code FROM departement WHERE code = :v",
    "platform": "SELECT d.academie_code FROM psad_platform p JOIN departement d ON d.code = p.departement_code "
                "WHERE p.id = :v",
    "site": "SELECT c.academie_code FROM site JOIN commune c ON c.code = site.commune_code WHERE site.id = :v",
}


def checked_spec(conn: Connection, spec: AccountSpec) -> tuple[AccountSpec, frozenset[str]]:
    """The spec with its e-mail normalised, and the académies its scopes lie in; InvalidParameter otherwise."""
    email = spec.email.strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidParameter(f"« {spec.email[:80]} » n'est pas une adresse e-mail.", parameter="email")
    if spec.role not in ROLES:
        raise InvalidParameter(f"Rôle inconnu « {spec.role} » ; rôles : {', '.join(ROLES)}.", parameter="role")
    allowed = ROLE_SCOPES[spec.role]
    if allowed and not spec.scopes:
        raise InvalidParameter(f"Un compte « {ROLES[spec.role]} » a besoin d'un territoire "
                               f"({' ou '.join(SCOPE_LABELS[k] for k in sorted(allowed))}).", parameter="scopes")
    academies = set()
    for scope in spec.scopes:
        kind = scope_kind(scope)
        if kind not in allowed:
            raise InvalidParameter(f"Un compte « {ROLES[spec.role]} » ne prend pas de territoire de type "
                                   f"{SCOPE_LABELS[kind]}.", parameter="scopes")
        academie = conn.execute(text(ACADEMIE_OF_SCOPE[kind]), {"v": scope_value(scope)}).scalar()
        if academie is None:
            raise InvalidParameter(f"Territoire inconnu : {scope_label(scope)}.", parameter="scopes")
        academies.add(academie)
    return AccountSpec(email=email, role=spec.role, scopes=tuple(dict.fromkeys(spec.scopes)),
                       name=(spec.name or "").strip() or None), frozenset(academies)


def _snapshot(conn: Connection, account_id: int) -> dict:
    row = conn.execute(text("SELECT email, name, role, active, version FROM account WHERE id = :id"),
                       {"id": account_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucun compte n'a l'identifiant {account_id}.", parameter="id")
    return {**row, "scopes": [scope_label(s) for s in scopes_of(conn, account_id)]}


def scopes_of(conn: Connection, account_id: int) -> list[Scope]:
    return [Scope(academie=r.academie_code, departement=r.departement_code, platform=r.platform_id, site=r.site_id)
            for r in conn.execute(text("""SELECT academie_code, departement_code, platform_id, site_id
                                          FROM account_scope WHERE account_id = :id ORDER BY id"""), {"id": account_id})]


def _write_scopes(conn: Connection, account_id: int, scopes) -> None:
    conn.execute(text("DELETE FROM account_scope WHERE account_id = :id"), {"id": account_id})
    for scope in scopes:
        conn.execute(text("""INSERT INTO account_scope (account_id, academie_code, departement_code, platform_id, site_id)
                             VALUES (:a, :academie, :departement, :platform, :site)"""),
                     {"a": account_id, "academie": scope.academie, "departement": scope.departement,
                      "platform": scope.platform, "site": scope.site})


def create_account(conn: Connection, actor: Actor, spec: AccountSpec) -> int:
    spec, academies = checked_spec(conn, spec)
    permissions.authorize(conn, actor, Action.MANAGE_ACCOUNT, AccountTarget(role=spec.role, academies=academies))
    if conn.scalar(text("SELECT 1 FROM account WHERE email = :e"), {"e": spec.email}):
        raise InvalidParameter(f"Un compte existe déjà pour {spec.email}.", parameter="email")
    account_id = conn.execute(text("""INSERT INTO account (email, name, role, created_by)
                                      VALUES (:email, :name, :role, :by) RETURNING id"""),
                              {"email": spec.email, "name": spec.name, "role": spec.role, "by": actor.email}).scalar()
    _write_scopes(conn, account_id, spec.scopes)
    history.record(conn, actor, "account", account_id, "create", None, _snapshot(conn, account_id))
    return account_id


def update_account(conn: Connection, actor: Actor, account_id: int, version: int, spec: AccountSpec,
                   active: bool) -> None:
    """Changes role, scopes, name and whether the account may log in; the administrator must be allowed to
    manage the account both as it was and as it becomes."""
    permissions.authorize(conn, actor, Action.MANAGE_ACCOUNT, permissions.Ref("account", account_id))
    before = _snapshot(conn, account_id)
    spec, academies = checked_spec(conn, AccountSpec(before["email"], spec.role, spec.scopes, spec.name))
    permissions.authorize(conn, actor, Action.MANAGE_ACCOUNT,
                          AccountTarget(role=spec.role, academies=academies, account_id=account_id))
    updated = conn.execute(text("""UPDATE account SET name = :name, role = :role, active = :active,
                                       version = version + 1,
                                       session_generation = session_generation + CASE WHEN :active THEN 0 ELSE 1 END
                                   WHERE id = :id AND version = :version RETURNING id"""),
                           {"id": account_id, "version": version, "name": spec.name, "role": spec.role,
                            "active": active}).scalar()
    if updated is None:
        raise StaleVersion("Ce compte a été modifié entre-temps ; rechargez-le avant de recommencer.",
                           current=before)
    _write_scopes(conn, account_id, spec.scopes)
    history.record(conn, actor, "account", account_id, "update", before, _snapshot(conn, account_id))


def account(conn: Connection, account_id: int) -> dict:
    return {"id": account_id, **_snapshot(conn, account_id),
            "scope_values": scopes_of(conn, account_id)}


def visible_accounts(conn: Connection, actor: Actor) -> list[dict]:
    """The accounts `actor` may manage, by e-mail."""
    rows = conn.execute(text("SELECT id FROM account ORDER BY email")).scalars().all()
    found = []
    for account_id in rows:
        if permissions.allows(actor, Action.MANAGE_ACCOUNT, permissions.account_target(conn, account_id)):
            found.append(account(conn, account_id))
    return found


# -- One-time links -----------------------------------------------------------------------------------

def issue_token(conn: Connection, account_id: int, purpose: str, valid_for: dt.timedelta | None,
                label: str | None = None) -> tuple[int, str]:
    """(token id, the secret to hand over once); a new invitation or reset link replaces the previous ones."""
    if purpose != "api":
        conn.execute(text("""UPDATE account_token SET revoked_at = now() WHERE account_id = :a AND purpose = :p
                             AND used_at IS NULL AND revoked_at IS NULL"""), {"a": account_id, "p": purpose})
    secret, digest = new_secret()
    token_id = conn.execute(text("""
        INSERT INTO account_token (account_id, purpose, token_hash, label, expires_at)
        VALUES (:a, :p, :h, :label, now() + :valid_for) RETURNING id"""),
        {"a": account_id, "p": purpose, "h": digest, "label": label, "valid_for": valid_for}).scalar()
    return token_id, secret


def invite(conn: Connection, actor: Actor, spec: AccountSpec, valid_for: dt.timedelta) -> tuple[int, str]:
    """Creates the account and its invitation link: (account id, secret of the link)."""
    account_id = create_account(conn, actor, spec)
    return account_id, issue_token(conn, account_id, "invitation", valid_for)[1]


def reinvite(conn: Connection, actor: Actor, account_id: int, valid_for: dt.timedelta) -> tuple[str, str]:
    """A new invitation link for an account (the old one stops working): (e-mail, secret)."""
    permissions.authorize(conn, actor, Action.MANAGE_ACCOUNT, permissions.Ref("account", account_id))
    email = _snapshot(conn, account_id)["email"]
    return email, issue_token(conn, account_id, "invitation", valid_for)[1]


def request_reset(conn: Connection, email: str, valid_for: dt.timedelta) -> tuple[int, str] | None:
    """A reset link for the active account of that e-mail, or None (the caller answers the same either way)."""
    account_id = conn.scalar(text("SELECT id FROM account WHERE email = :e AND active"),
                             {"e": email.strip().lower()})
    if account_id is None:
        return None
    return account_id, issue_token(conn, account_id, "reset", valid_for)[1]


def pending_token(conn: Connection, secret: str, purpose: str) -> dict | None:
    """The account behind a one-time link still valid (unused, not replaced, not expired), or None."""
    row = conn.execute(text("""
        SELECT t.id AS token_id, a.id, a.email, a.role FROM account_token t JOIN account a ON a.id = t.account_id
        WHERE t.token_hash = :h AND t.purpose = :p AND t.used_at IS NULL AND t.revoked_at IS NULL
          AND t.expires_at > now() AND a.active"""), {"h": secret_hash(secret), "p": purpose}).mappings().first()
    return dict(row) if row else None


def set_password(conn: Connection, secret: str, purpose: str, password: str) -> int:
    """Uses the one-time link: sets the password, ends every open session; returns the account id."""
    pending = pending_token(conn, secret, purpose)
    if pending is None:
        raise InvalidParameter("Ce lien n'est plus valable (déjà utilisé, remplacé ou expiré) : demandez-en un "
                               "nouveau.", parameter="token")
    password_hash = hash_password(password)
    used = conn.execute(text("UPDATE account_token SET used_at = now() WHERE id = :id AND used_at IS NULL "
                             "RETURNING id"), {"id": pending["token_id"]}).scalar()
    if used is None:  # the same link used twice at the same moment
        raise InvalidParameter("Ce lien vient d'être utilisé.", parameter="token")
    conn.execute(text("""UPDATE account SET password_hash = :h, session_generation = session_generation + 1
                         WHERE id = :id"""), {"h": password_hash, "id": pending["id"]})
    return pending["id"]


def ensure_national_admin(conn: Connection, email: str, valid_for: dt.timedelta) -> tuple[int, str]:
    """The first national administrator (the command line, on a fresh machine): creates the account when
    missing and returns a one-time link's secret to set its password."""
    system = Actor(account_id=None, email="cli", role=NATIONAL_ADMIN)
    email = email.strip().lower()
    account_id = conn.scalar(text("SELECT id FROM account WHERE email = :e"), {"e": email})
    if account_id is None:
        account_id = create_account(conn, system, AccountSpec(email=email, role=NATIONAL_ADMIN))
    elif conn.scalar(text("SELECT role FROM account WHERE id = :id"), {"id": account_id}) != NATIONAL_ADMIN:
        raise InvalidParameter(f"{email} a déjà un compte qui n'est pas administrateur national.", parameter="email")
    return account_id, issue_token(conn, account_id, "invitation", valid_for)[1]


def load_actor(conn: Connection, account_id: int, address: str | None = None) -> Actor | None:
    """The active account with its territory resolved, or None."""
    row = conn.execute(text("SELECT id, email, role FROM account WHERE id = :id AND active"),
                       {"id": account_id}).mappings().first()
    if row is None:
        return None
    scopes = scopes_of(conn, account_id)
    sites = frozenset(s.site for s in scopes if s.site is not None)
    departements = {s.departement for s in scopes if s.departement}
    if sites:  # a partner proposes new sites in the départements of its sites
        departements |= set(conn.scalars(text("""SELECT DISTINCT c.departement_code FROM site
                                                 JOIN commune c ON c.code = site.commune_code
                                                 WHERE site.id = ANY(:ids)"""), {"ids": list(sites)}))
    return Actor(account_id=row["id"], email=row["email"], role=row["role"],
                 academies=frozenset(s.academie for s in scopes if s.academie),
                 departements=frozenset(departements),
                 platforms=frozenset(s.platform for s in scopes if s.platform is not None),
                 sites=sites, address=address)


