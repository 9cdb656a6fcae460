"""Imports from the workspace in a real browser (Debian's headless Chromium): a curator uploads a partner's
list, reads the dry run's report, applies it, and the new mission locale is listed first by the public page's
search around it; the progress of a running import follows the worker, then the page shows the report. No
serious or critical axe-core violation, no request to another host, no CSP violation."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import text

from mapservice.db import make_engine, transaction
from mapservice.imports.jobs import LOCK_CLASS

from .conftest import dispose_app, make_test_app, serving, throwaway_database
from .page_browser import browser, browsing, screenshot, serious_accessibility_violations  # noqa: F401
from .test_imports_partners import as_csv, row
from .test_workspace_browser import EMAILS, SLOW, log_in
from .workspace_fixtures import team

VITRE = row(identifiant="ml-vitre", type="mission_locale", nom="Mission locale du pays de Vitré",
            latitude="48.1235", longitude="-1.2085", code_commune="35360", telephone="02 99 75 18 07",
            site_web="https://www.ml-vitre.example/")
SWAPPED = row(identifiant="ml-inversee", type="mission_locale", nom="Coordonnées inversées", latitude="-1.2085",
              longitude="48.1235", code_commune="35360")


@pytest.fixture(scope="module")
def served(server, template, tmp_path_factory):
    with throwaway_database(server, "mapservice_impb", template=template) as url:
        engine = make_engine(url)
        t = team(engine)
        app = make_test_app(url, imports={"upload_dir": tmp_path_factory.mktemp("uploads")})
        with serving(app) as origin:
            yield origin, engine, t
        dispose_app(app)
        engine.dispose()


@pytest.fixture
def open_page(browser: Browser, served):
    with browsing(browser, served[0], default_path="/equipes/connexion") as open_:
        yield open_


def test_a_curator_imports_a_partner_list_and_the_public_search_finds_it(open_page, served, tmp_path):
    origin, engine, t = served
    upload = tmp_path / "missions-locales-35.csv"
    upload.write_text(as_csv([VITRE, SWAPPED]), encoding="utf-8")
    visit = open_page()
    log_in(visit, EMAILS["curator"])
    page = visit.page
    page.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", name="Importer un fichier")).to_be_visible()
    expect(page.get_by_role("link", name="fichier modèle (CSV)")).to_be_visible()
    assert serious_accessibility_violations(page) == []
    page.get_by_label("Nom du partenaire").fill("mission-locale-vitre")
    page.get_by_label("Fichier (CSV en UTF-8 ou GeoJSON").set_input_files(str(upload))
    page.get_by_role("button", name="Lire le fichier à blanc").click()

    expect(page.get_by_role("heading", name="Rapport de l’essai à blanc")).to_be_visible(timeout=SLOW)
    expect(page.locator("#nouveaux + ul")).to_contain_text("Mission locale du pays de Vitré")
    rejected = page.locator("table[aria-labelledby=rejetes]")
    expect(rejected).to_contain_text("latitude et longitude inversées")
    expect(rejected).to_contain_text("échangez les deux colonnes : latitude=48.1235, longitude=-1.2085")
    assert serious_accessibility_violations(page) == []
    screenshot(page, "imports-report")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM site WHERE source = 'partenaire:mission-locale-vitre'")) == 0

    page.get_by_role("button", name="Appliquer exactement ce rapport").click()
    expect(page.get_by_role("status")).to_contain_text("Import appliqué", timeout=SLOW)
    assert serious_accessibility_violations(page) == []
    page.get_by_role("link", name="Retour aux imports").click()
    expect(page.get_by_role("button", name="Annuler l'import n°")).to_be_visible()

    public = open_page("/?lat=48.1235&lon=-1.2085")
    first = public.page.locator("#liste > li").first
    expect(first).to_contain_text("Mission locale du pays de Vitré", timeout=SLOW)


def test_a_running_import_shows_its_progress_then_its_report(open_page, served):
    origin, engine, t = served
    visit = open_page()
    log_in(visit, EMAILS["curator"])
    with transaction(engine) as conn:
        job_id = conn.scalar(text("""
            INSERT INTO import_job (account_id, kind, source, file_name, stored_name, size, territory, status,
                                    phase, done, total)
            VALUES (:a, 'partners', 'lent', 'gros-fichier.csv', 'absent.csv', 1000, '{35}', 'planning', 'lecture',
                    250, 1000) RETURNING id"""), {"a": t["curator"]})
    # A worker holds the job's lock while it runs: this connection plays it.
    worker = engine.connect()
    try:
        worker.execute(text("SELECT pg_advisory_lock(:c, :id)"), {"c": LOCK_CLASS, "id": job_id})
        worker.commit()
        page = visit.page
        page.goto(f"{origin}/equipes/imports/{job_id}")
        expect(page.get_by_role("heading", name="Essai à blanc en cours")).to_be_visible()
        expect(page.locator("#barre")).to_have_attribute("value", "25")
        assert serious_accessibility_violations(page) == []
        with transaction(engine) as conn:
            conn.execute(text("UPDATE import_job SET done = 800 WHERE id = :id"), {"id": job_id})
        expect(page.locator("#barre")).to_have_attribute("value", "80")
        with transaction(engine) as conn:
            conn.execute(text("UPDATE import_job SET phase = 'comparaison' WHERE id = :id"), {"id": job_id})
        expect(page.locator("#etape")).to_have_text("comparaison avec le catalogue")
        report = {"counts": {"rows": 3, "new": 0, "changed": 0, "unchanged": 3, "archived": 0, "rejected": 0,
                             "conflicts": 0, "skipped": 0}, "new": [], "changed": [], "archived": [],
                  "rejected": [], "conflicts": [], "warnings": [], "skipped": {}, "fingerprint": "abcdef0123456789"}
        with transaction(engine) as conn:
            conn.execute(text("""UPDATE import_job SET status = 'planned', phase = NULL, fingerprint = :f,
                                 report = CAST(:r AS jsonb) WHERE id = :id"""),
                         {"id": job_id, "f": report["fingerprint"], "r": json.dumps(report)})
        expect(page.get_by_role("heading", name="Rapport de l’essai à blanc")).to_be_visible()
        expect(page.get_by_text("Rien à changer")).to_be_visible()
    finally:
        worker.close()
