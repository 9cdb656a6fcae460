"""The dashboard of a team's territory: what is there (by type and status), places left, checks overdue, new
reports, partners' proposals waiting."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..accounts import permissions
from ..accounts.values import Actor
from .freshness import OVERDUE_DAYS


def dashboard(conn: Connection, actor: Actor, overdue_days: int = OVERDUE_DAYS) -> dict:
    condition, binds = permissions.territory_filter(actor)
    # The whole country needs no join: every solution has its site, every site its commune.
    sites = "site" if actor.is_national else "site JOIN commune c ON c.code = site.commune_code"
    solutions = "solution s" if actor.is_national else f"solution s JOIN {sites} ON site.id = s.site_id"
    scope = f"FROM {solutions} WHERE {condition}"
    by_type = [dict(r) for r in conn.execute(text(f"""
        SELECT s.type, count(*) FILTER (WHERE s.status = 'published') AS published,
               count(*) FILTER (WHERE s.status = 'draft') AS draft,
               count(*) FILTER (WHERE s.status = 'archived') AS archived,
               sum(s.vacant_places) FILTER (WHERE s.status = 'published') AS vacant_places
        {scope} GROUP BY s.type ORDER BY s.type"""), binds).mappings()]
    # One pass over the territory's sites for their three counts.
    counts = conn.execute(text(f"""
        SELECT count(*) FILTER (WHERE site.status = 'published') AS published_sites,
               count(*) FILTER (WHERE site.status = 'published' AND (site.last_checked_at IS NULL
                    OR site.last_checked_at < now() - make_interval(days => :days))) AS overdue,
               count(*) FILTER (WHERE site.status = 'draft' AND site.review_requested_at IS NOT NULL)
                    AS review_queue,
               (SELECT count(*) FROM error_report r JOIN solution s ON s.id = r.solution_id
                    JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code
                    WHERE r.status = 'new' AND {condition}) AS new_reports
        FROM {sites} WHERE {condition}"""),
        {**binds, "days": overdue_days}).mappings().one()
    return {"by_type": by_type, **counts,
            "vacant_places": sum(t["vacant_places"] or 0 for t in by_type)}
