"""Import speed at national size: the Ille-et-Vilaine annuaire extract replicated to ~70k rows (keys and
positions shifted per copy), imported into a copy of the demo database, then imported again unchanged.

Each import runs in its own process (its peak memory is its own), as `mapservice import annuaire` does it
(parse, checks, comparison, application, one transaction). Peer in the same run: the floor of reading the same
file — Python's csv module splitting every row and COPY of all of them into a temporary table, nothing else.
Meanwhile a curator saves one site every 50 ms (its own transaction): how long a save waits while the import
runs.

    .venv/bin/python bench/imports.py [--copies 70] [--repeat 1]

With --repeat N, the whole measure (peer, first import, second import) runs N times, each on a fresh copy of
the demo database: on a shared machine the spread says how much the load moved the figures.
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from mapservice.db import copy_rows, make_engine, transaction  # noqa: E402
from tests.imports_files import ANNUAIRE_35, replicated_annuaire  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak resident memory since its exec (ru_maxrss would count the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_import(url: str, path: str) -> None:
    """In a child process: one import; prints its figures as JSON."""
    from mapservice.imports import ImportFile, import_file

    engine = make_engine(url)
    source = ImportFile.open(Path(path))
    started, cpu = time.perf_counter(), time.process_time()
    with transaction(engine) as conn:
        report = import_file(conn, "annuaire", source, apply=True, imported_by="bench")
    print(json.dumps({"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
                      "peak_rss_mb": peak_rss_mb(),
                      "counts": report.counts()}))


def raw_copy(url: str, path: Path) -> float:
    """The peer: csv.reader over the file and COPY of every row into a temporary table."""
    engine = make_engine(url)
    started = time.perf_counter()
    with transaction(engine) as conn:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=";")
            header = next(reader)
            conn.exec_driver_sql("CREATE TEMP TABLE raw (" + ", ".join(f'c{i} text' for i in range(len(header)))
                                 + ") ON COMMIT DROP")
            copy_rows(conn, "raw", [f"c{i}" for i in range(len(header))], reader)
        conn.rollback()
    engine.dispose()
    return time.perf_counter() - started


class CuratorSaves(threading.Thread):
    """One site saved every 50 ms, each in its own transaction; the latency of each save."""

    def __init__(self, url: str, site_id: int):
        super().__init__(daemon=True)
        self.engine, self.site_id, self.samples, self.stop = make_engine(url), site_id, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            started = time.perf_counter()
            with transaction(self.engine) as conn:
                conn.exec_driver_sql("UPDATE site SET opening_hours = %s, version = version + 1 WHERE id = %s",
                                     (f"save {len(self.samples)}", self.site_id))
            self.samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)


def timed_import(url: str, path: Path, site_id: int) -> dict:
    saves = CuratorSaves(url, site_id)
    saves.start()
    out = subprocess.run([sys.executable, __file__, "--one", url, str(path)], capture_output=True, text=True,
                         check=True)
    saves.stop.set()
    saves.join()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    samples = sorted(saves.samples)
    result["saves"] = {"n": len(samples), "p50_ms": samples[len(samples) // 2], "max_ms": samples[-1]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=70)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_import(*args.one)
        return
    from tests.conftest import ensure_template
    from mapservice.cluster import EmbeddedCluster

    server = EmbeddedCluster(ROOT / ".data", log=lambda _: None).start()
    template = ensure_template(server)
    with tempfile.TemporaryDirectory() as tmp:
        path = replicated_annuaire(Path(tmp) / "annuaire-national.csv", args.copies)
        rows = sum(1 for _ in path.open("rb")) - 1
        print(f"file: {rows} rows, {path.stat().st_size / 1e6:.1f} MB ({args.copies} copies of {ANNUAIRE_35.name})")
        for _ in range(args.repeat):
            measure(server, template, path, rows)


def measure(server: str, template: str, path: Path, rows: int) -> None:
    from tests.conftest import throwaway_database

    with throwaway_database(server, "bench_imports", template=template) as url:
        with make_engine(url).connect() as conn:  # a site the import does not touch (a demo lycée in Lyon)
            site_id = conn.execute(text("SELECT min(id) FROM site WHERE commune_code LIKE '69%'")).scalar()
        peer = raw_copy(url, path)
        first = timed_import(url, path, site_id)
        second = timed_import(url, path, site_id)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"peer (csv.reader + COPY of every row): {peer:.2f} s = {rows / peer:,.0f} rows/s (load average {load})")
    for name, run in (("first import", first), ("second, unchanged", second)):
        print(f"{name}: {run['wall_s']:.2f} s wall ({run['cpu_s']:.2f} s CPU in Python) = "
              f"{rows / run['wall_s']:,.0f} rows/s, {run['wall_s'] / peer:.1f}x the peer; peak RSS "
              f"{run['peak_rss_mb']:.0f} MB; counts {run['counts']}")
        print(f"    curator saves meanwhile: {run['saves']['n']}, p50 {run['saves']['p50_ms']:.1f} ms, "
              f"max {run['saves']['max_ms']:.0f} ms")
    print(f"second / first: {second['wall_s'] / first['wall_s']:.2f}")


if __name__ == "__main__":
    main()
