"""POST /api/v1/solutions/<id>/error-reports: 'Signaler une erreur' from the public map page."""
from __future__ import annotations

from flask import Blueprint, request

from .. import error_reports, params
from .connection import write_db
from .limits import write_route

bp = Blueprint("error_reports", __name__)


@bp.post("/solutions/<solution_id>/error-reports")
@write_route("error_reports")
def report_error(solution_id: str):
    if request.is_json:
        body = params.json_object(request.get_data())
    else:
        body = request.form.to_dict() or None
    report = params.error_report(solution_id, body)
    report_id = error_reports.record(write_db(), report)
    return {"id": report_id, "message": "Merci ! L'équipe qui s'occupe de ce lieu va vérifier."}, 201
