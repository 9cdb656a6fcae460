"""One settings object, read from the environment when asked for (never at import time)."""
from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings. Every field can be set as MAPSERVICE_<NAME>; the database also as DATABASE_URL."""

    model_config = SettingsConfigDict(env_prefix="MAPSERVICE_", extra="ignore")

    # None means: use the private PostGIS cluster kept under data_dir.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MAPSERVICE_DATABASE_URL")
    )
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    # Unprivileged system user that owns the private cluster when the service is started as root.
    cluster_user: str = "mapservice"
    pg_bindir: Path | None = None
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
    api_cache_max_age: int = 300
    # Vector tiles: memory for the tile cache (per process), the deepest zoom where sites are clustered,
    # the cap of features per tile, and how long clients may reuse a tile without asking (0: they revalidate
    # every time with If-None-Match, so an edit shows at once; the answer is then a small 304).
    tile_cache_mb: int = 128
    tile_cluster_max_zoom: int = 11
    tile_max_features: int = 5000
    tile_max_age: int = 0
    # Optional raster basemap under the vector layers, e.g. "https://tiles.example.org/{z}/{x}/{y}.png".
    # Off by default: the public pages make no request to a third party.
    raster_basemap_url: str | None = None
    raster_basemap_attribution: str | None = None
    # The public map page: the national help line and chat (shown only when set), e.g. "0 800 12 34 56" and
    # "https://chat.example.fr/"; after how many days without a check a solution is shown as not recently checked.
    help_line_phone: str | None = None
    help_line_hours: str | None = None
    help_chat_url: str | None = None
    stale_after_days: int = 180

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()
