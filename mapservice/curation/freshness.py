"""« Toujours exact »: a team confirms a site and its solutions in one click; what its territory has not
confirmed for long (180 days by default), oldest first; a bulk stamp after review."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import history
from ..accounts import permissions
from ..accounts.values import Action, Actor, Ref

OVERDUE_DAYS = 180


def stamp(conn: Connection, actor: Actor, site_ids: list[int]) -> int:
    """Stamps `last_checked_at` on the sites and their solutions (every site checked first: all or nothing)."""
    for site_id in site_ids:
        permissions.authorize(conn, actor, Action.STAMP, Ref("site", site_id))
    for site_id in site_ids:
        before = conn.scalar(text("SELECT last_checked_at FROM site WHERE id = :id"), {"id": site_id})
        after = conn.scalar(text("UPDATE site SET last_checked_at = now() WHERE id = :id RETURNING last_checked_at"),
                            {"id": site_id})
        conn.execute(text("UPDATE solution SET last_checked_at = now() WHERE site_id = :id AND status <> 'archived'"),
                     {"id": site_id})
        history.record(conn, actor, "site", site_id, "stamp", {"last_checked_at": before},
                       {"last_checked_at": after})
    return len(site_ids)


def overdue(conn: Connection, actor: Actor, days: int = OVERDUE_DAYS, limit: int | None = None) -> list[dict]:
    """Published sites of the territory never checked or not for `days`, oldest (never first): all of them, or
    the first `limit`."""
    condition, binds = permissions.territory_filter(actor)
    return [dict(r) for r in conn.execute(text(f"""
        SELECT site.id, site.name, c.name AS commune_name, site.last_checked_at,
               (SELECT count(*) FROM solution s WHERE s.site_id = site.id AND s.status = 'published') AS solutions
        FROM site JOIN commune c ON c.code = site.commune_code
        WHERE site.status = 'published' AND {condition}
          AND (site.last_checked_at IS NULL OR site.last_checked_at < now() - make_interval(days => :days))
        ORDER BY site.last_checked_at NULLS FIRST, site.id LIMIT :limit"""),
        {**binds, "days": days, "limit": limit}).mappings()]
