"""Nearest-solutions latency: the SQL alone against the full HTTP request (gunicorn on loopback).

    python bench/nearest.py                    # the demo catalogue (the service's own database)
    python bench/nearest.py --sites 200000     # a synthetic catalogue (bench/synthetic.py)

Random origins in mainland France (fixed seed); k results; optional filters as a query string.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402

import harness  # noqa: E402
from mapservice import params, search  # noqa: E402
from mapservice.db import make_engine  # noqa: E402


def origins(n: int, seed: int = 1) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(round(rng.uniform(-1.5, 7.5), 5), round(rng.uniform(43.5, 50.5), 5)) for _ in range(n)]


def run(database_url: str, k: int, filters: str, n: int) -> dict:
    points = origins(n)
    engine = make_engine(database_url)
    query_args = [MultiDict([("lat", str(lat)), ("lon", str(lon)), ("limit", str(k))]
                            + [tuple(p.split("=", 1)) for p in filters.split("&") if p]) for lon, lat in points]
    parsed = [params.nearest(a, k, 100) for a in query_args]
    with engine.connect() as conn:
        sql = harness.time_each(lambda q=q: search.nearest_solutions(conn, q, q.origin) for q in parsed)
    engine.dispose()
    with harness.gunicorn(database_url, workers=1) as base:
        client = harness.KeepAliveClient(base)
        paths = [f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit={k}" + (f"&{filters}" if filters else "")
                 for lon, lat in points]
        http = harness.time_each(lambda p=p: client.get(p) for p in paths)
        client.close()
    return {"sql": harness.percentiles(sql), "http": harness.percentiles(http)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--filters", default="", help="e.g. type=apprentissage&has_vacancy=true")
    parser.add_argument("-n", type=int, default=500, help="requests per measurement")
    args = parser.parse_args()
    url = harness.catalogue_url(args.sites)
    with make_engine(url).connect() as conn:
        solutions = conn.scalar(text("SELECT count(*) FROM solution WHERE status = 'published'"))
    result = run(url, args.k, args.filters, args.n)
    label = f"{solutions} published solutions, k={args.k}" + (f", {args.filters}" if args.filters else "")
    print(f"nearest — {label}, {args.n} random origins in mainland France")
    harness.print_percentiles({name: result[name] for name in ("sql", "http")})
    print(f"HTTP/SQL ratio: p50 {result['http']['p50'] / result['sql']['p50']:.2f}x, "
          f"p99 {result['http']['p99'] / result['sql']['p99']:.2f}x")


if __name__ == "__main__":
    main()
