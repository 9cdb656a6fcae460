"""The workspace in a real browser (Debian's headless Chromium): an invited curator sets a password, logs in and
changes vacant places, which the public page and a tile show; a curator of Ille-et-Vilaine cannot open or save a
site of the Rhône; a stale edit is refused; a revert restores; a report sent from the public page reaches the
inbox. No serious or critical axe-core violation, no request to another host, no CSP violation."""
from __future__ import annotations

import re

import mapbox_vector_tile
import pytest
import requests
from playwright.sync_api import Browser, expect
from sqlalchemy import text

from mapservice.db import make_engine

from .conftest import dispose_app, make_test_app, serving, throwaway_database
from .page_browser import (  # noqa: F401  (fixtures)
    PHONE, Visit, browser, browsing, screenshot, serious_accessibility_violations,
)
from .test_tiles import tile_of
from .workspace_fixtures import PASSWORD, team

# The public page's first search (cold caches, a loaded machine) can take longer than expect()'s 5 s.
SLOW = 20_000
EMAILS = {"academie": "academie.rennes@exemple.invalid", "curator": "referent.35@exemple.invalid",
          "platform_curator": "plateforme.35@exemple.invalid"}


@pytest.fixture(scope="module")
def served(server, template):
    """The app on its own copy of the database (the tests write), on a loopback port."""
    with throwaway_database(server, "mapservice_wsb", template=template) as url:
        engine = make_engine(url)
        t = team(engine)
        app = make_test_app(url)
        with serving(app) as origin:
            yield origin, engine, t
        dispose_app(app)
        engine.dispose()


@pytest.fixture
def open_page(browser: Browser, served):
    """open_page(path) -> Visit in a fresh context (its own cookies), the login page by default; checked
    afterwards like the public pages (tests/page_browser.browsing)."""
    with browsing(browser, served[0], default_path="/equipes/connexion") as open_:
        yield open_


def log_in(visit: Visit, email: str, password: str = PASSWORD) -> None:
    page = visit.page
    page.goto(visit.origin + "/equipes/connexion")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Tableau de bord de mon territoire")).to_be_visible()


def test_an_invited_curator_sets_a_password_and_updates_vacant_places_seen_by_the_public(open_page, served):
    origin, engine, t = served
    admin = open_page()
    log_in(admin, EMAILS["academie"])
    admin.page.get_by_role("link", name="Comptes").click()
    admin.page.get_by_role("link", name="Inviter une personne").click()
    admin.page.get_by_label("E-mail (obligatoire)").fill("nouvelle.referente@exemple.invalid")
    admin.page.get_by_label("Rôle").select_option("curator")
    admin.page.get_by_label("Départements").fill("35")
    admin.page.get_by_role("button", name="Inviter").click()
    link = admin.page.locator("code.link").inner_text()  # no SMTP server here: the admin passes the link on
    assert serious_accessibility_violations(admin.page) == []

    newcomer = open_page(None)
    page = newcomer.page
    page.goto(link)
    page.get_by_label("Nouveau mot de passe").fill("ma phrase de passe à moi")
    page.get_by_label("Le même, encore une fois").fill("ma phrase de passe à moi")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    expect(page.get_by_text("Mot de passe enregistré")).to_be_visible()
    log_in(newcomer, "nouvelle.referente@exemple.invalid", "ma phrase de passe à moi")
    assert serious_accessibility_violations(page) == []
    screenshot(page, "workspace-dashboard")

    with engine.connect() as conn:
        solution = conn.execute(text("""
            SELECT s.id, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat FROM solution s JOIN site ON site.id = s.site_id
            WHERE site.id = :site AND s.status = 'published' AND coalesce(s.capacity, 99) >= 9 ORDER BY s.id LIMIT 1"""),
            {"site": t["site_35"]}).one()
    page.get_by_role("link", name="Places libres").first.click()
    field = page.locator(f"#places-{solution.id}")
    field.fill("9")
    assert serious_accessibility_violations(page) == []
    screenshot(page, "workspace-places")
    page.get_by_role("button", name="Enregistrer les places").click()
    expect(page.get_by_role("status")).to_contain_text("Places enregistrées (1 solution modifiée)")

    public = open_page(f"/?lat={solution.lat:.4f}&lon={solution.lon:.4f}&solution={solution.id}")
    expect(public.page.locator(f'#liste > li[data-id="{solution.id}"] .places')).to_have_text("9 places libres", timeout=SLOW)
    z, x, y = tile_of(solution.lon, solution.lat, 14)
    tile = mapbox_vector_tile.decode(requests.get(f"{origin}/tiles/solutions/{z}/{x}/{y}.mvt", timeout=10).content,
                                     default_options={"y_coord_down": True})
    site = next(f for f in tile["sites"]["features"] if f["id"] == t["site_35"])
    assert site["properties"]["vacancy"] is True and site["properties"]["vacant_places"] >= 9


def test_on_a_phone_a_curator_fills_in_vacant_places_without_scrolling_sideways(open_page, served):
    visit = open_page(viewport=PHONE)
    log_in(visit, EMAILS["curator"])
    page = visit.page
    page.get_by_role("link", name="Places libres").first.click()
    fields = page.locator('input[name^="places_"]')
    expect(fields.first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for i in range(min(fields.count(), 5)):
        box = fields.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.locator("td[data-label='Places libres']").first.evaluate(
        "td => getComputedStyle(td, '::before').content") == '"Places libres : "'
    assert serious_accessibility_violations(page) == []
    screenshot(page, "workspace-places-phone")


def test_on_a_phone_no_workspace_page_scrolls_sideways_its_wide_tables_scroll_in_their_own_box(open_page, served):
    visit = open_page(viewport=PHONE)
    log_in(visit, EMAILS["academie"])
    page = visit.page
    page.goto(visit.origin + "/espace/rapports")
    report = page.locator("a[href^='/espace/rapports/']").first.get_attribute("href")  # the académie's latest
    for path in ("/equipes/", "/equipes/lieux", "/equipes/a-verifier", "/equipes/comptes", "/equipes/territoires",
                 "/equipes/imports", report):
        assert page.goto(visit.origin + path).status == 200, path
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        assert serious_accessibility_violations(page) == [], path
    page.goto(visit.origin + "/equipes/")
    wide = page.locator(".table-scroll").first
    assert wide.evaluate("box => box.scrollWidth > box.clientWidth")  # the table is there, scrolled within
    assert wide.get_attribute("tabindex") == "0" and wide.get_attribute("aria-label") == "Solutions par type"


def test_an_ille_et_vilaine_curator_cannot_open_or_save_a_rhone_site(open_page, served):
    origin, engine, t = served
    visit = open_page()
    log_in(visit, EMAILS["curator"])
    page = visit.page
    response = page.goto(f"{origin}/equipes/lieux/{t['site_69']}")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("hors de votre territoire")
    assert serious_accessibility_violations(page) == []
    # A form post forged from one of its own pages (session cookie and CSRF token are valid) ...
    page.goto(f"{origin}/equipes/lieux/{t['site_35']}")
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    with engine.connect() as conn:
        version = conn.scalar(text("SELECT version FROM site WHERE id = :i"), {"i": t["site_69"]})
    posted = page.request.post(f"{origin}/equipes/lieux/{t['site_69']}", form={
        "csrf_token": token, "version": str(version), "name": "Piraté", "kind": "lycee", "commune_code": "69123"})
    assert posted.status == 403
    # ... and the API with the curator's own token.
    page.goto(f"{origin}/equipes/jetons")
    page.get_by_label("Nom du jeton").fill("essai")
    page.get_by_role("button", name="Créer un jeton").click()
    secret = page.locator("code.link").inner_text()
    api = page.request.put(f"{origin}/api/v1/equipes/lieux/{t['site_69']}", headers={"Authorization": f"Bearer {secret}"},
                           data={"version": version, "name": "Piraté", "kind": "lycee", "commune_code": "69123"})
    assert api.status == 403 and "hors de votre territoire" in api.json()["detail"]
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT name FROM site WHERE id = :i"), {"i": t["site_69"]}) != "Piraté"
        assert conn.scalar(text("SELECT count(*) FROM audit_event WHERE event = 'forbidden' "
                                "AND email = :e"), {"e": EMAILS["curator"]}) >= 3


def test_a_stale_edit_is_refused_and_a_revert_restores(open_page, served):
    origin, engine, t = served
    one, other = open_page(), open_page()
    log_in(one, EMAILS["curator"])
    log_in(other, EMAILS["platform_curator"])
    with engine.connect() as conn:
        solution_id = conn.scalar(text("SELECT id FROM solution WHERE site_id = :s ORDER BY id DESC LIMIT 1"),
                                  {"s": t["site_35"]})
    for visit in (one, other):
        visit.page.goto(f"{origin}/equipes/solutions/{solution_id}")
    one.page.get_by_label("Comment s'inscrire").fill("Appeler le secrétariat")
    one.page.get_by_role("button", name="Enregistrer la solution").click()
    expect(one.page.get_by_role("status")).to_contain_text("Solution enregistrée")
    other.page.get_by_label("Comment s'inscrire").fill("Envoyer un e-mail")
    other.page.get_by_role("button", name="Enregistrer la solution").click()
    alert = other.page.get_by_role("alert")
    expect(alert).to_contain_text("Modifié entre-temps par referent.35@exemple.invalid")
    expect(alert).to_contain_text("Appeler le secrétariat")
    assert serious_accessibility_violations(other.page) == []

    page = one.page
    page.get_by_label("Comment s'inscrire").fill("Venir sans rendez-vous")
    page.get_by_role("button", name="Enregistrer la solution").click()
    page.get_by_role("link", name="Historique").click()
    expect(page.locator(".history > li")).to_have_count(3)  # created by the demo load: none; two edits + ...
    assert serious_accessibility_violations(page) == []
    screenshot(page, "workspace-history")
    page.locator(".history > li").nth(1).get_by_role("button", name="Rétablir cette version").click()
    expect(page.get_by_label("Comment s'inscrire")).to_have_value("Appeler le secrétariat")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT how_to_apply FROM solution WHERE id = :i"),
                           {"i": solution_id}) == "Appeler le secrétariat"


def test_a_report_sent_from_the_public_page_reaches_the_inbox(open_page, served):
    origin, engine, t = served
    with engine.connect() as conn:
        solution = conn.execute(text("""
            SELECT s.id, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat FROM solution s JOIN site ON site.id = s.site_id
            WHERE site.id = :site AND s.status = 'published' ORDER BY s.id LIMIT 1"""), {"site": t["site_35"]}).one()
    public = open_page(f"/?lat={solution.lat:.4f}&lon={solution.lon:.4f}&solution={solution.id}")
    detail = public.page.locator("#detail")
    expect(public.page.locator("#titre-detail")).to_be_visible(timeout=SLOW)
    detail.get_by_text("Signaler une erreur").click()
    detail.get_by_label("Qu'est-ce qui ne va pas ?").select_option("contact")
    detail.get_by_label("Précisions").fill("Le numéro ne répond plus.")
    detail.get_by_role("button", name="Envoyer").click()
    expect(public.page.locator("#signaler-message")).to_contain_text("Merci", timeout=SLOW)

    team_page = open_page()
    log_in(team_page, EMAILS["curator"])
    page = team_page.page
    expect(page.locator(".cards")).to_contain_text(re.compile(r"[1-9]\d*\s*nouveaux signalements"))
    page.get_by_role("link", name="Signalements").first.click()
    report = page.locator(".reports > li", has_text="Le numéro ne répond plus.")
    expect(report).to_contain_text("Nouveau")
    assert serious_accessibility_violations(page) == []
    report.get_by_label("Statut").select_option("in_progress")
    report.get_by_role("button", name="Mettre à jour").click()
    expect(page.locator(".reports > li", has_text="Le numéro ne répond plus.")).to_contain_text("En cours")


def test_the_site_form_places_the_pin_and_passes_axe(open_page, served):
    origin, engine, t = served
    visit = open_page()
    log_in(visit, EMAILS["curator"])
    page = visit.page
    page.goto(f"{origin}/equipes/lieux/{t['site_35']}")
    expect(page.locator("#pin-map .leaflet-marker-icon")).to_be_visible()
    assert serious_accessibility_violations(page) == []
    screenshot(page, "workspace-site-form")
    box = page.locator("#pin-map .leaflet-marker-icon").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    before = float(page.get_by_label("Longitude").input_value() or 0)
    assert before != 0
    for path in ("/equipes/", "/equipes/lieux", "/equipes/a-verifier", "/equipes/comptes", "/equipes/lieux/nouveau"):
        page.goto(origin + path)
        assert serious_accessibility_violations(page) == [], path
