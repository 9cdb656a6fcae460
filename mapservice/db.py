"""Database access: engines, units of work, bulk copies, prepared reads and migrations.

A unit of work is one transaction around one request or one command: `transaction()` commits when its block
ends normally and rolls back on any error. Core functions take the connection they are given and never commit.
Public reads run outside any transaction (BEGIN and ROLLBACK would cost two round trips each), on connections of
a pool created in autocommit (`Databases.reads`, or the replica). The web layer holds one connection per request
(web/connection.py)."""
from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import logging
import re
import select
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import psycopg2
import psycopg2.extensions
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from .cluster import EmbeddedCluster
from .settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def resolve_database_url(settings: Settings, start: bool = False) -> str:
    """DATABASE_URL when set; otherwise the private cluster's URL (starting it only when asked)."""
    if settings.database.url:
        return settings.database.url
    cluster = EmbeddedCluster(settings.database.resolved_data_dir, settings.database.pg_bindir, settings.database.cluster_user)
    return cluster.start() if start else cluster.url()


log = logging.getLogger(__name__)


def _sqlalchemy_url(url: str) -> str:
    url = url.replace("postgres://", "postgresql://", 1)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def databases(settings: Settings) -> Databases:
    """The engines of the app: the primary (following the private cluster wherever it restarts), its pool for
    public reads, and the replica when one is configured."""
    database = settings.database
    resolve = None
    if not database.url:
        cluster = EmbeddedCluster(database.resolved_data_dir, database.pg_bindir, database.cluster_user)
        resolve = cluster.url
    options = {"prepared_statements": database.prepared_statements, "pool_size": database.pool_size}
    url = resolve_database_url(settings)
    primary = make_engine(url, resolve=resolve, **options)
    # Reads have a pool of their own, in autocommit from the start, rather than switching a connection of
    # the primary's pool to autocommit and back on every checkout.
    # Nothing to roll back on an autocommit connection given back to the pool (and one the server closed
    # meanwhile would fail that rollback): no reset on return.
    reads_options = {**options, "isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None}
    reads = make_engine(url, resolve=resolve, **reads_options)
    replica = make_engine(database.replica_url, **reads_options) if database.replica_url else None
    return Databases(primary, reads, replica, database.replica_retry_s)


def make_engine(url: str, resolve: Callable[[], str] | None = None, prepared_statements: bool = True,
                **kwargs) -> Engine:
    """An engine on `url`. `resolve`, when given, is asked for the URL again at each new connection: the
    private cluster may come back on another port after a restart, and the running app follows it.
    `prepared_statements=False` makes fetch_prepared send plain statements (for PgBouncer's transaction
    pooling).

    A pooled connection is checked before use without a round trip: an idle connection has nothing to read
    unless the server ended it (a restart, an idle timeout: it sent its last message and closed), so a
    readable socket means a dead connection, replaced before the request sees it. (pool_pre_ping's
    `SELECT 1` would cost a round trip per request.)"""
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 5)
    # Text as UTF-8 whatever the database's own encoding: fetch_prepared's `text_as_bytes` passes it on as is.
    kwargs["connect_args"].setdefault("client_encoding", "utf8")
    kwargs.setdefault("execution_options", {})["mapservice_prepared"] = prepared_statements
    engine = create_engine(_sqlalchemy_url(url), **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkout", _discard_if_closed_by_server)
    if resolve is not None:
        @event.listens_for(engine, "do_connect")
        def current_address(dialect, conn_rec, cargs, cparams):
            cparams.update(make_url(_sqlalchemy_url(resolve())).translate_connect_args(
                username="user", database="dbname"))
    return engine


def closed_by_server(dbapi_connection) -> bool:
    """Whether an idle connection was ended by the server: known closed, or its socket readable (the server's
    last message, or the end of the stream)."""
    return bool(dbapi_connection.closed) or bool(select.select([dbapi_connection], [], [], 0)[0])


def _discard_if_closed_by_server(dbapi_connection, connection_record, connection_proxy) -> None:
    if closed_by_server(dbapi_connection):
        # The pool closes this connection and tries a new one (SQLAlchemy's pessimistic disconnect handling).
        raise DisconnectionError("the server closed this pooled connection")


CONNECTION_ERRORS = (OperationalError, InterfaceError)


class Databases:
    """The primary (writes, and the reads of a request that writes), its autocommit pool for public reads, and
    an optional streaming replica for public reads. A replica that fails to answer is left aside for
    `replica_retry_s` seconds, reads going to the primary meanwhile."""

    def __init__(self, primary: Engine, reads: Engine, replica: Engine | None = None,
                 replica_retry_s: float = 10):
        self.primary = primary
        self.reads = reads
        self.replica = replica
        self.replica_retry_s = replica_retry_s
        self._replica_down_until = 0.0

    def connect_for_reads(self, from_primary: bool = False) -> Connection:
        """An autocommit connection: to the replica when there is one that answers (and `from_primary` is not
        asked), else to the primary."""
        if self.replica is not None and not from_primary and time.monotonic() >= self._replica_down_until:
            try:
                return self.replica.connect()
            except CONNECTION_ERRORS as exc:
                self._replica_down_until = time.monotonic() + self.replica_retry_s
                log.warning("replica unavailable, reading from the primary for %gs: %s", self.replica_retry_s,
                            " ".join(str(getattr(exc, "orig", exc)).split())[:200])
        return self.reads.connect()

    def is_read_only(self, conn: Connection) -> bool:
        """Whether `conn` comes from a pool of reads (autocommit, primary or replica)."""
        return conn.engine is self.reads or (self.replica is not None and conn.engine is self.replica)

    def dispose(self) -> None:
        self.primary.dispose()
        self.reads.dispose()
        if self.replica is not None:
            self.replica.dispose()


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with engine.begin() as conn:
        yield conn


def read_only(conn: Connection) -> Connection:
    """`conn` outside any transaction (autocommit): each statement of a read sees the latest commits."""
    return conn.execution_options(isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def dbapi_cursor(conn: Connection) -> Iterator:
    """A cursor of the connection's own DBAPI connection, for what SQLAlchemy's text() cannot do (COPY, PREPARE).
    Its errors are translated as SQLAlchemy translates its own, so that a server gone away is the same
    OperationalError (a 503 for a request) on every path."""
    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        yield cursor
    except psycopg2.Error as exc:
        # A connection the server closed is dropped now, as SQLAlchemy does on its own paths, rather than
        # handed back to the pool (whose reset would then fail on it).
        gone = conn.dialect.is_disconnect(exc, dbapi_connection, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, psycopg2.Error, connection_invalidated=gone) from exc
    finally:
        cursor.close()


def copy_rows(conn: Connection, table: str, columns: Iterable[str], rows: Iterable[Iterable]) -> None:
    """COPY rows into `table` (usually a staging table) within the connection's transaction; None is NULL."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([r"\N" if v is None else v for v in row])
    buf.seek(0)
    with dbapi_cursor(conn) as cursor:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)


def insert_on_fresh_statistics(conn: Connection, table: str, rows: int, insert: Callable[[str], object],
                               key_sql: str) -> None:
    """Runs `insert(part)`, an INSERT into `table` of about `rows` rows whose source rows it keeps where the SQL
    condition `part` holds. When that more than doubles the table as its statistics know it (a new database's
    first load: never analysed), a hundredth of them (by a hash of `key_sql`) go in first and the table is
    analysed before the rest: the catalogue's triggers plan their per-site lookups when each statement ends, on
    the table's statistics, and without any they read the whole table once per site."""
    known = conn.scalar(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table})
    if rows > 1000 and rows > known:
        insert(f"mod(abs(hashtext({key_sql})), 100) = 0")
        conn.exec_driver_sql(f"ANALYZE {table}")
        insert(f"mod(abs(hashtext({key_sql})), 100) <> 0")
    else:
        insert("true")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision() -> str:
    """The latest migration this code knows."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        has_table = conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        return conn.scalar(text("SELECT version_num FROM alembic_version")) if has_table else None


BIND = re.compile(r"(?<![:\w]):(\w+)")


@functools.lru_cache(maxsize=512)
def _prepared_form(sql: str) -> tuple[str, tuple[str, ...], str]:
    """(statement name, bind names in order, the SQL with positional $n parameters) of a :name statement."""
    names = tuple(dict.fromkeys(BIND.findall(sql)))
    positional = BIND.sub(lambda m: f"${names.index(m.group(1)) + 1}", sql)
    return "q_" + hashlib.sha1(sql.encode()).hexdigest()[:20], names, positional


def sql_literal(value: str) -> str:
    """`value` as an SQL string literal (standard_conforming_strings, PostgreSQL's default: only quotes are
    doubled)."""
    return "'" + value.replace("'", "''") + "'"


MAX_PREPARED = 100  # statements kept prepared per session; they differ by page size and by the filters written


def fetch_prepared(conn: Connection, sql: str, binds: dict, generic_plan: bool = False,
                   text_as_bytes: bool = False, planner: dict[str, str] | None = None) -> list[dict]:
    """Run `sql` (with :name binds) as a server-side prepared statement, prepared once per database session.

    Hot read paths are planned in ~1.5 ms each time when sent as text. A prepared statement skips parsing; with
    `generic_plan` it is also planned only once: for statements whose best plan does not depend on the values
    (PostgreSQL's own choice keeps re-planning when a generic plan's estimate looks worse, even where it is
    not). `planner` settings (e.g. {"enable_memoize": "off"}) apply when it is planned. Both are set for that
    statement alone, in the same round trip (LOCAL: they end with the transaction, which in autocommit is the
    statement's own). With `text_as_bytes`, text columns come as the UTF-8 bytes the server sent, not decoded
    (for a text passed on as it is: decoding a megabyte and encoding it again costs more than receiving it)."""
    prepare = conn.get_execution_options().get("mapservice_prepared", True)
    settings = {**(planner or {}), **({"plan_cache_mode": "force_generic_plan"} if generic_plan else {})}
    if not prepare and not text_as_bytes and not settings:
        return [dict(r) for r in conn.execute(text(sql), binds).mappings()]
    statement, names, positional = _prepared_form(sql)
    record = conn.connection
    prepared = record.info.setdefault("mapservice.prepared", set())
    with dbapi_cursor(conn) as cursor:
        if text_as_bytes:
            psycopg2.extensions.register_type(psycopg2.extensions.BYTES, cursor)  # this cursor only
        local = "".join(f"SET LOCAL {name} = {value}; " for name, value in settings.items())
        if not prepare:
            cursor.execute(local + BIND.sub(r"%(\1)s", sql.replace("%", "%%")), binds)
        else:
            if statement not in prepared:
                if len(prepared) >= MAX_PREPARED:
                    cursor.execute("DEALLOCATE ALL")  # prepared again as they come back
                    prepared.clear()
                cursor.execute(f"PREPARE {statement} AS {positional}")  # no parameters: sent as it is
                prepared.add(statement)
            execute = f"EXECUTE {statement}({', '.join(['%s'] * len(names))})" if names else f"EXECUTE {statement}"
            cursor.execute(local + execute, [binds[n] for n in names])
        columns = [d.name for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]
