"""Getting in: passwords checked with login attempts throttled per account and per address (counted in the
audit log, so every process and every worker sees the same count), sessions that "log out everywhere" ends
(a per-account generation), and API tokens that carry the account's scope."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..errors import InvalidParameter, NotFound, TooManyAttempts, Unauthorized
from . import audit
from .secrets import HASHER, needs_rehash, secret_hash, verify_password, new_secret
from .store import load_actor
from .values import Actor


@dataclass(frozen=True)
class LoginLimits:
    """At most `per_account` failed logins for one e-mail and `per_address` from one address within `window`."""

    per_account: int = 5
    per_address: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)


FAILURES = text("""
SELECT count(*) FILTER (WHERE email = :email) AS by_email, count(*) FILTER (WHERE address = :address) AS by_address
FROM audit_event WHERE event = 'login_failed' AND at > now() - :window AND (email = :email OR address = :address)
""")


def authenticate(conn: Connection, email: str, password: str, address: str | None,
                 limits: LoginLimits = LoginLimits()) -> tuple[Actor, int]:
    """(the actor, its session generation) for a right e-mail and password; Unauthorized otherwise (the same
    message whether the e-mail exists or not); TooManyAttempts past the limits."""
    email = email.strip().lower()
    counts = conn.execute(FAILURES, {"email": email, "address": address, "window": limits.window}).mappings().one()
    if counts["by_email"] >= limits.per_account or (address and counts["by_address"] >= limits.per_address):
        audit.record(conn, "login_throttled", email=email, address=address)
        minutes = int(limits.window.total_seconds() // 60)
        raise TooManyAttempts(f"Trop de tentatives de connexion : réessayez dans {minutes} minutes, ou utilisez "
                              "« Mot de passe oublié ».")
    row = conn.execute(text("SELECT id, password_hash, session_generation FROM account WHERE email = :e AND active"),
                       {"e": email}).mappings().first()
    if not verify_password(row["password_hash"] if row else None, password):
        audit.record(conn, "login_failed", account_id=row["id"] if row else None, email=email, address=address)
        raise Unauthorized("Adresse e-mail ou mot de passe incorrect.")
    if needs_rehash(row["password_hash"]):
        conn.execute(text("UPDATE account SET password_hash = :h WHERE id = :id"),
                     {"h": HASHER.hash(password), "id": row["id"]})
    audit.record(conn, "login", account_id=row["id"], email=email, address=address)
    return load_actor(conn, row["id"], address), row["session_generation"]


def session_actor(conn: Connection, account_id: int, generation: int, address: str | None = None) -> Actor | None:
    """The actor of a session still valid: the account is active and nobody logged it out everywhere since."""
    current = conn.scalar(text("SELECT session_generation FROM account WHERE id = :id AND active"), {"id": account_id})
    if current is None or current != generation:
        return None
    return load_actor(conn, account_id, address)


def logout_everywhere(conn: Connection, actor: Actor) -> None:
    conn.execute(text("UPDATE account SET session_generation = session_generation + 1 WHERE id = :id"),
                 {"id": actor.account_id})
    audit.record(conn, "logout_everywhere", account_id=actor.account_id, email=actor.email, address=actor.address)


# -- API tokens ---------------------------------------------------------------------------------------

def create_api_token(conn: Connection, actor: Actor, label: str) -> tuple[int, str]:
    """A token for the integrators' API, acting as `actor` with its scope: (id, the secret, shown once)."""
    label = (label or "").strip()
    if not label or len(label) > 100:
        raise InvalidParameter("Donnez un nom au jeton (100 caractères au plus), par exemple l'outil qui l'utilise.",
                               parameter="label")
    secret, digest = new_secret()
    token_id = conn.execute(text("""INSERT INTO account_token (account_id, purpose, token_hash, label)
                                    VALUES (:a, 'api', :h, :label) RETURNING id"""),
                            {"a": actor.account_id, "h": digest, "label": label}).scalar()
    return token_id, secret


def api_tokens(conn: Connection, actor: Actor) -> list[dict]:
    return [dict(r) for r in conn.execute(text("""
        SELECT id, label, created_at, revoked_at FROM account_token
        WHERE account_id = :a AND purpose = 'api' ORDER BY id DESC"""), {"a": actor.account_id}).mappings()]


def revoke_api_token(conn: Connection, actor: Actor, token_id: int) -> None:
    """Only one's own tokens (another account's token id is unknown here)."""
    revoked = conn.execute(text("""UPDATE account_token SET revoked_at = coalesce(revoked_at, now())
                                   WHERE id = :id AND account_id = :a AND purpose = 'api' RETURNING id"""),
                           {"id": token_id, "a": actor.account_id}).scalar()
    if revoked is None:
        raise NotFound(f"Vous n'avez pas de jeton {token_id}.", parameter="id")


def token_actor(conn: Connection, secret: str, address: str | None = None) -> Actor | None:
    account_id = conn.scalar(text("""SELECT t.account_id FROM account_token t JOIN account a ON a.id = t.account_id
                                     WHERE t.token_hash = :h AND t.purpose = 'api' AND t.revoked_at IS NULL
                                       AND a.active"""), {"h": secret_hash(secret)})
    return load_actor(conn, account_id, address) if account_id else None
