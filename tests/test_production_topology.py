"""The production topology, for real: the shipped nginx configuration (Debian's nginx, unprivileged, its own
prefix, loopback ports) in front of gunicorn's threaded workers (the shipped configuration). Fifty slow
clients do not slow anyone else down; nginx compresses, serves static files with their caching and
security headers, passes tiles and limits as the app sets them, and refuses an oversized body."""
from __future__ import annotations

import gzip
import socket
import statistics
import threading
import time

import pytest
import requests

from mapservice.cluster import free_port
from mapservice.deploy import nginx_config
from mapservice.web.security import CONTENT_SECURITY_POLICY

from .servers import gunicorn, nginx

NEAREST = "/api/v1/solutions/nearest?lat=45.76&lon=4.83"


@pytest.fixture(scope="module")
def topology(database_url, tmp_path_factory):
    """gunicorn (2 workers x 4 threads) behind nginx; yields (nginx URL, gunicorn URL)."""
    env = {"DATABASE_URL": database_url, "MAPSERVICE_PROXIES": "1", "MAPSERVICE_LOG_FORMAT": "json"}
    with gunicorn(env, workers=2, threads=4) as app_url:
        port = free_port()
        block = nginx_config(CONTENT_SECURITY_POLICY, listen=f"127.0.0.1:{port}",
                             upstream=app_url.removeprefix("http://"))
        with nginx(tmp_path_factory.mktemp("nginx"), block, port) as proxy_url:
            yield proxy_url, app_url


class SlowClients:
    """Connections that send a request header line per second and never finish (slowloris)."""

    def __init__(self, url: str, count: int):
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.count = count
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)

    def __enter__(self):
        for _ in range(self.count):
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(b"GET /api/v1/solutions/nearest?lat=45.76&lon=4.83 HTTP/1.1\r\nHost: localhost\r\n")
            self.sockets.append(sock)
        self._thread.start()
        return self

    def _drip(self) -> None:
        n = 0
        while not self._stop.wait(1):
            n += 1
            for sock in self.sockets:
                try:
                    sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())
                except OSError:
                    pass

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def timed_requests(base: str, count: int) -> list[float]:
    times = []
    session = requests.Session()
    for _ in range(count):
        start = time.perf_counter()
        response = session.get(base + NEAREST, timeout=30)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return times


def test_fifty_slow_clients_do_not_slow_down_normal_requests(topology):
    proxy, _ = topology
    calm = timed_requests(proxy, 10)
    with SlowClients(proxy, 50):
        time.sleep(1.5)
        loaded = timed_requests(proxy, 20)
    # Normal requests answer as fast as without the slow clients (within noise on a busy 2-core machine).
    assert max(loaded) < 2.0, loaded
    assert statistics.median(loaded) < max(0.5, 3 * statistics.median(calm)), (calm, loaded)


def test_text_answers_are_compressed_and_tiles_pass_through_gzipped_once(topology):
    proxy, _ = topology
    response = requests.get(proxy + NEAREST, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and response.json()["type"] == "FeatureCollection"
    raw = requests.get(proxy + "/tiles/basemap/5/16/11.mvt", headers={"Accept-Encoding": "gzip"}, stream=True)
    body = raw.raw.read()
    assert raw.headers["Content-Encoding"] == "gzip" and raw.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert gzip.decompress(body)[:1] != b"\x1f"  # gzipped once, not twice
    assert raw.headers["ETag"] and raw.headers["Cache-Control"] == "public, no-cache"
    assert raw.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    again = requests.get(proxy + "/tiles/basemap/5/16/11.mvt", headers={"If-None-Match": raw.headers["ETag"],
                                                                       "Accept-Encoding": "gzip"})
    assert again.status_code == 304


def test_static_files_come_from_nginx_with_caching_and_security_headers(topology):
    proxy, _ = topology
    versioned = requests.get(proxy + "/static/page/page.css?v=abc")
    plain = requests.get(proxy + "/static/page/page.css")
    assert versioned.status_code == 200 and "text/css" in versioned.headers["Content-Type"]
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert plain.headers["Cache-Control"] == "no-cache"
    assert versioned.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert versioned.headers["X-Content-Type-Options"] == "nosniff"
    assert "nginx/" not in versioned.headers.get("Server", "")


def test_the_page_works_through_the_proxy(topology):
    proxy, _ = topology
    home = requests.get(proxy + "/")
    assert home.status_code == 200 and home.headers["X-Request-Id"]
    assert requests.get(proxy + "/healthz", headers={"X-Request-Id": "ignored-by-nginx"}).headers["X-Request-Id"] \
        != "ignored-by-nginx"  # nginx sets its own $request_id


def test_an_oversized_body_is_refused_by_nginx(topology):
    proxy, _ = topology
    response = requests.post(proxy + "/api/v1/solutions/1/error-reports", data=b"x" * 200_000,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Requête trop grosse"


def test_only_the_workspace_s_import_uploads_may_be_large(topology):
    proxy, _ = topology
    upload = requests.post(proxy + "/equipes/imports/", files={"file": ("liste.csv", b"x" * 300_000)})
    assert upload.status_code != 413  # it reaches the app (which wants a signed-in team and its CSRF token)
    assert upload.status_code in (302, 400, 401, 403)


def test_an_overlong_address_is_refused_by_nginx_as_a_problem(topology):
    proxy, _ = topology
    response = requests.get(proxy + "/api/v1/places?q=" + "a" * 20_000)
    assert response.status_code == 414
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Adresse trop longue"


def test_the_same_origin_check_sees_the_browsers_origin_through_the_proxy(topology):
    proxy, _ = topology
    ok = requests.post(proxy + "/api/v1/solutions/1/error-reports", data={"reason": "autre", "message": "x"},
                       headers={"Origin": proxy})
    evil = requests.post(proxy + "/api/v1/solutions/1/error-reports", data={"reason": "autre", "message": "x"},
                         headers={"Origin": "https://evil.example"})
    assert (ok.status_code, evil.status_code) == (201, 403)


def test_metrics_are_only_for_this_machine(topology):
    proxy, _ = topology
    assert requests.get(proxy + "/metrics").status_code == 200  # from 127.0.0.1
    assert "deny all;" in nginx_config(CONTENT_SECURITY_POLICY)
