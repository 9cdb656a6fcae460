"""Settings, grouped by concern and read from the environment when asked for (never at import time).

Each group reads its own variables (names are documented in the README): `Settings.from_env()` builds them
all, and takes overrides per group, e.g. `Settings.from_env(database={"url": ...}, tiles={"cache_mb": 8})`.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError


def _group(prefix: str = "MAPSERVICE_") -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="forbid", frozen=True, populate_by_name=True)


class DatabaseSettings(BaseSettings):
    """Where the data lives. Without a URL, the private PostGIS cluster kept under data_dir is used."""

    model_config = _group()

    url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL", "MAPSERVICE_DATABASE_URL"))
    # A streaming replica for public reads (writes and a writer's own reads stay on the primary).
    replica_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_REPLICA_URL", "MAPSERVICE_DATABASE_REPLICA_URL"))
    # After a write, the writer's reads go to the primary for this long (the replica may lag behind).
    read_primary_after_write_s: float = 10
    # How long the replica is left aside after it failed to answer (reads go to the primary meanwhile).
    replica_retry_s: float = 10
    # Server-side prepared statements for the hot reads; off behind PgBouncer in transaction pooling, where
    # consecutive statements may reach different server connections.
    prepared_statements: bool = True
    # Connections per process to the database (and to the replica).
    pool_size: int = 5
    data_dir: Path = Path(".data")
    # Unprivileged system user that owns the private cluster when the service is started as root.
    cluster_user: str = "mapservice"
    pg_bindir: Path | None = None

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()


class ServerSettings(BaseSettings):
    """How `mapservice serve` runs the app."""

    model_config = _group()

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    # Threads per worker (gunicorn's gthread workers): a request waiting on the database holds a thread, not
    # the whole worker.
    threads: int = 4
    # Seconds a worker may spend on one request before gunicorn restarts it.
    timeout_s: int = 30
    # Reverse proxies in front that set X-Forwarded-For/-Proto/-Host/-Prefix (1 behind the shipped nginx): only
    # then are those headers trusted for the client's address and absolute URLs (TileJSON, style, manifest, links).
    proxies: int = 0
    # Largest request body accepted (bytes); a larger one is refused with 413 before it is read.
    max_body_bytes: int = 64 * 1024
    # Logs: one JSON object per line (for a log collector), or plain text.
    log_format: Literal["json", "text"] = "json"


class SecuritySettings(BaseSettings):
    """Secrets. In production the secret key must be given; in the two-command setup one is generated and
    kept in the data directory (like the cluster's password), so sessions survive a restart."""

    model_config = _group()

    environment: Literal["development", "production"] = Field(
        default="development", validation_alias=AliasChoices("MAPSERVICE_ENV", "environment"))
    secret_key: str | None = None

    def resolved_secret_key(self, data_dir: Path) -> str:
        if self.secret_key:
            return self.secret_key
        if self.environment == "production":
            raise ConfigurationError(
                "MAPSERVICE_SECRET_KEY est obligatoire en production (MAPSERVICE_ENV=production) : une longue "
                "valeur aléatoire, par exemple la sortie de `python -c 'import secrets; print(secrets.token_hex(32))'`.")
        path = data_dir / "secret_key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip()


class ApiSettings(BaseSettings):
    """The public JSON API."""

    model_config = _group()

    nearest_default_limit: int = 10
    nearest_max_limit: int = 100
    # Without an explicit radius, nearest search widens through these radii until it has `limit` results,
    # then searches everywhere.
    nearest_radius_steps_km: tuple[float, ...] = (10, 30, 60, 100)
    nearest_max_radius_km: float = 200
    items_default_limit: int = 100
    items_max_limit: int = 1000
    # Web origins allowed to call the API from a browser (CORS), e.g. ["https://masecondechance.fr"].
    cors_origins: list[str] = []
    # Cache-Control max-age of public API answers, in seconds.
    cache_max_age: int = Field(default=300, validation_alias=AliasChoices("MAPSERVICE_API_CACHE_MAX_AGE",
                                                                          "cache_max_age"))


class TileSettings(BaseSettings):
    """Vector tiles: memory for the tile cache (per process), the deepest zoom where sites are clustered, the
    cap of features per tile, how long clients may reuse a tile without asking (0: they revalidate every time
    with If-None-Match, so an edit shows at once; the answer is then a small 304), and how long the cache trusts
    its tiles when it hears no announcement of a change (a bound should one be lost; 0: it asks the database on
    every request)."""

    model_config = _group("MAPSERVICE_TILE_")

    cache_mb: int = 128
    cluster_max_zoom: int = 11
    max_features: int = 5000
    max_age: int = 0
    cache_recheck_s: float = 1.0
    # Optional raster basemap under the vector layers, e.g. "https://tiles.example.org/{z}/{x}/{y}.png".
    # Off by default: the public pages make no request to a third party.
    raster_basemap_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "MAPSERVICE_RASTER_BASEMAP_URL", "raster_basemap_url"))
    raster_basemap_attribution: str | None = Field(default=None, validation_alias=AliasChoices(
        "MAPSERVICE_RASTER_BASEMAP_ATTRIBUTION", "raster_basemap_attribution"))


class AppDataSettings(BaseSettings):
    """What map clients and the mobile app take away: the PMTiles archives (where they are written, how deep,
    the public address they are published at when a static host or CDN serves them instead of us), how often a
    background thread of the service rebuilds the out-of-date archives and offline bundles (0: never, use the
    `mapservice appdata refresh` command), and an optional self-hosted street basemap (a PMTiles archive of
    OpenStreetMap, e.g. a Protomaps build: a local file we serve, or its URL on our own static host)."""

    model_config = _group("MAPSERVICE_APPDATA_")

    archive_dir: Path | None = None  # default: <data_dir>/archives
    archive_maxzoom: int = 14
    archive_connections: int = 2  # database connections rendering an archive's tiles at once
    archive_public_url: str | None = None  # e.g. "https://cdn.example.fr/tiles/": <url><name>.pmtiles
    refresh_s: int = 0
    street_basemap: str | None = Field(default=None, validation_alias=AliasChoices(
        "MAPSERVICE_STREET_BASEMAP", "street_basemap"))
    street_basemap_attribution: str = Field(
        default="© les contributeurs d'OpenStreetMap", validation_alias=AliasChoices(
            "MAPSERVICE_STREET_BASEMAP_ATTRIBUTION", "street_basemap_attribution"))

    def resolved_archive_dir(self, data_dir: Path) -> Path:
        return (self.archive_dir or data_dir / "archives").expanduser().resolve()


class PageSettings(BaseSettings):
    """The public map page: the national help line and chat (shown only when set), e.g. "0 800 12 34 56" and
    "https://chat.example.fr/"; after how many days without a check a solution is shown as not recently
    checked."""

    model_config = _group()

    help_line_phone: str | None = None
    help_line_hours: str | None = None
    help_chat_url: str | None = None
    stale_after_days: int = 180


class GeocoderSettings(BaseSettings):
    """An address geocoder speaking the addok API (e.g. a self-hosted addok); none by default."""

    model_config = _group("MAPSERVICE_GEOCODER_")

    url: str | None = None
    timeout_s: float = 5.0


class WorkspaceSettings(BaseSettings):
    """The teams' workspace: how long a session, an invitation and a reset link last; failed logins allowed per
    account and per address within the window; after how many days a site is due for a check; the public URL
    put in e-mailed links (default: the URL the request came to); whether cookies are Secure (default: in
    production)."""

    model_config = _group("MAPSERVICE_WORKSPACE_")

    session_hours: float = 8
    invitation_days: float = 7
    reset_hours: float = 2
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_window_minutes: float = 15
    overdue_days: int = 180
    public_url: str | None = None
    secure_cookies: bool | None = None


class MailSettings(BaseSettings):
    """The SMTP server that sends invitations and password resets. Without a host, the workspace shows the
    one-time link to the administrator, who passes it on."""

    model_config = _group("MAPSERVICE_SMTP_")

    host: str | None = None
    port: int = 587
    user: str | None = None
    password: str | None = None
    # none (a local relay), starttls (port 587) or ssl (port 465)
    tls: Literal["none", "starttls", "ssl"] = "starttls"
    from_address: str = "ne-pas-repondre@masecondechance.invalid"
    timeout_s: float = 10.0


class ImportSettings(BaseSettings):
    """Imports of official and partners' files: the largest file accepted (the national annuaire is ~40 MB), and
    where the files uploaded in the workspace are kept (outside the code; default: the data directory's
    `imports/`)."""

    model_config = _group("MAPSERVICE_IMPORT_")

    max_mb: float = 200
    upload_dir: Path | None = None

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1_000_000)

    def resolved_upload_dir(self, data_dir: Path) -> Path:
        return (self.upload_dir or data_dir / "imports").expanduser().resolve()


class LimitSettings(BaseSettings):
    """Rate limits of the write paths (Flask-Limiter). Storage in memory counts per process, enough on one
    machine; with several app servers, point them all at one Redis (redis://host:6379/0)."""

    model_config = _group("MAPSERVICE_RATELIMIT_")

    enabled: bool = True
    storage_url: str = "memory://"
    # Flask-Limiter notation, several limits separated by ';'.
    error_reports: str = "5 per minute;50 per day"
    login: str = "10 per minute;100 per hour"
    writes: str = "60 per minute"


GROUPS = {"database": DatabaseSettings, "server": ServerSettings, "security": SecuritySettings,
          "api": ApiSettings, "tiles": TileSettings, "page": PageSettings, "geocoder": GeocoderSettings,
          "workspace": WorkspaceSettings, "mail": MailSettings,
          "imports": ImportSettings, "appdata": AppDataSettings, "limits": LimitSettings}


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    tiles: TileSettings = field(default_factory=TileSettings)
    page: PageSettings = field(default_factory=PageSettings)
    geocoder: GeocoderSettings = field(default_factory=GeocoderSettings)
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    imports: ImportSettings = field(default_factory=ImportSettings)
    appdata: AppDataSettings = field(default_factory=AppDataSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)

    @classmethod
    def from_env(cls, **overrides: dict) -> Settings:
        """Every group from the environment, with `overrides` (per group: a dict of field values) on top."""
        unknown = set(overrides) - GROUPS.keys()
        if unknown:
            raise ConfigurationError(f"Unknown settings groups: {', '.join(sorted(unknown))}")
        return cls(**{name: group(**overrides.get(name, {})) for name, group in GROUPS.items()})

    @property
    def secret_key(self) -> str:
        return self.security.resolved_secret_key(self.database.resolved_data_dir)
