"""The auth/audit log: logins, failed logins, refusals. Written on a connection of its own (autocommit), so a
refusal or a failed login is kept even though the request's unit of work is rolled back; also sent to the
application's logger."""
from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.engine import Connection

log = logging.getLogger("mapservice.audit")

INSERT_EVENT = text("""
INSERT INTO audit_event (event, account_id, email, address, detail)
VALUES (:event, :account_id, :email, :address, :detail)
""")


def record(conn: Connection, event: str, *, account_id: int | None = None, email: str | None = None,
           address: str | None = None, detail: str | None = None) -> None:
    level = logging.WARNING if event in ("forbidden", "login_failed", "login_throttled") else logging.INFO
    log.log(level, "%s account=%s email=%s address=%s %s", event, account_id, email, address, detail or "")
    with conn.engine.connect() as own:
        own.execution_options(isolation_level="AUTOCOMMIT").execute(INSERT_EVENT, {
            "event": event, "account_id": account_id, "email": email, "address": address, "detail": detail})


def recent(conn: Connection, limit: int = 100) -> list[dict]:
    return [dict(r) for r in conn.execute(text(
        "SELECT id, at, event, account_id, email, address, detail FROM audit_event ORDER BY id DESC LIMIT :n"),
        {"n": limit}).mappings()]
