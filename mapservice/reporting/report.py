"""A period's report: live while the period runs (cached until the catalogue or the figures change), frozen
into a snapshot once it closed, and the evolution of a scope over the last periods.

A closed period is frozen by `mapservice report freeze` (run it from cron on the first day of every odd month),
or by the first reading of the period that just closed. Older periods that were never frozen have no report:
computing them now would pass today's catalogue off as history."""
from __future__ import annotations

import datetime as dt
import json
import threading

from cachetools import LRUCache
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..errors import NotFound
from . import distances, indicators
from .access import Place
from .periods import Period

EVOLUTION_PERIODS = 6

INSERT_SNAPSHOT = text("""
INSERT INTO reporting_snapshot (period, frozen_at, scopes, zones_blanches)
VALUES (:period, :frozen_at, CAST(:scopes AS jsonb), CAST(:zones AS jsonb))
ON CONFLICT (period) DO NOTHING
""")


class ReportCache:
    """Live reports of this process, keyed on the period, the day and reporting_state.version (which every
    change of the catalogue, the error reports, the platforms or the figures moves)."""

    def __init__(self, size: int = 8):
        self._reports: LRUCache = LRUCache(size)
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._reports.get(key)

    def put(self, key, report: dict) -> None:
        with self._lock:
            self._reports[key] = report


def _now(conn: Connection) -> dt.datetime:
    return conn.scalar(text("SELECT now()"))


def live(conn: Connection, period: Period, cache: ReportCache | None = None) -> dict:
    """The report of `period` computed now from the rows, after bringing the distances up to date."""
    version = distances.refresh(conn).version
    now = _now(conn)
    key = (period.name, now.date(), version)
    if cache is not None and (cached := cache.get(key)) is not None:
        return cached
    report = {**_header(period, frozen_at=None, computed_at=now), **indicators.compute(conn, period, now)}
    if cache is not None:
        cache.put(key, report)
    return report


def _header(period: Period, frozen_at, computed_at) -> dict:
    return {"period": period.name, "label": period.label, "start": period.start.isoformat(),
            "end": (period.end - dt.timedelta(days=1)).isoformat(), "frozen": frozen_at is not None,
            "frozen_at": frozen_at.isoformat() if frozen_at else None,
            "computed_at": computed_at.isoformat(), "population_basis": indicators.POPULATION_BASIS,
            "zone_blanche_definition": (
                f"commune (arrondissement pour Paris, Lyon et Marseille) dont la mairie est à plus de "
                f"{indicators.WHITE_ZONE_KM} km à vol d'oiseau de toute structure innovante (micro-lycée…), de tout "
                "lieu d'apprentissage (CFA, UFA) et de toute mission locale publiés")}


def freeze(conn: Connection, period: Period) -> bool:
    """Stores the report of a closed period as computed now; False when it was already frozen."""
    report = live(conn, period)
    frozen = conn.execute(INSERT_SNAPSHOT, {
        "period": period.name, "frozen_at": report["computed_at"], "scopes": json.dumps(report["scopes"]),
        "zones": json.dumps(report["zones_blanches"], default=str)}).rowcount
    return bool(frozen)


def freeze_closed(conn: Connection) -> list[Period]:
    """Freezes the period that just closed, if not yet: what cron runs."""
    closed = Period.containing(_now(conn).date()).previous()
    return [closed] if freeze(conn, closed) else []


def national(conn: Connection, period: Period, cache: ReportCache | None = None) -> dict:
    """The whole report of `period`: frozen, live, or NotFound for an old period never frozen."""
    today = _now(conn).date()
    row = conn.execute(text("SELECT frozen_at, scopes, zones_blanches FROM reporting_snapshot WHERE period = :p"),
                       {"p": period.name}).mappings().first()
    if row is None and period.is_closed(today):
        if period != Period.containing(today).previous():
            raise NotFound(f"La période {period.label} n'a pas été figée quand elle s'est terminée : il n'y a pas "
                           "de rapport pour elle.", parameter="period")
        freeze(conn, period)
        return national(conn, period, cache)
    if row is not None:
        return {**_header(period, row["frozen_at"], row["frozen_at"]), "scopes": row["scopes"],
                "zones_blanches": row["zones_blanches"]}
    if period > Period.containing(today):
        raise NotFound(f"La période {period.label} n'a pas commencé.", parameter="period")
    return live(conn, period, cache)


def children(place: Place, scopes: dict) -> list[str]:
    """The keys of the scopes one level down: académies of the country, départements and platforms of an
    académie, platforms of a département."""
    kind, code = place.scope.kind, place.scope.code
    keys = []
    for key, figures in scopes.items():
        k = figures["scope"]["kind"]
        if kind == "national" and k == "academie":
            keys.append(key)
        elif kind == "academie" and k in ("departement", "platform") and figures["scope"].get("academie") == code:
            keys.append(key)
        elif kind == "departement" and k == "platform" and figures["scope"].get("departement") == code:
            keys.append(key)
    return sorted(keys, key=lambda k: (scopes[k]["scope"]["kind"], scopes[k]["scope"]["name"]))


def for_scope(conn: Connection, place: Place, period: Period, cache: ReportCache | None = None) -> dict:
    """One scope's report: its figures, those of the scopes one level down, its zones blanches and its
    evolution over the last periods."""
    report = national(conn, period, cache)
    key = place.scope.key
    figures = report["scopes"].get(key) or {}
    zones = [z for z in report["zones_blanches"] if _within(z, place)]
    header = {k: v for k, v in report.items() if k not in ("scopes", "zones_blanches")}
    return {**header, "scope": {"kind": place.scope.kind, "code": place.scope.code, "name": place.name},
            **{k: v for k, v in figures.items() if k != "scope"},
            "children": [report["scopes"][k] for k in children(place, report["scopes"])],
            "zones_blanches_communes": zones,
            "evolution": evolution(conn, place, period, report)}


def _within(zone: dict, place: Place) -> bool:
    kind, code = place.scope.kind, place.scope.code
    return (kind == "national" or (kind == "academie" and zone["academie"] == code)
            or (kind == "departement" and zone["departement"] == code)
            or (kind == "platform" and str(zone["platform"]) == code))


def evolution(conn: Connection, place: Place, period: Period, report: dict) -> list[dict]:
    """Key figures of the scope for the last periods that have a report (frozen ones, and this one)."""
    names = [p.name for p in period.last(EVOLUTION_PERIODS)[:-1]]
    rows = conn.execute(text("""SELECT period, scopes -> :key AS figures FROM reporting_snapshot
                                WHERE period = ANY(:names) ORDER BY period"""),
                        {"key": place.scope.key, "names": names}).mappings().all()
    series = [(r["period"], r["figures"]) for r in rows if r["figures"]]
    series.append((period.name, report["scopes"].get(place.scope.key)))
    return [_key_figures(Period.parse(name), figures) for name, figures in series if figures]


def _key_figures(period: Period, figures: dict) -> dict:
    cat, act = figures["catalogue"], figures["activity"]
    return {"period": period.name, "label": period.label, "published": cat["published"], "new": cat["new"],
            "archived": cat["archived"], "vacant_places": cat["vacant_places"], "checked_share": cat["checked_share"],
            "zones_blanches_population": figures["zones_blanches"]["population"],
            **{f: act[f] for f in indicators.FIGURES}}


def periods(conn: Connection) -> list[dict]:
    """The current period and the frozen ones, latest first."""
    current = Period.containing(_now(conn).date())
    frozen = dict(conn.execute(text("SELECT period, frozen_at FROM reporting_snapshot")).all())
    return [{"period": name, "label": Period.parse(name).label, "current": name == current.name,
             "frozen": name in frozen, "frozen_at": frozen[name].isoformat() if name in frozen else None}
            for name in sorted({current.name, *frozen}, reverse=True)]
