"""Writes and their tile bookkeeping: single site and solution edits, and a curator's save while another
connection runs a long bulk write in one transaction, with the catalogue triggers before (revision 0005, i.e.
those of 0003) and after (0006), in the same run.

    python bench/writes.py                          # the demo catalogue (the service's own database)
    python bench/writes.py --sites 200000           # the synthetic catalogue (bench/synthetic.py)
    python bench/writes.py --bulk-seconds 60 --edits 300 --save-every 1
    python bench/writes.py --sites 200000 --only after --bulk-seconds 30 --save-every 0.5 --wal-writer-delays 200ms,10ms

Each variant runs on its own copy of the catalogue (CREATE DATABASE ... TEMPLATE; connections to the source
database are ended first), the "before" copy migrated down to 0005 (or --before: e.g. 0010, without the stored
features of 0012); both copies are dropped at the end.

- Single edits, one at a time, each an UPDATE and its COMMIT on an open connection (the statement triggers run
  inside the UPDATE), the variants' copies in turn edit after edit, against a peer: the same write on a PSAD platform, a catalogue
  row without those triggers (the floor: round trips and the commit's flush). A site's text fields, a site moved by ~10 m (its solutions follow),
  a solution's vacant places (a site gains or loses "places libres": the pyramid changes at every level).
  After: also what the tile server then pays once to fold an edit's deltas into the pyramid.
- Curator's save during an import: one connection runs a bulk write in a single transaction for
  --bulk-seconds (UPDATEs of 1,000 solutions of Île-de-France at a time, and every fifth statement 200 new
  sites with a solution each), then commits. Meanwhile a curator's save (one UPDATE of vacant_places on a
  solution elsewhere, then COMMIT) is issued every --save-every seconds, each on a free connection, and timed
  from issue to commit; halfway between two, a peer save (the PSAD platform's write) shows what any commit
  costs while the import loads the machine and the WAL. With --wal-writer-delays, the import runs once with the
  server's wal_writer_delay at each value (PostgreSQL's default is 200ms; the private cluster's 10ms): a commit
  flushes whatever WAL the import wrote since the WAL writer last did.
"""
from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg2  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

import harness  # noqa: E402
from mapservice.db import alembic_config, make_engine  # noqa: E402

ILE_DE_FRANCE = "commune_code ~ '^(75|77|78|91|92|93|94|95)'"
TOGGLE_VACANCY = "vacant_places = CASE WHEN coalesce(vacant_places, 0) > 0 THEN 0 ELSE capacity END"
EDITS = {
    # The floor: the same kind of write and commit on a catalogue row that has no catalogue triggers.
    "peer: a PSAD platform's text fields (no triggers)": "UPDATE psad_platform SET phone = %(text)s, "
                                                         "updated_at = now(), version = version + 1 "
                                                         "WHERE id = %(platform)s",
    "site: text fields": "UPDATE site SET phone = %(text)s, opening_hours = %(text)s, updated_at = now(), "
                         "version = version + 1 WHERE id = %(site)s",
    "site: moved ~10 m": "UPDATE site SET geom = ST_Translate(geom, %(dx)s, 0), updated_at = now(), "
                         "version = version + 1 WHERE id = %(site)s",
    "solution: vacant places": f"UPDATE solution SET {TOGGLE_VACANCY}, updated_at = now(), version = version + 1 "
                               "WHERE id = %(solution)s",
}
CURATOR_SAVE = f"UPDATE solution SET {TOGGLE_VACANCY}, updated_at = now() WHERE id = %s"
PEER_SAVE = "UPDATE psad_platform SET phone = md5(random()::text), updated_at = now() WHERE id = %s"
IMPORT_UPDATE = f"UPDATE solution SET {TOGGLE_VACANCY}, updated_at = now() WHERE id = ANY(%s)"
IMPORT_SITES = """
WITH copied AS (
    INSERT INTO site (name, kind, address, commune_code, geom, position_precision, status, source, is_example)
    SELECT name || ' (import)', kind, address, commune_code, ST_Translate(geom, 0.001, 0.001), position_precision,
           'published', 'bench-import', true
    FROM site WHERE id = ANY(%s)
    RETURNING id, kind
)
INSERT INTO solution (site_id, type, title, capacity, vacant_places, status, source, is_example)
SELECT id, CASE kind WHEN 'cfa' THEN 'apprentissage' WHEN 'greta' THEN 'greta' ELSE 'places_lycee' END,
       'Importée', 10, 3, 'published', 'bench-import', true
FROM copied
"""


def copy_database(source_url: str, name: str) -> str:
    source = make_url(source_url)
    admin = make_engine(source.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": source.database})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}" STRATEGY FILE_COPY'))
    admin.dispose()
    return source.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    target = make_url(url)
    admin = make_engine(target.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def connect(engine):
    """A plain psycopg2 connection of its own (no pool, no SQLAlchemy on the timed path)."""
    url = engine.url
    return psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                            dbname=url.database)


def pick(engine, n: int) -> dict:
    """Sites and solutions to edit (published, outside Île-de-France), and the import's solutions and sites."""
    with engine.connect() as conn:
        sites = conn.execute(text(f"""
            SELECT id FROM site WHERE status = 'published' AND NOT {ILE_DE_FRANCE}
            ORDER BY md5(id::text) LIMIT :n"""), {"n": n}).scalars().all()
        solutions = conn.execute(text(f"""
            SELECT s.id FROM solution s JOIN site ON site.id = s.site_id
            WHERE s.status = 'published' AND site.status = 'published' AND s.capacity > 0 AND NOT site.{ILE_DE_FRANCE}
            ORDER BY md5(s.id::text) LIMIT :n"""), {"n": n}).scalars().all()
        imported = conn.execute(text(f"""
            SELECT s.id FROM solution s JOIN site ON site.id = s.site_id
            WHERE s.capacity > 0 AND site.{ILE_DE_FRANCE} ORDER BY s.id""")).scalars().all()
        copied = conn.execute(text(f"SELECT id FROM site WHERE {ILE_DE_FRANCE} ORDER BY id")).scalars().all()
        platforms = conn.execute(text("SELECT id FROM psad_platform ORDER BY id")).scalars().all()
        if not platforms:  # the synthetic catalogues have none: the copy gets one, for the peer
            platforms = [conn.execute(text("""
                INSERT INTO psad_platform (name, departement_code, source, status)
                VALUES ('Plateforme (banc d''essai)', '69', 'bench', 'published') RETURNING id""")).scalar()]
            conn.commit()
    return {"sites": sites, "solutions": solutions, "imported": imported, "copied": copied, "platforms": platforms}


def single_edits(engines: dict, ids: dict, n: int) -> dict[str, dict[str, dict]]:
    """Each kind of edit on every variant's copy in turn, edit after edit (a busy minute on this shared machine
    falls on all of them alike); then, on the "after" copy, the fold a tile server pays once per edit."""
    conns = {variant: connect(engine) for variant, engine in engines.items()}
    results: dict[str, dict[str, dict]] = {variant: {} for variant in engines}
    for name, sql in EDITS.items():
        samples: dict[str, list[float]] = {variant: [] for variant in engines}
        for i in range(n + 20):
            for variant, conn in conns.items():
                chosen = ids[variant]
                started = time.perf_counter()
                conn.cursor().execute(sql, {
                    "site": chosen["sites"][i % len(chosen["sites"])], "text": f"0{i:09d}",
                    "platform": chosen["platforms"][i % len(chosen["platforms"])],
                    "dx": 0.0001 if (i // len(chosen["sites"])) % 2 == 0 else -0.0001,
                    "solution": chosen["solutions"][i % len(chosen["solutions"])]})
                conn.commit()
                if i >= 20:
                    samples[variant].append((time.perf_counter() - started) * 1000)
        for variant in engines:
            results[variant][name] = harness.percentiles(samples[variant])
    if "after" in conns:
        # What the tile server pays once per edit it sees: the edit's deltas folded into the pyramid.
        conn, chosen = conns["after"], ids["after"]
        cur = conn.cursor()
        solution_edit = EDITS["solution: vacant places"]

        def edit_then_fold(i):
            cur.execute(solution_edit, {"solution": chosen["solutions"][i % len(chosen["solutions"])]})
            conn.commit()
            started = time.perf_counter()
            cur.execute("SELECT catalogue_fold()")
            conn.commit()
            return (time.perf_counter() - started) * 1000

        cur.execute("SELECT catalogue_fold()")  # what the edits above left
        conn.commit()
        results["after"]["fold of one solution edit (tile server, once)"] = harness.percentiles(
            [edit_then_fold(i) for i in range(n)])
    for conn in conns.values():
        conn.close()
    return results


def bulk_import(engine, ids: dict, seconds: float, started: threading.Event, done: threading.Event,
                report: dict) -> None:
    conn = connect(engine)
    cur = conn.cursor()
    deadline = time.monotonic() + seconds
    statements = rows = 0
    imported, copied = ids["imported"], ids["copied"]
    while time.monotonic() < deadline:
        if statements % 5 == 4:
            chunk = [copied[(statements * 200 + k) % len(copied)] for k in range(200)]
            cur.execute(IMPORT_SITES, (chunk,))
        else:
            chunk = [imported[(statements * 1000 + k) % len(imported)] for k in range(min(1000, len(imported)))]
            cur.execute(IMPORT_UPDATE, (chunk,))
        rows += cur.rowcount
        statements += 1
        started.set()
    commit_started = time.monotonic()
    conn.commit()
    done.set()
    report.update(statements=statements, rows=rows, commit_s=time.monotonic() - commit_started,
                  seconds=time.monotonic() - deadline + seconds)
    conn.close()


@contextmanager
def wal_writer_delay(engine, delay: str | None):
    """The server's wal_writer_delay set to `delay` for the block (ALTER SYSTEM, reloaded), then reset to what the
    server was started with."""
    if delay is None:
        yield
        return
    admin = make_engine(engine.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"ALTER SYSTEM SET wal_writer_delay = '{delay}'"))
        conn.execute(text("SELECT pg_reload_conf()"))
    time.sleep(1)  # the WAL writer reads its new setting when it next wakes
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text("ALTER SYSTEM RESET wal_writer_delay"))
            conn.execute(text("SELECT pg_reload_conf()"))
        admin.dispose()


def saves_during_import(engine, ids: dict, seconds: float, every: float) -> tuple[dict, dict]:
    """Curator saves and, in turn, peer saves (a PSAD platform: no catalogue triggers) issued at a steady rate
    while the import runs; ms from issue to commit, by kind."""
    free: queue.SimpleQueue = queue.SimpleQueue()
    opened = [connect(engine) for _ in range(6)]
    for k, conn in enumerate(opened):  # as pooled connections are: triggers compiled, statements planned
        for _ in range(3):
            conn.cursor().execute(CURATOR_SAVE, (ids["solutions"][-1 - k],))
            conn.cursor().execute(PEER_SAVE, (ids["platforms"][0],))
            conn.commit()
        free.put(conn)
    started, done, report = threading.Event(), threading.Event(), {}
    importer = threading.Thread(target=bulk_import, args=(engine, ids, seconds, started, done, report))
    importer.start()
    started.wait()
    samples: dict[str, list[float]] = {"curator": [], "peer": []}
    savers = []

    def save(conn, kind, sql, row_id):
        issued = time.perf_counter()
        conn.cursor().execute(sql, (row_id,))
        conn.commit()
        samples[kind].append((time.perf_counter() - issued) * 1000)
        free.put(conn)

    next_at, i = time.perf_counter(), 0
    while not done.is_set():
        try:
            conn = free.get_nowait()
        except queue.Empty:  # every connection is waiting: the next save gets a new one
            conn = connect(engine)
            opened.append(conn)
        if i % 2 == 0:
            args = (conn, "curator", CURATOR_SAVE, ids["solutions"][(i // 2) % len(ids["solutions"])])
        else:
            args = (conn, "peer", PEER_SAVE, ids["platforms"][0])
        saver = threading.Thread(target=save, args=args)
        saver.start()
        savers.append(saver)
        i += 1
        next_at += every / 2
        done.wait(max(0.0, next_at - time.perf_counter()))
    importer.join()
    for saver in savers:
        saver.join()
    report["connections"] = len(opened)
    with opened[0].cursor() as cur:
        cur.execute("SHOW wal_writer_delay")
        report["wal_writer_delay"] = cur.fetchone()[0]
    for conn in opened:
        conn.close()
    return samples, report


def fmt(stats: dict) -> str:
    return f"{stats['p50']:.2f} / {stats['p95']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("--edits", type=int, default=300, help="timed edits of each kind")
    parser.add_argument("--bulk-seconds", type=float, default=60)
    parser.add_argument("--save-every", type=float, default=1.0, help="seconds between two curator saves")
    parser.add_argument("--only", choices=("before", "after"), help="run one variant only")
    parser.add_argument("--wal-writer-delays", type=lambda v: v.split(","), default=[],
                        help="run the import once with the server's wal_writer_delay at each of these, e.g. 200ms,10ms")
    parser.add_argument("--before", default="0005", help="the revision the 'before' copy is migrated down to")
    args = parser.parse_args()

    source = harness.catalogue_url(args.sites)
    label = f"{args.sites} synthetic sites" if args.sites else "demo catalogue"
    variants = [v for v in ("before", "after") if args.only in (None, v)]
    results = {}
    urls = {variant: copy_database(source, f"{make_url(source).database}_writes_{variant}") for variant in variants}
    engines = {variant: make_engine(url) for variant, url in urls.items()}
    try:
        if "before" in engines:
            started = time.monotonic()
            command.downgrade(alembic_config(engines["before"]), args.before)
            print(f"before: migrated down to {args.before} in {time.monotonic() - started:.1f} s", flush=True)
        revisions, ids = {}, {}
        for variant, engine in engines.items():
            with engine.connect() as conn:
                revisions[variant] = conn.scalar(text("SELECT version_num FROM alembic_version"))
            ids[variant] = pick(engine, args.edits)
        print("load average before the edits:", harness.load_average(), flush=True)
        edits = single_edits(engines, ids, args.edits)
        print("load average after the edits:", harness.load_average(), flush=True)
        for variant, engine in engines.items():
            for name, stats in edits[variant].items():
                print(f"{label}, {variant} ({revisions[variant]}), {name}: p50/p95 {fmt(stats)} ms", flush=True)
            results[variant] = {"revision": revisions[variant], "edits": edits[variant], "imports": {}}
            for delay in args.wal_writer_delays or [None]:
                with wal_writer_delay(engine, delay):
                    samples, report = saves_during_import(engine, ids[variant], args.bulk_seconds, args.save_every)
                run = f"{variant}, the WAL writer every {report['wal_writer_delay']}"
                print(f"{label}, {run}: import {report['statements']} statements, {report['rows']} rows in "
                      f"{report['seconds']:.1f} s (commit {report['commit_s'] * 1000:.0f} ms); saves on "
                      f"{report['connections']} connections; load average {harness.load_average()}", flush=True)
                saves = {kind: harness.percentiles(s) for kind, s in samples.items()}
                for kind, stats in saves.items():
                    print(f"{label}, {run}: {len(samples[kind])} {kind} saves during the import, p50/p95/max "
                          f"{fmt(stats)} / {max(samples[kind]):.2f} ms", flush=True)
                results[variant]["imports"][run] = {"saves": saves, "samples": samples, "import": report}
    finally:
        for variant, engine in engines.items():
            engine.dispose()
            drop_database(urls[variant])

    print(f"\n### {label}\n")
    print("| what (ms, p50 / p95) | " + " | ".join(f"{v} ({results[v]['revision']})" for v in variants) + " |")
    print("| --- |" + " ---: |" * len(variants))
    names = list(dict.fromkeys(n for v in variants for n in results[v]["edits"]))
    for name in names:
        print(f"| {name} | " + " | ".join(fmt(results[v]["edits"][name]) if name in results[v]["edits"] else "—"
                                          for v in variants) + " |")
    print(f"\n| during a {args.bulk_seconds:.0f} s import (ms) | curator save p50 / p95 | slowest "
          "| peer save p50 / p95 | slowest | import: rows written in the transaction |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for v in variants:
        for run, r in results[v]["imports"].items():
            print(f"| {run} | " + " | ".join(f"{fmt(r['saves'][kind])} | {max(r['samples'][kind]):,.0f}"
                                             for kind in ("curator", "peer"))
                  + f" | {r['import']['rows']:,} in {r['import']['statements']} statements |")

if __name__ == "__main__":
    main()
