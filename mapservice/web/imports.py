"""Imports on the web: the partners' template file (the upload screen comes with the workspace)."""
from flask import Blueprint, Response

from ..imports.partners import template_csv

bp = Blueprint("imports", __name__)


@bp.get("/imports/modele-partenaires.csv")
def partners_template():
    # A BOM so that Excel opens the accents right; `;` as French spreadsheets expect.
    return Response("\ufeff" + template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="modele-partenaires.csv"'})
