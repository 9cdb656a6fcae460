"""The error-report inbox: what the public reported about the solutions of the team's territory (routed by the
commune of the solution's site), new → in progress → resolved or rejected."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import history
from ..accounts import permissions
from ..accounts.values import Action, Actor, Ref
from ..errors import InvalidParameter
from ..taxonomy import ERROR_REPORT_STATUSES


def reports(conn: Connection, actor: Actor, status: str | None = None, limit: int | None = None) -> list[dict]:
    """The reports on the solutions of the actor's territory (of one status), the new ones first, then the latest:
    all of them, or the first `limit`."""
    condition, binds = permissions.territory_filter(actor)
    where = "AND r.status = :status" if status else ""
    return [dict(r) for r in conn.execute(text(f"""
        SELECT r.id, r.reason, r.message, r.contact, r.status, r.created_at, r.updated_at, r.updated_by,
               s.id AS solution_id, s.title AS solution_title, site.id AS site_id, site.name AS site_name,
               c.name AS commune_name
        FROM error_report r JOIN solution s ON s.id = r.solution_id JOIN site ON site.id = s.site_id
        JOIN commune c ON c.code = site.commune_code
        WHERE {condition} {where} ORDER BY r.status <> 'new', r.created_at DESC LIMIT :limit"""),
        {**binds, "status": status, "limit": limit}).mappings()]


def set_status(conn: Connection, actor: Actor, report_id: int, status: str) -> None:
    if status not in ERROR_REPORT_STATUSES:
        raise InvalidParameter(f"Statut inconnu « {status} » ; valeurs : {', '.join(ERROR_REPORT_STATUSES)}.",
                               parameter="status")
    permissions.authorize(conn, actor, Action.HANDLE_REPORT, Ref("report", report_id))
    before = conn.scalar(text("SELECT status FROM error_report WHERE id = :id"), {"id": report_id})
    conn.execute(text("UPDATE error_report SET status = :s, updated_at = now(), updated_by = :by WHERE id = :id"),
                 {"s": status, "by": actor.email, "id": report_id})
    history.record(conn, actor, "error_report", report_id, "update", {"status": before}, {"status": status})
