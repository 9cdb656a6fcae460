"""The notebooks run against a real database (their code cells, in order, as one script)."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_against_the_database(notebook, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    cells = json.loads(notebook.read_text())["cells"]
    namespace: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{notebook.name}", "exec"), namespace)
    assert len(namespace["departements"]) == 101
    assert namespace["departements"]["solutions"].sum() > 5_000
    html = namespace["choropleth_map"].get_root().render()
    assert html.count("\"code\": \"") >= 101  # every département drawn
