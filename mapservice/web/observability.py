"""Request ids, one structured log line per request, and Prometheus metrics at /metrics.

- Every request gets an id: the proxy's X-Request-Id when it sent a sane one (nginx's $request_id in the
  shipped configuration), else a new one; it is returned in X-Request-Id and carried by every log line of
  the request.
- One access line per request (logger `mapservice.access`): method, route, path, status, duration, client,
  request id, and `error` when the database did not answer (instead of a traceback).
- /metrics (Prometheus text format): latency histograms per route, responses per route and status, the
  connection pools, the tile cache's hits and misses, the catalogue version the tile cache knows. Under
  gunicorn (`mapservice serve`), counters and histograms are summed over the workers
  (PROMETHEUS_MULTIPROC_DIR); pool and cache figures are those of the worker that answers, labelled with its
  pid."""
from __future__ import annotations

import logging
import os
import re
import time
import uuid

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

access_log = logging.getLogger("mapservice.access")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def request_id() -> str | None:
    return g.get("request_id")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        if not hasattr(record, "request_id"):
            record.request_id = request_id() if has_request_context() else None
        return True


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    """Root logging for a server process (called by the gunicorn configuration, never on import)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)


class LiveFigures:
    """Pool and tile cache figures, read when scraped."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        pid = str(os.getpid())
        pools = GaugeMetricFamily("mapservice_db_pool_connections", "Connections of the pool, by state",
                                  labels=["pid", "database", "state"])
        dbs = self.app.extensions["mapservice.databases"]
        for name, engine in (("primary", dbs.primary), ("reads", dbs.reads), ("replica", dbs.replica)):
            if engine is None:
                continue
            pool = engine.pool
            pools.add_metric([pid, name, "checked_out"], pool.checkedout())
            pools.add_metric([pid, name, "idle"], pool.checkedin())
            pools.add_metric([pid, name, "size"], pool.size())
        yield pools
        cache = self.app.extensions.get("mapservice.tile_cache")
        if cache is not None:
            lookups = CounterMetricFamily("mapservice_tile_cache_lookups", "Tile cache lookups, by result",
                                          labels=["pid", "result"])
            lookups.add_metric([pid, "hit"], cache.hits)
            lookups.add_metric([pid, "miss"], cache.misses)
            yield lookups
            yield GaugeMetricFamily("mapservice_tile_cache_tiles", "Tiles held by the cache", value=len(cache))
            version = GaugeMetricFamily("mapservice_catalogue_version",
                                        "Catalogue version the tile cache has caught up with", labels=["pid"])
            if cache.catalogue_version is not None:
                version.add_metric([pid], cache.catalogue_version)
            yield version


class Metrics:
    def __init__(self, app: Flask):
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("mapservice_request_duration_seconds", "Time to answer, by route",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.responses = Counter("mapservice_responses", "Responses, by route and status",
                                 ["route", "method", "status"], registry=self.registry)
        self.live = LiveFigures(app)
        self.registry.register(self.live)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(self.live)
            return generate_latest(registry)
        return generate_latest(self.registry)


def start_request() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    g.started = time.perf_counter()


def end_request(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id") or ""
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule else "(unmatched)"
    metrics: Metrics = current_app.extensions["mapservice.metrics"]
    metrics.latency.labels(route, request.method).observe(elapsed)
    metrics.responses.labels(route, request.method, str(response.status_code)).inc()
    fields = {"method": request.method, "route": route, "path": request.path, "status": response.status_code,
              "duration_ms": round(elapsed * 1000, 1), "client": request.remote_addr,
              "request_id": g.get("request_id")}
    if g.get("log_error"):
        fields["error"] = g.log_error
        fields["error_detail"] = g.get("log_error_detail")
    access_log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, elapsed * 1000,
                    extra=fields)
    return response


def metrics_view():
    return Response(current_app.extensions["mapservice.metrics"].exposition(), mimetype=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    app.extensions["mapservice.metrics"] = Metrics(app)
    app.before_request(start_request)
    app.after_request(end_request)
    app.add_url_rule("/metrics", "metrics", metrics_view)
