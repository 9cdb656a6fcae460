"""Load test: N clients for S seconds on a realistic mix (search box, nearest, tiles, details, the page,
and /healthz as the floor: an HTTP answer that reads no database), against the production setup (gunicorn,
shipped configuration: 2 workers x 4 threads), once undisturbed and once with the database restarted in the
middle (stopped for a few seconds, back on another port).

The database is a throwaway private cluster filled from a backup of the demo catalogue (mapservice db
backup/restore), so that restarting it disturbs nothing else. The clients run in this process (threads,
keep-alive connections) on the same 2 cores as the server.

    python bench/load.py [--clients 50] [--seconds 60] [--outage 5] [--source URL]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import percentiles  # noqa: E402
from mapservice import backups  # noqa: E402
from mapservice.cluster import EmbeddedCluster  # noqa: E402
from mapservice.db import resolve_database_url  # noqa: E402
from mapservice.settings import Settings  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

PLACES = ["lyon", "villeurb", "marseille", "rennes", "saint etienne", "toulouse", "lille", "nantes", "brest",
          "69001", "35000", "bordeaux", "grenoble", "nice", "dijon", "amiens", "caen", "metz", "pau", "tours"]
COMMUNES = ["69123", "75056", "13055", "35238", "31555", "59350", "44109", "33063", "38185", "06088"]
CITIES = [(45.76, 4.83), (48.86, 2.35), (43.30, 5.37), (48.11, -1.68), (43.60, 1.44), (50.63, 3.06),
          (47.22, -1.55), (44.84, -0.58), (45.19, 5.72), (43.70, 7.27)]


def tile_at(lat: float, lon: float, z: int) -> tuple[int, int]:
    import math

    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def request_mix(rng: random.Random, solution_ids: list[int]) -> tuple[str, str]:
    """(kind, path) of one request, in the proportions of a map page's traffic."""
    roll = rng.random()
    lat, lon = rng.choice(CITIES)
    lat, lon = lat + rng.uniform(-0.3, 0.3), lon + rng.uniform(-0.3, 0.3)
    if roll < 0.20:
        return "places", f"/api/v1/places?q={rng.choice(PLACES)}&limit=8"
    if roll < 0.35:
        return "nearest", f"/api/v1/solutions/nearest?lat={lat:.4f}&lon={lon:.4f}&limit=20"
    if roll < 0.45:
        return "nearest", f"/api/v1/solutions/nearest?commune={rng.choice(COMMUNES)}&limit=20"
    if roll < 0.75:
        z = rng.randint(5, 13)
        x, y = tile_at(lat, lon, z)
        tileset = "basemap" if rng.random() < 0.5 and z <= 12 else "solutions"
        return "tiles", f"/tiles/{tileset}/{z}/{x}/{y}.mvt"
    if roll < 0.90:
        return "detail", f"/api/v1/solutions/{rng.choice(solution_ids)}"
    if roll < 0.95:
        return "page", "/"
    return "floor", "/healthz"


class Run:
    def __init__(self, base: str, clients: int, seconds: float, solution_ids: list[int]):
        self.base, self.clients, self.seconds, self.ids = base, clients, seconds, solution_ids
        self.samples: list[tuple[float, str, int, float]] = []  # (t, kind, status, ms)
        self.lock = threading.Lock()

    def client(self, seed: int, start: float) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        while time.monotonic() - start < self.seconds:
            kind, path = request_mix(rng, self.ids)
            t0 = time.perf_counter()
            try:
                status = session.get(self.base + path, timeout=30, headers={"Accept-Encoding": "gzip"}).status_code
            except requests.RequestException:
                status = -1  # connection error or timeout
            elapsed = (time.perf_counter() - t0) * 1000
            with self.lock:
                self.samples.append((time.monotonic() - start, kind, status, elapsed))

    def go(self, during=None) -> dict:
        start = time.monotonic()
        threads = [threading.Thread(target=self.client, args=(i, start), daemon=True) for i in range(self.clients)]
        for t in threads:
            t.start()
        if during:
            during(start)
        for t in threads:
            t.join()
        return self.report()

    def report(self) -> dict:
        by_kind = collections.defaultdict(list)
        for _, kind, status, ms in self.samples:
            if status in (200, 204, 304):
                by_kind[kind].append(ms)
        ok = [ms for _, _, s, ms in self.samples if s in (200, 204, 304)]
        statuses = collections.Counter(s for _, _, s, _ in self.samples)
        return {
            "requests": len(self.samples), "requests_per_s": round(len(self.samples) / self.seconds, 1),
            "statuses": dict(sorted(statuses.items())),
            "all": {k: round(v, 1) for k, v in percentiles(ok).items()} if len(ok) > 2 else None,
            "kinds": {k: {"n": len(v), **{p: round(x, 1) for p, x in percentiles(v).items() if p in ("p50", "p99")}}
                      for k, v in sorted(by_kind.items()) if len(v) > 2},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--outage", type=float, default=5, help="seconds the database stays stopped")
    parser.add_argument("--source", help="database to copy (default: the test template, else the dev database)")
    args = parser.parse_args()

    source = args.source or default_source()
    work = Path(tempfile.mkdtemp(prefix="mapservice-load-"))
    dump = work / "catalogue.dump"
    t = time.monotonic()
    backups.backup(source, dump)
    cluster = EmbeddedCluster(work / "data", log=lambda _: None)
    cluster.start()
    try:
        backups.restore(cluster.url(), dump)
        print(f"throwaway cluster filled from {dump.stat().st_size / 1e6:.0f} MB backup in {time.monotonic() - t:.0f} s")
        engine = create_engine(cluster.url().replace("postgresql://", "postgresql+psycopg2://"))
        with engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM published_solution ORDER BY id"))]
        engine.dispose()
        env = {"MAPSERVICE_DATA_DIR": str(work / "data"), "DATABASE_URL": "", "MAPSERVICE_LOG_FORMAT": "json"}
        results = {"clients": args.clients, "seconds": args.seconds, "load_before": os.getloadavg()}
        with gunicorn(env, workers=2, threads=4, log_file=work / "gunicorn.log") as base:
            for _ in range(3):  # warm the workers' caches and connections
                Run(base, 8, 3, ids).go()
            # One client alone: the cost of each kind of request without queueing, for comparison.
            results["one_client"] = Run(base, 1, 15, ids).go()
            print(json.dumps(results["one_client"]))
            results["steady"] = Run(base, args.clients, args.seconds, ids).go()
            print(json.dumps(results["steady"], indent=1))

            def restart(start: float) -> None:
                time.sleep(args.seconds / 2)
                old_port = cluster.status().port
                t0 = time.monotonic() - start
                cluster.stop()
                time.sleep(args.outage)
                with socket.socket() as squatter:  # the cluster comes back on another port
                    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    squatter.bind(("127.0.0.1", old_port))
                    squatter.listen()
                    cluster.start()
                results["restart"] = {"stopped_at_s": round(t0, 1), "back_at_s": round(time.monotonic() - start, 1),
                                      "old_port": old_port, "new_port": cluster.status().port}

            run = Run(base, args.clients, args.seconds, ids)
            results["with_restart"] = run.go(during=restart)
            back = results["restart"]["back_at_s"]
            after = [s for s in run.samples if s[0] >= back]
            bad_after = [s for s in after if s[2] not in (200, 204, 304)]
            results["with_restart"]["last_error_after_restart_s"] = (
                round(max(s[0] for s in bad_after) - back, 2) if bad_after else None)
            print(json.dumps(results["with_restart"], indent=1), json.dumps(results["restart"]))
        log = (work / "gunicorn.log").read_text()
        results["log"] = {"lines": log.count("\n"), "tracebacks": log.count("Traceback"),
                          "database_unavailable_lines": log.count('"error": "database_unavailable"')}
        print(json.dumps(results["log"]))
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / f"load-{time.strftime('%Y%m%d-%H%M')}.json").write_text(json.dumps(results, indent=1))
    finally:
        cluster.stop()


def default_source() -> str:
    from sqlalchemy.engine import make_url

    dev = resolve_database_url(Settings(), start=True)
    engine = create_engine(dev.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        template = conn.scalar(text("SELECT datname FROM pg_database WHERE datname LIKE 'mapservice_test_tpl_%' "
                                    "AND datistemplate ORDER BY datname LIMIT 1"))
    engine.dispose()
    return make_url(dev).set(database=template).render_as_string(hide_password=False) if template else dev


if __name__ == "__main__":
    main()
