"""Imports from the teams' workspace, over HTTP: a curator uploads a partner's list, reads the dry run's report
(new, rejected with the reason and the fix, outside its territory), applies exactly that report, sees it in the
history and reverts it; who may import what; a report outdated by a change in the catalogue is not applied;
every bad file gets a one-line French message on the form, never a 500; a worker that died is reported."""
from __future__ import annotations

import re
import time
from html import unescape

import pytest
from sqlalchemy import text

from mapservice.db import make_engine, transaction

from .conftest import dispose_app, make_test_app, throwaway_database
from .test_imports_partners import ROWS, as_csv, row
from .workspace_fixtures import TEAM_EMAILS, csrf, logged_in, team

MISSION_LOCALE = row(identifiant="ml-vitre", type="mission_locale", nom="Mission locale du pays de Vitré",
                     latitude="48.1235", longitude="-1.2085", code_commune="35360", telephone="02 99 75 18 07")


@pytest.fixture(scope="module")
def ws(server, template, tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    with throwaway_database(server, "mapservice_wsi", template=template) as url:
        engine = make_engine(url)
        t = team(engine)
        app = make_test_app(url, imports={"upload_dir": uploads})
        yield app, engine, t, uploads
        dispose_app(app)
        engine.dispose()


def upload(client, content: bytes | str, name="partenaires.csv", kind="partners", source="ml-35"):
    token = csrf(client.get("/equipes/").data)
    data = content.encode() if isinstance(content, str) else content
    from io import BytesIO
    return client.post("/equipes/imports/", data={"csrf_token": token, "kind": kind, "source": source,
                                                  "file": (BytesIO(data), name)},
                       content_type="multipart/form-data")


def job_id_of(response) -> int:
    assert response.status_code == 302, unescape(response.data.decode())[:2000]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def wait_until_done(client, job_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/equipes/imports/{job_id}/etat").get_json()
        if not state["running"]:
            return state
        time.sleep(0.2)
    raise AssertionError(f"import job {job_id} still running after {timeout} s")


def report_distances_state(engine) -> tuple[int, int]:
    """The version of the report's distances, and how many catalogue changes they have yet to take in."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT (SELECT version FROM reporting_state), "
                                 "(SELECT count(*) FROM reporting_pending)")).one()


def page_text(response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.data.decode())))


def apply(client, job_id: int, fingerprint: str | None = None):
    page = client.get(f"/equipes/imports/{job_id}")
    fingerprint = fingerprint or re.search(r'name="fingerprint" value="([0-9a-f]+)"', page.data.decode()).group(1)
    return client.post(f"/equipes/imports/{job_id}/appliquer", data={"csrf_token": csrf(page.data),
                                                                      "fingerprint": fingerprint})


def test_a_curator_uploads_a_partner_list_reads_the_report_applies_it_and_reverts_it(ws):
    app, engine, t, uploads = ws
    client = logged_in(app, "curator")
    assert "modele-partenaires.csv" in client.get("/equipes/imports/").data.decode()
    job_id = job_id_of(upload(client, as_csv([MISSION_LOCALE] + ROWS)))
    assert wait_until_done(client, job_id)["status"] == "planned"
    report = page_text(client.get(f"/equipes/imports/{job_id}"))
    assert "Rapport de l’essai à blanc" in report
    assert "Mission locale du pays de Vitré" in report and "Appliquer exactement ce rapport" in report
    # Rejected rows: the reason and what to change, including the importer's territory.
    assert "latitude et longitude inversées" in report and "échangez les deux colonnes" in report
    assert "hors de votre territoire (département 75)" in report
    assert "elle tombe à Saint-Malo" in report and "corrigez la position" in report
    with engine.connect() as conn:  # a dry run writes nothing
        assert conn.scalar(text("SELECT count(*) FROM site WHERE source = 'partenaire:ml-35'")) == 0
    # The uploaded file is kept in the configured directory, under a name of our own.
    stored = list(uploads.iterdir())
    assert stored and all(p.name != "partenaires.csv" for p in stored)

    fingerprint = client.get(f"/equipes/imports/{job_id}/rapport.json").get_json()["fingerprint"]
    distances_before = report_distances_state(engine)
    assert apply(client, job_id, fingerprint).status_code == 302
    assert wait_until_done(client, job_id)["status"] == "applied"
    assert "Import appliqué" in page_text(client.get(f"/equipes/imports/{job_id}"))
    with engine.connect() as conn:
        site = conn.execute(text("""SELECT id, status FROM site WHERE source = 'partenaire:ml-35'
                                    AND source_key = 'ml-vitre'""")).one()
        run_id = conn.scalar(text("SELECT run_id FROM import_job WHERE id = :id"), {"id": job_id})
        assert conn.scalar(text("SELECT imported_by FROM import_run WHERE id = :id"), {"id": run_id}) == \
            TEAM_EMAILS["curator"]
    assert site.status == "published"
    # The report's distances follow, without waiting for its next reader to pay for them.
    deadline = time.monotonic() + 30
    while report_distances_state(engine) != (distances_before[0] + 1, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert report_distances_state(engine) == (distances_before[0] + 1, 0)
    nearest = client.get("/api/v1/solutions/nearest?lat=48.1235&lon=-1.2085&limit=1").get_json()
    assert nearest["features"][0]["properties"]["site_name"] == "Mission locale du pays de Vitré"
    # Applying the same report twice is refused.
    assert apply(client, job_id, fingerprint).status_code == 400

    history = client.get("/equipes/imports/")
    assert f"Annuler l'import n° {run_id}" in history.data.decode()
    reverted = client.post(f"/equipes/imports/historique/{run_id}/annuler", data={"csrf_token": csrf(history.data)})
    assert reverted.status_code == 302
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM site WHERE source = 'partenaire:ml-35'")) == 0
        assert conn.scalar(text("SELECT status FROM import_run WHERE id = :id"), {"id": run_id}) == "reverted"


def test_a_report_outdated_by_a_catalogue_change_is_not_applied(ws):
    app, engine, t, _ = ws
    client = logged_in(app, "curator")
    first = job_id_of(upload(client, as_csv([MISSION_LOCALE]), source="ml-stale"))
    wait_until_done(client, first)
    second = job_id_of(upload(client, as_csv([MISSION_LOCALE]), source="ml-stale"))
    wait_until_done(client, second)
    apply(client, first)
    assert wait_until_done(client, first)["status"] == "applied"
    # The second dry run said « new »: the catalogue has changed since, so its report is no longer true.
    assert apply(client, second).status_code == 302
    assert wait_until_done(client, second)["status"] == "failed"
    page = page_text(client.get(f"/equipes/imports/{second}"))
    assert "Le rapport a changé depuis l'essai à blanc" in page and "Relancer l'essai à blanc" in page
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM import_run WHERE source = 'partenaire:ml-stale'")) == 1
    # Dry-run again: the site is now unchanged.
    page = client.get(f"/equipes/imports/{second}")
    client.post(f"/equipes/imports/{second}/essai", data={"csrf_token": csrf(page.data)})
    assert wait_until_done(client, second)["status"] == "planned"
    assert "Rien à changer" in page_text(client.get(f"/equipes/imports/{second}"))


def test_who_may_import_what(ws):
    app, engine, t, _ = ws
    partner = logged_in(app, "partner")
    assert partner.get("/equipes/imports/").status_code == 403
    assert upload(partner, as_csv([MISSION_LOCALE])).status_code == 403
    curator = logged_in(app, "curator")
    with engine.connect() as conn:
        refusals = conn.scalar(text("SELECT count(*) FROM audit_event WHERE event = 'forbidden'"))
    # The official files are an administrator's.
    answer = upload(curator, "Identifiant_de_l_etablissement;Nom_etablissement\n", name="annuaire.csv",
                    kind="annuaire", source="")
    assert answer.status_code == 403 and "Votre compte ne permet pas" in page_text(answer)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM audit_event WHERE event = 'forbidden'")) == refusals + 1
    # A job is its uploader's.
    job_id = job_id_of(upload(curator, as_csv([MISSION_LOCALE]), source="ml-own"))
    wait_until_done(curator, job_id)
    platform = logged_in(app, "platform_curator")
    assert platform.get(f"/equipes/imports/{job_id}").status_code == 403
    assert platform.get(f"/equipes/imports/{job_id}/etat").status_code == 403
    page = platform.get("/equipes/imports/")
    assert platform.post(f"/equipes/imports/{job_id}/appliquer",
                         data={"csrf_token": csrf(page.data), "fingerprint": "0" * 16}).status_code == 403
    # Without the form's CSRF token, nothing is accepted.
    assert curator.post("/equipes/imports/", data={"kind": "partners", "source": "x"}).status_code == 400
    # A platform's team imports within its platform's communes only: here Vitré's, not Rennes.
    with transaction(engine) as conn:
        conn.execute(text("DELETE FROM psad_platform_commune WHERE platform_id = :p OR commune_code = '35360'"),
                     {"p": t["platform_35"]})
        conn.execute(text("INSERT INTO psad_platform_commune (platform_id, commune_code) VALUES (:p, '35360')"),
                     {"p": t["platform_35"]})
    inside, outside = "35360", "35238"
    rows = [row(identifiant="in", type="e2c", nom="Dedans", code_commune=inside),
            row(identifiant="out", type="e2c", nom="Dehors", code_commune=outside)]
    job_id = job_id_of(upload(platform, as_csv(rows), source="plateforme"))
    wait_until_done(platform, job_id)
    assert "Dedans" in page_text(platform.get(f"/equipes/imports/{job_id}"))
    with engine.connect() as conn:
        saved = conn.scalar(text("SELECT report FROM import_job WHERE id = :id"), {"id": job_id})
    assert [n["key"] for n in saved["new"] if n["table"] == "site"] == ["in"]
    assert [r["key"] for r in saved["rejected"]] == ["out"] and "hors de votre territoire" in saved["rejected"][0]["reason"]


def test_an_academie_administrator_cannot_revert_an_import_outside_its_territory(ws):
    app, engine, t, _ = ws
    national = logged_in(app, "national")
    job_id = job_id_of(upload(national, as_csv([row(identifiant="ml-lyon", type="mission_locale",
                                                     nom="Mission locale de Lyon", latitude="45.7640",
                                                     longitude="4.8357")]), source="ml-lyon"))
    assert wait_until_done(national, job_id)["status"] == "planned"
    apply(national, job_id)
    assert wait_until_done(national, job_id)["status"] == "applied"
    with engine.connect() as conn:
        run_id = conn.scalar(text("SELECT run_id FROM import_job WHERE id = :id"), {"id": job_id})
    academie = logged_in(app, "academie")
    page = academie.get("/equipes/imports/")
    assert f"n° {run_id}" not in page.data.decode()
    assert academie.post(f"/equipes/imports/historique/{run_id}/annuler",
                         data={"csrf_token": csrf(page.data)}).status_code == 403
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT status FROM import_run WHERE id = :id"), {"id": run_id}) == "applied"


HEADER = ";".join(["identifiant", "type", "nom", "latitude", "longitude"])
BAD_FILES = [
    ("latin1.csv", (HEADER + "\nml-1;mission_locale;Mission locale de Fougères;48.35;-1.2\n").encode("latin-1"),
     "ligne 2, colonne « nom » : octet 0xe8 invalide en UTF-8"),
    ("tabs.csv", as_csv([MISSION_LOCALE]).replace(";", "\t"), "séparées par « \t » (tabulation)"),
    ("colonnes.csv", "identifiant;type;latitude\nml-1;mission_locale;48.1\n", "colonne « nom » absente"),
    ("vide.csv", "", "le fichier est vide"),
    ("rapport.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "ce n'est pas un fichier CSV mais un PDF"),
    ("donnees.csv", '{"type": "FeatureCollection"}\n', "ce n'est pas un fichier CSV"),
    ("classeur.xlsx", b"PK\x03\x04", "il faut un fichier CSV (.csv)"),
]


@pytest.mark.parametrize("name, content, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_gets_a_french_message_on_the_form(ws, name, content, message):
    app, engine, t, _ = ws
    client = logged_in(app, "curator")
    with engine.connect() as conn:
        jobs_before = conn.scalar(text("SELECT count(*) FROM import_job"))
    answer = upload(client, content, name=name)
    assert answer.status_code == 400
    shown = unescape(re.search(r'<div class="error" role="alert"><p>(.*?)</p>', answer.data.decode(), re.S).group(1))
    assert message in shown, shown
    assert 'name="source" maxlength="60" value="ml-35"' in answer.data.decode()  # the form keeps its values
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM import_job")) == jobs_before


def test_a_bad_line_further_down_fails_the_dry_run_with_its_message(ws, monkeypatch):
    from mapservice.web.workspace import imports as pages

    monkeypatch.setattr(pages, "CHECKED_ROWS", 2)  # as if the fault were beyond the rows read at upload
    app, engine, t, _ = ws
    client = logged_in(app, "curator")
    # Past the first megabyte (read a block at a time), a line saved in Latin-1.
    rows = [dict(MISSION_LOCALE, identifiant=f"ml-{n}", nom="Mission locale") for n in range(12500)]
    content = as_csv(rows + [dict(MISSION_LOCALE, nom="Mission locale de Fougères")]).encode("latin-1")
    assert len(content) > 1 << 20
    job_id = job_id_of(upload(client, content, source="ml-latin"))
    assert wait_until_done(client, job_id)["status"] == "failed"
    page = page_text(client.get(f"/equipes/imports/{job_id}"))
    assert "partenaires.csv, ligne 12502, colonne « nom » : octet 0xe8 invalide en UTF-8" in page
    assert "Relancer l'essai à blanc" in page and "Appliquer" not in page


def test_a_file_over_the_size_limit_is_refused_with_a_french_message(server, template, tmp_path):
    with throwaway_database(server, "mapservice_wsi_cap", template=template) as url:
        engine = make_engine(url)
        team(engine)
        app = make_test_app(url, imports={"upload_dir": tmp_path, "max_mb": 0.01})
        try:
            client = logged_in(app, "curator")
            answer = upload(client, as_csv([MISSION_LOCALE] * 2000))  # ~250 kB
            assert answer.status_code == 413, page_text(answer)
            assert "Le fichier dépasse la limite de 0.01 Mo" in page_text(answer)
            assert list(tmp_path.iterdir()) == []
        finally:
            dispose_app(app)
            engine.dispose()


def test_an_import_whose_worker_died_says_so_and_can_be_run_again(ws):
    app, engine, t, _ = ws
    client = logged_in(app, "curator")
    job_id = job_id_of(upload(client, as_csv([MISSION_LOCALE]), source="ml-lost"))
    wait_until_done(client, job_id)
    # As if the process running its application had been killed a minute ago: its transaction (and lock) gone.
    with transaction(engine) as conn:
        conn.execute(text("""UPDATE import_job SET status = 'applying', phase = 'écriture',
                             updated_at = now() - interval '1 minute' WHERE id = :id"""), {"id": job_id})
    assert client.get(f"/equipes/imports/{job_id}/etat").get_json() == {
        "id": job_id, "status": "lost", "running": False, "phase": "écriture dans le catalogue", "percent": None,
        "applying": True}
    page = client.get(f"/equipes/imports/{job_id}")
    assert "interrompu" in page_text(page) and "rien n'a été écrit" in page_text(page)
    client.post(f"/equipes/imports/{job_id}/essai", data={"csrf_token": csrf(page.data)})
    assert wait_until_done(client, job_id)["status"] == "planned"
