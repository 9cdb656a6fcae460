"""The history of every change to the workspace's records (sites, solutions, accounts, scopes, territories): who,
when, which fields, their values before and after. A revert is itself a recorded change."""
from __future__ import annotations

import datetime as dt
import decimal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from .accounts.values import Actor
from .errors import NotFound

INSERT_CHANGE = text("""
INSERT INTO change_log (account_id, actor, entity, entity_id, action, fields, before, after, reverts)
VALUES (:account_id, :actor, :entity, :entity_id, :action, :fields, :before, :after, :reverts)
RETURNING id
""").bindparams(bindparam("before", type_=JSONB), bindparam("after", type_=JSONB))


def plain(value):
    """A value as it is kept in the history (JSON)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(plain(v) for v in value)
    return value


def changed_fields(before: dict | None, after: dict | None) -> list[str]:
    before, after = before or {}, after or {}
    return [k for k in dict.fromkeys([*before, *after]) if plain(before.get(k)) != plain(after.get(k))]


def record(conn: Connection, actor: Actor, entity: str, entity_id: int, action: str, before: dict | None,
           after: dict | None, reverts: int | None = None) -> int | None:
    """Records the change (only the fields that changed); None when nothing changed."""
    fields = changed_fields(before, after)
    if not fields and action == "update":
        return None
    keep = fields if before is not None and after is not None else list(dict.fromkeys([*(before or {}), *(after or {})]))
    return conn.execute(INSERT_CHANGE, {
        "account_id": actor.account_id, "actor": actor.email, "entity": entity, "entity_id": entity_id,
        "action": action, "fields": fields,
        "before": None if before is None else {k: plain(before.get(k)) for k in keep},
        "after": None if after is None else {k: plain(after.get(k)) for k in keep},
        "reverts": reverts}).scalar()


def changes(conn: Connection, entity: str, entity_id: int) -> list[dict]:
    """The record's changes, newest first."""
    return [dict(r) for r in conn.execute(text("""
        SELECT id, at, account_id, actor, entity, entity_id, action, fields, before, after, reverts
        FROM change_log WHERE entity = :entity AND entity_id = :id ORDER BY id DESC
    """), {"entity": entity, "id": entity_id}).mappings()]


def change(conn: Connection, change_id: int) -> dict:
    row = conn.execute(text("""
        SELECT id, at, account_id, actor, entity, entity_id, action, fields, before, after, reverts
        FROM change_log WHERE id = :id"""), {"id": change_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucune modification n'a l'identifiant {change_id}.", parameter="change")
    return dict(row)


def values_at(conn: Connection, entity: str, entity_id: int, change_id: int) -> dict:
    """The record's values just after `change_id`, for the fields changed since: what a revert writes back.
    Each later change's `before` is the state after the previous one, so walking back from the newest
    change to just after `change_id` restores every field they touched."""
    restored: dict = {}
    for later in changes(conn, entity, entity_id):
        if later["id"] <= change_id:
            break
        restored.update(later["before"] or {})
    return restored
