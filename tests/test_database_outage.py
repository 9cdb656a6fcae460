"""The database stops under load, then comes back on another port: the service answers 503 + Retry-After
meanwhile (one log line per request, no traceback), keeps serving its page and its cached tiles, and is
whole again within seconds without a restart. Runs gunicorn (the shipped configuration) on a throwaway
private cluster of its own, never the shared one."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import requests

from mapservice.db import make_engine, upgrade

from .servers import gunicorn, throwaway_cluster

NEAREST = "/api/v1/solutions/nearest?lat=45.76&lon=4.83"
ITEMS = "/api/v1/ogc/collections/solutions/items?limit=5"
TILE = "/tiles/solutions/5/16/11.mvt"
READS = (NEAREST, ITEMS, TILE, "/")


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("outage") / "data"
    with throwaway_cluster(root) as cluster:
        engine = make_engine(cluster.url())
        upgrade(engine)
        engine.dispose()
        yield cluster, root


class Load:
    """Clients asking in a loop, every answer recorded with its time."""

    def __init__(self, base: str, clients: int = 6):
        self.base, self.clients = base, clients
        self.answers: list[tuple[float, str, int, dict]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def _run(self, i: int) -> None:
        session = requests.Session()
        n = i
        while not self._stop.is_set():
            url = READS[n % len(READS)]
            n += 1
            try:
                response = session.get(self.base + url, timeout=10)
                self.answers.append((time.monotonic(), url, response.status_code, dict(response.headers)))
            except requests.RequestException as exc:
                self.answers.append((time.monotonic(), url, -1, {"error": str(exc)}))
            time.sleep(0.01)

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def test_database_stopped_under_load(own_cluster, tmp_path):
    cluster, data_dir = own_cluster
    log_file = tmp_path / "gunicorn.log"
    env = {"MAPSERVICE_DATA_DIR": str(data_dir), "MAPSERVICE_LOG_FORMAT": "json", "DATABASE_URL": ""}
    old_port = cluster.status().port
    with gunicorn(env, workers=2, threads=4, log_file=log_file) as base:
        requests.get(base + TILE, timeout=10)  # the tile is now in (at least one worker's) cache
        with Load(base) as load:
            time.sleep(2)
            stopped_at = time.monotonic()
            cluster.stop()
            time.sleep(3)
            # The old port is taken meanwhile: the cluster comes back on another one.
            with socket.socket() as squatter:
                squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                squatter.bind(("127.0.0.1", old_port))
                squatter.listen()
                cluster.start()
                back_at = time.monotonic()
                time.sleep(6)
    assert cluster.status().port != old_port

    before = [a for a in load.answers if a[0] < stopped_at]
    during = [a for a in load.answers if stopped_at <= a[0] < back_at]
    settled = [a for a in load.answers if a[0] >= back_at + 5]
    assert before and during and settled
    assert {a[2] for a in before} <= {200, 204}
    assert {a[2] for a in during} <= {200, 204, 503}, {a[2] for a in during}
    unavailable = [a for a in during if a[2] == 503]
    assert unavailable and all(int(a[3]["Retry-After"]) > 0 for a in unavailable)
    assert all(a[3]["Content-Type"] == "application/problem+json" for a in unavailable)
    # the app shell and the cached tile keep being served
    assert all(a[2] == 200 for a in during if a[1] == "/")
    assert any(a[1] == TILE and a[2] == 204 and a[3].get("X-Tile-Cache") == "stale" for a in during)
    # back without a restart, on the new port
    assert {a[2] for a in settled} <= {200, 204}, [a[1:3] for a in settled if a[2] not in (200, 204)][:5]
    assert {a[1] for a in settled} == set(READS)

    log = log_file.read_text()
    assert "Traceback" not in log
    lines_503 = [line for line in log.splitlines() if '"status": 503' in line]
    assert len(lines_503) == len(unavailable) + sum(1 for a in load.answers if a[0] >= back_at and a[2] == 503)
    assert all('"error": "database_unavailable"' in line for line in lines_503)
