"""Human pages."""
from flask import Blueprint, render_template

from .. import datasets
from .connection import get_db

bp = Blueprint("pages", __name__)


@bp.get("/")
def home():
    return render_template("home.html", counts=datasets.counts(get_db()))
