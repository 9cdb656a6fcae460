"""gunicorn configuration of `mapservice serve` (and of any production start: `gunicorn -c
python:mapservice.web.gunicorn_conf 'mapservice:create_app()'`), read from the settings when gunicorn starts.

Threaded workers (gthread): a request waiting on the database holds one thread, not a whole worker. A slow
client still holds a thread while it sends its request, so production runs behind a buffering proxy (the
shipped nginx configuration, deploy/nginx.conf) that hands gunicorn only complete requests; the timeouts
below bound what a client reaching gunicorn directly can hold."""
from __future__ import annotations

import os

from mapservice.settings import Settings

_server = Settings.from_env().server

bind = os.environ.get("MAPSERVICE_BIND", f"{_server.host}:{_server.port}")
# The app is built once in the master and forked: workers start in a moment (and restart quickly after a
# timeout); it opens no database connection before the fork.
preload_app = True
worker_class = "gthread"
workers = _server.workers
threads = _server.threads
timeout = _server.timeout_s  # a worker silent this long is restarted
graceful_timeout = 20
keepalive = 5  # idle keep-alive connections are closed after 5 s
# Request line and headers: larger ones are refused (414/431) before the app runs.
limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 8190
accesslog = None  # the app writes one structured line per request (mapservice.access)
errorlog = "-"
# Behind the proxy, X-Forwarded-* are trusted from loopback only (the proxy itself).
forwarded_allow_ips = "127.0.0.1"


def on_starting(server) -> None:
    from mapservice.web.observability import configure_logging

    configure_logging(_server.log_format)


def post_worker_init(worker) -> None:
    from mapservice.web.observability import configure_logging

    configure_logging(_server.log_format)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
