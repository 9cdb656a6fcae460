"""The core does not depend on Flask (pygeoapi's rule): loaders, queries and tiles run without it."""
import subprocess
import sys

CORE = ["mapservice.db", "mapservice.queries", "mapservice.params", "mapservice.places", "mapservice.coverage",
        "mapservice.ogc", "mapservice.tiles", "mapservice.reference", "mapservice.demo", "mapservice.cluster",
        "mapservice.datasets", "mapservice.models", "mapservice.error_reports"]


def test_core_modules_import_without_flask():
    code = f"import sys\nfor m in {CORE!r}: __import__(m)\nprint('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
