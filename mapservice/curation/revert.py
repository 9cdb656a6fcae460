"""Revert a site or a solution to the values it had just after an earlier change of its history. The revert is
a change like any other: checked (territory, position, version) and recorded, pointing at the change it went
back to."""
from __future__ import annotations

from sqlalchemy.engine import Connection

from .. import history
from ..accounts import permissions
from ..accounts.values import Action, Actor, Ref
from ..errors import InvalidParameter
from ..geocoding import Geocoder
from .inputs import SITE_FIELDS, SOLUTION_FIELDS, SiteInput, SolutionInput
from .sites import Saved, set_site_status, site_row, update_site
from .solutions import solution_row, update_solution


def revert(conn: Connection, actor: Actor, change_id: int, geocoder: Geocoder | None = None) -> Saved:
    change = history.change(conn, change_id)
    entity, record_id = change["entity"], change["entity_id"]
    if entity not in ("site", "solution"):
        raise InvalidParameter("Seuls les lieux et les solutions se rétablissent depuis l'historique.",
                               parameter="change")
    permissions.authorize(conn, actor, Action.EDIT_SITE if entity == "site" else Action.EDIT_SOLUTION,
                          Ref(entity, record_id))
    restored = history.values_at(conn, entity, record_id, change_id)
    if entity == "site":
        current = site_row(conn, record_id)
        data = SiteInput(**{f: restored.get(f, current[f]) for f in SITE_FIELDS})
        saved = update_site(conn, actor, record_id, current["version"], data, action="revert", reverts=change_id)
        if restored.get("status") not in (None, current["status"]):
            saved = set_site_status(conn, actor, record_id, saved.version, restored["status"])
        return saved
    current = solution_row(conn, record_id)
    data = SolutionInput(**{f: restored.get(f, current[f]) for f in SOLUTION_FIELDS})
    return update_solution(conn, actor, record_id, current["version"], data, restored.get("status"),
                           action="revert", reverts=change_id)
