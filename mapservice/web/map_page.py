"""The public map page: the nearest solutions as a list first, the map beside it, in French, with every asset
served by the service itself (the strict Content-Security-Policy of web/security.py proves it). Also /a-propos (what is loaded)
and the service worker that keeps the page's shell for bad connections."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, request, url_for

from .. import datasets, tiles
from ..taxonomy import ERROR_REPORT_REASONS, VOIES
from . import leaflet_map
from . import tiles as tiles_web
from .connection import read_db

STATIC = Path(__file__).resolve().parents[2] / "static"


# Short, plain labels for the filter chips (the full labels are in mapservice.taxonomy).
TYPE_CHIPS = {
    "places_lycee": "Places en lycée",
    "structure_innovante": "Micro-lycée et lycées pour repartir",
    "apprentissage": "Apprentissage (CFA : centre de formation d'apprentis)",
    "service_civique": "Service civique",
    "mission_locale": "Mission locale",
    "accueil_orientation": "Conseil et orientation (CIO, MLDS)",
    "e2c": "École de la 2e chance",
    "epide": "EPIDE (internat pour trouver un emploi)",
    "greta": "GRETA (formation continue)",
    "formation_regionale": "Formation de la Région",
    "clause_sociale": "Emploi réservé (clause sociale)",
}
FORMULA_CHIPS = {"plein_temps": "À plein temps", "combinee": "Combiné : mission + cours au lycée"}
YEAR = 365 * 24 * 3600


class PageBlueprint(Blueprint):
    def get_send_file_max_age(self, filename: str | None) -> int | None:
        # A versioned URL (?v=<content hash>) never changes: clients keep it; others revalidate.
        return YEAR if request.args.get("v") else None


bp = PageBlueprint("page", __name__, static_folder=str(STATIC), static_url_path="/static")


@lru_cache(maxsize=None)
def _file_version(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def static_url(filename: str) -> str:
    """URL of a file of static/, versioned by its content so that it can be cached for a year."""
    path = STATIC / filename
    return url_for("page.static", filename=filename, v=_file_version(path, path.stat().st_mtime_ns))


def page_map():
    return leaflet_map.build_map(static_url, tiles_web.tile_url_template, basemap_max=tiles.TILESETS["basemap"].maxzoom,
                                 solutions_max=tiles.TILESETS["solutions"].maxzoom, attribution=tiles_web.ATTRIBUTION)


def map_parts() -> leaflet_map.MapParts:
    parts = current_app.extensions.get("mapservice.map_parts")
    if parts is None:
        parts = leaflet_map.map_parts(page_map())
        current_app.extensions["mapservice.map_parts"] = parts
    return parts


def map_script_url() -> str:
    return url_for("page.map_script", v=hashlib.sha256(map_parts().script.encode()).hexdigest()[:10])


def shell_urls() -> list[str]:
    """What the service worker keeps so that the page opens even when the network does not answer."""
    parts = map_parts()
    streets = [static_url("vendor/protomaps-leaflet/protomaps-leaflet.js"), static_url("streets/streets.js")] \
        if tiles_web.street_basemap_url() else []
    return [url_for("page.home"), static_url("page/page.css"), static_url("page/map-styles.js"),
            static_url("page/app.js"), map_script_url(), *parts.js, *parts.css, *streets]


@bp.get("/")
def home():
    settings = current_app.config["SETTINGS"]
    return render_template(
        "page.html", map=map_parts(), map_script=map_script_url(), static_url=static_url, settings=settings,
        type_chips=TYPE_CHIPS, voies=VOIES, formula_chips=FORMULA_CHIPS, reasons=ERROR_REPORT_REASONS,
        street_basemap=tiles_web.street_basemap_url())


@bp.get("/carte.js")
def map_script():
    response = Response(map_parts().script, mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = YEAR if request.args.get("v") else 0
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/sw.js")
def service_worker():
    shell = shell_urls()
    version = hashlib.sha256(" ".join(shell).encode()).hexdigest()[:10]
    response = Response(render_template("sw.js", shell=shell, version=version), mimetype="text/javascript")
    response.cache_control.no_cache = True  # the browser checks it on every visit, so updates arrive
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/a-propos")
def about():
    return render_template("about.html", counts=datasets.counts(read_db()), static_url=static_url)
