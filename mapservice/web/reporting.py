"""The bimonthly report: its JSON API (/api/v1/reports, for the ministry's dashboards), its pages in the teams'
workspace (/espace/rapports: tables, SVG charts, the zones blanches map, a print stylesheet) and its CSV and
XLSX exports. Thin routes: mapservice.params parses, mapservice.reporting computes and checks who may see what.

Who is asking comes from the workspace's accounts: an API token (`Authorization: Bearer …`, created in the
workspace), or the workspace's session (Flask-Login, whose user carries the Actor)."""
from __future__ import annotations

from html import escape

import flask_login
import folium
from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from .. import params
from ..accounts import login
from ..accounts.values import Actor
from ..errors import Conflict, InvalidParameter, MapserviceError, NotFound, StaleVersion, Unauthorized
from ..reporting import access, charts, exports, figures, maps, report
from ..reporting.periods import Period
from ..reporting.tables import SHORT_TYPES, tables
from . import map_page
from .connection import read_db, reads_primary, write_db
from .workspace.session import local_path

api = Blueprint("reporting_api", __name__)
pages = Blueprint("reporting_pages", __name__)
reads_primary(api)
reads_primary(pages)

URL_KINDS = {"national": "national", "academie": "academie", "departement": "departement", "platform": "plateforme"}
PAGE_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "frame-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'self'"))
# folium writes its map as inline script and style: only in the map's own document, which loads nothing
# from elsewhere.
MAP_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self' 'unsafe-inline'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'self'"))
MAP_MAX_ZONES = 3000


def _bearer_token() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def current_actor() -> Actor:
    if secret := _bearer_token():
        actor = login.token_actor(read_db(), secret, request.remote_addr)
        if actor is None:
            raise Unauthorized("Jeton d'API inconnu ou révoqué.")
        return actor
    if flask_login.current_user.is_authenticated:
        return flask_login.current_user.actor
    raise Unauthorized("Connectez-vous à l'espace des équipes pour consulter les rapports (ou envoyez un jeton "
                       "d'API : « Authorization: Bearer <jeton> »).")


def init_app(app) -> None:
    app.extensions["mapservice.report_cache"] = report.ReportCache()
    app.register_blueprint(api, url_prefix="/api/v1/reports")
    app.register_blueprint(pages, url_prefix="/espace/rapports")


def _view(period_name: str, kind: str, code: str | None) -> tuple[dict, access.Place]:
    """The scope's report, when the actor may read it (the report may freeze a period or refresh distances,
    hence the request's unit of work)."""
    actor = current_actor()
    period = params.report_period(period_name)
    conn = write_db()
    place = access.place_of(conn, params.report_scope(kind, code))
    access.check(conn, actor, access.may_read(actor, place), "consulter le rapport", place)
    return report.for_scope(conn, place, period, current_app.extensions["mapservice.report_cache"]), place


# -- JSON API ------------------------------------------------------------------------------------------

@api.get("/periods")
def periods():
    params.known_only(request.args, ())
    current_actor()
    return {"periods": report.periods(read_db())}


@api.get("/<period>/national", defaults={"code": None}, endpoint="national")
@api.get("/<period>/<kind>/<code>")
def scope_report(period: str, code: str | None, kind: str = "national"):
    params.known_only(request.args, ())
    view, _ = _view(period, kind, code)
    return view


@api.put("/<period>/plateforme/<platform_id>/activite")
def enter_activity(period: str, platform_id: str):
    actor = current_actor()
    values, version = params.activity_figures(request.get_json(silent=True))
    new_version = figures.enter(write_db(), actor, params.identifier(platform_id, "de la plateforme"),
                                params.report_period(period), values, version)
    return {"version": new_version, "validated": False}


@api.post("/<period>/plateforme/<platform_id>/activite/validation")
def validate_activity(period: str, platform_id: str):
    actor = current_actor()
    version = params.expected_version(request.get_json(silent=True))
    figures.validate(write_db(), actor, params.identifier(platform_id, "de la plateforme"),
                     params.report_period(period), version)
    return {"version": version, "validated": True}


@api.put("/objectifs/<academie>/<year>")
def set_objectives(academie: str, year: str):
    actor = current_actor()
    year = params.year(year)
    targets, version = params.objectives(request.get_json(silent=True))
    scope = params.report_scope("academie", academie)
    return {"version": figures.set_objectives(write_db(), actor, scope.code, year, targets, version)}


@api.after_request
def private(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# -- Workspace pages -------------------------------------------------------------------------------------

@pages.before_request
def sign_in_first():
    """A signed-out visitor of the pages goes to the workspace's sign-in page, and comes back here after (the
    API answers 401 instead). Every form carries its CSRF token (Flask-WTF, as the workspace's)."""
    if _bearer_token() is None and not flask_login.current_user.is_authenticated:
        if request.url_rule is not None and "GET" not in request.url_rule.methods:
            # A form sent once the session had ended (a validation): its URL cannot be opened, so the sign-in
            # leads back to the reports' index instead.
            flash(current_app.login_manager.login_message)
            return redirect(flask_login.login_url("workspace.login", url_for("reporting_pages.index")))
        return current_app.login_manager.unauthorized()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        current_app.extensions["csrf"].protect()
    return None


@pages.errorhandler(MapserviceError)
def refused(exc: MapserviceError):
    """The pages answer in French HTML (the API in problem+json)."""
    return render_template("reporting/error.html", error=exc, static_url=map_page.static_url), exc.status


@pages.after_request
def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def page_url(endpoint: str, place: access.Place, period: str, **extra) -> str:
    kind = URL_KINDS[place.scope.kind]
    if kind == "national":
        return url_for(f"reporting_pages.{endpoint}", period=period, kind=kind, **extra)
    return url_for(f"reporting_pages.{endpoint}", period=period, kind=kind, code=place.scope.code, **extra)


@pages.get("/")
def index():
    actor = current_actor()
    conn = read_db()
    period = figures.today_period(conn)
    places = access.readable_scopes(conn, actor)
    return render_template("reporting/index.html", period=period, places=places, page_url=page_url,
                           static_url=map_page.static_url)


def _scope_route(suffix: str = "", methods=("GET",)):
    def register(view):
        endpoint = view.__name__
        pages.add_url_rule(f"/<period>/<kind>{suffix}", endpoint, view, defaults={"code": None}, methods=methods)
        pages.add_url_rule(f"/<period>/<kind>/<code>{suffix}", endpoint, view, methods=methods)
        return view
    return register


@_scope_route()
def scope_page(period: str, kind: str, code: str | None):
    if kind != "national" and code is None:
        raise NotFound("Précisez le code du territoire.", parameter="code")
    view, place = _view(period, kind, code)
    shown = Period.parse(period)
    actor = current_actor()
    return render_template(
        "reporting/report.html", view=view, place=place, tables=tables(view), period=shown,
        charts=_charts(view), page_url=page_url, static_url=map_page.static_url, page_kind=URL_KINDS[place.scope.kind],
        others=[Period.parse(p["period"]) for p in report.periods(read_db()) if p["period"] != period],
        may_set_objectives=place.scope.kind == "academie" and access.may_validate(actor, place))


def _charts(view: dict) -> dict[str, str]:
    cat, cov = view["catalogue"], view["coverage"]
    out = {
        "types": charts.bars("chart-types", "Solutions publiées par type",
                             [(SHORT_TYPES[t], [v["published"]]) for t, v in cat["by_type"].items()], ["Publiées"]),
        "coverage": charts.bars(
            "chart-coverage", "Part de la population à moins de 10, 30 et 60 km d'une solution, par type",
            [(SHORT_TYPES[t], [None if v[f"within_{b}km"] is None else round(v[f"within_{b}km"] * 100, 1)
                               for b in (10, 30, 60)]) for t, v in cov["by_type"].items()],
            ["10 km", "30 km", "60 km"], unit=" %", maximum=100),
    }
    if view["evolution"]:
        out["evolution"] = charts.columns(
            "chart-evolution", "Évolution sur les dernières périodes", [e["label"] for e in view["evolution"]],
            [("Solutions publiées", [e["published"] for e in view["evolution"]]),
             ("Nouvelles", [e["new"] for e in view["evolution"]]),
             ("Jeunes entrés dans une solution", [e["entered"] for e in view["evolution"]])])
    return out


@_scope_route(".csv")
def scope_csv(period: str, kind: str, code: str | None):
    params.known_only(request.args, ("table",))
    view, place = _view(period, kind, code)
    wanted = request.args.get("table", "indicateurs")
    table = next((t for t in tables(view) if t.name == wanted), None)
    if table is None:
        raise NotFound(f"Il n'y a pas de tableau « {wanted} » : choisissez parmi "
                       f"{', '.join(t.name for t in tables(view))}.", parameter="table")
    return Response(exports.to_csv(table), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="rapport-{period}-{_file_name(place)}-{table.name}.csv"'})


@_scope_route(".xlsx")
def scope_xlsx(period: str, kind: str, code: str | None):
    params.known_only(request.args, ())
    view, place = _view(period, kind, code)
    heading = f"{place.name} — {view['label']}"
    return Response(exports.to_xlsx(tables(view), heading),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition":
                             f'attachment; filename="rapport-{period}-{_file_name(place)}.xlsx"'})


def _file_name(place: access.Place) -> str:
    return place.scope.kind if place.scope.kind == "national" else f"{place.scope.kind}-{place.scope.code}"


@_scope_route("/carte")
def scope_map(period: str, kind: str, code: str | None):
    params.known_only(request.args, ())
    view, place = _view(period, kind, code)
    response = Response(_zones_map(view, place).get_root().render(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = MAP_POLICY
    return response


def _zones_map(view: dict, place: access.Place) -> folium.Map:
    """Zones blanches as circles sized by population on the scope's outline: folium, with the vendored Leaflet
    and no basemap from another host."""
    conn = read_db()
    m = folium.Map(location=(46.6, 2.35), zoom_start=5, tiles=None)
    m.default_js = [("leaflet", map_page.static_url("vendor/leaflet/leaflet.js"))]
    m.default_css = [("leaflet_css", map_page.static_url("vendor/leaflet/leaflet.css"))]
    bounds = None
    if (shape := maps.outline(conn, place)) is not None:
        layer = folium.GeoJson(shape, name=place.name,
                               style_function=lambda _: {"color": "#1f4e9c", "weight": 2, "fillOpacity": 0.04})
        layer.add_to(m)
        bounds = layer.get_bounds()
    zones = view["zones_blanches_communes"][:MAP_MAX_ZONES]
    positions = maps.town_halls(conn, [z["code"] for z in zones])
    for zone in zones:
        folium.CircleMarker(
            positions[zone["code"]], radius=max(3, min(18, (zone["population"] or 0) ** 0.5 / 12)),
            color="#b34700", fill=True, fill_opacity=0.5, weight=1,
            tooltip=escape(f"{zone['name']} ({zone['code']}) : {zone['population']} habitants, zone blanche"),
        ).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    elif zones:
        m.fit_bounds([[min(positions[z["code"]][0] for z in zones), min(positions[z["code"]][1] for z in zones)],
                      [max(positions[z["code"]][0] for z in zones), max(positions[z["code"]][1] for z in zones)]])
    return m


# -- Forms: the platforms' figures, their validation, the académies' objectives ----------------------------
# Thin: params parses a form as it parses the API's JSON; the core functions the API calls check who may write.
# A refused save shows the form again with the message and what was typed (4xx: the unit of work rolls back).

def _form() -> dict:
    return {k: v for k, v in request.form.items() if k not in ("csrf_token", "next")}


def _page(template: str, status: int = 200, **context):
    return render_template(f"reporting/{template}", static_url=map_page.static_url, page_url=page_url,
                           labels=figures.LABELS, fields=figures.FIGURES, **context), status


@_scope_route("/chiffres")
def figures_page(period: str, kind: str, code: str | None):
    """The platforms of the scope with their figures of the period: enter them, validate them."""
    params.known_only(request.args, ())
    actor = current_actor()
    shown = params.report_period(period)
    conn = read_db()
    place = access.place_of(conn, params.report_scope(kind, code))
    return _page("figures.html", place=place, period=shown, closed=figures.closed(conn, shown),
                 platforms=figures.platforms_figures(conn, actor, place, shown))


@pages.route("/<period>/plateforme/<platform_id>/chiffres/saisie", methods=["GET", "POST"])
def enter_figures(period: str, platform_id: str):
    """The platform's team enters its figures of the period (aggregates only); they then wait for the
    académie's validation."""
    actor = current_actor()
    shown = params.report_period(period)
    conn = write_db() if request.method == "POST" else read_db()
    platform = params.identifier(platform_id, "la plateforme")
    place, saved = figures.for_entry(conn, actor, platform, shown)
    form = {"place": place, "period": shown, "saved": saved, "closed": figures.closed(conn, shown)}
    if request.method == "GET":
        return _page("activity_form.html", **form, values=saved or {})
    typed = _form()
    try:
        values, version = params.activity_figures(typed)
        figures.enter(conn, actor, platform, shown, values, version)
    except StaleVersion as exc:  # shown again on the current version: saving again is a knowing overwrite
        current = figures.activity(conn, platform, shown)
        return _page("activity_form.html", exc.status, **form, error=exc, current=current,
                     values={**typed, "version": current and current["version"]})
    except (InvalidParameter, Conflict) as exc:
        return _page("activity_form.html", exc.status, **form, values=typed, error=exc)
    flash(f"Chiffres de {shown.label} enregistrés : ils compteront dans le rapport une fois validés par "
          "l'académie.")
    return redirect(page_url("figures_page", place, shown.name))


@pages.post("/<period>/plateforme/<platform_id>/chiffres/validation")
def validate_figures(period: str, platform_id: str):
    """The académie administrator validates the figures as they were shown (their version)."""
    actor = current_actor()
    shown = params.report_period(period)
    platform = params.identifier(platform_id, "la plateforme")
    figures.validate(write_db(), actor, platform, shown, params.expected_version(_form()))
    flash("Chiffres validés : ils comptent désormais dans le rapport.")
    return redirect(local_path(request.form.get("next"))
                    or url_for("reporting_pages.figures_page", period=shown.name, kind="plateforme", code=platform))


@_scope_route("/objectifs", methods=("GET", "POST"))
def objectives_page(period: str, kind: str, code: str | None):
    """The académie's objectives for the year of the period, set by its administrator."""
    if kind != "academie":
        raise NotFound("Les objectifs se fixent pour une académie.", parameter="scope")
    actor = current_actor()
    shown = params.report_period(period)
    academie = params.report_scope(kind, code).code
    conn = write_db() if request.method == "POST" else read_db()
    place, saved = figures.for_objectives(conn, actor, academie, shown.year)
    form = {"place": place, "period": shown, "year": shown.year, "saved": saved}
    if request.method == "GET":
        return _page("objectives_form.html", **form, values=saved or {})
    typed = _form()
    try:
        targets, version = params.objectives(typed)
        figures.set_objectives(conn, actor, academie, shown.year, targets, version)
    except StaleVersion as exc:
        current = figures.objectives(conn, academie, shown.year)
        return _page("objectives_form.html", exc.status, **form, error=exc, current=current,
                     values={**typed, "version": current and current["version"]})
    except InvalidParameter as exc:
        return _page("objectives_form.html", exc.status, **form, values=typed, error=exc)
    flash(f"Objectifs {shown.year} de l'académie enregistrés.")
    return redirect(page_url("scope_page", place, shown.name))
