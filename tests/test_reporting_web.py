"""The report through HTTP: the JSON API (documented, token of a workspace account), the pages (tables, SVG
charts with their text, the zones blanches map with our own assets, print stylesheet), the CSV and XLSX exports
cell for cell, and who sees what: a curator its territory, the national administrator everything. Then the page
in Chromium: no other host, no script error, no serious accessibility violation, printable."""
from __future__ import annotations

import csv
import io
import json
import re
from urllib.parse import urlencode

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import text

from mapservice.accounts import login, store
from mapservice.accounts.values import Scope
from mapservice.db import make_engine, transaction
from mapservice.reporting import report
from mapservice.reporting.periods import Period

from .conftest import dispose_app, make_test_app, serving, throwaway_database
from .page_browser import browsing, screenshot, serious_accessibility_violations
from .workspace_fixtures import PASSWORD, csrf_token, make_account, sign_in

LYON, RHONE = "10", "69"


@pytest.fixture(scope="module")
def site(server, template):
    """The app on a database of the module's own, with accounts of every role and an API token each."""
    with throwaway_database(server, "mapservice_reporting_web", template=template) as url:
        engine = make_engine(url)
        with engine.connect() as conn:
            platform = conn.scalar(text("SELECT min(id) FROM psad_platform WHERE departement_code = '69'"))
            other_platform = conn.scalar(text("SELECT min(id) FROM psad_platform WHERE departement_code = '75'"))
        with transaction(engine) as conn:
            conn.execute(text("UPDATE psad_platform SET name = '<script>alert(1)</script> Exemple' WHERE id = :id"),
                         {"id": platform})
        accounts = {
            "national": make_account(engine, "nationale@exemple.invalid", "national_admin"),
            "academie": make_account(engine, "academie.lyon@exemple.invalid", "academie_admin", [Scope(academie=LYON)]),
            "curator": make_account(engine, "referent.69@exemple.invalid", "curator", [Scope(departement=RHONE)]),
            "partner": make_account(engine, "partenaire@exemple.invalid", "partner", [
                Scope(site=engine.connect().execute(text("SELECT min(id) FROM site")).scalar())]),
        }
        tokens = {}
        with transaction(engine) as conn:
            for role, account_id in accounts.items():
                tokens[role] = login.create_api_token(conn, store.load_actor(conn, account_id), "tests")[1]
        app = make_test_app(url)
        yield {"app": app, "client": app.test_client(), "tokens": tokens, "platform": platform,
               "other_platform": other_platform, "engine": engine}
        dispose_app(app)
        engine.dispose()


def get(site, role, url, **kwargs):
    headers = {"Authorization": f"Bearer {site['tokens'][role]}"} if role else {}
    return site["client"].get(url, headers=headers, **kwargs)


def send(site, role, method, url, body):
    return site["client"].open(url, method=method, json=body,
                               headers={"Authorization": f"Bearer {site['tokens'][role]}"})


@pytest.fixture(scope="module")
def period(site):
    return get(site, "national", "/api/v1/reports/periods").get_json()["periods"][0]["period"]


@pytest.fixture(scope="module")
def openapi(site):
    spec = site["client"].get("/api/v1/openapi.json").get_json()
    return OpenAPI.from_dict(spec, config=Config(
        extra_media_type_deserializers={"application/problem+json": json.loads}))


def test_reports_need_an_account(site, period):
    for url in ("/api/v1/reports/periods", f"/api/v1/reports/{period}/national"):
        response = site["client"].get(url)
        assert response.status_code == 401 and response.mimetype == "application/problem+json", url
    response = site["client"].get("/api/v1/reports/periods", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and "révoqué" in response.get_json()["detail"]
    for path in ("/espace/rapports/", f"/espace/rapports/{period}/national",
                 f"/espace/rapports/{period}/national.csv?table=couverture"):
        response = site["client"].get(path)
        assert response.status_code == 302, path
        assert response.location == "/equipes/connexion?" + urlencode({"next": path}), path
    validation = f"/espace/rapports/{period}/plateforme/{site['platform']}/chiffres/validation"
    response = site["app"].test_client().post(validation, data={"version": "1"})  # the session had ended
    assert response.status_code == 302
    assert response.location == "/equipes/connexion?" + urlencode({"next": "/espace/rapports/"})


def test_signing_in_leads_back_to_the_report_asked_for(site, period):
    client = site["app"].test_client()
    report = f"/espace/rapports/{period}/academie/{LYON}"
    login_page = client.get(client.get(report).location).get_data(as_text=True)
    assert f'name="next" value="{report}"' in login_page
    signed_in = sign_in(client, "academie.lyon@exemple.invalid", next=report)
    assert signed_in.status_code == 302 and signed_in.location == report
    page = client.get(report)
    assert page.status_code == 200 and "Rapport bimestriel — Lyon" in page.get_data(as_text=True)
    # Never back to another host: the sign-in then goes to the workspace's dashboard.
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example/", "javascript:alert(1)"):
        other = site["app"].test_client()
        assert sign_in(other, "academie.lyon@exemple.invalid", next=elsewhere).location == "/equipes/", elsewhere


def signed_in(site, email: str):
    client = site["app"].test_client()
    assert sign_in(client, email).status_code == 302
    return client


def hidden(html: str, name: str) -> str | None:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    return found.group(1) if found else None


def test_the_platform_team_enters_its_figures_in_a_form(site, period):
    # Figures entered once already (through the API): the form starts from them and their version.
    assert send(site, "curator", "PUT", f"/api/v1/reports/{period}/plateforme/{site['platform']}/activite",
                {"contacted": 3, "met": 2, "proposed": 1, "entered": 0}).status_code == 200
    team = signed_in(site, "referent.69@exemple.invalid")
    form_path = f"/espace/rapports/{period}/plateforme/{site['platform']}/chiffres/saisie"
    form = team.get(form_path).get_data(as_text=True)
    for label in ("Jeunes contactés", "Jeunes reçus en entretien", "Jeunes à qui une solution a été proposée",
                  "Jeunes entrés dans une solution"):
        assert f">{label}</label>" in form
    token, version = hidden(form, "csrf_token"), hidden(form, "version")
    assert 'id="contacted"' in form and 'value="3"' in form and version
    base = {"csrf_token": token, "version": version}
    typed = {"contacted": "1 200", "met": "beaucoup", "proposed": "12", "entered": "7"}
    refused = team.post(form_path, data={**base, **typed})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert ("Le nombre de jeunes reçus en entretien doit être un nombre entier positif ou nul, reçu « beaucoup »"
            in html)
    assert re.search(r'id="met"[^>]*aria-invalid="true"', html) and 'value="1 200"' in html  # typed values kept
    too_many = team.post(form_path, data={**base, **typed, "met": "20", "entered": "13"}).get_data(as_text=True)
    assert "Le nombre de jeunes entrés dans une solution ne peut pas dépasser" in too_many
    assert team.post(form_path, data={**typed, "met": "20"}).status_code == 400  # no CSRF token, nothing written
    with site["engine"].connect() as conn:
        before = conn.scalar(text("SELECT version FROM reporting_activity WHERE platform_id = :p AND period = :period"),
                             {"p": site["platform"], "period": period})
    assert str(before) == version
    saved = team.post(form_path, data={**base, **typed, "met": "20"})
    assert saved.status_code == 302
    listing = team.get(saved.location).get_data(as_text=True)
    assert "enregistrés" in listing and "À valider" in listing and "1200" in listing
    assert "<script>alert(1)</script>" not in listing  # the platform's name, escaped
    # A save from a form read before that one is refused, shows what is there now, and writes nothing.
    stale = team.post(form_path, data={**base, "contacted": "5", "met": "5", "proposed": "3", "entered": "1"})
    assert stale.status_code == 409 and "modifiés entre-temps" in stale.get_data(as_text=True)
    assert "jeunes contactés 1200" in stale.get_data(as_text=True)
    # Another platform's form: refused, in French, read or written.
    other = f"/espace/rapports/{period}/plateforme/{site['other_platform']}/chiffres/saisie"
    assert team.get(other).status_code == 403
    forged = team.post(other, data={"csrf_token": token, **typed, "met": "20"})
    assert forged.status_code == 403 and "hors de votre territoire" in forged.get_data(as_text=True)
    with site["engine"].connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM reporting_activity WHERE platform_id = :p"),
                           {"p": site["other_platform"]}) == 0


def test_the_academie_validates_the_figures_and_sets_its_objectives_in_forms(site, period):
    team = signed_in(site, "referent.69@exemple.invalid")
    form_path = f"/espace/rapports/{period}/plateforme/{site['platform']}/chiffres/saisie"
    form = team.get(form_path).get_data(as_text=True)
    figures = {"contacted": "40", "met": "30", "proposed": "20", "entered": "10"}
    version = hidden(form, "version")
    assert team.post(form_path, data={"csrf_token": hidden(form, "csrf_token"), **figures,
                                      **({"version": version} if version else {})}).status_code == 302
    listing = team.get(f"/espace/rapports/{period}/departement/{RHONE}/chiffres").get_data(as_text=True)
    assert "chiffres/validation" not in listing  # the curator enters, the académie validates

    admin = signed_in(site, "academie.lyon@exemple.invalid")
    listing_path = f"/espace/rapports/{period}/academie/{LYON}/chiffres"
    listing = admin.get(listing_path).get_data(as_text=True)
    validation = f"/espace/rapports/{period}/plateforme/{site['platform']}/chiffres/validation"
    assert f'action="{validation}"' in listing
    version = re.search(rf'action="{validation}".*?name="version" value="(\d+)"', listing, re.S).group(1)
    token = hidden(listing, "csrf_token")
    assert team.post(validation, data={"csrf_token": csrf_token(team), "version": version}).status_code == 403
    assert admin.post(validation, data={"csrf_token": token, "version": str(int(version) - 1)}).status_code == 409
    validated = admin.post(validation, data={"csrf_token": token, "version": version, "next": listing_path})
    assert validated.status_code == 302 and validated.location == listing_path
    assert "Validés le" in admin.get(listing_path).get_data(as_text=True)
    rhone = get(site, "academie", f"/api/v1/reports/{period}/departement/{RHONE}").get_json()
    assert rhone["activity"]["contacted"] == 40 and rhone["activity"]["platforms_validated"] == 1

    year = int(period[:4])
    objectives_path = f"/espace/rapports/{period}/academie/{LYON}/objectifs"
    report_page = admin.get(f"/espace/rapports/{period}/academie/{LYON}").get_data(as_text=True)
    assert f'href="{objectives_path}"' in report_page
    assert team.get(objectives_path).status_code == 403
    assert team.post(objectives_path, data={"csrf_token": csrf_token(team), "contacted": "1"}).status_code == 403
    form = admin.get(objectives_path).get_data(as_text=True)
    assert f"Objectifs {year}" in form and ">Objectif : jeunes contactés</label>" in form
    base = {"csrf_token": hidden(form, "csrf_token"), **({"version": v} if (v := hidden(form, "version")) else {})}
    wrong = admin.post(objectives_path, data={**base, "contacted": "-3"})
    assert wrong.status_code == 400 and "Le nombre de jeunes contactés doit être" in wrong.get_data(as_text=True)
    saved = admin.post(objectives_path, data={**base, "contacted": "400", "entered": "50"})
    assert saved.status_code == 302
    stale = admin.post(objectives_path, data={**base, "version": "999", "contacted": "1"})
    assert stale.status_code == 409 and "modifiés entre-temps" in stale.get_data(as_text=True)
    lyon = get(site, "academie", f"/api/v1/reports/{period}/academie/{LYON}").get_json()
    assert lyon["objectives"]["contacted"]["target"] == 400 and lyon["objectives"]["met"]["target"] is None
    assert lyon["objectives"]["entered"]["target"] == 50


@pytest.mark.parametrize("role, allowed, refused", [
    ("national", ["national", f"academie/{LYON}", "academie/01", f"departement/{RHONE}", "departement/75"], []),
    ("academie", [f"academie/{LYON}", f"departement/{RHONE}", "departement/42"], ["national", "academie/01", "departement/75"]),
    ("curator", [f"departement/{RHONE}", "plateforme/{platform}"], ["national", f"academie/{LYON}", "departement/42",
                                                                  "plateforme/{other_platform}"]),
    ("partner", [], ["national", f"departement/{RHONE}"]),
])
def test_a_curator_sees_its_territory_and_national_sees_all(site, period, openapi, role, allowed, refused):
    for scope in allowed:
        response = get(site, role, f"/api/v1/reports/{period}/{scope.format(**site)}")
        assert response.status_code == 200, (role, scope, response.get_data(as_text=True))
        openapi.validate_response(WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response))
        assert response.headers["Cache-Control"] == "private, no-cache"
    for scope in refused:
        response = get(site, role, f"/api/v1/reports/{period}/{scope.format(**site)}")
        assert response.status_code == 403, (role, scope)
        assert "territoire" in response.get_json()["detail"]
        openapi.validate_response(WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response))


def test_the_platform_enters_its_figures_and_the_academie_validates_them(site, period):
    url = f"/api/v1/reports/{period}/plateforme/{site['platform']}/activite"
    figures = {"contacted": 30, "met": 20, "proposed": 12, "entered": 7}
    bad = send(site, "curator", "PUT", url, {**figures, "entered": 13})
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "entered"
    assert send(site, "curator", "PUT", url, {**figures, "contacted": "beaucoup"}).get_json()["parameter"] == "contacted"
    assert send(site, "curator", "PUT", url, {**figures, "typo": 1}).get_json()["parameter"] == "typo"
    saved = send(site, "curator", "PUT", url, figures)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    version = saved.get_json()["version"]
    assert send(site, "curator", "POST", url + "/validation", {"version": version}).status_code == 403
    assert send(site, "academie", "POST", url + "/validation", {"version": version + 5}).status_code == 409
    assert send(site, "academie", "POST", url + "/validation", {"version": version}).status_code == 200
    other = f"/api/v1/reports/{period}/plateforme/{site['other_platform']}/activite"
    assert send(site, "curator", "PUT", other, figures).status_code == 403
    year = int(period[:4])
    assert send(site, "curator", "PUT", f"/api/v1/reports/objectifs/{LYON}/{year}", {"contacted": 300}).status_code == 403
    assert send(site, "academie", "PUT", f"/api/v1/reports/objectifs/{LYON}/{year}", {"contacted": 300}).status_code == 200
    rhone = get(site, "academie", f"/api/v1/reports/{period}/departement/{RHONE}").get_json()
    assert rhone["activity"]["contacted"] == 30 and rhone["activity"]["entered"] == 7
    lyon = get(site, "academie", f"/api/v1/reports/{period}/academie/{LYON}").get_json()
    assert lyon["objectives"]["contacted"] == {"target": 300, "achieved": 30, "progress": 0.1}


def test_csv_and_xlsx_hold_the_tables_of_the_page(site, period):
    report = get(site, "national", f"/api/v1/reports/{period}/academie/{LYON}").get_json()
    response = get(site, "national", f"/espace/rapports/{period}/academie/{LYON}.csv?table=couverture")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Type", "À moins de 10 km (%)", "À moins de 30 km (%)", "À moins de 60 km (%)"]
    micro = next(r for r in rows if r[0].startswith("Micro-lycées"))
    share = report["coverage"]["by_type"]["structure_innovante"]["within_30km"]
    assert float(micro[2].replace(",", ".")) == round(share * 100, 1)
    assert get(site, "national", f"/espace/rapports/{period}/academie/{LYON}.csv?table=nope").status_code == 404
    book = load_workbook(io.BytesIO(get(site, "national", f"/espace/rapports/{period}/academie/{LYON}.xlsx").data))
    assert book.sheetnames == ["indicateurs", "solutions", "couverture", "activite", "territoires", "evolution",
                               "zones_blanches"]
    sheet = book["couverture"]
    assert [c.value for c in sheet[2]] == rows[0]
    assert [c.value for c in sheet[3]][1:] == [float(v.replace(",", ".")) for v in rows[1][1:]]
    zones = book["zones_blanches"]
    assert zones.max_row - 2 == len(report["zones_blanches_communes"])


def test_the_page_has_tables_charts_with_text_and_the_map(site, period):
    html = get(site, "academie", f"/espace/rapports/{period}/academie/{LYON}").get_data(as_text=True)
    assert html.count('role="img"') == html.count("<desc") >= 3
    assert "Micro-lycées, structures innovantes : 10 km" in html  # the chart's description says its figures
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Exemple" in html
    assert "<script" not in html  # charts are server-written SVG, no script
    assert "population totale" in html and "zones-map" in html
    css = site["client"].get("/static/reporting/report.css").get_data(as_text=True)
    assert "@media print" in css
    carte = get(site, "academie", f"/espace/rapports/{period}/academie/{LYON}/carte")
    document = carte.get_data(as_text=True)
    assert "vendor/leaflet/leaflet.js" in document and "L.circleMarker" in document
    assert "https://" not in document and "http://" not in document.replace("http://www.w3.org", "")
    index = get(site, "curator", "/espace/rapports/").get_data(as_text=True)
    assert f"/departement/{RHONE}" in index and "/national" not in index and f"/academie/{LYON}" not in index


@pytest.fixture(scope="module")
def live(site):
    with serving(site["app"]) as url:
        yield url


def test_signed_out_in_chromium_sign_in_then_read_the_report(site, period, live, browser):
    """A signed-out visitor of the report is sent to the sign-in page, signs in, and is back on the report
    (a session, no token): tables, charts and map there, nothing from another host, no serious accessibility
    violation; printable. The figures' form too."""
    report = f"{live}/espace/rapports/{period}/academie/{LYON}"
    with browsing(browser, live, default_path=None) as open_page:
        page = open_page(None).page
        page.goto(report)
        expect(page).to_have_url(re.compile(r"/equipes/connexion\?next="))
        page.get_by_label("Adresse e-mail").fill("academie.lyon@exemple.invalid")
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        expect(page).to_have_url(report)
        expect(page.get_by_role("heading", name="Rapport bimestriel — Lyon")).to_be_visible()
        page.frame_locator("iframe.zones-map").locator(".leaflet-interactive").first.wait_for()
        assert serious_accessibility_violations(page) == []
        screenshot(page, "report-academie")
        page.emulate_media(media="print")
        assert page.locator("iframe.zones-map").is_hidden()
        assert page.pdf(format="A4")[:4] == b"%PDF"
        page.emulate_media(media="screen")

        page.get_by_role("link", name="Chiffres des plateformes : saisie et validation").click()
        expect(page.get_by_role("heading", name=re.compile("Chiffres d'activité des plateformes"))).to_be_visible()
        assert serious_accessibility_violations(page) == []
        screenshot(page, "report-figures")
        page.goto(f"{live}/espace/rapports/{period}/plateforme/{site['platform']}/chiffres/saisie")
        page.get_by_label("Jeunes contactés").fill("trente")
        page.get_by_role("button", name="Enregistrer les chiffres").click()
        expect(page.get_by_role("alert")).to_contain_text("doit être un nombre entier positif ou nul")
        assert serious_accessibility_violations(page) == []
        screenshot(page, "report-figures-form")


def test_a_frozen_period_shows_its_figures_without_a_form(site, period):
    with transaction(site["engine"]) as conn:
        closed = Period.parse(period).previous()
        report.freeze(conn, closed)
    team = signed_in(site, "referent.69@exemple.invalid")
    form_path = f"/espace/rapports/{closed.name}/plateforme/{site['platform']}/chiffres/saisie"
    page = team.get(form_path).get_data(as_text=True)
    assert "est close et son rapport figé" in page and 'class="figures"' not in page
    refused = team.post(form_path, data={"csrf_token": csrf_token(team), "contacted": "1", "met": "1",
                                         "proposed": "1", "entered": "1"})
    assert refused.status_code == 409 and "ne changent plus" in refused.get_data(as_text=True)
