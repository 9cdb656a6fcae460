"""OGC API Features items in a bbox: mapservice (SQL alone, and HTTP through gunicorn) against tipg serving the
same view (published_solution) of the same database, in the same run.

    python bench/items.py --sites 200000 -n 300

tipg runs from its own virtualenv, bench/.venv-tipg (created on first use: python3 -m venv bench/.venv-tipg &&
bench/.venv-tipg/bin/pip install tipg uvicorn), never from the project's.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402

import harness  # noqa: E402
from mapservice import ogc, params  # noqa: E402
from mapservice.db import make_engine  # noqa: E402
from mapservice.web.features import SOLUTION_PROPERTY_NAMES  # noqa: E402

TIPG_VENV = Path(__file__).resolve().parent / ".venv-tipg"


def boxes(n: int, size: float, seed: int = 2) -> list[tuple[float, float, float, float]]:
    """Random boxes of `size` degrees in mainland France, centred on the town halls of random communes weighted by
    population would be nicer; uniform centres keep the script self-contained."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lon, lat = rng.uniform(-1.5, 7.5), rng.uniform(43.5, 50.5)
        out.append((round(lon, 4), round(lat, 4), round(lon + size, 4), round(lat + size, 4)))
    return out


@contextlib.contextmanager
def tipg(database_url: str) -> Iterator[str]:
    if not (TIPG_VENV / "bin" / "uvicorn").exists():
        raise SystemExit(f"tipg is not installed: python3 -m venv {TIPG_VENV} && "
                         f"{TIPG_VENV}/bin/pip install tipg uvicorn")
    port = harness.free_port()
    env = dict(os.environ, DATABASE_URL=database_url, TIPG_DB_SCHEMAS='["public"]',
               TIPG_DB_TABLES='["public.published_solution"]', TIPG_MAX_FEATURES_PER_QUERY="10000")
    server = subprocess.Popen([str(TIPG_VENV / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1", "--log-level", "warning"], env=env)
    try:
        harness.wait_until_up("127.0.0.1", port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(database_url: str, limit: int, n: int, size: float) -> dict:
    bboxes = boxes(n, size)
    engine = make_engine(database_url)
    parsed = [params.items(MultiDict({"bbox": ",".join(map(str, b)), "limit": str(limit)}), limit, 1000,
                           SOLUTION_PROPERTY_NAMES) for b in bboxes]
    with engine.connect() as conn:
        sql = harness.time_each(lambda q=q: ogc.items(conn, q) for q in parsed)
        returned = sum(len(ogc.items(conn, q)[0]) for q in parsed[:50]) / 50
    engine.dispose()
    paths = [f"/collections/{{}}/items?bbox={','.join(map(str, b))}&limit={limit}" for b in bboxes]
    with harness.gunicorn(database_url, workers=1) as base:
        client = harness.KeepAliveClient(base)
        mine = harness.time_each(lambda p=p: client.get("/api/v1/ogc" + p.format("solutions")) for p in paths)
        client.close()
    with tipg(database_url) as base:
        client = harness.KeepAliveClient(base)
        status, body = client.get(paths[0].format("public.published_solution"))
        if status != 200:
            raise RuntimeError(f"tipg answered {status}: {body[:300]!r}")
        theirs = harness.time_each(lambda p=p: client.get(p.format("public.published_solution")) for p in paths)
        check = json.loads(client.get(paths[0].format("public.published_solution"))[1])
        client.close()
    return {"sql": harness.percentiles(sql), "http": harness.percentiles(mine), "tipg": harness.percentiles(theirs),
            "mean_features": returned, "tipg_first_page": len(check.get("features", []))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--size", type=float, default=0.2, help="bbox side in degrees")
    parser.add_argument("-n", type=int, default=300, help="requests per measurement")
    args = parser.parse_args()
    url = harness.catalogue_url(args.sites)
    with make_engine(url).connect() as conn:
        solutions = conn.scalar(text("SELECT count(*) FROM published_solution"))
    r = run(url, args.limit, args.n, args.size)
    print(f"items — {solutions} published solutions, bbox {args.size}°, limit {args.limit}, {args.n} random boxes "
          f"(mean {r['mean_features']:.0f} features per page)")
    harness.print_percentiles({name: r[name] for name in ("sql", "http", "tipg")})
    print(f"mapservice HTTP / tipg: p50 {r['http']['p50'] / r['tipg']['p50']:.2f}x, "
          f"p99 {r['http']['p99'] / r['tipg']['p99']:.2f}x; HTTP/SQL p50 {r['http']['p50'] / r['sql']['p50']:.2f}x")


if __name__ == "__main__":
    main()
