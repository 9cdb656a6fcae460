"""Fixtures: a real PostGIS for every test session (no SQLite, no mocks).

The server is DATABASE_URL when set, otherwise the project's private cluster (.data/). A template database
holding the schema, the reference geography and the demo catalogue is built once per version of the code
and data that make it; each test session then gets its own throwaway copy of it.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from mapservice import create_app
from mapservice.cluster import EmbeddedCluster
from mapservice.db import make_engine, transaction, upgrade
from mapservice.demo import load_demo
from mapservice.reference import load_reference
from mapservice.reporting import distances

# The browser fixtures (live_server, browser, visit): one Chromium for every module that drives one.
pytest_plugins = ["tests.page_browser"]

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"




def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def template_fingerprint() -> str:
    """Changes whenever the schema, the loaders or their data change."""
    digest = hashlib.sha256()
    sources = sorted((ROOT / "mapservice" / "migrations").rglob("*.py")) + [
        ROOT / "mapservice" / "reference.py", ROOT / "mapservice" / "demo.py",
        ROOT / "mapservice" / "reporting" / "distances.py", *sorted((ROOT / "data").glob("*.csv"))]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


@contextlib.contextmanager
def serving(app):
    """`app` on a free loopback port, in a thread, for clients that need real HTTP (GDAL, Chromium)."""
    http_server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http_server.server_port}"
    finally:
        http_server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def server():
    """The admin URL of the server; the private cluster is stopped afterwards if this session started it."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    cluster = EmbeddedCluster(ROOT / ".data", log=lambda _: None)
    was_running = cluster.is_running()
    yield cluster.start()
    if not was_running:
        cluster.stop()


def ensure_template(server: str) -> str:
    """The template database for this version of the code and data, built when missing."""
    template = f"mapservice_test_tpl_{template_fingerprint()}"
    admin = make_engine(with_database(server, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT datistemplate FROM pg_database WHERE datname = :n"), {"n": template}):
            # Rebuild from scratch: an older or half-built template is dropped with the other stale ones.
            for (old,) in conn.execute(text(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'mapservice_test_tpl_%'")).all():
                conn.execute(text(f'ALTER DATABASE "{old}" IS_TEMPLATE false'))
                conn.execute(text(f'DROP DATABASE "{old}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{template}"'))
            engine = make_engine(with_database(server, template))
            upgrade(engine)
            with transaction(engine) as db:
                load_reference(db, log=lambda _: None)
            with transaction(engine) as db:
                load_demo(db, log=lambda _: None)
            with transaction(engine) as db:
                distances.refresh(db)
            engine.dispose()
            conn.execute(text(f'ALTER DATABASE "{template}" IS_TEMPLATE true'))
    admin.dispose()
    return template


@contextlib.contextmanager
def throwaway_database(server: str, prefix: str, template: str | None = None):
    """A new database (empty, or a copy of `template`), dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(with_database(server, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield with_database(server, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def template(server) -> str:
    return ensure_template(server)


@pytest.fixture(scope="session")
def database_url(server, template):
    """The session's shared copy of the template (schema, reference geography, demo catalogue), for tests that
    only read. A test that writes takes a fresh copy of its own instead (fresh_engine, fresh_app)."""
    with throwaway_database(server, "mapservice_test", template=template) as url:
        yield url


@pytest.fixture
def fresh_database_url(server, template):
    """A test's own copy of the template: write anything, it is dropped afterwards."""
    with throwaway_database(server, "mapservice_fresh", template=template) as url:
        yield url


@pytest.fixture
def fresh_engine(fresh_database_url):
    engine = make_engine(fresh_database_url)
    yield engine
    engine.dispose()


def make_test_app(database_url: str, **overrides):
    """An app on `database_url`. Rate limits are off unless a test turns them on (tests/test_limits.py): the
    session's shared app answers far more writes than a visitor may send."""
    overrides.setdefault("limits", {"enabled": False})
    app = create_app({"database": {"url": database_url}, **overrides})
    app.config["TESTING"] = True
    return app


def dispose_app(app) -> None:
    app.extensions["mapservice.tile_cache"].close()
    app.extensions["mapservice.databases"].dispose()


@pytest.fixture
def fresh_app(fresh_database_url):
    """An app on the test's own copy of the database, for tests that write through it."""
    app = make_test_app(fresh_database_url)
    yield app
    dispose_app(app)


@pytest.fixture(scope="session")
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_database_url(server):
    """A brand-new empty database, dropped after the test."""
    with throwaway_database(server, "mapservice_empty") as url:
        yield url


@pytest.fixture(scope="session")
def app(database_url):
    app = make_test_app(database_url)
    yield app
    dispose_app(app)


ANNUAIRE_35 = SHARED_DATA / "annuaire-education-extrait-35" / "fr-en-annuaire-education_dep035.csv"


@pytest.fixture(scope="session")
def addok_url(tmp_path_factory):
    """A real addok (with redis-server) indexed with the addresses of the annuaire extract."""
    if not ANNUAIRE_35.exists():
        pytest.skip("the annuaire extract in ../shared/data is absent")
    from .addok_server import addok_service

    with addok_service(tmp_path_factory.mktemp("addok"), ANNUAIRE_35) as url:
        yield url


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver for the whole session (its sync API allows one at a time); browser fixtures
    launch their Chromium from it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def fresh_client(fresh_app):
    return fresh_app.test_client()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
