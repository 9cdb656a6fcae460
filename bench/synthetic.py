"""A synthetic catalogue for benchmarks, with realistic density: sites are drawn in proportion to commune
population (so cities hold most of them), scattered around the town hall within the commune's radius; four PSAD
platforms per département share its communes.

    python bench/synthetic.py --sites 200000            # prints the database URL
    python bench/synthetic.py --sites 1000000 --seed 7

Each size lives in its own database `mapservice_bench_<sites>` on the project's server (DATABASE_URL, or the
private cluster), built once: schema, reference geography, then the synthetic rows (source 'synthetic',
flagged as examples). Re-running with the same size and seed reuses it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mapservice.db import (insert_on_fresh_statistics, make_engine, resolve_database_url,  # noqa: E402
                           transaction, upgrade)
from mapservice.reference import load_reference  # noqa: E402
from mapservice.settings import Settings  # noqa: E402

GENERATOR_VERSION = "5"  # bump when the rows generated change

# (site kind, solution type, share of sites)
MIX = [
    ("lycee", "places_lycee", 0.30),
    ("cfa", "apprentissage", 0.15),
    ("service_civique", "service_civique", 0.15),
    ("mission_locale", "mission_locale", 0.08),
    ("cio", "accueil_orientation", 0.08),
    ("greta", "greta", 0.08),
    ("micro_lycee", "structure_innovante", 0.05),
    ("e2c", "e2c", 0.04),
    ("mlds", "accueil_orientation", 0.04),
    ("epide", "epide", 0.03),
]

GENERATE = """
SELECT setseed(:seed);

CREATE TEMP TABLE weight AS
SELECT c.code, c.town_hall,
       -- the radius of a disc of the commune's area, in metres
       sqrt(ST_Area(c.geom::geography) / pi()) AS radius,
       sum(c.population) OVER (ORDER BY c.code)::bigint AS cum_to
FROM commune c
WHERE c.population > 0 AND c.geom IS NOT NULL
  -- leaves only: arrondissements rather than Paris, Lyon and Marseille as a whole
  AND NOT EXISTS (SELECT 1 FROM commune a WHERE a.parent_code = c.code);
CREATE INDEX ON weight (cum_to);
ANALYZE weight;

CREATE TEMP TABLE mix (kind text, type text, share_from float, share_to float);
INSERT INTO mix SELECT * FROM json_to_recordset(:mix) AS m(kind text, type text, share_from float, share_to float);

CREATE TEMP TABLE draw AS
SELECT n, (random() * (SELECT max(cum_to) FROM weight))::bigint AS person, random() AS pick,
       random() AS r1, random() AS r2, random() AS r3
FROM generate_series(1, :sites) AS n;
"""

# The catalogue's rows: (an INSERT of the rows where the SQL condition {part} holds, their key), inserted through
# db.insert_on_fresh_statistics so that the catalogue's triggers plan on fresh statistics (without, a 200k
# catalogue took hours in the triggers' per-site lookups).
SITES = ("""
INSERT INTO site (name, kind, address, postcode, commune_code, geom, position_precision, status, source,
                  source_key, is_example, last_checked_at)
SELECT initcap(replace(m.kind, '_', ' ')) || ' synthétique ' || d.n, m.kind, 'Adresse synthétique',
       NULL, w.code,
       ST_Project(w.town_hall::geography, w.radius * sqrt(d.r1) * 0.8, d.r2 * 2 * pi())::geometry,
       'address', CASE WHEN d.r3 < 0.97 THEN 'published' WHEN d.r3 < 0.99 THEN 'draft' ELSE 'archived' END,
       'synthetic', d.n::text, true, now() - make_interval(days => (d.r3 * 500)::int)
FROM draw d
CROSS JOIN LATERAL (SELECT code, town_hall, radius FROM weight WHERE cum_to >= d.person ORDER BY cum_to LIMIT 1) w
JOIN mix m ON d.pick >= m.share_from AND d.pick < m.share_to
WHERE {part};
""", "d.n::text")

SOLUTIONS = ("""
INSERT INTO solution (site_id, type, title, voie, capacity, vacant_places, service_civique_formula,
                      min_age, max_age, status, source, source_key, is_example, last_checked_at)
SELECT s.id, m.type, initcap(replace(m.type, '_', ' ')) || ' ' || g.k,
       CASE WHEN m.type = 'places_lycee' THEN (ARRAY['generale', 'technologique', 'professionnelle'])[1 + (g.k % 3)]
            WHEN m.type = 'apprentissage' THEN 'professionnelle' END,
       c.capacity, CASE WHEN random() < 0.6 THEN floor(random() * (c.capacity + 1))::int END,
       CASE WHEN m.type = 'service_civique' THEN (ARRAY['plein_temps', 'combinee'])[1 + (g.k % 2)] END,
       16, 25, s.status, 'synthetic', s.source_key || ':' || g.k, true, s.last_checked_at
FROM site s
JOIN mix m ON m.kind = s.kind
CROSS JOIN LATERAL generate_series(1, 1 + (s.id % 3)::int) AS g(k)
CROSS JOIN LATERAL (SELECT 5 + (s.id % 40)::int AS capacity) c
WHERE s.source = 'synthetic' AND {part};
""", "s.source_key")

PLATFORMS = """
-- PSAD platforms: four per département (~400, about as many as the real ones), each covering a quarter of its
-- communes (arrondissements follow their city).
INSERT INTO psad_platform (name, departement_code, status, source, source_key, is_example)
SELECT 'Plateforme synthétique ' || d.code || '-' || k, d.code, 'published', 'synthetic', d.code || ':' || k, true
FROM departement d CROSS JOIN generate_series(0, 3) AS k;

INSERT INTO psad_platform_commune (platform_id, commune_code)
SELECT p.id, c.code FROM commune c
JOIN psad_platform p ON p.source = 'synthetic' AND p.source_key = c.departement_code || ':' || abs(hashtext(c.code)) % 4
WHERE c.parent_code IS NULL;

ANALYZE site;
ANALYZE solution;
ANALYZE psad_platform;
ANALYZE psad_platform_commune;
"""


def server_url() -> str:
    """The project's server: DATABASE_URL, or the private cluster of this checkout (started if needed)."""
    return resolve_database_url(Settings.from_env(database={"data_dir": ROOT / ".data"}), start=True)


def database_url(sites: int, seed: float = 0.42, log=print) -> str:
    """The URL of a database holding `sites` synthetic sites, building it the first time."""
    server = make_url(server_url())
    name = f"mapservice_bench_{sites}"
    url = server.set(database=name).render_as_string(hide_password=False)
    admin = make_engine(server.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists:
            engine = make_engine(url)
            with engine.connect() as db:
                built = db.scalar(text("SELECT version FROM dataset_version WHERE name = 'synthetic'"))
            engine.dispose()
            if built == f"{sites} sites, seed {seed}, generator {GENERATOR_VERSION}":
                admin.dispose()
                upgrade(make_engine(url))  # a catalogue built by older code gets the current schema
                return url
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()

    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine) as conn:
        load_reference(conn, log=lambda _: None)
    started = time.monotonic()
    shares, total = [], 0.0
    for kind, solution_type, share in MIX:
        shares.append({"kind": kind, "type": solution_type, "share_from": total, "share_to": total + share})
        total += share
    shares[-1]["share_to"] = 1.0

    binds = {"seed": seed, "sites": sites, "mix": json.dumps(shares)}

    def run(script: str) -> None:
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(text(statement), binds)

    with engine.begin() as conn:
        run(GENERATE)
        for table, (sql, key), rows in (("site", SITES, sites), ("solution", SOLUTIONS, 2 * sites)):
            insert_on_fresh_statistics(conn, table, rows, lambda part: conn.execute(text(sql.format(part=part)),
                                                                                     binds), key)
        run(PLATFORMS)
        conn.execute(text("""INSERT INTO dataset_version (name, version) VALUES ('synthetic', :v)
                             ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version"""),
                     {"v": f"{sites} sites, seed {seed}, generator {GENERATOR_VERSION}"})
    with engine.begin() as conn:
        # The tile pyramid's deltas of these two huge statements added up now, not by the first tile request
        # (at 1M sites it took longer than a client waits).
        conn.execute(text("SELECT catalogue_fold()"))
    with engine.connect() as conn:
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM site), (SELECT count(*) FROM solution)")).one()
    log(f"{name}: {counts[0]} sites, {counts[1]} solutions generated in {time.monotonic() - started:.1f} s")
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=200_000)
    parser.add_argument("--seed", type=float, default=0.42, help="between -1 and 1 (PostgreSQL setseed)")
    args = parser.parse_args()
    print(database_url(args.sites, args.seed))


if __name__ == "__main__":
    main()
