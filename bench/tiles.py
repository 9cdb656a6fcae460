"""Vector tiles: the SQL alone, mapservice over HTTP (tile cache cold, then warm), tile sizes, warm throughput
under a bounded local load (wrk), and tipg serving the same sites and tiles, all in the same run.

    python bench/tiles.py --sites 200000              # synthetic catalogue (bench/synthetic.py)
    python bench/tiles.py --sites 200000 --no-tipg    # without tipg
    python bench/tiles.py                             # the demo catalogue

Tiles: for each zoom, the tiles holding a fixed sample of published sites (up to --per-zoom distinct tiles).
"Cold" is the first request of a tile to a freshly started server (its tile cache empty; PostgreSQL's own
buffers warm), repeated over --rounds server restarts. tipg (PyPI, its own virtualenv bench/.venv-tipg:
`python3 -m venv bench/.venv-tipg && bench/.venv-tipg/bin/pip install tipg uvicorn`) serves a view of the
published sites (id, name, kind, geom) as /collections/public.bench_published_site/tiles/WebMercatorQuad/...
Throughput: wrk (Debian package `wrk`) on 127.0.0.1, 2 threads, 8 connections, 10 s per server, cycling
through every sampled tile with Accept-Encoding: gzip, after a 3 s warm-up; both servers get 2 workers.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text  # noqa: E402

import harness  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402

from mapservice import params, tiles  # noqa: E402
from mapservice.db import make_engine  # noqa: E402
from mapservice.values import SolutionFilters  # noqa: E402
from mapservice.settings import Settings  # noqa: E402

ZOOMS = [0, 2, 4, 5, 6, 8, 10, 11, 12, 13, 14, 16]
TIPG = harness.ROOT / "bench" / ".venv-tipg" / "bin"
TIPG_VIEW = "bench_published_site"


def sample_tiles(engine, per_zoom: int) -> dict[int, list[tuple[int, int, int]]]:
    with engine.connect() as conn:
        points = conn.execute(text("""
            SELECT ST_X(geom_3857), ST_Y(geom_3857) FROM site WHERE status = 'published'
            ORDER BY md5(id::text) LIMIT 3000""")).all()
    sampled = {}
    for z in ZOOMS:
        found = []
        for x, y in points:
            for t in sorted(tiles.tiles_around(x, y, range(z, z + 1), 0)):
                if t not in found:
                    found.append(t)
            if len(found) >= per_zoom:
                break
        sampled[z] = found[:per_zoom]
    return sampled


def raw_sql(engine, sampled, settings: Settings, filters: SolutionFilters, repeat: int = 3,
            from_rows: bool = False) -> dict:
    """The tile's SQL alone, on one open connection: ms per tile and the tile's size. `from_rows`: the peer,
    the same clustered tile computed from the rows of its sites (what every filter but one type did before
    migration 0011), at the zooms with clusters."""
    result = {}
    cluster_max_zoom = settings.tiles.cluster_max_zoom
    with engine.connect() as conn:
        for z, coords in sampled.items():
            sql, binds = tiles.solutions_tile_sql(filters, z, cluster_max_zoom)
            if from_rows:
                if z > tiles.clusters_max_zoom(cluster_max_zoom):
                    continue
                sql, binds = tiles.clustered_tile_from_rows_sql(filters, binds["dense"])
            statement = text(sql)
            samples, sizes, gzipped = [], [], []
            for _ in range(repeat):
                for _, x, y in coords:
                    started = time.perf_counter()
                    row = conn.execute(statement, {"z": z, "x": x, "y": y, "today": dt.date.today(),
                                                   "max_features": settings.tiles.max_features, **binds}).one()
                    samples.append((time.perf_counter() - started) * 1000)
                    mvt = bytes(row.mvt)
                    sizes.append(len(mvt))
                    gzipped.append(len(gzip.compress(mvt)))
            result[z] = {"ms": harness.percentiles(samples), "max_kb": max(sizes) / 1024,
                         "mean_kb": sum(sizes) / len(sizes) / 1024, "max_gz_kb": max(gzipped) / 1024}
    return result


def http_latency(url: str, sampled, rounds: int, query: str) -> dict:
    """Per zoom: cold (first request of each tile to a fresh server) and warm (cache hits) latencies; and the
    floor: a request that reads no database (the tiles index)."""
    cold = {z: [] for z in sampled}
    warm = {z: [] for z in sampled}
    floor = []
    for _ in range(rounds):
        with harness.gunicorn(url, workers=1) as base:
            client = harness.KeepAliveClient(base)
            client.get("/tiles/basemap/0/0/0.mvt")  # opens the database connections (pool and cache)
            floor += harness.time_each([lambda: client.get("/tiles/")] * 50, warmup=10)
            for z, coords in sampled.items():
                for _, x, y in coords:
                    path = f"/tiles/solutions/{z}/{x}/{y}.mvt{query}"
                    cold[z] += harness.time_each([lambda p=path: client.get(p, {"Accept-Encoding": "gzip"})],
                                                 warmup=0)
                    warm[z] += harness.time_each([lambda p=path: client.get(p, {"Accept-Encoding": "gzip"})] * 3,
                                                 warmup=0)
            client.close()
    result = {z: {"cold": harness.percentiles(cold[z]), "warm": harness.percentiles(warm[z])} for z in sampled}
    return result, harness.percentiles(floor)


@contextlib.contextmanager
def tipg_server(url: str, workers: int = 2):
    port = harness.free_port()
    env = dict(os.environ, DATABASE_URL=url, TIPG_DB_SCHEMAS='["public"]',
               TIPG_DB_TABLES=f'["public.{TIPG_VIEW}"]')
    server = subprocess.Popen([str(TIPG / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", str(workers), "--log-level", "warning"], env=env)
    try:
        harness.wait_until_up("127.0.0.1", port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        client = harness.KeepAliveClient(base)
        for _ in range(100):  # tipg reads its catalogue of tables after it listens
            status, _ = client.get(f"/collections/public.{TIPG_VIEW}")
            if status == 200:
                break
            time.sleep(0.2)
        client.close()
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def tipg_path(z, x, y) -> str:
    return f"/collections/public.{TIPG_VIEW}/tiles/WebMercatorQuad/{z}/{x}/{y}?properties=id,name,kind"


def tipg_latency(base: str, sampled) -> dict:
    client = harness.KeepAliveClient(base)
    result = {}
    for z, coords in sampled.items():
        samples, sizes = [], []
        for _ in range(3):
            for _, x, y in coords:
                started = time.perf_counter()
                status, body = client.get(tipg_path(z, x, y))
                samples.append((time.perf_counter() - started) * 1000)
                sizes.append(len(body))
        result[z] = {"ms": harness.percentiles(samples), "max_kb": max(sizes) / 1024}
    client.close()
    return result


def wrk(base: str, paths: list[str], seconds: int = 10, warmup: int = 10) -> dict:
    """Requests per second over `seconds`, cycling through `paths`, after a `warmup` s run (every worker
    has its own cache: each must have seen every tile)."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write("paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
                 "i = 0\n"
                 "request = function()\n"
                 "  i = i % #paths + 1\n"
                 "  return wrk.format('GET', paths[i], {['Accept-Encoding'] = 'gzip'})\n"
                 "end\n")
    script.close()
    try:
        if warmup:
            subprocess.run(["wrk", "-t2", "-c8", f"-d{warmup}s", "-s", script.name, base], check=True,
                           capture_output=True)
        out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", script.name, base],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else None,
            "errors": int(non2xx.group(1)) if non2xx else 0}


def cpu_per_request(processes: list[int], base: str, paths: list[str], seconds: int = 4) -> tuple[float, float]:
    """Requests per second over `seconds`, and the CPU time (µs) the serving `processes` spent per request: on a
    shared machine the throughput follows the neighbours' load, the CPU a request costs much less."""
    before = harness.cpu_seconds(processes)
    rps = wrk(base, paths, seconds, warmup=0)["rps"]
    return rps, (harness.cpu_seconds(processes) - before) / (rps * seconds) * 1e6


def cached_then_floor(processes: list[int], base: str, paths: list[str]) -> tuple[tuple[float, float], ...]:
    """One round: the cached tiles `paths`, then the floor `/healthz`, 4 s each; (req/s, CPU µs per request) of
    each (cpu_per_request)."""
    return cpu_per_request(processes, base, paths), cpu_per_request(processes, base, ["/healthz"])


def against_floor(rounds: list[tuple[tuple[float, float], ...]]) -> tuple[list[float], float]:
    """The cached tiles' throughput over the floor's, each round, and the median of the floor's CPU per request
    over the tiles'."""
    return ([tiles[0] / floor[0] for tiles, floor in rounds],
            statistics.median(floor[1] / tiles[1] for tiles, floor in rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("--per-zoom", type=int, default=20, help="distinct tiles per zoom")
    parser.add_argument("--rounds", type=int, default=3, help="server restarts for cold requests (2 or more)")
    parser.add_argument("--no-tipg", action="store_true")
    parser.add_argument("--filters", action="append",
                        help="search filters for our tiles, e.g. type=apprentissage (repeat for several sets)")
    parser.add_argument("--rows-peer", action="store_true",
                        help="also time each clustered tile computed from the rows (one pass)")
    args = parser.parse_args()
    url = harness.catalogue_url(args.sites)
    settings = Settings()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"""CREATE OR REPLACE VIEW {TIPG_VIEW} AS
            SELECT site.id, site.name, site.kind, site.geom FROM site WHERE site.status = 'published'
            AND EXISTS (SELECT 1 FROM solution s WHERE s.site_id = site.id AND s.status = 'published')"""))
        counts = conn.execute(text(f"SELECT count(*) FROM {TIPG_VIEW}")).scalar()
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
    sampled = sample_tiles(engine, args.per_zoom)
    for filter_set in args.filters or [""]:
        print(f"\ntiles — {counts} published sites (database {size}); {sum(map(len, sampled.values()))} tiles over zooms {ZOOMS}; "
              f"filters: {filter_set or 'none'}; {dt.datetime.now():%Y-%m-%d %H:%M}; load {harness.load_average()}",
              flush=True)
        measure(url, engine, sampled, settings, filter_set, args)
    engine.dispose()


def measure(url: str, engine, sampled, settings: Settings, filter_set: str, args) -> None:
    query = f"?{filter_set}" if filter_set else ""
    filters = params.solution_filters(MultiDict([tuple(p.split("=", 1)) for p in filter_set.split("&") if p]))
    sql = raw_sql(engine, sampled, settings, filters)
    rows = raw_sql(engine, sampled, settings, filters, repeat=1, from_rows=True) if args.rows_peer else {}
    http, floor = http_latency(url, sampled, args.rounds, query)
    paths = [f"/tiles/solutions/{z}/{x}/{y}.mvt{query}" for coords in sampled.values() for z, x, y in coords]
    with harness.gunicorn(url, workers=2) as base:
        ours = wrk(base, paths)
        memory = harness.worker_memory_mb(base)  # each worker has rendered or cached every sampled tile
        # cached tiles and the floor in turn, 4 s each, three times: the machine's load moves between minutes
        processes = harness.serving_processes(base, engine)
        pairs = [cached_then_floor(processes, base, paths) for _ in range(3)]
    ratios, cpu_ratio = against_floor(pairs)
    theirs = None
    tipg_ms = None
    if not args.no_tipg and (TIPG / "uvicorn").exists() and shutil.which("wrk"):
        with tipg_server(url) as base:
            tipg_ms = tipg_latency(base, sampled)
            theirs = wrk(base, [tipg_path(z, x, y) for coords in sampled.values() for z, x, y in coords])

    print(f"\n{'z':>2} {'n':>3} | {'SQL p50':>8} {'p95':>6} | {'cold p50':>8} {'p95':>6} {'cold/SQL':>8} | "
          f"{'warm p50':>8} {'p95':>5} | {'max kB':>7} {'gz kB':>6}" + (" | rows p50   p95" if rows else "")
          + (" | tipg p50   p95  max kB" if tipg_ms else ""))
    for z in ZOOMS:
        s, h = sql[z], http[z]
        line = (f"{z:>2} {len(sampled[z]):>3} | {s['ms']['p50']:8.1f} {s['ms']['p95']:6.1f} | "
                f"{h['cold']['p50']:8.1f} {h['cold']['p95']:6.1f} {h['cold']['p50'] / s['ms']['p50']:7.2f}x | "
                f"{h['warm']['p50']:8.2f} {h['warm']['p95']:5.2f} | {s['max_kb']:7.1f} {s['max_gz_kb']:6.1f}")
        if rows:
            line += (f" | {rows[z]['ms']['p50']:8.1f} {rows[z]['ms']['p95']:5.1f}" if z in rows else " |" + " " * 15)
        if tipg_ms:
            t = tipg_ms[z]
            line += f" | {t['ms']['p50']:8.1f} {t['ms']['p95']:5.1f} {t['max_kb']:7.1f}"
        print(line)
    worst = max(ZOOMS, key=lambda z: http[z]["cold"]["p95"])
    print(f"\nworst cold p95: {http[worst]['cold']['p95']:.1f} ms at z{worst}")
    print(f"HTTP floor (a request reading no database, same server): p50 {floor['p50']:.2f} ms, "
          f"p95 {floor['p95']:.2f} ms")
    print(f"warm throughput, wrk -t2 -c8 10 s over the {len(paths)} tiles, gzip: mapservice {ours['rps']:.0f} req/s "
          f"(p50 {ours['p50_ms']:.2f} ms, non-2xx/3xx {ours['errors']})")
    print("cached tiles / the floor /healthz, in turn 4 s each: "
          + ", ".join(f"{t[0]:.0f} / {f[0]:.0f} req/s" for t, f in pairs) + f": median {statistics.median(ratios):.2f}x the floor")
    print("CPU per request of the workers and the database, cached tile / floor: "
          + ", ".join(f"{t[1]:.0f} / {f[1]:.0f} µs" for t, f in pairs)
          + f": the floor's CPU is a median {cpu_ratio:.2f}x a cached tile's")
    print("app workers' memory after serving every tile (RSS / peak, MB): "
          + ", ".join(f"{rss:.0f} / {peak:.0f}" for rss, peak in memory))
    if theirs:
        print(f"                                           tipg {theirs['rps']:.0f} req/s "
              f"(p50 {theirs['p50_ms']:.2f} ms, non-2xx/3xx {theirs['errors']})")
        print(f"ratio mapservice/tipg: {ours['rps'] / theirs['rps']:.1f}x")


if __name__ == "__main__":
    main()
