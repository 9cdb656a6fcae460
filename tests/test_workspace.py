"""The workspace's pages and its API on the same core: log in, edit, stale saves, revert, vacant places, inbox,
and the security matrix (every role x every write x inside/outside its territory, pages and API)."""
from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import text

from mapservice.accounts.values import Scope
from mapservice.curation.inputs import SOLUTION_FIELDS
from mapservice.db import make_engine

from .conftest import dispose_app, make_test_app, throwaway_database
from .workspace_fixtures import PASSWORD, csrf, logged_in, make_account, sign_in, team



@pytest.fixture(scope="module")
def ws(server, template):
    with throwaway_database(server, "mapservice_ws", template=template) as url:
        engine = make_engine(url)
        t = team(engine)
        app = make_test_app(url)
        yield app, engine, t
        dispose_app(app)
        engine.dispose()


def form_of(client, path: str) -> dict:
    """The form's current values, as the browser would post them back."""
    page = client.get(path)
    assert page.status_code == 200, page.data[:300]
    html = page.data.decode()
    values = dict(re.findall(r'<input id="f-(\w+)" name="\w+" type="[a-z]+" value="([^"]*)"', html))
    values.update(re.findall(r'<textarea id="f-(\w+)" name="\w+" rows="\d+">([^<]*)</textarea>', html))
    for name, options in re.findall(r'<select id="f-(\w+)" name="\w+"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        values[name] = chosen.group(1) if chosen else ""
    values = {k: unescape(v) for k, v in values.items()}
    values["version"] = re.search(r'name="version" value="(\d+)"', html).group(1)
    values["csrf_token"] = csrf(page.data)
    return values


def test_the_login_page_and_workspace_pages_render_for_a_curator(ws):
    app, engine, t = ws
    client = logged_in(app, "curator")
    for path in ("/equipes/", "/equipes/lieux", "/equipes/places", "/equipes/a-verifier", "/equipes/signalements",
                 f"/equipes/lieux/{t['site_35']}", "/equipes/lieux/nouveau", "/equipes/jetons",
                 f"/equipes/historique/site/{t['site_35']}"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.data[:300])
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert app.test_client().get("/equipes/").status_code == 302  # not logged in: to the login page


@pytest.fixture(scope="module")
def smtp():
    """A real SMTP server (aiosmtpd) on a loopback port; yields (port, received messages)."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    from mapservice.cluster import free_port

    received = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            received.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, received
    controller.stop()


def link_in(message) -> str:
    return re.search(r"http://\S+", message.get_content()).group(0)


def set_password(client, link: str, password: str = "un autre mot de passe"):
    path = link.split("localhost", 1)[-1]
    page = client.get(path)
    assert page.status_code == 200, page.data[:300]
    return client.post(path, data={"csrf_token": csrf(page.data), "jeton": path.split("jeton=")[1],
                                    "password": password, "password_again": password})


def test_an_invitation_is_emailed_and_its_link_sets_a_password_once(ws, smtp):
    app, engine, t = ws
    port, received = smtp
    mailing = make_test_app(app.config["SETTINGS"].database.url,
                            mail={"host": "127.0.0.1", "port": port, "tls": "none",
                                  "from_address": "equipes@exemple.invalid"})
    try:
        admin = logged_in(mailing, "academie")
        page = admin.get("/equipes/comptes/inviter")
        response = admin.post("/equipes/comptes/inviter", data={
            "csrf_token": csrf(page.data), "email": "Nouveau.Referent@exemple.invalid", "role": "curator",
            "departements": "35"})
        assert response.status_code == 302, response.data[:400]
        message = received[-1]
        assert message["To"] == "nouveau.referent@exemple.invalid"
        assert message["From"] == "equipes@exemple.invalid"
        link = link_in(message)
        assert "/equipes/activer?jeton=" in link
        newcomer = mailing.test_client()
        assert set_password(newcomer, link).status_code == 302
        assert newcomer.get(link.split("localhost", 1)[-1]).status_code == 400  # used: the link is dead
        signed_in = sign_in(newcomer, "nouveau.referent@exemple.invalid", password="un autre mot de passe")
        assert signed_in.status_code == 302
        assert newcomer.get("/equipes/places").status_code == 200
        # A password reset goes the same way; an unknown address gets the same answer and no mail.
        forgot = newcomer.get("/equipes/mot-de-passe-oublie")
        before = len(received)
        for email in ("nouveau.referent@exemple.invalid", "personne@exemple.invalid"):
            answer = newcomer.post("/equipes/mot-de-passe-oublie", data={"csrf_token": csrf(forgot.data),
                                                                          "email": email})
            assert "Si un compte existe" in answer.data.decode()
        assert len(received) == before + 1
        assert "/equipes/nouveau-mot-de-passe?jeton=" in link_in(received[-1])
    finally:
        dispose_app(mailing)


def test_the_first_administrator_comes_from_the_command_line(ws, monkeypatch):
    from mapservice.cli import cli

    app, engine, t = ws
    monkeypatch.setenv("DATABASE_URL", app.config["SETTINGS"].database.url)
    result = app.test_cli_runner().invoke(cli, ["accounts", "create-admin", "Premier@exemple.invalid",
                                                "--url", "http://localhost"])
    assert result.exit_code == 0, result.output
    link = re.search(r"http://localhost\S+", result.output).group(0)
    client = app.test_client()
    assert set_password(client, link).status_code == 302
    assert sign_in(client, "premier@exemple.invalid", password="un autre mot de passe").status_code == 302
    assert client.get("/equipes/comptes").status_code == 200
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT role FROM account WHERE email = 'premier@exemple.invalid'")) == "national_admin"


def test_a_stale_edit_is_refused_and_shows_what_changed(ws):
    app, engine, t = ws
    first, second = logged_in(app, "curator"), logged_in(app, "platform_curator")
    path = f"/equipes/lieux/{t['site_35']}"
    mine, theirs = form_of(first, path), form_of(second, path)
    saved = first.post(path, data={**mine, "opening_hours": "Lundi 9 h - 12 h"})
    assert saved.status_code == 302, re.findall(r'role="alert"><p>([^<]*)', saved.data.decode())
    response = second.post(path, data={**theirs, "phone": "02 99 00 00 00"})
    assert response.status_code == 409
    html = response.data.decode()
    assert "Modifié entre-temps par referent.35@exemple.invalid" in html and "opening_hours" in html
    assert "Lundi 9 h - 12 h" in html
    with engine.connect() as conn:
        row = conn.execute(text("SELECT opening_hours, phone FROM site WHERE id = :i"), {"i": t["site_35"]}).one()
    assert row.opening_hours == "Lundi 9 h - 12 h" and row.phone != "02 99 00 00 00"
    # The form came back on the current version: saving again is a knowing overwrite.
    again = form_of(second, path)
    assert second.post(path, data={**again, "phone": "02 99 00 00 00"}).status_code == 302


def test_the_api_answers_409_with_the_changed_fields(ws):
    app, engine, t = ws
    with engine.begin() as conn:
        from mapservice.accounts import login, store

        token = login.create_api_token(conn, store.load_actor(conn, t["curator"]), "stale")[1]
        solution_id = conn.scalar(text("SELECT id FROM solution WHERE site_id = :s ORDER BY id LIMIT 1"),
                                  {"s": t["site_35"]})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    current = client.get(f"/api/v1/equipes/solutions/{solution_id}", headers=headers).json
    body = {k: current[k] for k in SOLUTION_FIELDS if current[k] is not None}  # PUT: the whole record
    assert client.put(f"/api/v1/equipes/solutions/{solution_id}", headers=headers,
                      json={**body, "version": current["version"], "level": "CAP"}).status_code == 200
    stale = client.put(f"/api/v1/equipes/solutions/{solution_id}", headers=headers,
                       json={**body, "version": current["version"], "level": "Bac pro"})
    assert stale.status_code == 409
    assert stale.json["changed_fields"] == ["level"] and stale.json["current"] == {"level": "CAP"}
    assert stale.json["current_version"] == current["version"] + 1


def test_a_revert_restores_the_earlier_values_and_is_itself_recorded(ws):
    app, engine, t = ws
    client = logged_in(app, "curator")
    with engine.connect() as conn:
        solution_id = conn.scalar(text("SELECT id FROM solution WHERE site_id = :s ORDER BY id DESC LIMIT 1"),
                                  {"s": t["site_35"]})
    path = f"/equipes/solutions/{solution_id}"
    original = form_of(client, path)
    assert client.post(path, data={**original, "eligibility": "Moins de 26 ans", "capacity": "12",
                                   "vacant_places": "3"}).status_code == 302
    changed = form_of(client, path)
    assert client.post(path, data={**changed, "eligibility": "N'importe qui", "vacant_places": "0"}).status_code == 302
    with engine.connect() as conn:
        first_change = conn.scalar(text("""SELECT min(id) FROM change_log WHERE entity = 'solution' AND entity_id = :i
                                           AND action = 'update' AND 'eligibility' = ANY(fields)"""), {"i": solution_id})
    history = client.get(f"/equipes/historique/solution/{solution_id}").data.decode()
    assert "Moins de 26 ans" in history and "Rétablir cette version" in history
    assert client.post(f"/equipes/historique/{first_change}/retablir",
                       data={"csrf_token": changed["csrf_token"]}).status_code == 302
    restored = form_of(client, path)
    assert (restored["eligibility"], restored["vacant_places"], restored["capacity"]) == ("Moins de 26 ans", "3", "12")
    with engine.connect() as conn:
        last = conn.execute(text("SELECT action, reverts, fields FROM change_log WHERE entity = 'solution' "
                                 "AND entity_id = :i ORDER BY id DESC LIMIT 1"), {"i": solution_id}).one()
    assert last.action == "revert" and last.reverts == first_change
    assert set(last.fields) == {"eligibility", "vacant_places"}


def test_vacant_places_saved_in_one_action_show_at_once_in_the_public_api_and_the_tiles(ws):
    from .test_tiles import decode, features, get_tile, tile_of

    app, engine, t = ws
    client = logged_in(app, "curator")
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT s.id, s.version, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat
                                    FROM solution s JOIN site ON site.id = s.site_id
                                    WHERE s.site_id = :site AND s.status = 'published' AND coalesce(s.capacity, 100) >= 7
                                    ORDER BY s.id"""), {"site": t["site_35"]}).all()
    target = rows[0]
    z, x, y = tile_of(target.lon, target.lat, 14)
    public = app.test_client()
    public.get(f"/tiles/solutions/{z}/{x}/{y}.mvt")  # cached before the edit
    page = client.get("/equipes/places")
    assert f'name="places_{target.id}"'.encode() in page.data
    response = client.post("/equipes/places", data={"csrf_token": csrf(page.data), f"places_{target.id}": "7",
                                                     f"version_{target.id}": str(target.version)})
    assert response.status_code == 302
    assert public.get(f"/api/v1/solutions/{target.id}").json["properties"]["vacant_places"] == 7
    site = next(f for f in features(decode(get_tile(public, z, x, y)), "sites") if f["id"] == t["site_35"])
    assert site["properties"]["vacancy"] is True and site["properties"]["vacant_places"] >= 7
    # A stale line refuses the whole save.
    again = client.post("/equipes/places", data={"csrf_token": csrf(page.data), f"places_{target.id}": "2",
                                                 f"version_{target.id}": str(target.version)})
    assert again.status_code == 409 and "Modifié entre-temps" in again.data.decode()
    assert public.get(f"/api/v1/solutions/{target.id}").json["properties"]["vacant_places"] == 7


def test_a_long_list_says_it_is_cut_and_the_search_finds_the_rest(ws):
    app, engine, t = ws
    client = logged_in(app, "national")
    with engine.connect() as conn:
        solutions = conn.scalar(text("SELECT count(*) FROM solution WHERE status <> 'archived'"))
        rennes = conn.scalar(text("""SELECT count(*) FROM solution s JOIN site ON site.id = s.site_id
                                     WHERE s.status <> 'archived' AND site.commune_code = '35238'"""))
    assert solutions > 2000 and 0 < rennes < 2000
    everything = unescape(client.get("/equipes/places").data.decode())
    assert everything.count('name="places_') == 2000
    assert "Seules les 2 000 premières solutions sont affichées" in everything
    found = unescape(client.get("/equipes/places?q=35238").data.decode())
    assert found.count('name="places_') == rennes and "premières solutions" not in found
    sites_page = unescape(client.get("/equipes/lieux").data.decode())
    assert "Seuls les 100 premiers lieux sont affichés" in sites_page
    assert "Aucun lieu ni commune ne correspond à « Zzyzxville »" in unescape(
        client.get("/equipes/lieux?q=Zzyzxville").data.decode())


def test_a_search_on_the_places_screen_is_kept_after_saving(ws):
    app, engine, t = ws
    client = logged_in(app, "curator")
    page = client.get("/equipes/places?q=Rennes")
    assert page.status_code == 200
    response = client.post("/equipes/places?q=Rennes", data={"csrf_token": csrf(page.data)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/equipes/places?q=Rennes")


def test_the_api_lists_the_whole_territory_not_its_first_page(ws):
    app, engine, t = ws
    with engine.begin() as conn:
        from mapservice.accounts import login, store

        token = login.create_api_token(conn, store.load_actor(conn, t["national"]), "everything")[1]
        counts = conn.execute(text("""SELECT (SELECT count(*) FROM site) AS sites,
                                             (SELECT count(*) FROM solution WHERE status <> 'archived') AS solutions"""
                                   )).one()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert len(client.get("/api/v1/equipes/lieux", headers=headers).json["sites"]) == counts.sites > 100
    assert len(client.get("/api/v1/equipes/places", headers=headers).json["solutions"]) == counts.solutions > 2000


def test_the_overdue_checks_and_the_reports_say_when_they_show_only_the_first(ws):
    app, engine, t = ws
    with engine.begin() as conn:
        from mapservice.accounts import login, store

        token = login.create_api_token(conn, store.load_actor(conn, t["national"]), "queues")[1]
        overdue = conn.scalar(text("""SELECT count(*) FROM site WHERE status = 'published'
                                      AND (last_checked_at IS NULL OR last_checked_at < now() - interval '180 days')"""))
        solution = conn.scalar(text("SELECT id FROM solution WHERE site_id = :s ORDER BY id LIMIT 1"), {"s": t["site_35"]})
        added = conn.scalars(text("""INSERT INTO error_report (solution_id, reason, message)
                                     SELECT :s, 'places', 'Signalement ' || n FROM generate_series(1, 201) n
                                     RETURNING id"""), {"s": solution}).all()
        reports = conn.scalar(text("SELECT count(*) FROM error_report"))
    try:
        assert overdue > 500
        client = logged_in(app, "national")
        due = unescape(client.get("/equipes/a-verifier").data.decode())
        assert due.count('name="site"') == 500 and "Seuls les 500 plus anciens sont affichés" in due
        inbox = unescape(client.get("/equipes/signalements").data.decode())
        assert inbox.count('name="status"') == 200 and "Seuls les 200 premiers signalements sont affichés" in inbox
        api = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        assert len(api.get("/api/v1/equipes/a-verifier", headers=headers).json["sites"]) == overdue
        assert len(api.get("/api/v1/equipes/signalements", headers=headers).json["reports"]) == reports
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM error_report WHERE id = ANY(:ids)"), {"ids": added})


def test_a_report_from_the_public_reaches_the_inbox_of_its_territory_only(ws):
    app, engine, t = ws
    with engine.connect() as conn:
        solution_id = conn.scalar(text("SELECT id FROM solution WHERE site_id = :s AND status = 'published' "
                                       "ORDER BY id LIMIT 1"), {"s": t["site_35"]})
    public = app.test_client()
    sent = public.post(f"/api/v1/solutions/{solution_id}/error-reports",
                       json={"reason": "autre", "message": "<b>Fermé</b> le mercredi"})
    assert sent.status_code == 201
    curator = logged_in(app, "curator")
    inbox = curator.get("/equipes/signalements").data.decode()
    assert "&lt;b&gt;Fermé&lt;/b&gt; le mercredi" in inbox  # escaped, never markup
    assert f"/equipes/solutions/{solution_id}" in inbox
    board = curator.get("/equipes/").data.decode()
    assert re.search(r"<strong>[1-9]\d*</strong> nouveaux signalements", board)
    token = csrf(curator.get("/equipes/").data)
    report_id = sent.json["id"]
    assert curator.post(f"/equipes/signalements/{report_id}", data={"csrf_token": token,
                                                                    "status": "resolved"}).status_code == 302
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT status FROM error_report WHERE id = :i"), {"i": report_id}) == "resolved"


def test_positions_are_checked_against_the_claimed_commune(ws):
    app, engine, t = ws
    client = logged_in(app, "curator")
    page = client.get("/equipes/lieux/nouveau")
    base = {"csrf_token": csrf(page.data), "name": "Mission locale de test", "kind": "mission_locale",
            "commune_code": "35238"}
    # Rennes is at about 48.11 N, 1.68 W: a swapped pair is refused with the fix.
    swapped = client.post("/equipes/lieux/nouveau", data={**base, "lat": "-1.6794", "lon": "48.1113"})
    assert swapped.status_code == 400
    assert "semblent inversées" in swapped.data.decode() and "latitude 48.1113" in swapped.data.decode()
    elsewhere = client.post("/equipes/lieux/nouveau", data={**base, "lat": "48.0", "lon": "-1.3"})
    assert elsewhere.status_code == 400 and "pas à Rennes" in elsewhere.data.decode()
    link = client.post("/equipes/lieux/nouveau", data={**base, "website": "javascript:alert(1)"})
    assert link.status_code == 400 and "adresse web" in link.data.decode()
    created = client.post("/equipes/lieux/nouveau", data={**base, "lat": "48.1113", "lon": "-1.6794"})
    assert created.status_code == 302
    twin = client.post("/equipes/lieux/nouveau", data={**base, "name": "Mission Locale de Test",
                                                       "lat": "48.1114", "lon": "-1.6795"}, follow_redirects=True)
    assert "Doublon possible" in twin.data.decode()
    # Without a position nor a geocoder: the town hall, said so.
    hall = client.post("/equipes/lieux/nouveau", data={**base, "name": "Autre lieu"}, follow_redirects=True)
    assert "la mairie de la commune" in hall.data.decode()


def test_curated_text_is_escaped_on_the_pages_and_plain_in_the_api(ws):
    app, engine, t = ws
    client = logged_in(app, "curator")
    path = f"/equipes/lieux/{t['site_35']}"
    values = form_of(client, path)
    assert client.post(path, data={**values, "accessibility": '<script>alert("x")</script>'}).status_code == 302
    html = client.get(path).data.decode()
    assert '<script>alert("x")</script>' not in html and "&lt;script&gt;" in html
    public = app.test_client().get(f"/api/v1/sites/{t['site_35']}").json
    assert public["properties"]["accessibility"] == '<script>alert("x")</script>'


def test_logging_out_everywhere_ends_the_other_sessions(ws):
    app, engine, t = ws
    phone, desk = logged_in(app, "partner"), logged_in(app, "partner")
    assert phone.get("/equipes/").status_code == 200
    token = csrf(desk.get("/equipes/").data)
    assert desk.post("/equipes/deconnexion-partout", data={"csrf_token": token}).status_code == 302
    assert phone.get("/equipes/").status_code == 302  # back to the login page


def test_repeated_wrong_passwords_get_a_clear_429(ws):
    app, engine, t = ws
    make_account(engine, "distrait@exemple.invalid", "curator", [Scope(departement="35")])
    client = app.test_client()
    token = csrf(client.get("/equipes/connexion").data)
    codes = [client.post("/equipes/connexion", data={"email": "distrait@exemple.invalid", "password": "faux",
                                                      "csrf_token": token}).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    assert "Trop de tentatives" in client.post("/equipes/connexion", data={
        "email": "distrait@exemple.invalid", "password": PASSWORD, "csrf_token": token}).data.decode()


def test_an_academie_admin_changes_a_scope_within_its_academie_and_the_history_shows_it(ws):
    app, engine, t = ws
    admin = logged_in(app, "academie")
    account_id = make_account(engine, "partenaire.deux@exemple.invalid", "partner", [Scope(site=t["site_35"])])
    partner = app.test_client()
    assert sign_in(partner, "partenaire.deux@exemple.invalid").status_code == 302
    page = admin.get(f"/equipes/comptes/{account_id}")
    assert page.status_code == 200
    version = re.search(rb'name="version" value="(\d+)"', page.data).group(1).decode()
    base = {"csrf_token": csrf(page.data), "version": version, "role": "partner", "active": "on"}
    outside = admin.post(f"/equipes/comptes/{account_id}", data={**base, "sites": str(t["site_69"])})
    assert outside.status_code == 403
    moved = admin.post(f"/equipes/comptes/{account_id}", data={**base, "departements": "", "sites": str(t["site_35"]),
                                                               "name": "Partenaire deux"})
    assert moved.status_code == 302
    history = admin.get(f"/equipes/historique/account/{account_id}").data.decode()
    assert "Partenaire deux" in history
    assert partner.get("/equipes/").status_code == 200
    off = admin.post(f"/equipes/comptes/{account_id}", data={**base, "version": str(int(version) + 1),
                                                             "sites": str(t["site_35"]), "active": ""})
    assert off.status_code == 302
    assert partner.get("/equipes/").status_code == 302  # deactivated: its session is over
    link = admin.post(f"/equipes/comptes/{account_id}/invitation", data={"csrf_token": base["csrf_token"]})
    assert "/equipes/activer?jeton=" in link.data.decode()
