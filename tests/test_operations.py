"""What an operator relies on, in process: security headers on every response, request ids, the access log,
metrics, health and readiness, link schemes on render, and the limits on writers (memory and a real Redis)."""
from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import text

from mapservice.web.security import CONTENT_SECURITY_POLICY

from .conftest import dispose_app, make_test_app
from .servers import redis_server

SOLUTION = 1


@pytest.mark.parametrize("url", [
    "/", "/a-propos", "/api/v1/docs", "/api/v1/openapi.json", "/api/v1/solutions/nearest?lat=45.76&lon=4.83",
    "/api/v1/solutions/nearest", "/tiles/basemap/5/16/11.mvt", "/tiles/solutions.json", "/tiles/nothing.json",
    "/no-such-page", "/healthz", "/metrics", "/static/page/page.css",
])
def test_every_response_carries_the_security_headers(client, url):
    response = client.get(url)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_api_docs_need_no_inline_style(client):
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert "<style" not in html and "style=" not in html
    assert '<link rel="stylesheet" href="/static/api/docs.css?v=' in html


def test_every_response_has_a_request_id_and_one_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="mapservice.access"):
        first = client.get("/api/v1/places?q=lyon")
        given = client.get("/healthz", headers={"X-Request-Id": "from-the-proxy-1234"})
        refused = client.get("/healthz", headers={"X-Request-Id": "not an id; with spaces"})
    assert len(first.headers["X-Request-Id"]) == 32
    assert given.headers["X-Request-Id"] == "from-the-proxy-1234"
    assert refused.headers["X-Request-Id"] != "not an id; with spaces"
    lines = [r for r in caplog.records if r.name == "mapservice.access"]
    assert len(lines) == 3
    assert (lines[0].route, lines[0].status, lines[0].request_id) == (
        "/api/v1/places", 200, first.headers["X-Request-Id"])
    assert lines[1].request_id == "from-the-proxy-1234" and lines[1].duration_ms >= 0


def test_logs_are_json_lines_with_the_request_id(app, capsys):
    from mapservice.web.observability import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("json")
        app.test_client().get("/healthz", headers={"X-Request-Id": "json-line-test-42"})
        line = [json.loads(x) for x in capsys.readouterr().err.splitlines() if "json-line-test-42" in x][0]
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    assert line["logger"] == "mapservice.access" and line["status"] == 200 and line["route"] == "/healthz"
    assert line["request_id"] == "json-line-test-42" and line["level"] == "INFO"


def test_metrics_give_latency_statuses_pools_and_the_tile_cache(client):
    client.get("/api/v1/solutions/nearest?lat=45.76&lon=4.83")
    client.get("/api/v1/solutions/nearest?lat=100&lon=4.83")
    client.get("/tiles/basemap/5/16/11.mvt")
    client.get("/tiles/basemap/5/16/11.mvt")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert 'mapservice_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/solutions/nearest"}' in body
    assert 'mapservice_responses_total{method="GET",route="/api/v1/solutions/nearest",status="400"}' in body
    assert 'mapservice_responses_total{method="GET",route="/tiles/<name>/<z>/<x>/<y>.mvt",status="200"}' in body
    assert 'mapservice_db_pool_connections{database="primary"' in body
    hits = [line for line in body.splitlines() if line.startswith("mapservice_tile_cache_lookups_total") and 'result="hit"' in line]
    assert hits and float(hits[0].split()[-1]) >= 1
    assert "mapservice_catalogue_version{" in body


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": True, "schema": True, "reference": True}
    assert ready.headers["Cache-Control"] == "no-store"


def test_readiness_says_what_is_missing(empty_database_url):
    app = make_test_app(empty_database_url)
    try:
        response = app.test_client().get("/readyz")
    finally:
        dispose_app(app)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["checks"] == {"database": True, "schema": False, "reference": False}


def test_a_javascript_link_in_the_data_is_never_handed_out(fresh_engine, fresh_client):
    with fresh_engine.begin() as conn:
        site = conn.scalar(text("SELECT site_id FROM solution WHERE id = :id"), {"id": SOLUTION})
        conn.execute(text("UPDATE site SET website = 'javascript:alert(1)' WHERE id = :id"), {"id": site})
    assert fresh_client.get(f"/api/v1/sites/{site}").get_json()["properties"]["contact"]["website"] is None
    detail = fresh_client.get(f"/api/v1/solutions/{SOLUTION}").get_json()
    assert "javascript:" not in json.dumps(detail)


def test_the_help_chat_link_is_shown_only_with_a_safe_scheme(database_url):
    app = make_test_app(database_url, page={"help_chat_url": "javascript:alert(1)"})
    try:
        html = app.test_client().get("/").get_data(as_text=True)
    finally:
        dispose_app(app)
    assert "javascript:" not in html and "Discuter en ligne" not in html


# -- limits on writers ----------------------------------------------------------------------------------

def report(client, **headers):
    return client.post(f"/api/v1/solutions/{SOLUTION}/error-reports", json={"reason": "adresse"}, headers=headers)


@pytest.fixture
def limited_app(fresh_database_url):
    app = make_test_app(fresh_database_url, limits={"enabled": True, "error_reports": "3 per minute"})
    yield app
    dispose_app(app)


def test_reports_are_rate_limited_with_429_retry_after_and_limit_headers(limited_app):
    client = limited_app.test_client()
    statuses = [report(client).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    refused = report(client)
    assert refused.mimetype == "application/problem+json" and refused.get_json()["title"] == "Trop de requêtes"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "3" and refused.headers["X-RateLimit-Remaining"] == "0"
    # another client address has its own count
    assert report(client, **{"X-Forwarded-For": "192.0.2.7"}).status_code == 429  # not trusted: no proxy
    other = limited_app.test_client()
    assert other.post(f"/api/v1/solutions/{SOLUTION}/error-reports", json={"reason": "adresse"},
                      environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 201


def test_behind_the_proxy_the_client_address_is_counted(fresh_database_url):
    app = make_test_app(fresh_database_url, limits={"enabled": True, "error_reports": "1 per minute"},
                        server={"proxies": 1})
    try:
        client = app.test_client()
        assert report(client, **{"X-Forwarded-For": "192.0.2.1"}).status_code == 201
        assert report(client, **{"X-Forwarded-For": "192.0.2.1"}).status_code == 429
        assert report(client, **{"X-Forwarded-For": "192.0.2.2"}).status_code == 201
    finally:
        dispose_app(app)


def test_limits_are_shared_through_a_real_redis(fresh_database_url, fresh_engine):
    with redis_server() as url:
        overrides = {"limits": {"enabled": True, "error_reports": "4 per minute", "storage_url": url}}
        first, second = make_test_app(fresh_database_url, **overrides), make_test_app(fresh_database_url, **overrides)
        try:
            statuses = [report(app.test_client()).status_code for app in (first, second, first, second, first, second)]
        finally:
            dispose_app(first)
            dispose_app(second)
    assert statuses == [201, 201, 201, 201, 429, 429]  # two app servers, one count
    with fresh_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM error_report WHERE reason = 'adresse'")) == 4


@pytest.mark.parametrize("headers, status", [
    ({"Origin": "https://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Referer": "https://evil.example/page.html"}, 403),
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Origin": "http://localhost"}, 201),
    ({"Referer": "http://localhost/?commune=69266", "Sec-Fetch-Site": "same-origin"}, 201),
    ({}, 201),  # not a browser (the mobile app, a script): no Origin to check
])
def test_a_report_form_posted_from_another_site_is_refused(fresh_client, fresh_engine, headers, status):
    response = fresh_client.post(f"/api/v1/solutions/{SOLUTION}/error-reports", data={"reason": "places"},
                                 headers=headers)
    assert response.status_code == status, response.get_json()
    with fresh_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM error_report WHERE reason = 'places'")) == (status == 201)
    if status == 403:
        assert response.get_json()["parameter"] == "Origin"


def test_the_workspace_login_gets_the_login_limit(database_url):
    app = make_test_app(database_url, limits={"enabled": True, "login": "2 per minute"})
    try:
        client = app.test_client()
        token = re.search(rb'name="csrf_token" value="([^"]+)"', client.get("/equipes/connexion").data).group(1)
        form = {"email": "personne@exemple.invalid", "password": "pas le bon", "csrf_token": token.decode()}
        statuses = [client.post("/equipes/connexion", data=form) for _ in range(3)]
        assert [r.status_code for r in statuses] == [statuses[0].status_code] * 2 + [429]
        assert statuses[0].status_code != 429
        assert int(statuses[2].headers["Retry-After"]) > 0
    finally:
        dispose_app(app)


def test_every_write_of_the_workspace_and_the_report_figures_gets_the_writes_limit(database_url):
    app = make_test_app(database_url, limits={"enabled": True, "writes": "2 per minute"})
    try:
        client = app.test_client()
        for _ in range(3):  # reads are not counted
            assert client.get("/api/v1/equipes/lieux").status_code == 401
        for path, method in (("/api/v1/equipes/lieux", client.post),
                             ("/api/v1/reports/2026-09/plateforme/1/activite", client.put)):
            assert [method(path, json={}).status_code for _ in range(3)][2] == 429, path
    finally:
        dispose_app(app)
