"""Keeping the app's data up to date after changes: rebuild the offline bundles and the PMTiles archives whose
area changed. Run by `mapservice appdata refresh` (e.g. from cron), or every `MAPSERVICE_APPDATA_REFRESH_S`
seconds by a background thread of the service. One refresher at a time across processes and machines (a
PostgreSQL advisory lock); each bundle and archive is built in its own snapshot (REPEATABLE READ) and written
all or nothing (a bundle's row commits with its build; an archive file replaces the old one atomically)."""
from __future__ import annotations

import threading
from typing import Callable

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.engine import Engine

from .. import db
from ..settings import Settings
from . import archives, bundles

LOCK = "hashtext('mapservice.appdata.refresh')"


def archive_settings(settings: Settings) -> archives.ArchiveSettings:
    return archives.ArchiveSettings(
        directory=settings.appdata.resolved_archive_dir(settings.database.resolved_data_dir),
        maxzoom=settings.appdata.archive_maxzoom, cluster_max_zoom=settings.tiles.cluster_max_zoom,
        max_features=settings.tiles.max_features, connections=settings.appdata.archive_connections)


def _snapshot(engine: Engine):
    return engine.connect().execution_options(isolation_level="REPEATABLE READ")


def refresh(engine: Engine, settings: Settings, with_bundles: bool = True, with_archives: bool = True,
            log: Callable[[str], None] = lambda _: None) -> bool:
    """Rebuild what is out of date; False when another refresher holds the lock (nothing done)."""
    # A session-level lock, held outside any transaction (autocommit): nothing to commit on the way out.
    with db.read_only(engine.connect()) as lock_conn:
        if not lock_conn.execute(text(f"SELECT pg_try_advisory_lock({LOCK})")).scalar():
            return False
        try:
            if with_bundles:
                with _snapshot(engine) as conn:
                    areas = bundles.all_areas(conn)
                for area in areas:
                    try:
                        with _snapshot(engine) as conn, conn.begin():
                            for bundle in bundles.refresh(conn, [area]):
                                log(f"bundle {area.kind} {area.code}: {bundle.size} bytes, {bundle.solutions} "
                                    f"solutions, built in {bundle.build_ms} ms")
                    except OperationalError as exc:
                        # A request built the same bundle meanwhile (serialization failure): it is up to date.
                        log(f"bundle {area.kind} {area.code}: skipped ({exc.orig.__class__.__name__})")
            if with_archives:
                with _snapshot(engine) as conn:
                    areas = archives.archive_areas(conn)
                for area in areas:
                    for tileset in archives.TILESETS:
                        with _snapshot(engine) as conn, conn.begin():
                            for archive in archives.refresh(conn, archive_settings(settings), [area], (tileset,),
                                                            connect=engine.connect):
                                log(f"archive {archive.name}: {archive.tiles} tiles, {archive.size} bytes, "
                                    f"built in {archive.build_s} s")
        finally:
            lock_conn.execute(text(f"SELECT pg_advisory_unlock({LOCK})"))
    return True


class Refresher(threading.Thread):
    """Calls `refresh` every `period_s` seconds until stopped (a daemon thread of the web process)."""

    def __init__(self, engine: Engine, settings: Settings, period_s: float,
                 on_error: Callable[[Exception], None] = lambda _: None):
        super().__init__(name="appdata-refresher", daemon=True)
        self._engine, self._settings, self._period_s, self._on_error = engine, settings, period_s, on_error
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._period_s):
            try:
                refresh(self._engine, self._settings)
            except Exception as exc:  # the next round tries again; the service keeps serving
                self._on_error(exc)

    def stop(self) -> None:
        self._stopped.set()
