"""Cached tiles against the HTTP floor (issue 14 item 2): throughput and CPU per request, in turn.

    python bench/tile_cache.py --sites 10000
    python bench/tile_cache.py --sites 1000000 --against /tmp/previous   # another checkout, same run

Two gunicorns of 2 workers (this checkout and, with --against, another one) serve the same catalogue; each has
seen every sampled tile (all zooms) first. Then, round after round, wrk -t2 -c8 for 4 s on: the cached tiles of
each server, and the floor (`/healthz`, a response that reads no database) of each. For every run, the CPU time
the serving processes (the server's workers and every process of the database server) spent per request: on
a shared machine the throughput follows the neighbours' load much more than the CPU a request costs.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from tiles import against_floor, cached_then_floor, sample_tiles, wrk  # noqa: E402

from mapservice.db import make_engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("--against", type=Path, help="another checkout of the service, served beside this one")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = harness.catalogue_url(args.sites)
    engine = make_engine(url)
    sampled = sample_tiles(engine, 20)
    paths = [f"/tiles/solutions/{z}/{x}/{y}.mvt" for coords in sampled.values() for z, x, y in coords]
    print(f"cached tiles against the floor: {len(paths)} tiles, {args.sites or 'demo'} sites; "
          f"load {harness.load_average()}", flush=True)
    checkouts = {"this checkout": harness.ROOT} | ({"--against": args.against} if args.against else {})
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(harness.gunicorn(url, workers=2, checkout=checkout))
                   for name, checkout in checkouts.items()}
        for base in servers.values():
            wrk(base, paths, 3, warmup=5)  # every worker has rendered every tile (and opened its connections)
        processes = {name: harness.serving_processes(base, engine) for name, base in servers.items()}
        rounds = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, base in servers.items():
                rounds[name].append(cached_then_floor(processes[name], base, paths))
    print(f"load after: {harness.load_average()}")
    print(f"{'server':<15} {'what':<6} {'req/s, each round':<40} {'CPU µs/request, each round'}")
    for name, pairs in rounds.items():
        for i, what in enumerate(("tiles", "floor")):
            print(f"{name:<15} {what:<6} {' '.join(f'{pair[i][0]:6.0f}' for pair in pairs):<40} "
                  f"{' '.join(f'{pair[i][1]:6.0f}' for pair in pairs)}")
    for name, pairs in rounds.items():
        ratios, cpu = against_floor(pairs)
        print(f"{name}: cached tiles at a median {statistics.median(ratios):.2f}x the floor's throughput (rounds "
              f"{min(ratios):.2f}–{max(ratios):.2f}x); the floor's CPU per request is a median {cpu:.2f}x a cached "
              "tile's")
    engine.dispose()


if __name__ == "__main__":
    main()
