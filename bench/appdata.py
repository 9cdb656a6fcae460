"""The app's data at scale: offline bundles (France, a région, a département) and the PMTiles archive of the
national catalogue, built on the synthetic catalogue (bench/synthetic.py), each against a peer in the same run.

    python bench/appdata.py --sites 200000                 # bundles + national catalogue archive z0-14
    python bench/appdata.py --sites 200000 --no-archive    # bundles and the change feed only

Bundles: the build (the features as stored at write time, streamed by COPY through gzip, stored) in one
REPEATABLE READ transaction, rolled back afterwards; peers: the same SELECTs (stored solutions and sites, communes)
fetched by a plain client, i.e. the floor of any builder that reads them, and the SELECTs writing each feature's
JSON from the rows (what the build read before migration 0011).
Feed: a page of 1,000 changes of /api/v1/changes (1,000 curator saves, each one solution, i.e. its solution and its
site; with --feed-edits sites, each one site, i.e. the site and its solutions), through the app in process (Flask
test client), plain, gzipped and for the Rhône (departement=69), timed in turn with its peers round after round,
after the page's first request (cold: its rows read for the first time); peers: the core function alone,
and the raw SQL of a client that makes the same page in round trips (the log's rows of the first 1,000 changes, the
solutions of the sites changed by a statement on sites, then the features of those solutions and sites by id:
written by the bundles' SQL, or read as stored at write time, migration 0012).
Archive: the national `solutions` archive z0–--maxzoom written to a temporary directory, per zoom, rendered on
--connections connections; peer: the
same tiles requested cold one by one from the live endpoint (Flask test client, empty tile cache) on a sample of
each zoom (--sample tiles), extrapolated to the zoom — what seeding a CDN through the live endpoint would cost.
"""
from __future__ import annotations

import argparse
import gzip
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pmtiles.reader import MemorySource, Reader  # noqa: E402
from sqlalchemy import text  # noqa: E402

import harness  # noqa: E402
from mapservice import create_app  # noqa: E402
from mapservice.appdata import archives, bundles, changelog, features, feed  # noqa: E402
from mapservice.db import make_engine  # noqa: E402
from mapservice.values import ChangeQuery, FeedCursor  # noqa: E402

AREAS = [bundles.BundleArea("departement", "69"), bundles.BundleArea("region", "84"),
         bundles.BundleArea("france", bundles.FRANCE)]


def bench_bundles(engine, areas: list[bundles.BundleArea]) -> None:
    print("| area | solutions | sites | communes | gzip size | build | SELECTs alone | build / SELECTs | "
          "SELECTs writing the features |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for area in areas:
        where = bundles.AREA_COMMUNES[area.kind]
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            started = time.perf_counter()
            for kind in features.KINDS:
                conn.execute(text(features.stored(kind, where) + " ORDER BY f.id"), {"code": area.code}).all()
            conn.execute(text(bundles.PLACES.format(area=where)), {"code": area.code}).all()
            floor_s = time.perf_counter() - started
            conn.rollback()
            started = time.perf_counter()  # what the build read before migration 0011
            for sql in (bundles.SOLUTIONS, bundles.SITES, bundles.PLACES):
                conn.execute(text(sql.format(area=where)), {"code": area.code}).all()
            written_s = time.perf_counter() - started
            conn.rollback()
            with conn.begin():
                started = time.perf_counter()
                built = bundles.build(conn, area)
                build_s = time.perf_counter() - started
                communes = conn.execute(text(f"SELECT count(*) FROM commune c WHERE {where}"),
                                        {"code": area.code}).scalar()
                conn.rollback()
        print(f"| {area.kind} {area.code} | {built.solutions:,} | {built.sites:,} | {communes:,} | "
              f"{built.size / 1e6:.1f} MB | {build_s:.1f} s | {floor_s:.1f} s | {build_s / floor_s:.1f}× | "
              f"{written_s:.1f} s |", flush=True)


SAVES = {  # what a curator's save of one row changes (the values stay the same)
    "solutions": ("SELECT id FROM solution WHERE status = 'published' ORDER BY random() LIMIT :n",
                  "UPDATE solution SET vacant_places = vacant_places WHERE id = :i"),
    "sites": ("SELECT id FROM site WHERE status = 'published' ORDER BY random() LIMIT :n",
              "UPDATE site SET name = name WHERE id = :i"),
}


def bench_feed(engine, url: str, edits: str = "solutions", saves: int = 1000, repeats: int = 60) -> None:
    picking, saving = SAVES[edits]
    with engine.connect() as conn:
        cursor = FeedCursor(changelog.position(conn), 0, 0)
        ids = conn.execute(text(picking), {"n": saves}).scalars().all()
    query = ChangeQuery(since=cursor, limit=1000)
    app = create_app({"database": {"url": url}})
    client = app.test_client()
    since = changelog.token(cursor)
    # A worker already serving the feed (connected, the statement prepared and planned), nothing after the cursor yet
    client.get(f"/api/v1/changes?since={since}&limit=1000")
    with engine.begin() as conn:  # one statement per save, as a curator's
        for row_id in ids:
            conn.execute(text(saving), {"i": row_id})
    # Cold: the page's first request reads its rows for the first time since they were written.
    started = time.perf_counter()
    first = client.get(f"/api/v1/changes?since={since}&limit=1000")
    cold_ms = (time.perf_counter() - started) * 1000
    first_body, entries = first.data, len(first.get_json()["changes"])
    gzipped = client.get(f"/api/v1/changes?since={since}&limit=1000", headers={"Accept-Encoding": "gzip"})
    rhone = len(client.get(f"/api/v1/changes?since={since}&limit=1000&departement=69").get_json()["changes"])
    with engine.connect() as conn:
        def page_ids() -> tuple[list[int], list[int]]:
            rows = conn.execute(text("""
                SELECT site_ids, solution_ids FROM catalogue_change
                WHERE txid >= CAST(CAST(:t AS text) AS xid8) ORDER BY txid, id LIMIT :rows"""),
                {"t": cursor.txid, "rows": 500 if edits == "solutions" else 1000}).all()
            site_ids = [i for r in rows for i in r.site_ids]
            # a statement on sites (it logs no solution) changed its sites' solutions too
            others = conn.execute(text("SELECT id FROM solution WHERE site_id = ANY(CAST(:ids AS bigint[]))"),
                                  {"ids": [i for r in rows if not r.solution_ids for i in r.site_ids]}).scalars().all()
            return sorted(set(site_ids)), sorted({i for r in rows for i in r.solution_ids} | set(others))

        def raw_sql():
            sites, solutions = page_ids()
            conn.execute(text(bundles.SOLUTIONS.format(area="s.id = ANY(CAST(:ids AS bigint[]))")),
                         {"ids": solutions}).all()
            conn.execute(text(bundles.SITES.format(area="site.id = ANY(CAST(:ids AS bigint[]))")),
                         {"ids": sites}).all()

        def raw_sql_stored():
            sites, solutions = page_ids()
            for kind, ids in (("solution", solutions), ("site", sites)):
                conn.execute(text(features.stored(kind, "true", "f.id = ANY(CAST(:ids AS bigint[]))")),
                             {"ids": ids}).all()

        samples = harness.time_interleaved({
            "HTTP (in process)": lambda: client.get(f"/api/v1/changes?since={since}&limit=1000"),
            "HTTP, Accept-Encoding: gzip": lambda: client.get(f"/api/v1/changes?since={since}&limit=1000",
                                                              headers={"Accept-Encoding": "gzip"}),
            f"HTTP, departement=69 ({rhone} entries)": lambda: client.get(
                f"/api/v1/changes?since={since}&limit=1000&departement=69"),
            "core function": lambda: feed.changes(conn, query),
            "raw SQL (log, sites' solutions, features written)": raw_sql,
            "raw SQL (log, sites' solutions, stored features read)": raw_sql_stored,
        }, repeats)
    print(f"feed page: {entries} entries from {saves} saves of {edits}, {len(first_body) / 1e6:.2f} MB, "
          f"{len(gzipped.data) / 1e3:.0f} kB gzipped ({gzipped.headers.get('Content-Encoding')}); the page's first request, "
          f"cold: {cold_ms:.1f} ms")
    harness.print_percentiles({name: harness.percentiles(ms) for name, ms in samples.items()})


def bench_archive(engine, url: str, maxzoom: int, sample: int, connections: int) -> None:
    print("load average before the archive:", open("/proc/loadavg").read().split()[:3], flush=True)
    with tempfile.TemporaryDirectory() as directory:
        settings = archives.ArchiveSettings(directory=Path(directory), maxzoom=maxzoom, cluster_max_zoom=11,
                                            max_features=5000, connections=connections)
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            started = time.perf_counter()
            built = archives.build(conn, "solutions", bundles.BundleArea("france", bundles.FRANCE), settings,
                                   connect=engine.connect)
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            candidates = archives.candidate_tiles(conn, "solutions", built.area, maxzoom, 11)
            finding_s = time.perf_counter() - started
        stored = Reader(MemorySource(built.path.read_bytes()))
    print(f"national catalogue archive z0–{maxzoom} on {connections} connection(s): {built.tiles:,} tiles with content "
          f"({len(candidates):,} candidates, found in {finding_s:.1f} s), {built.size / 1e6:.1f} MB, "
          f"built in {build_s:.1f} s ({built.tiles / build_s:.0f} tiles/s); load average after:",
          open("/proc/loadavg").read().split()[:3], flush=True)
    # Peer: the same tiles requested cold, one by one, from the live endpoint (in process, the tile cache too
    # small to keep any), on a sample of each zoom, extrapolated to the zoom's candidates. Each sampled tile is
    # also compared with the archive's.
    app = create_app({"database": {"url": url}, "tiles": {"cache_mb": 1}})
    client = app.test_client()
    by_zoom = {}
    for z, x, y in candidates:
        by_zoom.setdefault(z, []).append((x, y))
    print("| zoom | candidates | tiles written | archive: render | ms a tile | live endpoint, cold: ms a tile "
          "(sample) | live, extrapolated | archive / live |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    live_total, compared, different = 0.0, 0, []
    for stats in built.zooms:
        z, coordinates = stats["zoom"], by_zoom.get(stats["zoom"], [])
        picked = random.Random(7).sample(coordinates, min(sample, len(coordinates)))
        started = time.perf_counter()
        responses = [client.get(f"/tiles/solutions/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
                     for x, y in picked]
        per_tile = (time.perf_counter() - started) / max(1, len(picked))
        for (x, y), response in zip(picked, responses):
            live = gzip.decompress(response.data) if response.status_code == 200 else None
            archived = stored.get(z, x, y)
            compared += 1
            if live != (gzip.decompress(archived) if archived else None):
                different.append((z, x, y))
        live_s = per_tile * len(coordinates)
        live_total += live_s
        print(f"| {z} | {stats['candidates']:,} | {stats['tiles']:,} | {stats['render_s']:.2f} s | "
              f"{stats['render_s'] * 1000 / max(1, stats['candidates']):.2f} | {per_tile * 1000:.2f} ({len(picked)}) "
              f"| {live_s:.1f} s | {stats['render_s'] / live_s if live_s else 0:.2f}× |", flush=True)
    app.extensions["mapservice.engine"].dispose()
    rendering = sum(stats["render_s"] for stats in built.zooms)
    print(f"total: archive {build_s:.1f} s (rendering {rendering:.1f} s, finding the tiles {finding_s:.1f} s, "
          f"the rest: reading the area, writing the file) against {live_total:.0f} s through the live endpoint: "
          f"{build_s / live_total:.2f}×; load average {open('/proc/loadavg').read().split()[:3]}", flush=True)
    print(f"sampled tiles equal to the live endpoint's: {compared - len(different)} of {compared}"
          + (f"; different: {different[:10]}" if different else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=None, help="synthetic catalogue size (default: demo)")
    parser.add_argument("--maxzoom", type=int, default=14)
    parser.add_argument("--sample", type=int, default=150, help="tiles of each zoom requested from the live endpoint")
    parser.add_argument("--connections", type=int, default=2, help="rendering the archive at once")
    parser.add_argument("--no-archive", action="store_true")
    parser.add_argument("--no-bundles", action="store_true")
    parser.add_argument("--no-feed", action="store_true")
    parser.add_argument("--feed-edits", choices=sorted(SAVES), default="solutions",
                        help="what the 1,000 saves before the feed's page change")
    parser.add_argument("--area", action="append", help="kind:code, e.g. france:FR (default: 69, 84, FR)")
    args = parser.parse_args()
    url = harness.catalogue_url(args.sites)
    engine = make_engine(url)
    with engine.connect() as conn:
        print(conn.execute(text("SELECT (SELECT count(*) FROM site), (SELECT count(*) FROM solution)")).one(),
              "sites, solutions;", open("/proc/loadavg").read().split()[:3], "load average")
    if not args.no_bundles:
        areas = [bundles.BundleArea(*a.split(":")) for a in args.area] if args.area else AREAS
        bench_bundles(engine, areas)
    if not args.no_feed:
        bench_feed(engine, url, args.feed_edits)
        print(open("/proc/loadavg").read().split()[:3], "load average after")
    if not args.no_archive:
        bench_archive(engine, url, args.maxzoom, args.sample, args.connections)
    engine.dispose()


if __name__ == "__main__":
    main()
