"""Shared benchmark tools: percentiles, a real gunicorn server on loopback, timing loops."""
from __future__ import annotations

import contextlib
import csv
import http.client
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sqlalchemy import text

from mapservice.cluster import free_port

ROOT = Path(__file__).resolve().parent.parent
SCHOOLS = ROOT.parent / "shared" / "data" / "etablissements-second-degre-geo" / "annuaire_etablissements.csv"


def catalogue_url(sites: int | None) -> str:
    """The synthetic catalogue of `sites` sites (built once), or the service's own database when None."""
    if sites:
        import synthetic

        return synthetic.database_url(sites)
    from mapservice.db import resolve_database_url
    from mapservice.settings import Settings

    return resolve_database_url(Settings(), start=True)


def school_positions(n: int, seed: int = 1) -> list[tuple[float, float]] | None:
    """`n` schools of mainland France drawn with a fixed seed, as (lon, lat); None without the data file."""
    if not SCHOOLS.exists():
        return None
    with SCHOOLS.open(encoding="utf-8") as f:
        rows = [(float(r["longitude"]), float(r["latitude"])) for r in csv.DictReader(f)
                if r["latitude"] and r["longitude"]]
    mainland = [(lon, lat) for lon, lat in rows if -5.5 < lon < 9.7 and 41.3 < lat < 51.2]
    return random.Random(seed).sample(mainland, n)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as printed with every figure (the machine is shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    if len(ordered) == 1:  # one tile at z0, timed once
        return {"n": 1, "p50": ordered[0], "p95": ordered[0], "p99": ordered[0], "mean": ordered[0]}
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50": q[49], "p95": q[94], "p99": q[98], "mean": statistics.fmean(ordered)}


def print_percentiles(rows: dict[str, dict[str, float]]) -> None:
    """One line of p50/p95/p99 (ms) per measured peer."""
    width = max(len(name) for name in rows) + 2
    print(f"{'':{width}} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, r in rows.items():
        print(f"{name:{width}} {r['p50']:8.2f} {r['p95']:8.2f} {r['p99']:8.2f}")


def time_each(calls: Iterable[Callable[[], object]], warmup: int = 20) -> list[float]:
    """Milliseconds per call; the first `warmup` calls are run but not counted."""
    samples = []
    for i, call in enumerate(calls):
        started = time.perf_counter()
        call()
        elapsed = (time.perf_counter() - started) * 1000
        if i >= warmup:
            samples.append(elapsed)
    return samples


def time_interleaved(calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 20) -> dict[str, list[float]]:
    """Milliseconds per call of each named call, run in turn round after round: on a machine shared with other
    work, every peer meets the same load (timing one after the other lets a busy minute fall on one of them)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(warmup + repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            if i >= warmup:
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


@contextlib.contextmanager
def gunicorn(database_url: str, workers: int = 2, threads: int = 1,
             app: str = "mapservice:create_app()", checkout: Path = ROOT) -> Iterator[str]:
    """Serve mapservice (or another WSGI `app`) of `checkout` (this one by default, or another version of the
    code) on a free loopback port with `database_url`; yields the base URL. The workers are production's
    (mapservice.web.gunicorn_conf): threaded, which keep a client's connection open between requests, where
    gunicorn's default (sync) closes it after each answer."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning", app],
        env=env, cwd=checkout,
    )
    base = f"http://127.0.0.1:{port}"
    _SERVERS[base] = server.pid
    try:
        wait_until_up("127.0.0.1", port)
        yield base
    finally:
        _SERVERS.pop(base, None)
        server.terminate()
        server.wait(timeout=30)


_SERVERS: dict[str, int] = {}  # base URL -> gunicorn master's pid


def worker_memory_mb(base_url: str) -> list[tuple[float, float]]:
    """Resident and peak resident memory (VmRSS, VmHWM), MB, of each worker of the gunicorn serving
    `base_url` (Linux /proc)."""
    found = []
    for pid in _children(_SERVERS[base_url]):
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        found.append(tuple(int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")))
    return found


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def serving_processes(base_url: str, engine) -> list[int]:
    """The processes that answer `base_url`'s requests: the gunicorn's workers and every process of the
    PostgreSQL server `engine` reaches (the children of its postmaster: backends, writer, autovacuum)."""
    with engine.connect() as conn:
        backend = conn.scalar(text("SELECT pg_backend_pid()"))
    postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return _children(_SERVERS[base_url]) + _children(postmaster)


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU time the processes `pids` have used so far (those that ended since are left out)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_up(host: str, port: int, timeout: float = 30, path: str = "/healthz") -> None:
    """Until `path` answers 200: a worker has loaded the app (the master listens long before that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(host, port, timeout=5)
            try:
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"{path} does not answer on {host}:{port} after {timeout} s")


class KeepAliveClient:
    """One persistent HTTP/1.1 connection, as an app or browser would hold."""

    def __init__(self, base_url: str):
        host, port = base_url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=headers or {})
        response = self.conn.getresponse()
        body = response.read()
        if response.status >= 500:
            raise RuntimeError(f"{path}: HTTP {response.status} {body[:200]!r}")
        return response.status, body

    def close(self) -> None:
        self.conn.close()
