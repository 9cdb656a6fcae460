"""The private PostGIS cluster: created on first start, reused after, robust to root, taken ports and crashes."""
from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess

import psycopg2
import pytest

from mapservice.cluster import SERVER_SETTINGS, SETTINGS_FILE, EmbeddedCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("project") / ".data"
    cluster = EmbeddedCluster(data_dir, log=lambda _: None)
    yield cluster
    cluster.stop()


def postgis_version(url: str) -> str:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            cur.execute("SELECT postgis_lib_version()")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_first_start_creates_a_cluster_with_postgis(cluster):
    url = cluster.start()
    assert url.startswith("postgresql://mapservice:")
    assert "127.0.0.1" in url
    assert postgis_version(url).startswith("3.")
    assert cluster.status().running


def test_second_start_reuses_the_running_cluster(cluster):
    first = cluster.start()
    pid = cluster._postmaster_pid()
    assert cluster.start() == first
    assert cluster._postmaster_pid() == pid


def test_the_cluster_runs_with_the_services_settings_also_one_made_before_them(cluster):
    cluster.start()
    cluster.stop()
    conf = cluster.pgdata / "postgresql.conf"  # as a cluster made by an older version: no settings file
    conf.write_text(conf.read_text().replace(f"include '{SETTINGS_FILE}'\n", ""))
    (cluster.pgdata / SETTINGS_FILE).unlink()
    conn = psycopg2.connect(cluster.start())
    try:
        with conn.cursor() as cur:
            for name, value in SERVER_SETTINGS.items():
                cur.execute(f"SHOW {name}")
                assert cur.fetchone()[0] == value, name
    finally:
        conn.close()


def test_password_file_is_private(cluster):
    cluster.start()
    assert oct(cluster.state_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.skipif(os.geteuid() != 0, reason="root handling only applies when run as root")
def test_as_root_the_cluster_runs_as_an_unprivileged_user(cluster):
    cluster.start()
    owner = pwd.getpwuid(cluster.pgdata.stat().st_uid).pw_name
    assert owner == "mapservice"
    pid = cluster._postmaster_pid()
    uid = int([line for line in open(f"/proc/{pid}/status") if line.startswith("Uid:")][0].split()[1])
    assert uid == pwd.getpwnam("mapservice").pw_uid
    # pytest's tmp dirs sit under a 0700 directory: the cluster's user was given traversal of it.
    for parent in cluster.home.parents:
        assert parent.stat().st_mode & 0o001 or parent.stat().st_uid == uid


def test_stop_then_start_again_keeps_the_data(cluster):
    url = cluster.start()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS kept (x int)")
        cur.execute("INSERT INTO kept VALUES (42)")
    conn.close()
    assert cluster.stop() is True
    assert not cluster.status().running
    assert cluster.stop() is False  # stopping twice is harmless
    url = cluster.start()
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT x FROM kept")
        assert cur.fetchone() == (42,)
    conn.close()


def test_a_taken_port_moves_the_cluster_to_a_free_one(cluster):
    cluster.stop()
    old_port = cluster._state()["port"]
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", old_port))
        blocker.listen()
        url = cluster.start()
    assert f":{old_port}/" not in url
    psycopg2.connect(url).close()


def test_restart_after_a_crash_with_a_stale_pid_file(cluster):
    cluster.start()
    pid = cluster._postmaster_pid()
    os.kill(pid, signal.SIGKILL)
    # Wait for the postmaster to die; its children notice and exit too.
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        subprocess.run(["sleep", "0.1"])
    assert (cluster.pgdata / "postmaster.pid").exists()
    url = cluster.start()
    psycopg2.connect(url).close()
    assert cluster._postmaster_pid() != pid


def test_a_pid_file_naming_an_unrelated_live_process_is_stale(cluster):
    cluster.stop()
    pidfile = cluster.pgdata / "postmaster.pid"
    pidfile.write_text(f"{os.getpid()}\n{cluster.pgdata}\n0\n5432\n\n\n\n\n")
    if os.geteuid() == 0:
        user = pwd.getpwnam("mapservice")
        os.chown(pidfile, user.pw_uid, user.pw_gid)
    url = cluster.start()
    psycopg2.connect(url).close()


def test_without_postgis_and_without_root_the_message_says_what_to_install(tmp_path, monkeypatch):
    from mapservice import cluster as cluster_module
    from mapservice.errors import ClusterError

    # A PostgreSQL whose share directory has no PostGIS extension, run by an ordinary user.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "share" / "extension").mkdir(parents=True)
    pg_config = bindir / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {tmp_path / 'share'}\n")
    pg_config.chmod(0o755)
    monkeypatch.setattr(cluster_module.os, "geteuid", lambda: 1000)
    with pytest.raises(ClusterError) as raised:
        cluster_module.ensure_postgis(bindir, log=lambda _: None)
    assert "apt-get install postgresql-15-postgis-3" in raised.value.detail
