"""The teams' workspace at national scale: the reads behind its screens (dashboard, sites list and search,
overdue checks, partners' proposals, the places screen), in process, for three accounts: the national
administrator, the administrator of the académie with the most communes, and a curator of a département
(Ille-et-Vilaine) and of a PSAD platform.

    python bench/workspace.py --sites 200000
    python bench/workspace.py --sites 200000 --code /tmp/previous    # the same reads by another version

`--code DIR` imports mapservice from another checkout (e.g. a `git archive` of the previous version): run both
on the same database, one after the other, to compare. Each read is timed --repeat times after one untimed
call; the rows it returned are printed too (the same rows from both versions: the same rule).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, help="use the synthetic catalogue of this size")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose mapservice is timed (this one by default)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import harness

    # The catalogue brought to this checkout's schema first; then the code to time is imported afresh.
    url = harness.catalogue_url(args.sites)
    for name in [m for m in sys.modules if m == "mapservice" or m.startswith("mapservice.")]:
        del sys.modules[name]
    sys.path.insert(0, str(args.code.resolve()))
    from sqlalchemy import text

    from mapservice.accounts.values import ACADEMIE_ADMIN, CURATOR, NATIONAL_ADMIN, Actor
    from mapservice.curation import dashboard, freshness, sites, solutions
    from mapservice.db import make_engine
    import mapservice

    engine = make_engine(url)
    with engine.connect() as conn:
        academie, communes = conn.execute(text(
            "SELECT academie_code, count(*) FROM commune GROUP BY 1 ORDER BY 2 DESC LIMIT 1")).one()
        platform = conn.scalar(text("SELECT platform_id FROM psad_platform_commune pc JOIN commune c "
                                    "ON c.code = pc.commune_code WHERE c.departement_code = '35' LIMIT 1"))
        site_count = conn.scalar(text("SELECT count(*) FROM site"))
    actors = {
        "national administrator": Actor(None, "national@bench.invalid", NATIONAL_ADMIN),
        f"académie {academie} ({communes} communes)": Actor(None, "academie@bench.invalid", ACADEMIE_ADMIN,
                                                             academies=frozenset({academie})),
        f"curator: département 35 + platform {platform}": Actor(
            None, "curateur@bench.invalid", CURATOR, departements=frozenset({"35"}),
            platforms=frozenset({platform} if platform else set())),
    }
    reads = {
        "dashboard": lambda conn, who: dashboard.dashboard(conn, who)["by_type"],
        # as the pages read them: the first 100 sites, 500 overdue sites and 2,000 solutions, and one more to know
        # there are more
        "sites, by name": lambda conn, who: sites.sites(conn, who, limit=101),
        "sites, search 'lycee'": lambda conn, who: sites.sites(conn, who, "lycee", limit=101),
        "overdue checks": lambda conn, who: freshness.overdue(conn, who, limit=501),
        "partners' proposals": lambda conn, who: sites.review_queue(conn, who),
        "places screen": lambda conn, who: solutions.places_screen(conn, who, limit=2001),
    }
    print(f"workspace reads — {site_count:,} sites, code of {Path(mapservice.__file__).parent.parent}; load average "
          f"{harness.load_average()}")
    print("| account | read | p50 ms | max ms | rows |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, who in actors.items():
        for read, call in reads.items():
            with engine.connect() as conn:
                rows = call(conn, who)
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    call(conn, who)
                    times.append((time.perf_counter() - started) * 1000)
                conn.rollback()
            print(f"| {name} | {read} | {statistics.median(times):.1f} | {max(times):.1f} | {len(rows)} |",
                  flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
