"""A private PostgreSQL 15 + PostGIS cluster kept inside the project directory.

Used when DATABASE_URL is unset. PostgreSQL refuses to run as root, so when we are root the cluster is
owned and run by an unprivileged system user. The cluster listens on 127.0.0.1 only (no Unix socket: socket
paths are limited to ~100 characters and checkouts can be deep) and requires a password, kept in a file
readable only by the user who set the cluster up.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from .errors import ClusterError

DB_NAME = "mapservice"
DB_USER = "mapservice"
PG_MAJOR = "15"
POSTGIS_PACKAGE = f"postgresql-{PG_MAJOR}-postgis-3"
# The server's tuning, written at every start into the file postgresql.conf includes (SETTINGS_FILE): a cluster
# made by an older version gets a change at its next start, and ALTER SYSTEM still overrides it.
SETTINGS_FILE = "mapservice.conf"
SERVER_SETTINGS = {
    "shared_buffers": "256MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "fsync": "on",
    # A commit waits until the WAL written before it is on disk. Every 200 ms (PostgreSQL's default), an import
    # leaves ~2 MB unflushed that a curator's save, committing meanwhile, must flush; every 10 ms, ~100 kB.
    "wal_writer_delay": "10ms",
}


def find_bindir(configured: Path | None = None) -> Path:
    candidates = [configured] if configured else []
    candidates.append(Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    for candidate in candidates:
        if candidate and (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise ClusterError(
        f"PostgreSQL {PG_MAJOR} server binaries not found. Install them with: "
        f"apt-get install postgresql-{PG_MAJOR} {POSTGIS_PACKAGE}  (or set DATABASE_URL to an existing server)"
    )


def postgis_installed(bindir: Path) -> bool:
    sharedir = Path(f"/usr/share/postgresql/{PG_MAJOR}")
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0:
            sharedir = Path(out.stdout.strip())
    return (sharedir / "extension" / "postgis.control").exists()


def ensure_postgis(bindir: Path, log=print) -> None:
    """Install PostGIS from Debian when we can (root); otherwise say exactly what to install."""
    if postgis_installed(bindir):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"PostGIS is missing: installing the Debian package {POSTGIS_PACKAGE} ...")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env)
        done = subprocess.run(["apt-get", "install", "-y", "-q", POSTGIS_PACKAGE], env=env)
        if done.returncode == 0 and postgis_installed(bindir):
            return
    raise ClusterError(
        f"PostGIS is not installed for PostgreSQL {PG_MAJOR}. Install it with: "
        f"sudo apt-get install {POSTGIS_PACKAGE}"
    )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ClusterStatus:
    initialised: bool
    running: bool
    port: int | None
    data_dir: Path
    url: str | None


class EmbeddedCluster:
    """Create, start, stop and describe the private cluster under `<data_dir>/postgres`."""

    def __init__(self, data_dir: Path, bindir: Path | None = None, run_as: str = "mapservice", log=print):
        self.root = Path(data_dir).resolve()
        self.home = self.root / "postgres"  # owned by the cluster's user
        self.pgdata = self.home / "data"
        self.logfile = self.home / "server.log"
        self.state_file = self.root / "cluster.json"  # port and password, private to the operator
        self._configured_bindir = bindir
        self.run_as = run_as if os.geteuid() == 0 else None
        self.log = log

    @property
    def bindir(self) -> Path:
        return find_bindir(self._configured_bindir)

    # -- state -----------------------------------------------------------------------------------------
    def _state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {}

    def _save_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists() and self.state_file.exists()

    def url(self, dbname: str = DB_NAME) -> str:
        state = self._state()
        if not state.get("port"):
            raise ClusterError("The private database cluster has never been started: run `mapservice db start`.")
        return f"postgresql://{DB_USER}:{state['password']}@127.0.0.1:{state['port']}/{dbname}"

    # -- running commands as the cluster's user ----------------------------------------------------------
    def _run(self, args: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--"] + cmd
        done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        if check and done.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def _ensure_system_user(self) -> None:
        try:
            pwd.getpwnam(self.run_as)
            return
        except KeyError:
            pass
        self.log(f"Creating the unprivileged system user '{self.run_as}' that runs the private PostgreSQL ...")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", self.run_as],
            check=True,
        )

    def _make_reachable(self) -> None:
        """Let the cluster's user traverse every parent of its home (execute bit only, no listing)."""
        user = pwd.getpwnam(self.run_as)
        for parent in reversed(self.home.parents):
            mode = parent.stat().st_mode
            if self._user_can_traverse(parent, user, mode):
                continue
            self.log(f"Allowing '{self.run_as}' to traverse {parent} (adding o+x, no read access) ...")
            parent.chmod(mode | stat.S_IXOTH)

    @staticmethod
    def _user_can_traverse(path: Path, user: pwd.struct_passwd, mode: int) -> bool:
        st = path.stat()
        if st.st_uid == user.pw_uid:
            return bool(mode & stat.S_IXUSR)
        if st.st_gid == user.pw_gid:
            return bool(mode & stat.S_IXGRP)
        return bool(mode & stat.S_IXOTH)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def init(self) -> None:
        if self.initialised:
            return
        bindir = self.bindir
        ensure_postgis(bindir, self.log)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        if self.pgdata.exists():  # a half-made cluster from an interrupted init: start again
            shutil.rmtree(self.pgdata)
        self.home.mkdir(exist_ok=True)
        self.home.chmod(0o700)
        password = secrets.token_urlsafe(24)
        pwfile = self.home / "initdb.pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if self.run_as:
            self._ensure_system_user()
            user = pwd.getpwnam(self.run_as)
            os.chown(self.home, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
            self._make_reachable()
        self.log(f"Creating the private PostgreSQL cluster in {self.pgdata} ...")
        try:
            self._run([
                bindir / "initdb", "-D", self.pgdata, "-U", DB_USER, "--pwfile", pwfile,
                "-E", "UTF8", "--locale=C.UTF-8", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# mapservice private cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "logging_collector = off\n"
            )
        self._save_state({"password": password, "port": None})

    def _write_settings(self) -> None:
        settings = self.pgdata / SETTINGS_FILE
        settings.write_text("# Written by mapservice at each start: SERVER_SETTINGS in mapservice/cluster.py\n"
                            + "".join(f"{name} = '{value}'\n" for name, value in SERVER_SETTINGS.items()))
        conf = self.pgdata / "postgresql.conf"
        if f"include '{SETTINGS_FILE}'" not in conf.read_text():
            with open(conf, "a") as lines:
                lines.write(f"include '{SETTINGS_FILE}'\n")
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            os.chown(settings, user.pw_uid, user.pw_gid)

    def _postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def is_running(self) -> bool:
        if not self.pgdata.exists():
            return False
        done = self._run([self.bindir / "pg_ctl", "status", "-D", self.pgdata], check=False)
        return done.returncode == 0

    def start(self) -> str:
        """Start (or reuse) the cluster; make sure the database and PostGIS exist; return its URL."""
        self.init()
        if self.is_running() and self._accepts_connections():
            return self.url()
        self._remove_stale_pidfile()
        state = self._state()
        port = state.get("port")
        if not port or not port_is_free(port):
            if port:
                self.log(f"Port {port} is taken: choosing another one for the private PostgreSQL.")
            port = free_port()
        self._write_settings()
        self.log(f"Starting the private PostgreSQL on 127.0.0.1:{port} ...")
        done = self._run(
            [self.bindir / "pg_ctl", "start", "-D", self.pgdata, "-l", self.logfile, "-w", "-t", "60",
             "-o", f"-p {port}"],
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(
                f"The private PostgreSQL did not start: {done.stderr.strip() or done.stdout.strip()}. "
                f"See its log: {self.logfile}"
            )
        state["port"] = port
        self._save_state(state)
        self._ensure_database()
        return self.url()

    def _remove_stale_pidfile(self) -> None:
        """After a crash the pid file stays; remove it when its process is gone or is not a postgres."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        if _is_postgres_process(pid):
            return
        self.log(f"Removing a stale postmaster.pid (process {pid} is not running PostgreSQL).")
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def _accepts_connections(self) -> bool:
        state = self._state()
        pid_port = self._pid_file_port()
        if pid_port and pid_port != state.get("port"):
            state["port"] = pid_port
            self._save_state(state)
        try:
            psycopg2.connect(self.url("postgres"), connect_timeout=5).close()
            return True
        except psycopg2.OperationalError:
            return False

    def _pid_file_port(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().splitlines()[3])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def _ensure_database(self) -> None:
        conn = psycopg2.connect(self.url("postgres"), connect_timeout=10)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{DB_NAME}"')
        finally:
            conn.close()

    def stop(self) -> bool:
        """Stop the cluster if it runs. Returns whether it was running."""
        if not self.pgdata.exists() or not self.is_running():
            return False
        self.log("Stopping the private PostgreSQL ...")
        self._run([self.bindir / "pg_ctl", "stop", "-D", self.pgdata, "-m", "fast", "-w", "-t", "60"])
        return True

    def status(self) -> ClusterStatus:
        running = self.initialised and self.is_running()
        port = self._pid_file_port() if running else self._state().get("port")
        return ClusterStatus(
            initialised=self.initialised,
            running=running,
            port=port,
            data_dir=self.pgdata,
            url=self.url().replace(self._state()["password"], "***") if running else None,
        )


def _is_postgres_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return False
    return b"postgres" in cmdline

