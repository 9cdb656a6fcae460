"""Solutions: create and edit every field, status, and the vacant places of a whole territory saved in one
action (the most frequent edit)."""
from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import history
from ..accounts import permissions
from ..accounts.values import Action, Actor, Ref
from ..errors import InvalidParameter, NotFound, StaleVersion
from .inputs import SOLUTION_FIELDS, SolutionInput
from .sites import Saved, site_search, stale

SNAPSHOT_FIELDS = (*SOLUTION_FIELDS, "status", "version")
ASSIGNMENTS = ", ".join(f"{f} = :{f}" for f in SOLUTION_FIELDS)


def solution_row(conn: Connection, solution_id: int) -> dict:
    row = conn.execute(text(f"""
        SELECT s.id, s.site_id, {', '.join('s.' + f for f in SOLUTION_FIELDS)}, s.status, s.version,
               s.last_checked_at, s.updated_at, s.updated_by, s.is_example, site.name AS site_name
        FROM solution s JOIN site ON site.id = s.site_id WHERE s.id = :id"""), {"id": solution_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucune solution n'a l'identifiant {solution_id}.", parameter="id")
    return dict(row)


def snapshot(row: dict) -> dict:
    return {k: row[k] for k in SNAPSHOT_FIELDS}


def solution(conn: Connection, actor: Actor, solution_id: int) -> dict:
    permissions.authorize(conn, actor, Action.READ, Ref("solution", solution_id))
    return solution_row(conn, solution_id)


def create_solution(conn: Connection, actor: Actor, site_id: int, data: SolutionInput, status: str = "draft") -> Saved:
    permissions.authorize(conn, actor, Action.EDIT_SOLUTION, Ref("site", site_id))
    solution_id = conn.execute(text(f"""
        INSERT INTO solution (site_id, {', '.join(SOLUTION_FIELDS)}, status, source, created_by, updated_by, position)
        SELECT :site_id, {', '.join(':' + f for f in SOLUTION_FIELDS)}, :status, 'manual', :by, :by, site.geom::geography
        FROM site WHERE site.id = :site_id RETURNING id"""),
        {**asdict(data), "site_id": site_id, "status": status, "by": actor.email}).scalar()
    history.record(conn, actor, "solution", solution_id, "create", None, snapshot(solution_row(conn, solution_id)))
    return Saved(solution_id, 1)


def update_solution(conn: Connection, actor: Actor, solution_id: int, started_from: int, data: SolutionInput,
                    status: str | None = None, *, action: str = "update", reverts: int | None = None) -> Saved:
    permissions.authorize(conn, actor, Action.EDIT_SOLUTION, Ref("solution", solution_id))
    before = solution_row(conn, solution_id)
    updated = conn.execute(text(f"""
        UPDATE solution SET {ASSIGNMENTS}, status = :status, version = version + 1, updated_at = now(),
               updated_by = :by
        WHERE id = :id AND version = :version RETURNING version"""),
        {**asdict(data), "status": status or before["status"], "id": solution_id, "version": started_from,
         "by": actor.email}).scalar()
    if updated is None:
        raise stale(conn, "solution", solution_id, started_from, before)
    history.record(conn, actor, "solution", solution_id, action, snapshot(before),
                   snapshot(solution_row(conn, solution_id)), reverts=reverts)
    return Saved(solution_id, updated)


def places_screen(conn: Connection, actor: Actor, query: str | None = None, limit: int | None = None) -> list[dict]:
    """The solutions of the actor's territory that are not archived, with their places, by commune and site: all
    of them, or the first `limit` (of the sites `sites.site_search` finds when `query` is given)."""
    condition, binds = permissions.territory_filter(actor)
    search, searched = site_search(query)
    binds = {**binds, **searched}
    return [dict(r) for r in conn.execute(text(f"""
        SELECT s.id, s.title, s.type, s.status, s.capacity, s.vacant_places, s.version, site.id AS site_id,
               site.name AS site_name, c.name AS commune_name
        FROM solution s JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code
        WHERE s.status <> 'archived' AND {condition} {search}
        ORDER BY c.name, site.name, s.title, s.id LIMIT :limit"""), {**binds, "limit": limit}).mappings()]


def save_places(conn: Connection, actor: Actor, changes: list[tuple[int, int, int | None]]) -> int:
    """[(solution id, version it was read at, vacant places)], all or nothing: one stale line, one line outside
    the territory or one count above capacity refuses the whole save. Returns how many changed."""
    changed = 0
    stale_lines = []
    for solution_id, started_from, places in changes:
        permissions.authorize(conn, actor, Action.EDIT_SOLUTION, Ref("solution", solution_id))
        before = solution_row(conn, solution_id)
        if before["vacant_places"] == places:
            continue
        if before["version"] != started_from:
            stale_lines.append(before)
            continue
        if places is not None and before["capacity"] is not None and places > before["capacity"]:
            raise InvalidParameter(f"« {before['title']} » : {places} places libres pour une capacité de "
                                   f"{before['capacity']}.", parameter=f"places_{solution_id}")
        conn.execute(text("""UPDATE solution SET vacant_places = :p, version = version + 1, updated_at = now(),
                                 updated_by = :by WHERE id = :id"""),
                     {"p": places, "id": solution_id, "by": actor.email})
        history.record(conn, actor, "solution", solution_id, "update", snapshot(before),
                       snapshot(solution_row(conn, solution_id)))
        changed += 1
    if stale_lines:
        names = ", ".join(f"« {s['title']} » ({s['site_name']})" for s in stale_lines)
        raise StaleVersion(f"Modifié entre-temps : {names}. Rien n'a été enregistré ; rechargez la liste pour voir "
                           "les valeurs actuelles.", parameter="version",
                           current={s["id"]: {"vacant_places": s["vacant_places"], "version": s["version"]}
                                    for s in stale_lines})
    return changed
