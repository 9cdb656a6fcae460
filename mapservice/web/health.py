"""/healthz (the process answers) and /readyz (it can serve: database, schema, reference data), for a load
balancer or a service manager. Neither is cached."""
from __future__ import annotations

from flask import Blueprint

from .. import health
from .connection import databases
from .problems import RETRY_AFTER_S

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def alive():
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}


@bp.get("/readyz")
def ready():
    # The primary: it is what writes need, and the replica falls back to it.
    with databases().primary.connect() as conn:
        found = health.readiness(conn)
    headers = {"Cache-Control": "no-store"}
    if not found["ready"]:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return found, 200 if found["ready"] else 503, headers
