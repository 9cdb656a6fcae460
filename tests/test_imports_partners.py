"""A partner's list (CSV or GeoJSON, the template's columns) and the CFA lists: every row placed, or rejected
with its line, its column and why — swapped coordinates with the fix, a point at sea or outside its commune,
an unknown commune, a duplicate, a javascript: link, a row outside the importer's territory."""
import json

import pytest
from sqlalchemy import text

from mapservice.db import transaction
from mapservice.errors import ImportRefused
from mapservice.geocoding import Geocoder
from mapservice.imports import ImportFile, import_file, revert_run
from mapservice.imports.partners import COLUMNS

from .conftest import SHARED_DATA

SIFA = SHARED_DATA / "cfa-apprentissage" / "ListeCFA_sifa_avecsiret_2020.csv"


def row(**values) -> dict:
    return {column: values.get(column, "") for column in COLUMNS}


# Rennes town hall is at about (48.1115, -1.6800); Saint-Malo at (48.6493, -2.0257).
ROWS = [
    row(identifiant="ml-rennes", type="mission_locale", nom="Mission locale du bassin d'emploi de Rennes",
        latitude="48.1057", longitude="-1.6744", code_commune="35238", telephone="02 99 78 01 02",
        site_web="https://www.ml-rennes.fr/"),
    row(identifiant="e2c-35", type="e2c", nom="École de la 2e chance", adresse="2 rue de la Mabilais",
        code_postal="35000", commune="Rennes"),
    row(identifiant="sc-combinee", type="service_civique", nom="Unis-Cité Rennes", latitude="48.1150",
        longitude="-1.6900", formule="combinee", places_libres="3", age_min="16", age_max="25"),
    row(identifiant="swapped", type="epide", nom="Coordonnées inversées", latitude="-1.6744", longitude="48.1057",
        code_commune="35238"),
    row(identifiant="at-sea", type="mission_locale", nom="En mer", latitude="48.4", longitude="-5.8",
        code_commune="29155"),
    row(identifiant="elsewhere", type="mission_locale", nom="Pas à Rennes", latitude="48.6493",
        longitude="-2.0257", code_commune="35238"),
    row(identifiant="nowhere", type="mission_locale", nom="Commune inconnue", code_postal="35999",
        commune="Atlantide"),
    row(identifiant="ml-rennes", type="mission_locale", nom="En double", latitude="48.1057", longitude="-1.6744"),
    row(identifiant="script", type="mission_locale", nom="Lien piégé", latitude="48.1057", longitude="-1.6744",
        site_web="javascript:alert(1)"),
    row(identifiant="sc-sans-formule", type="service_civique", nom="Sans formule", latitude="48.1150",
        longitude="-1.6900"),
    row(identifiant="ml-paris", type="mission_locale", nom="Mission locale de Paris", latitude="48.8566",
        longitude="2.3522"),
]
EXPECTED_REJECTIONS = {
    "swapped": ("latitude", "latitude et longitude inversées (-1.6744, 48.1057) : correction proposée "
                            "latitude=48.1057, longitude=-1.6744"),
    "at-sea": ("latitude", "position en mer ou hors de France"),
    "elsewhere": ("latitude", "hors de sa commune 35238 : elle tombe à Saint-Malo"),
    "nowhere": ("commune", "commune inconnue : « 35999 Atlantide »"),
    "ml-rennes": (None, "clé en double : déjà à la ligne "),
    "script": ("site_web", "reçu « javascript:alert(1) »"),
    "sc-sans-formule": ("formule", "plein_temps ou combinee"),
    "ml-paris": (None, "hors de votre territoire (département 75)"),
}


def as_csv(rows, separator=";") -> str:
    return "\r\n".join([separator.join(COLUMNS)] + [separator.join(r[c] for c in COLUMNS) for r in rows]) + "\r\n"


def as_geojson(rows) -> str:
    features = []
    for r in rows:
        props = {k: v for k, v in r.items() if v and k not in ("latitude", "longitude")}
        geometry = ({"type": "Point", "coordinates": [float(r["longitude"]), float(r["latitude"])]}
                    if r["latitude"] else None)
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return json.dumps({"type": "FeatureCollection", "features": features})


def new_sites(report) -> int:
    return sum(1 for e in report.new if e["table"] == "site")


def run_import(engine, path, kind="partners", apply=True, **kwargs):
    source = ImportFile.open(path)
    try:
        with transaction(engine) as conn:
            report = import_file(conn, kind, source, apply=apply, **kwargs)
            if not apply:
                conn.rollback()
            return report
    finally:
        source.close()


@pytest.mark.parametrize("fmt", ["csv;", "csv,", "geojson"])
def test_each_bad_row_is_rejected_with_its_line_column_and_reason(fmt, fresh_engine, tmp_path):
    if fmt == "geojson":
        path = tmp_path / "partenaires.geojson"
        path.write_text(as_geojson(ROWS), encoding="utf-8")
    else:
        path = tmp_path / "partenaires.csv"
        path.write_text(as_csv(ROWS, fmt[-1]), encoding="utf-8")
    report = run_import(fresh_engine, path, source="Réseau 35", territory=["35"], imported_by="test")
    rejected = {r.key: (r.column, r.reason) for r in report.rejected}
    assert rejected.keys() == EXPECTED_REJECTIONS.keys()
    for key, (column, reason) in EXPECTED_REJECTIONS.items():
        assert rejected[key][0] == column and reason in rejected[key][1], (key, rejected[key])
    # the duplicate's line: the second occurrence (line 9 of the CSV, feature 8 of the GeoJSON)
    assert [r.line for r in report.rejected if r.key == "ml-rennes"] == [9 if fmt != "geojson" else 8]
    with fresh_engine.connect() as conn:
        sites = {r.source_key: r for r in conn.execute(text("""
            SELECT s.source_key, s.kind, s.commune_code, s.position_precision, s.website,
                   ST_Y(s.geom) AS lat, o.type, o.service_civique_formula, o.vacant_places
            FROM site s JOIN solution o ON o.site_id = s.id WHERE s.source = 'partenaire:réseau 35'"""))}
    assert sites.keys() == {"ml-rennes", "e2c-35", "sc-combinee"}
    assert (sites["ml-rennes"].position_precision, round(sites["ml-rennes"].lat, 4)) == ("address", 48.1057)
    assert (sites["e2c-35"].commune_code, sites["e2c-35"].position_precision) == ("35238", "commune")
    assert (sites["sc-combinee"].commune_code, sites["sc-combinee"].service_civique_formula,
            sites["sc-combinee"].vacant_places) == ("35238", "combinee", 3)


def test_the_template_served_by_the_app_imports_as_is(client, engine, tmp_path):
    response = client.get("/imports/modele-partenaires.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    path = tmp_path / "modele-partenaires.csv"
    path.write_bytes(response.data)
    assert response.data.decode("utf-8-sig").splitlines()[0] == ";".join(COLUMNS)
    report = run_import(engine, path, apply=False, source="modele")
    assert (len(report.rejected), new_sites(report)) == (0, 2)


def test_a_partner_file_without_a_name_or_of_an_unknown_kind_is_refused(engine, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(as_csv(ROWS[:1]), encoding="utf-8")
    with pytest.raises(ImportRefused, match="nom du partenaire"):
        run_import(engine, path, apply=False)


@pytest.mark.skipif(not SIFA.exists(), reason="the CFA lists in ../shared/data are absent")
def test_cfa_are_placed_at_their_commune_cedex_included(fresh_engine):
    report = run_import(fresh_engine, SIFA, kind="cfa", imported_by="test")
    counts = report.counts()
    assert counts["rejected"] < 30 and new_sites(report) > 1650
    with fresh_engine.connect() as conn:
        cfa = conn.execute(text("""
            SELECT s.commune_code, s.position_precision, ST_Equals(s.geom, c.town_hall) AS at_town_hall, o.type
            FROM site s JOIN commune c ON c.code = s.commune_code JOIN solution o ON o.site_id = s.id
            WHERE s.source = 'cfa-sifa' AND s.source_key = '0010826T'""")).one()  # AMBERIEU EN BUGEY CEDEX
        emails = conn.scalar(text("SELECT count(email) FROM site WHERE source = 'cfa-sifa'"))
    assert cfa == ("01004", "commune", True, "apprentissage")
    assert emails == 0  # the list's personal e-mail addresses are never imported


@pytest.mark.skipif(not SIFA.exists(), reason="the CFA lists in ../shared/data are absent")
def test_with_a_geocoder_cfa_of_the_extract_get_their_address(fresh_engine, addok_url, tmp_path):
    """The test geocoder knows the annuaire extract's addresses: CFA of Ille-et-Vilaine there get a precise
    position inside their commune; the others stay at their town hall."""
    lines = SIFA.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "sifa-35.csv"
    path.write_text("\n".join([lines[0]] + [l for l in lines[1:] if l.split(";")[1].startswith("035")]),
                    encoding="utf-8")
    report = run_import(fresh_engine, path, kind="cfa", source="sifa", geocoder=Geocoder(addok_url),
                        imported_by="test")
    assert not report.rejected
    with fresh_engine.connect() as conn:
        placed = dict(conn.execute(text("""
            SELECT position_precision, count(*) FROM site s JOIN commune c ON c.code = s.commune_code
            WHERE s.source = 'cfa-sifa' AND ST_Intersects(c.geom, s.geom) GROUP BY 1""")).all())
        total = conn.scalar(text("SELECT count(*) FROM site WHERE source = 'cfa-sifa'"))
    assert placed.get("address", 0) >= 1
    assert sum(placed.values()) == total


def test_an_account_imports_within_its_territory_only(engine):
    from mapservice.accounts.values import ACADEMIE_ADMIN, CURATOR, NATIONAL_ADMIN, PARTNER, Actor
    from mapservice.errors import Forbidden
    from mapservice.imports import ImportTerritory, import_territory

    with engine.connect() as conn:
        assert import_territory(conn, Actor(1, "n@x.fr", NATIONAL_ADMIN), "annuaire") is None
        rennes = Actor(2, "a@x.fr", ACADEMIE_ADMIN, academies=frozenset({"14"}))
        assert import_territory(conn, rennes, "annuaire") == ImportTerritory(frozenset({"22", "29", "35", "56"}))
        curator = Actor(3, "c@x.fr", CURATOR, departements=frozenset({"35"}))
        assert import_territory(conn, curator, "partners") == ImportTerritory(frozenset({"35"}))
        platform_id, perimeter = conn.execute(text("""
            SELECT platform_id, array_agg(commune_code) FROM psad_platform_commune GROUP BY 1 LIMIT 1""")).one()
        platform_team = import_territory(conn, Actor(5, "p@x.fr", CURATOR, platforms=frozenset({platform_id})))
        assert platform_team.departements == frozenset() and set(perimeter) <= platform_team.communes
        # The official files are an administrator's; a partner's lists are imported by its curator.
        for actor, kind in ((curator, "annuaire"), (curator, "cfa"),
                            (Actor(4, "p@x.fr", PARTNER, sites=frozenset({1})), "partners")):
            with pytest.raises(Forbidden):
                import_territory(conn, actor, kind)


def test_a_second_run_reads_again_only_the_rows_that_changed_since(fresh_engine, tmp_path, monkeypatch):
    from mapservice.imports import partners

    path = tmp_path / "partenaires.csv"
    path.write_text(as_csv(ROWS[:3]), encoding="utf-8")
    first = run_import(fresh_engine, path, source="réseau", imported_by="test")
    assert new_sites(first) == 3
    read = []
    monkeypatch.setattr(partners, "parse_row", lambda r, matcher, parse=partners.parse_row: (
        read.append(r.get("identifiant")) or parse(r, matcher)))
    # The E2C moved to another street; the other two lines are as the last import read them.
    moved = [dict(r, adresse="10 rue de Saint-Malo") if r["identifiant"] == "e2c-35" else r for r in ROWS[:3]]
    path.write_text(as_csv(moved), encoding="utf-8")
    second = run_import(fresh_engine, path, source="réseau", imported_by="test")
    assert read == ["e2c-35"]
    assert [(c["key"], [f["field"] for f in c["fields"]]) for c in second.changed] == [("e2c-35", ["address"])]
    assert second.counts()["unchanged"] == 4 + 1  # two sites with their solution, and the E2C's solution
    # Reverting the second import makes its line new to the source again: read at the next run.
    with transaction(fresh_engine) as conn:
        revert_run(conn, second.run_id, "test")
    read.clear()
    third = run_import(fresh_engine, path, source="réseau", apply=False)
    assert read == ["e2c-35"] and len(third.changed) == 1
    # A line the last import read, after another line of the same key, is still a duplicate.
    path.write_text(as_csv([dict(ROWS[0], telephone="02 99 00 00 00"), *ROWS[:3]]), encoding="utf-8")
    fourth = run_import(fresh_engine, path, source="réseau", apply=False)
    assert [(r.line, r.key) for r in fourth.rejected] == [(3, "ml-rennes")]
    assert "clé en double : déjà à la ligne 2" in fourth.rejected[0].reason
