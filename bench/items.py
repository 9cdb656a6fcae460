"""OGC API Features items in a bbox: mapservice (SQL alone, and HTTP through gunicorn) against tipg serving the
same view (published_solution) of the same database, in the same run.

    python bench/items.py --sites 200000 -n 300
    python bench/items.py --sites 200000 -n 300 --against /tmp/previous   # e.g. a `git archive` of the last version

Boxes are centred on real secondary schools (../shared/data), else on random points of mainland France. The
servers are timed box by box, in turn.

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
import time
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


def boxes(n: int, size: float, seed: int = 2) -> tuple[list[tuple[float, float, float, float]], str]:
    """`n` boxes of `size` degrees centred on real secondary schools (where people look: towns, in proportion to
    their schools), else on uniform random points of mainland France; and which of the two."""
    schools = harness.school_positions(n, seed)
    if schools:
        centres, where = schools, "real secondary schools"
    else:
        rng = random.Random(seed)
        centres, where = [(rng.uniform(-1.5, 7.5), rng.uniform(43.5, 50.5)) for _ in range(n)], "random points"
    half = size / 2
    return [(round(lon - half, 4), round(lat - half, 4), round(lon + half, 4), round(lat + half, 4))
            for lon, lat in centres], where


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


def run(database_url: str, limit: int, n: int, size: float, against: Path | None) -> dict:
    bboxes, where = boxes(n, size)
    engine = make_engine(database_url)
    parsed = [params.items(MultiDict({"bbox": ",".join(map(str, b)), "limit": str(limit)}), limit, 1000,
                           SOLUTION_PROPERTY_NAMES) for b in bboxes]
    with engine.connect() as conn:
        sql = harness.time_each(lambda q=q: ogc.items(conn, q) for q in parsed)
        returned = sum(len(ogc.items(conn, q)[0]) for q in parsed[:50]) / 50
    engine.dispose()
    paths = [f"/collections/{{}}/items?bbox={','.join(map(str, b))}&limit={limit}" for b in bboxes]
    with contextlib.ExitStack() as servers:
        peers = {"http": (servers.enter_context(harness.gunicorn(database_url, workers=1)), "/api/v1/ogc", "solutions")}
        if against:
            peers["other http"] = (servers.enter_context(harness.gunicorn(database_url, workers=1, checkout=against)),
                                   "/api/v1/ogc", "solutions")
        peers["tipg"] = (servers.enter_context(tipg(database_url)), "", "public.published_solution")
        clients = {name: harness.KeepAliveClient(base) for name, (base, _, _) in peers.items()}
        status, body = clients["tipg"].get(paths[0].format("public.published_solution"))
        if status != 200:
            raise RuntimeError(f"tipg answered {status}: {body[:300]!r}")
        check = json.loads(clients["tipg"].get(paths[0].format("public.published_solution"))[1])
        # Box by box, each server in turn: every peer meets the same load.
        samples = {name: [] for name in peers}
        for i, path in enumerate(paths):
            for name, (_, prefix, collection) in peers.items():
                started = time.perf_counter()
                clients[name].get(prefix + path.format(collection))
                if i >= 20:
                    samples[name].append((time.perf_counter() - started) * 1000)
        for client in clients.values():
            client.close()
    return {"where": where, "sql": harness.percentiles(sql), "mean_features": returned,
            "tipg_first_page": len(check.get("features", [])),
            **{name: harness.percentiles(s) for name, s in samples.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--size", type=float, default=0.2, help="bbox side in degrees")
    parser.add_argument("-n", type=int, default=300, help="requests per measurement")
    parser.add_argument("--against", type=Path, help="another checkout (e.g. the previous version) served beside "
                                                       "this one, box by box")
    args = parser.parse_args()
    url = harness.catalogue_url(args.sites)
    with make_engine(url).connect() as conn:
        solutions = conn.scalar(text("SELECT count(*) FROM published_solution"))
    r = run(url, args.limit, args.n, args.size, args.against)
    print(f"items — {solutions} published solutions, bbox {args.size}°, limit {args.limit}, {args.n} boxes centred "
          f"on {r['where']} (mean {r['mean_features']:.0f} features per page); load average {harness.load_average()}")
    harness.print_percentiles({name: r[name] for name in ("sql", "http", "other http", "tipg") if name in r})
    print(f"mapservice HTTP / tipg: p50 {r['http']['p50'] / r['tipg']['p50']:.2f}x, "
          f"p99 {r['http']['p99'] / r['tipg']['p99']:.2f}x; HTTP/SQL p50 {r['http']['p50'] / r['sql']['p50']:.2f}x")


if __name__ == "__main__":
    main()
