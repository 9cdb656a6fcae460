"""The notebooks run against a real database (their code cells, in order, as one script), and say what they
should."""
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from mapservice.db import make_engine
from mapservice.reporting import indicators, report
from mapservice.reporting.periods import Period

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run(notebook: Path) -> dict:
    namespace: dict = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{notebook.name}", "exec"), namespace)
    return namespace


def test_the_catalogue_overview(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    namespace = run(NOTEBOOKS / "catalogue_overview.ipynb")
    assert len(namespace["departements"]) == 101
    assert namespace["departements"]["solutions"].sum() > 5_000
    html = namespace["choropleth_map"].get_root().render()
    assert html.count("\"code\": \"") >= 101  # every département drawn


def test_the_coverage_notebook_rebuilds_the_report_s_map_and_zones_blanches(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    namespace = run(NOTEBOOKS / "reporting_coverage.ipynb")
    engine = make_engine(database_url)
    with engine.begin() as conn:
        national = report.live(conn, Period.containing(conn.scalar(text("SELECT current_date"))))
    engine.dispose()
    by_type = national["scopes"]["national"]["coverage"]["by_type"]
    for solution_type, shares in namespace["coverage"].iterrows():
        for band in (f"within_{km}km" for km in indicators.BANDS_KM):
            assert shares[band] == pytest.approx(by_type[solution_type][band], abs=0.001), (solution_type, band)
    assert set(namespace["zones_blanches"]["code"]) == {z["code"] for z in national["zones_blanches"]}
    html = namespace["coverage_map"].get_root().render()
    assert html.count("\"code\": \"") >= 101 and "circle_marker" in html
