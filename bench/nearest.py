"""Nearest solutions against the index's limit and the HTTP floor, as issue 14 measures them.

    python bench/nearest.py                         # the demo catalogue (the service's own database)
    python bench/nearest.py --sites 200000 -k 20    # a synthetic catalogue (bench/synthetic.py)

Origins: real secondary schools (../shared/data, a fixed sample), else random points in mainland France. For
each origin kind (a position; a commune, a département: their town hall) and each filter set, the peers are
timed origin by origin, interleaved, in one run, each origin's first query made by each peer in turn:
- floor: `/healthz` on the same server and keep-alive connection (an HTTP answer that reads no database);
- bare: the same answer from a bare Flask app on the same gunicorn (bench/bare_flask.py): what mapservice's
  own per-request work adds to the floor;
- http: `/api/v1/solutions/nearest`;
- statement: the nearest statement alone (prepared, in this process);
- mercator knn: the plain KNN for the same number of published solutions with the same filters (prepared,
  the filters' choices written in it and planned once, as the statement is) on the Web Mercator indexes the
  statement walks (migration 0017): the index's limit;
- knn: the same on the geography indexes of solution.position, the peer issue 14 set, only where the database
  still has them (migration 0018 dropped them once nothing read them: without them this peer would sort every
  solution);
- with `--least`, two bounds on what any rework of the statement could reach, its two steps reading the least
  they could: the walk reads the solutions alone (as if each carried its site's visibility), and
  - exact ids: the answer is the ids and true distances alone (the exactness, without the answer);
  - least statement: the answer reads each feature as stored text (as if the list's features were kept at
    write time; a temporary table built at the start) instead of joining the site and commune to write it.
  They are costs, not answers: they leave out the origin's commune, and their walk may count solutions of
  unpublished sites.
Goal: http − floor ≤ 1.5 × the KNN at p50. `--against DIR` serves another
checkout (e.g. `git archive` of the previous version) beside this one and times its floor and HTTP in the same
loop: a before/after in one run.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402

import harness  # noqa: E402
from mapservice import feature_sql, params, places, search  # noqa: E402
from mapservice.communes import commune_at  # noqa: E402
from mapservice.catalogue import solution_filter_sql  # noqa: E402
from mapservice.db import fetch_prepared, make_engine  # noqa: E402
from mapservice.values import Area, Point  # noqa: E402

# The limit written in the text, as in the statement: planned once with :limit unknown, PostgreSQL expects a
# tenth of the table and sorts the whole of it at 1M sites.
PLAIN_KNN = """SELECT s.id FROM solution s WHERE {where}
ORDER BY s.position <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography LIMIT {limit}"""
MERCATOR_KNN = f"""SELECT s.id FROM solution s WHERE {{where}}
ORDER BY {search.MERCATOR} <-> {search.ORIGIN_MERCATOR} LIMIT {{limit}}"""

# The list's features as they would be stored at write time (without the distance), for the least statement.
STORED_LIST_FEATURES = f"""
CREATE TEMPORARY TABLE stored_list_feature AS
SELECT s.id, {feature_sql.SOLUTION_LIST_FEATURE["feature"]} AS feature
FROM solution s,
     LATERAL (SELECT {feature_sql.SOLUTION_LIST_FEATURE["columns"]},
                     {feature_sql.SOLUTION_LIST_FEATURE["point"]} AS geometry_
              FROM site JOIN commune c ON c.code = site.commune_code
              WHERE site.id = s.site_id AND site.status = 'published') r,
     LATERAL (SELECT {feature_sql.picked(feature_sql.SOLUTION_LIST_PROPERTIES, "r")}) p
WHERE s.status = 'published';
ALTER TABLE stored_list_feature ADD PRIMARY KEY (id);
ANALYZE stored_list_feature"""
# The statement's two steps, with {answer} the columns of the rows found (r: id, distance_m) and {join} what
# they read for them.
LEAST_STEPS = f"""
WITH knn AS (
    SELECT s.position FROM solution s WHERE {{where}} ORDER BY {search.MERCATOR} <-> {search.ORIGIN_MERCATOR}
    LIMIT {{limit}}
), reach AS (
    SELECT max(ST_Distance(knn.position, {search.ORIGIN})) * 1.01 + 1 AS metres FROM knn
)
SELECT {{answer}}
FROM (
    SELECT s.id, ST_Distance(s.position, {search.ORIGIN}) AS distance_m
    FROM solution s CROSS JOIN reach
    WHERE {{where}} AND {search.MERCATOR} <@ {search.mercator_box("reach.metres")}
      AND _ST_DWithin(s.position, {search.ORIGIN}, reach.metres, false)
    ORDER BY distance_m, s.id LIMIT {{limit}}
) r{{join}}
ORDER BY r.distance_m, r.id"""
EXACT_IDS = {"answer": "r.id, r.distance_m", "join": ""}
# The distance goes last in the properties, before their closing brace and the feature's.
LEAST_ANSWER = {
    "answer": "r.id, r.distance_m, left(f.feature, -2) || ',\"distance_km\":' || "
              f"{search.FEATURE_PARTS['distance_km']} || '}}}}' AS feature",
    "join": " JOIN stored_list_feature f ON f.id = r.id",
}


def random_positions(n: int, seed: int = 1) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(round(rng.uniform(-1.5, 7.5), 5), round(rng.uniform(43.5, 50.5), 5)) for _ in range(n)]


def origin_args(conn, kind: str, positions: list[tuple[float, float]]) -> list[list[tuple[str, str]]]:
    """The query string's origin for each position: itself, or the commune / département holding it."""
    if kind == "point":
        return [[("lat", f"{lat:.5f}"), ("lon", f"{lon:.5f}")] for lon, lat in positions]
    out = []
    for lon, lat in positions:
        commune = commune_at(conn, Point(lon=lon, lat=lat))
        if commune is not None:
            out.append([(kind, commune["code"] if kind == "commune" else commune["departement_code"])])
    return out


def run(url: str, kind: str, filters: str, k: int, positions, base: str, bare_base: str,
        other_base: str | None, geography: bool, least: bool) -> dict:
    engine = make_engine(url)
    client = harness.KeepAliveClient(base)
    bare = harness.KeepAliveClient(bare_base)
    other = harness.KeepAliveClient(other_base) if other_base else None
    samples = {"bare": [], "floor": [], "http": [], "statement": [], "mercator knn": []}
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        if least:
            conn.exec_driver_sql(STORED_LIST_FEATURES)
        filter_args = [tuple(p.split("=", 1)) for p in filters.split("&") if p]
        for i, origin in enumerate(origin_args(conn, kind, positions)):
            query = params.nearest(MultiDict(origin + [("limit", str(k))] + filter_args), k, 100)
            start = (Point(lon=(a := places.area_origin(conn, query.origin))["lon"], lat=a["lat"])
                     if isinstance(query.origin, Area) else query.origin)
            where, binds = solution_filter_sql(query.filters, written_choices=True)
            path = "/api/v1/solutions/nearest?" + "&".join(f"{a}={v}" for a, v in
                                                           origin + [("limit", str(k))] + filter_args)
            peers = {
                "bare": lambda: bare.get("/healthz"),
                "floor": lambda: client.get("/healthz"),
                "http": lambda: client.get(path),
                "statement": lambda: search.nearest_solutions(conn, query, start),
                "mercator knn": lambda: fetch_prepared(conn, MERCATOR_KNN.format(where=where, limit=k),
                                                       {"lon": start.lon, "lat": start.lat, **binds},
                                                       generic_plan=not binds),
            }
            if geography:
                peers["knn"] = lambda: fetch_prepared(conn, PLAIN_KNN.format(where=where, limit=k),
                                                      {"lon": start.lon, "lat": start.lat, **binds},
                                                      generic_plan=not binds)
            if least:
                for name, parts in (("exact ids", EXACT_IDS), ("least statement", LEAST_ANSWER)):
                    peers[name] = functools.partial(
                        fetch_prepared, conn, LEAST_STEPS.format(where=where, limit=k, **parts),
                        {"lon": start.lon, "lat": start.lat, **binds}, generic_plan=not binds, text_as_bytes=True)
            if other is not None:
                peers.update({"other floor": lambda: other.get("/healthz"), "other http": lambda: other.get(path)})
            # Each origin's first query reads its index pages into the buffers: every peer comes first in turn,
            # so that none is always the one that pays for it (the plain KNN came last and always found them).
            order = list(peers.items())
            for name, call in order[i % len(order):] + order[:i % len(order)]:
                samples.setdefault(name, []).extend(harness.time_each([call], warmup=1 if i < 10 else 0))
    client.close()
    bare.close()
    if other is not None:
        other.close()
    engine.dispose()
    return {name: harness.percentiles(s) for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("-n", type=int, default=300, help="origins")
    parser.add_argument("--kinds", default="point,commune,departement")
    parser.add_argument("--against", type=Path, help="another checkout (e.g. the previous version) served beside "
                        "this one and timed in the same loop")
    parser.add_argument("--least", action="store_true", help="also time the exact ids and the least statement (a "
                        "temporary table of the list's features is built for each origin kind and filter set)")
    parser.add_argument("--filters", action="append",
                        help="a query string of filters; repeatable (default: none, and two types with places)")
    args = parser.parse_args()
    filter_sets = args.filters or ["", "type=apprentissage,service_civique&has_vacancy=true"]
    url = harness.catalogue_url(args.sites)
    with make_engine(url).connect() as conn:
        solutions = conn.scalar(text("SELECT count(*) FROM solution WHERE status = 'published'"))
        geography = conn.scalar(text("SELECT to_regclass('idx_solution_position') IS NOT NULL"))
    knns = ("mercator knn", "knn") if geography else ("mercator knn",)
    positions = harness.school_positions(args.n)
    where = "real secondary schools" if positions else "random points (../shared/data absent)"
    positions = positions or random_positions(args.n)
    print(f"nearest — {solutions} published solutions, k={args.k}, {args.n} origins at {where}, "
          f"load average {harness.load_average()}")
    against = " | other floor | other http | other (http − floor) / Mercator KNN" if args.against else ""
    names = {"mercator knn": "Mercator KNN", "knn": "geography KNN"}
    statements = ("statement", "exact ids", "least statement") if args.least else ("statement",)
    print("| origin | filters | bare Flask | floor | http | " + " | ".join(statements) + " | "
          + " | ".join(names[p] for p in knns) + " | " + " | ".join(f"(http − floor) / {names[p]}" for p in knns)
          + "".join(f" | {s} / {names[p]}" for p in knns for s in statements[1:]) + f"{against} |")
    print("| --- | --- |" + " ---: |" * (3 + len(statements) + len(knns) * (1 + len(statements))
                                         + 3 * bool(args.against)))
    with contextlib.ExitStack() as servers:
        base = servers.enter_context(harness.gunicorn(url, workers=2))
        bare = servers.enter_context(harness.gunicorn(url, workers=1, app="bench.bare_flask:app"))
        other = servers.enter_context(harness.gunicorn(url, workers=2, checkout=args.against)) if args.against else None
        for kind in args.kinds.split(","):
            for filters in filter_sets:
                r = run(url, kind, filters, args.k, positions, base, bare, other, geography, args.least)
                cells = [f"{r[p]['p50']:.2f} / {r[p]['p95']:.2f}"
                         for p in ("bare", "floor", "http", *statements, *knns)]
                cells += [f"{(r['http']['p50'] - r['floor']['p50']) / r[p]['p50']:.2f}×" for p in knns]
                cells += [f"{r[s]['p50'] / r[p]['p50']:.2f}×" for p in knns for s in statements[1:]]
                if other:
                    cells += [f"{r[p]['p50']:.2f} / {r[p]['p95']:.2f}" for p in ("other floor", "other http")]
                    other_over = r['other http']['p50'] - r['other floor']['p50']
                    cells.append(f"{other_over / r['mercator knn']['p50']:.2f}×")
                print(f"| {kind} | {filters or 'none'} | " + " | ".join(cells) + " |", flush=True)
    print(f"p50 / p95 in ms; load average at the end {harness.load_average()}")


if __name__ == "__main__":
    main()
