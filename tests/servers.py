"""Real servers the operations tests start on loopback ports, each as its own process, stopped afterwards:
redis-server, nginx, pgbouncer, gunicorn; and throwaway private PostgreSQL clusters (a primary, a streaming
standby made with pg_basebackup)."""
from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from mapservice.cluster import EmbeddedCluster, free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_for_port(port: int, what: str, timeout: float = 20, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def wait_until_answers(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Debian redis-server; yields its redis:// URL."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, "redis-server", process=process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def unprivileged() -> dict:
    """Arguments of subprocess.Popen that run a server as the unprivileged cluster user when we are root
    (nginx and pgbouncer refuse, or should not, run as root)."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("mapservice")
    return {"user": user.pw_uid, "group": user.pw_gid}


def owned_by_server(path: Path) -> Path:
    """`path` (a folder) made writable by the unprivileged user, and its parents traversable."""
    if os.geteuid() == 0:
        user = pwd.getpwnam("mapservice")
        for sub in [path, *path.rglob("*")]:
            os.chown(sub, user.pw_uid, user.pw_gid)
        for parent in path.parents:
            parent.chmod(parent.stat().st_mode | 0o001)
    return path


@contextlib.contextmanager
def gunicorn(env: dict, workers: int = 2, threads: int = 4, timeout: int = 30,
             log_file: Path | None = None) -> Iterator[str]:
    """The app under gunicorn with the shipped configuration (gthread workers); yields its base URL. An empty
    value in `env` removes that variable."""
    port = free_port()
    full_env = dict(os.environ, MAPSERVICE_BIND=f"127.0.0.1:{port}", MAPSERVICE_WORKERS=str(workers),
                    MAPSERVICE_THREADS=str(threads), MAPSERVICE_TIMEOUT_S=str(timeout), **env)
    full_env = {name: value for name, value in full_env.items() if value != ""}
    log = open(log_file, "wb") if log_file else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:mapservice.web.gunicorn_conf",
                                "mapservice:create_app()"], env=full_env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, "gunicorn", timeout=60, process=process)
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        if log_file:
            log.close()


@contextlib.contextmanager
def throwaway_cluster(root: Path) -> Iterator[EmbeddedCluster]:
    """A private PostgreSQL + PostGIS cluster of its own under `root` (not the shared one of .data/), stopped
    afterwards."""
    cluster = EmbeddedCluster(root, log=lambda _: None)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


NGINX_MAIN = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/mapservice.conf;
}}
"""


@contextlib.contextmanager
def nginx(prefix: Path, server_block: str, port: int) -> Iterator[str]:
    """Debian's nginx as an unprivileged process with its own prefix, serving `server_block` on `port`."""
    (prefix / "tmp").mkdir(parents=True)
    (prefix / "mapservice.conf").write_text(server_block)
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix))
    owned_by_server(prefix)
    command = ["/usr/sbin/nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    test = subprocess.run(command + ["-t"], capture_output=True, text=True, **unprivileged())
    if test.returncode != 0:
        raise RuntimeError(f"nginx refused its configuration: {test.stderr}")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **unprivileged())
    try:
        wait_for_port(port, "nginx", process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def _run_as_cluster_user(command: list[str], env: dict | None = None) -> None:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), **unprivileged())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed: {done.stderr}")


@contextlib.contextmanager
def streaming_standby(primary: EmbeddedCluster, root: Path) -> Iterator[EmbeddedCluster]:
    """A hot standby of `primary`, streaming its WAL: pg_basebackup -R (standby.signal + primary_conninfo) into
    a second private cluster under `root`, started on its own port."""
    state = json.loads(primary.state_file.read_text())
    home = root / "postgres"
    home.mkdir(parents=True)
    root.chmod(0o711)
    home.chmod(0o700)
    owned_by_server(home)
    _run_as_cluster_user([primary.bindir / "pg_basebackup", "-h", "127.0.0.1", "-p", state["port"],
                          "-U", "mapservice", "-D", home / "data", "-R", "-X", "stream", "--checkpoint=fast"],
                         env={"PGPASSWORD": state["password"]})
    standby = EmbeddedCluster(root, log=lambda _: None)
    standby._save_state({"password": state["password"], "port": None})
    standby.start()
    try:
        yield standby
    finally:
        standby.stop()


@contextlib.contextmanager
def pgbouncer(prefix: Path, database_url: str, pool_size: int = 2) -> Iterator[str]:
    """Debian's PgBouncer in transaction pooling in front of `database_url`; yields the URL to connect to it."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    port = free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "userlist.txt").write_text(f'"{url.username}" "{url.password}"\n')
    (prefix / "pgbouncer.ini").write_text(f"""
[databases]
{url.database} = host={url.host} port={url.port} dbname={url.database} user={url.username} password={url.password}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {prefix}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options
logfile = {prefix}/pgbouncer.log
pidfile = {prefix}/pgbouncer.pid
""")
    (prefix / "userlist.txt").chmod(0o600)
    owned_by_server(prefix)
    process = subprocess.Popen(["/usr/sbin/pgbouncer", str(prefix / "pgbouncer.ini")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **unprivileged())
    try:
        wait_for_port(port, "pgbouncer", process=process)
        yield url.set(port=port).render_as_string(hide_password=False)
    finally:
        stop(process)
