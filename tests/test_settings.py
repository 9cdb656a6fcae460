"""Settings are read from the environment when asked, grouped by concern; secrets are never left to chance."""
import stat

import pytest

from mapservice import create_app
from mapservice.errors import ConfigurationError
from mapservice.settings import Settings


def test_groups_read_their_own_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("MAPSERVICE_TILE_CACHE_MB", "7")
    monkeypatch.setenv("MAPSERVICE_NEAREST_MAX_LIMIT", "42")
    monkeypatch.setenv("MAPSERVICE_API_CACHE_MAX_AGE", "60")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example.invalid/x")
    settings = Settings.from_env(page={"help_line_phone": "0 800 00 00 00"})
    assert settings.tiles.cache_mb == 7
    assert settings.api.nearest_max_limit == 42 and settings.api.cache_max_age == 60
    assert settings.database.url == "postgresql://u:p@db.example.invalid/x"
    assert settings.page.help_line_phone == "0 800 00 00 00"


def test_a_misspelt_override_is_refused():
    with pytest.raises(ConfigurationError):
        Settings.from_env(tile={"cache_mb": 1})
    with pytest.raises(ValueError):
        Settings.from_env(tiles={"cache_megabytes": 1})


def test_in_development_a_secret_key_is_generated_once_and_kept_private(monkeypatch, tmp_path):
    monkeypatch.delenv("MAPSERVICE_SECRET_KEY", raising=False)
    monkeypatch.delenv("MAPSERVICE_ENV", raising=False)
    settings = Settings.from_env(database={"data_dir": tmp_path})
    key = settings.secret_key
    assert len(key) >= 64
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert Settings.from_env(database={"data_dir": tmp_path}).secret_key == key


def test_in_production_a_missing_secret_key_stops_the_start(monkeypatch, tmp_path, database_url):
    monkeypatch.delenv("MAPSERVICE_SECRET_KEY", raising=False)
    monkeypatch.setenv("MAPSERVICE_ENV", "production")
    with pytest.raises(ConfigurationError) as refused:
        create_app({"database": {"url": database_url, "data_dir": tmp_path}})
    assert "MAPSERVICE_SECRET_KEY" in refused.value.detail
    assert not (tmp_path / "secret_key").exists()
    monkeypatch.setenv("MAPSERVICE_SECRET_KEY", "x" * 64)
    app = create_app({"database": {"url": database_url, "data_dir": tmp_path}})
    assert app.config["SECRET_KEY"] == "x" * 64
    app.extensions["mapservice.databases"].dispose()
