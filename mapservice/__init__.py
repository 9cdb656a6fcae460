"""mapservice: the geospatial catalogue of "solutions de raccrochage" behind masecondechance."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Settings | dict | None = None) -> Flask:
    """Application factory. `config` is a Settings object, or overrides of the environment's settings per
    group, e.g. {"database": {"url": ...}} (see mapservice.settings). Flask is imported here only: the core
    modules (search, loaders, tiles...) do not depend on it."""
    from flask import Flask
    from flask_compress import Compress

    from werkzeug.middleware.proxy_fix import ProxyFix

    from . import db
    from .web import (api, appdata, connection, error_reports, health, imports, limits, map_page, observability,
                      problems, reporting, security, tiles, workspace)

    if isinstance(config, Settings):
        settings = config
    else:
        settings = Settings.from_env(**(config or {}))
    # The repository's static/ folder is served by web/map_page, with versioned, long-cached URLs.
    app = Flask(__name__, static_folder=None)
    app.config["SETTINGS"] = settings
    app.config["SECRET_KEY"] = settings.secret_key
    # A larger body is refused with 413 before it is read.
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    if settings.server.proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.server.proxies, x_proto=settings.server.proxies,
                                x_host=settings.server.proxies, x_prefix=settings.server.proxies)
    app.extensions["mapservice.databases"] = databases = db.databases(settings)
    app.extensions["mapservice.engine"] = databases.primary
    connection.init_app(app)
    app.config["COMPRESS_MIMETYPES"] = [
        "text/html", "text/css", "text/javascript", "application/javascript", "application/json",
        "application/geo+json", "application/problem+json", "application/vnd.mapbox-vector-tile",
    ]
    app.config["COMPRESS_ALGORITHM"] = ["gzip"]
    app.config["COMPRESS_MIN_SIZE"] = 500
    Compress(app)
    problems.register(app)
    observability.init_app(app)
    security.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(map_page.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(tiles.bp, url_prefix="/tiles")
    app.register_blueprint(error_reports.bp, url_prefix="/api/v1")
    reporting.init_app(app)
    workspace.init_app(app)
    app.register_blueprint(imports.bp)
    app.register_blueprint(appdata.bp, url_prefix="/api/v1")
    if settings.appdata.refresh_s > 0:
        from .appdata.refresh import Refresher

        refresher = Refresher(app.extensions["mapservice.engine"], settings, settings.appdata.refresh_s,
                              on_error=lambda exc: app.logger.exception("appdata refresh failed", exc_info=exc))
        app.extensions["mapservice.appdata_refresher"] = refresher
        refresher.start()
    limits.init_app(app)  # last: it limits the write routes of every blueprint registered above
    return app
