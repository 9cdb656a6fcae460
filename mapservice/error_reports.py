"""'Signaler une erreur': reports from the public about a solution, stored for the local team to check."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .errors import NotFound
from .values import ErrorReport

# Only a solution the public can see can be reported.
INSERT_REPORT = text("""
INSERT INTO error_report (solution_id, reason, message, contact)
SELECT s.id, :reason, :message, :contact
FROM solution s JOIN site ON site.id = s.site_id
WHERE s.id = :solution_id AND s.status = 'published' AND site.status = 'published'
RETURNING id
""")


def record(conn: Connection, report: ErrorReport) -> int:
    """Stores the report and returns its id (committed with the request's unit of work)."""
    report_id = conn.execute(INSERT_REPORT, {
        "solution_id": report.solution_id, "reason": report.reason, "message": report.message,
        "contact": report.contact}).scalar()
    if report_id is None:
        raise NotFound(f"Aucune solution publiée n'a l'identifiant {report.solution_id}.", parameter="id")
    return report_id
