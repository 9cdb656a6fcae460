"""The national report of one period: full computation against the SQL alone, the cached report, and the
distances kept ready (one full pass, then one edit's incremental refresh).

    python bench/reporting.py                    # the demo catalogue (the service's own database)
    python bench/reporting.py --sites 200000     # a synthetic catalogue (bench/synthetic.py)

Goal (issue 11): the national report for one period under 10 s at 200k sites, cached until the catalogue or
the figures change.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text  # noqa: E402

import harness  # noqa: E402
from mapservice.db import make_engine  # noqa: E402
from mapservice.reporting import distances, indicators, report  # noqa: E402
from mapservice.reporting.periods import Period  # noqa: E402

# The statements of one national report, as indicators.compute runs them.
STATEMENTS = ("TERRITORY", "POPULATION", "CATALOGUE", "CATALOGUE_COUNTS", "CHECK_AGES", "REPORTS", "COVERED",
              "ZONES_BLANCHES", "PLATFORMS", "ACTIVITY", "OBJECTIVES", "NAMES")


def seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def sql_alone(conn, period: Period) -> dict[str, float]:
    """The report's statements sent as they are, results fetched and dropped: seconds per statement."""
    now = conn.scalar(text("SELECT now()"))
    start = dt.datetime.combine(period.start, dt.time(), now.tzinfo)
    end = dt.datetime.combine(period.end, dt.time(), now.tzinfo)
    binds = {"start": start, "end": end, "asof": min(now, end), "periods": [period.name], "year": period.year}
    conn.execute(text("SET LOCAL jit = off"))
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    spent = {}
    for name in STATEMENTS:
        started = time.perf_counter()
        result = conn.execute(text(getattr(indicators, name)), binds)
        if result.returns_rows:
            result.all()
        spent[name] = time.perf_counter() - started
    return spent


def run(database_url: str, repeat: int) -> dict:
    engine = make_engine(database_url)
    figures = {"load average at start (1 min)": os.getloadavg()[0]}
    with engine.begin() as conn:
        figures["sites"] = conn.scalar(text("SELECT count(*) FROM site"))
        figures["solutions"] = conn.scalar(text("SELECT count(*) FROM solution"))
        period = Period.containing(conn.scalar(text("SELECT current_date")))
        conn.execute(text("UPDATE reporting_state SET reference_version = NULL"))  # forces the full pass
        figures["distances full pass (s)"] = seconds(lambda: distances.refresh(conn))
    with engine.begin() as conn:
        conn.execute(text("""UPDATE solution SET status = 'archived' WHERE id = (
                               SELECT min(id) FROM solution WHERE type = 'structure_innovante' AND status = 'published')"""))
    with engine.begin() as conn:
        figures["distances after one edit (s)"] = seconds(lambda: distances.refresh(conn))
    with engine.begin() as conn:
        conn.execute(text("""UPDATE solution SET status = 'published' WHERE id = (
                               SELECT min(id) FROM solution WHERE type = 'structure_innovante' AND status = 'archived')"""))
    with engine.begin() as conn:
        distances.refresh(conn)
    sql, full = [], []
    for _ in range(repeat):
        with engine.begin() as conn:
            sql.append(sql_alone(conn, period))
        with engine.begin() as conn:
            full.append(seconds(lambda: report.live(conn, period)))
    cache = report.ReportCache()
    with engine.begin() as conn:
        report.live(conn, period, cache)
        cached = harness.time_each((lambda: report.live(conn, period, cache) for _ in range(30)), warmup=5)
    engine.dispose()
    totals = [sum(run.values()) for run in sql]
    figures["national report, SQL alone (s, median)"] = statistics.median(totals)
    figures["national report, full computation (s, median)"] = statistics.median(full)
    figures["ratio full / SQL alone"] = statistics.median(full) / statistics.median(totals)
    figures["national report, cached (ms, median)"] = statistics.median(cached)
    for name in STATEMENTS:
        figures[f"  {name} alone (s, median)"] = statistics.median(run[name] for run in sql)
    figures["load average at the end (1 min)"] = os.getloadavg()[0]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=None, help="synthetic catalogue size (default: demo)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name, value in run(harness.catalogue_url(args.sites), args.repeat).items():
        print(f"{name:50s} {value:,.2f}" if isinstance(value, float) else f"{name:50s} {value:,}")


if __name__ == "__main__":
    main()
