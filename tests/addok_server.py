"""A real addok geocoder for the tests: Debian's redis-server and PyPI's addok (+ addok-fr, addok-france), on loopback ports, indexed with the addresses of the annuaire de l'éducation extract in
../shared/data (its schools' street addresses and positions, and their communes). Nothing is mocked: the
service's geocoding client talks HTTP to addok, which searches Redis."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import requests

from mapservice.cluster import free_port

ADDOK_CONFIG = """
REDIS = {{"host": "127.0.0.1", "port": {redis_port}, "indexes": {{"db": 0}}, "documents": {{"db": 1}}}}
BATCH_WORKERS = 1
LOG_DIR = {log_dir!r}
FILTERS = ["type", "postcode", "citycode"]
QUERY_PROCESSORS_PYPATHS = [
    "addok.helpers.text.check_query_length",
    "addok_france.extract_address",
    "addok_france.clean_query",
    "addok_france.remove_leading_zeros",
]
SEARCH_RESULT_PROCESSORS_PYPATHS = [
    "addok.helpers.results.match_housenumber",
    "addok_france.make_labels",
    "addok.helpers.results.score_by_importance",
    "addok.helpers.results.score_by_autocomplete_distance",
    "addok.helpers.results.score_by_ngram_distance",
    "addok.helpers.results.score_by_geo_distance",
]
PROCESSORS_PYPATHS = [
    "addok.helpers.text.tokenize",
    "addok.helpers.text.normalize",
    "addok_france.glue_ordinal",
    "addok_france.fold_ordinal",
    "addok_france.flag_housenumber",
    "addok.helpers.text.synonymize",
    "addok_fr.phonemicize",
]
"""

HOUSENUMBER = re.compile(r"^\s*(\d+)\s*(BIS|TER|QUATER|[A-Z])?\b[\s,]*(.+)$", re.IGNORECASE)


def annuaire_documents(annuaire_csv: Path) -> list[dict]:
    """addok documents (BAN's import format) from the annuaire: one street per (commune, street) with its
    numbers, and one municipality per commune at the mean of its schools."""
    streets: dict[tuple, dict] = {}
    towns: dict[str, dict] = defaultdict(lambda: {"lons": [], "lats": []})
    with open(annuaire_csv, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            if not (row["latitude"] and row["longitude"] and row["Code_commune"]):
                continue
            lon, lat = float(row["longitude"]), float(row["latitude"])
            town = towns[row["Code_commune"]]
            town.update(name=row["Nom_commune"], postcode=row["Code postal"])
            town["lons"].append(lon)
            town["lats"].append(lat)
            found = HOUSENUMBER.match(row["Adresse_1"] or "")
            if not found:
                continue
            number = found.group(1) + (found.group(2) or "").lower()
            street_name = " ".join(found.group(3).split())
            key = (row["Code_commune"], street_name.lower())
            street = streets.setdefault(key, {
                "id": f"{row['Code_commune']}_{len(streets):05d}", "type": "street", "name": street_name,
                "postcode": row["Code postal"], "citycode": row["Code_commune"], "city": row["Nom_commune"],
                "lon": lon, "lat": lat, "importance": 0.5, "housenumbers": {}})
            street["housenumbers"][number] = {"lon": lon, "lat": lat}
    documents = list(streets.values())
    for code, town in towns.items():
        documents.append({
            "id": code, "type": "municipality", "name": town["name"], "postcode": town["postcode"],
            "citycode": code, "city": town["name"], "importance": 0.8,
            "lon": sum(town["lons"]) / len(town["lons"]), "lat": sum(town["lats"]) / len(town["lats"])})
    return documents


def _wait_for(check, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {seconds:g} s")


@contextlib.contextmanager
def addok_service(workdir: Path, annuaire_csv: Path):
    """redis-server + addok, indexed with the annuaire's addresses; yields addok's base URL."""
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    addok = str(Path(sys.executable).with_name("addok"))
    workdir.mkdir(parents=True, exist_ok=True)
    redis_port, http_port = free_port(), free_port()
    redis = subprocess.Popen(
        [redis_server, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = None
    try:
        _wait_for(lambda: subprocess.run([redis_server.replace("redis-server", "redis-cli"), "-p", str(redis_port),
                                          "ping"], capture_output=True, text=True).stdout.strip() == "PONG",
                  "redis-server")
        config = workdir / "addok_local.py"
        config.write_text(ADDOK_CONFIG.format(redis_port=redis_port, log_dir=str(workdir)))
        documents = workdir / "addresses.ndjson"
        with open(documents, "w", encoding="utf-8") as fh:
            for doc in annuaire_documents(annuaire_csv):
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        env = {**os.environ, "ADDOK_CONFIG_MODULE": str(config)}
        for command in (["batch", str(documents)], ["ngrams"]):
            subprocess.run([addok, "--config", str(config), *command], env=env, check=True,
                           capture_output=True, text=True)
        server = subprocess.Popen([addok, "--config", str(config), "serve", "--host", "127.0.0.1",
                                   "--port", str(http_port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{http_port}"
        _wait_for(lambda: requests.get(f"{url}/search/?q=rennes", timeout=1).status_code == 200, "addok")
        yield url
    finally:
        for process in (server, redis):
            if process is not None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
