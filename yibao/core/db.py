"""The shared data contract as SQL (SQLAlchemy 2 models), engines and row locks.

The models mirror :mod:`yibao.core.contract` column for column (the Arrow
schemas are the reference; ``tests/core/test_db_schema.py`` checks the mirror):

===============  ===========================================
Arrow            SQL
===============  ===========================================
``int64``        ``BIGINT`` (money in fen, counts)
``int32``        ``INTEGER``
``int16/int8``   ``SMALLINT``
``bool``         ``BOOLEAN``
``string``       ``VARCHAR``
``date32``       ``DATE``
``timestamp``    :class:`TZDateTime` (``timestamptz`` on PostgreSQL)
===============  ===========================================

Besides the contract tables there are the operational tables the settlement
service needs: ``accumulator``, ``account`` + ``account_ledger`` and
``message_log``, and settlement has a few operational columns
(``yibao.settlement.records.SETTLEMENT_EXTRA_COLUMNS``).

Nullability: keys, foreign keys, ``policy_year``, every money column, every
boolean flag, ``encounter.begntime`` and ``settlement.setl_time`` are
``NOT NULL``; other descriptive columns may be NULL (the contract uses ``''``
for "none" in strings).

Time: every timestamp is timezone-aware.  Writing a naive ``datetime`` raises.
Values come back in Asia/Shanghai.  On SQLite they are stored as Asia/Shanghai
wall-clock text (``YYYY-MM-DD HH:MM:SS.ffffff``) so that text order is time
order; on PostgreSQL as ``timestamptz`` (and each connection's ``TimeZone`` is
set to Asia/Shanghai, so server-side ``::date`` gives the local day).

The tables themselves live with the subsystem that owns them: the registers in
:mod:`yibao.codes.registry`, encounters, fee lines, settlements, accumulators and
accounts in :mod:`yibao.settlement.records` (their locking mechanics in
:mod:`yibao.settlement.ledger`), the audit log in :mod:`yibao.api.models`, the
synthetic ground truth in :mod:`yibao.synth.models`; :mod:`yibao.tables` imports
them all.  This module keeps the engine, sessions, column types, migrations and the
generic contract-table loader.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Integer,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session

from yibao.core import contract
from yibao.core.errors import YibaoError

__all__ = [
    "DEFAULT_URL",
    "LOAD_ORDER",
    "SHANGHAI",
    "Base",
    "BigId",
    "JSONType",
    "TZDateTime",
    "TZ_SECONDS",
    "alembic_config",
    "contract_models",
    "database_url",
    "dialect_insert",
    "load_tables",
    "make_engine",
    "model_of",
    "normalize_url",
    "read_table",
    "require_write_lock",
    "session_scope",
    "sqlite_synchronous",
    "upgrade",
    "writer_queue",
]

LOAD_ORDER = (
    "person",
    "family_link",
    "institution",
    "practitioner",
    "med_list",
    "encounter",
    "fee_detail",
    "settlement",
    "ground_truth",
)
"""An order of the contract tables that satisfies the foreign keys."""


def model_of(table: str) -> type[Base]:
    """The model of a table by its name (each subsystem owns its tables; :mod:`yibao.tables` imports them)."""
    from yibao.tables import load_all

    load_all()
    for m in Base.registry.mappers:
        if m.class_.__tablename__ == table:
            return m.class_
    raise KeyError(table)


def contract_models() -> dict[str, type[Base]]:
    """Contract table name → its model, in :data:`LOAD_ORDER`."""
    return {name: model_of(name) for name in LOAD_ORDER}


SHANGHAI = ZoneInfo(contract.TIMEZONE)
DEFAULT_URL = "sqlite:///yibao.db"
ENV_URL = "YIBAO_DATABASE_URL"

# --- types -----------------------------------------------------------------


class TZDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp; naive values are refused, results are Asia/Shanghai.

    ``seconds=True`` (the contract columns, whose Arrow type is
    ``timestamp[s]``) truncates sub-second parts on write, so that the
    database holds exactly what the contract can represent.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def __init__(self, seconds: bool = False) -> None:
        super().__init__()
        self.seconds = seconds

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value!r}: yibao timestamps must be timezone-aware "
                f"(use tzinfo=ZoneInfo({contract.TIMEZONE!r}))"
            )
        local = value.astimezone(SHANGHAI)
        if self.seconds and local.microsecond:
            local = local.replace(microsecond=0)
        if dialect.name == "sqlite":
            return local.replace(tzinfo=None)
        return local

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: stored as Shanghai wall clock
            return value.replace(tzinfo=SHANGHAI)
        return value.astimezone(SHANGHAI)


TZ_SECONDS = TZDateTime(seconds=True)

# JSONB on PostgreSQL (comparable, indexable), JSON text elsewhere.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# autoincrementing surrogate keys: BIGINT on PostgreSQL, rowid alias on SQLite
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_Row = TypeVar("_Row")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- contract tables -------------------------------------------------------


# --- operational tables ----------------------------------------------------


# --- errors ----------------------------------------------------------------


# --- engines and sessions --------------------------------------------------


def database_url(explicit: str | None = None) -> str:
    """The database URL: ``explicit``, else ``$YIBAO_DATABASE_URL``, else ``sqlite:///yibao.db``."""
    if explicit:
        return str(explicit)
    env = os.environ.get(ENV_URL)
    if env:
        return env
    return DEFAULT_URL


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; ``postgresql://`` / ``postgres://`` use psycopg 3."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


_SQLITE_BEGIN = "yibao_sqlite_begin"


SQLITE_SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")


def sqlite_synchronous() -> str:
    """SQLite's ``synchronous`` setting from ``$YIBAO_SQLITE_SYNCHRONOUS`` (default FULL).

    FULL syncs the write-ahead log at every commit: a reply the platform sent survives a power cut.
    NORMAL syncs at checkpoints only: it survives a crash or ``kill -9`` of the server but a power cut
    may lose the last commits (the database stays consistent) — a choice for a deployment with a UPS or
    a test machine, never silently made.  OFF is refused.
    """
    v = os.environ.get("YIBAO_SQLITE_SYNCHRONOUS", "FULL").strip().upper() or "FULL"
    if v not in SQLITE_SYNCHRONOUS:
        raise YibaoError(
            f"YIBAO_SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS)}, not {v!r}",
            f"YIBAO_SQLITE_SYNCHRONOUS 须为 {', '.join(SQLITE_SYNCHRONOUS)} 之一, 而非 {v!r}",
        )
    return v


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: :func:`database_url`).

    SQLite: WAL journal, foreign keys on, 30 s busy timeout, and yibao emits
    ``BEGIN`` itself so that :func:`session_scope` can ask for ``BEGIN
    IMMEDIATE``.  PostgreSQL: psycopg 3, session time zone Asia/Shanghai.
    """
    u = normalize_url(database_url(url) if not isinstance(url, URL) else url)
    if u.get_backend_name() == "sqlite":
        sync = sqlite_synchronous()
        connect_args = {"timeout": 30.0, "check_same_thread": False}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(u, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # let SQLAlchemy (our "begin" hook) emit BEGIN, not pysqlite
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            try:
                cur.execute("PRAGMA foreign_keys = ON")
                cur.execute("PRAGMA busy_timeout = 30000")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute(f"PRAGMA synchronous = {sync}")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(u, **kwargs)
    if u.get_backend_name() == "postgresql":

        @event.listens_for(engine, "connect")
        def _pg_connect(dbapi_conn: Any, _record: Any) -> None:
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            try:
                dbapi_conn.execute(f"SET TIME ZONE '{contract.TIMEZONE}'")
            finally:
                dbapi_conn.autocommit = autocommit

    return engine


class WriterQueue:
    """Writers of one SQLite database queue here: threads of this process, then processes (an OS file lock).

    SQLite has one writer at a time.  Left to SQLite's busy handler, a waiting writer sleeps and
    retries (up to 100 ms a try), which makes long tails under load; queued on a lock, it starts as
    soon as the writer before it commits.  Re-entrant in one thread.  PostgreSQL needs none (row locks).
    """

    def __init__(self, path: str | None):
        import threading

        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._path = f"{path}.writer-lock" if path else None

    def __enter__(self) -> WriterQueue:
        self._lock.acquire()
        if self._depth == 0 and self._path is not None:
            import fcntl

            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


_QUEUES: dict[str, WriterQueue] = {}


def writer_queue(engine: Engine) -> Any:
    """The :class:`WriterQueue` of ``engine``'s SQLite database (one per file per process); a no-op elsewhere."""
    if engine.dialect.name != "sqlite":
        from contextlib import nullcontext

        return nullcontext()
    path = engine.url.database
    key = (
        os.path.realpath(path) if path and path != ":memory:" and not path.startswith("file:") else f"mem:{id(engine)}"
    )
    q = _QUEUES.get(key)
    if q is None:
        q = _QUEUES.setdefault(key, WriterQueue(key if not key.startswith("mem:") else None))
    return q


def must_get(session: Session, model: type[_Row], key: Any) -> _Row:
    """``session.get`` for a row the schema guarantees (a foreign key's target); a missing one is a broken database."""
    row = session.get(model, key)
    if row is None:
        raise LookupError(f"{model.__name__} {key!r} is missing: the database breaks a foreign key")
    return row


@contextmanager
def session_scope(engine: Engine, *, immediate: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception.

    ``immediate=True`` starts the SQLite transaction with ``BEGIN IMMEDIATE``
    (takes the write lock at once, which is how settlement serialises on
    SQLite); on PostgreSQL it changes nothing (row locks do the work).
    Objects stay usable after commit (``expire_on_commit=False``).
    """
    bind = engine
    if immediate and engine.dialect.name == "sqlite":
        bind = engine.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
    session = Session(bind=bind, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def _engine_for(url_or_engine: str | URL | Engine | None) -> Iterator[Engine]:
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = make_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


# --- migrations ------------------------------------------------------------


def alembic_config(url: str | URL | None = None) -> Any:
    """An Alembic ``Config`` for the migrations shipped in ``yibao/migrations``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "yibao:migrations")
    u = normalize_url(database_url(url) if not isinstance(url, URL) else url)
    # passed as an attribute, not an ini option, so '%' in passwords is safe
    cfg.attributes["yibao_url"] = u
    return cfg


def upgrade(url: str | URL | Engine | None = None, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (default head)."""
    from alembic import command

    if isinstance(url, Engine):
        cfg = alembic_config(url.url)
        with url.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return
    command.upgrade(alembic_config(url), revision)


# --- accumulators ----------------------------------------------------------


def dialect_insert(session: Session, model: type[Base]) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model)
    if name == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"yibao supports SQLite and PostgreSQL, not {name}")


def require_write_lock(session: Session, what: str) -> None:
    conn = session.connection()
    if conn.dialect.name == "sqlite" and conn.get_execution_options().get(_SQLITE_BEGIN) != "IMMEDIATE":
        raise RuntimeError(
            f"{what} on SQLite needs a write-locked transaction: use session_scope(engine, immediate=True)"
        )


# --- personal accounts -----------------------------------------------------


# --- bulk load / read ------------------------------------------------------

_CHUNK_ROWS = 100_000


def _contract_schema(name: str) -> pa.Schema:
    try:
        return contract.TABLES[name]
    except KeyError:
        raise ValueError(f"not a contract table: {name!r} (expected one of {sorted(contract.TABLES)})") from None


def _to_contract(name: str, data: pa.Table | pa.RecordBatch) -> pa.Table:
    """Check and cast ``data`` to the contract schema (plus allowed extra SQL columns)."""
    schema = _contract_schema(name)
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"{name}: missing contract columns {missing}")
    sql_cols = contract_models()[name].__table__.columns
    extra = [c for c in table.column_names if c not in schema.names]
    unknown = [c for c in extra if c not in sql_cols]
    if unknown:
        raise ValueError(f"{name}: columns not in the contract or the SQL table: {unknown}")
    json_extra = [c for c in extra if isinstance(sql_cols[c].type, JSON)]
    if json_extra:
        raise ValueError(f"{name}: JSON columns cannot be bulk loaded: {json_extra}")
    fields = list(schema) + [table.schema.field(c) for c in extra]
    arrays = []
    for f in fields:
        col = table.column(f.name)
        if pa.types.is_timestamp(f.type) and pa.types.is_timestamp(col.type) and col.type.tz is None:
            raise ValueError(
                f"{name}.{f.name}: naive timestamps; attach the zone first "
                f"(pyarrow.compute.assume_timezone(col, {contract.TIMEZONE!r}))"
            )
        arrays.append(col.cast(f.type) if col.type != f.type else col)
        if not sql_cols[f.name].nullable and arrays[-1].null_count:
            raise ValueError(f"{name}.{f.name}: {arrays[-1].null_count} NULL value(s) in a NOT NULL column")
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _load_pg(conn: Any, name: str, table: pa.Table) -> None:
    cols = ", ".join(_quote(c) for c in table.column_names)
    sql = f"COPY {_quote(name)} ({cols}) FROM STDIN WITH (FORMAT csv)"
    opts = pa_csv.WriteOptions(include_header=False)
    raw = conn.connection.driver_connection
    import psycopg

    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for start in range(0, table.num_rows, _CHUNK_ROWS):
                buf = io.BytesIO()
                pa_csv.write_csv(table.slice(start, _CHUNK_ROWS), buf, opts)
                copy.write(buf.getvalue())
    except psycopg.Error as exc:
        # COPY goes around SQLAlchemy; raise what the SQLite path (and every
        # other write) raises, so callers catch one exception family.
        raise sa_exc.DBAPIError.instance(sql, None, exc, psycopg.Error) from exc


def _sqlite_values(col: pa.ChunkedArray) -> list[Any]:
    t = col.type
    if pa.types.is_timestamp(t):
        # Shanghai wall clock in SQLAlchemy's SQLite DATETIME format
        text = pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
        return pc.binary_join_element_wise(text, ".000000", "").to_pylist()
    if pa.types.is_date(t):
        return col.cast(pa.string()).to_pylist()
    return col.to_pylist()


def _load_sqlite(conn: Any, name: str, table: pa.Table) -> None:
    cols = ", ".join(_quote(c) for c in table.column_names)
    marks = ", ".join("?" for _ in table.column_names)
    sql = f"INSERT INTO {_quote(name)} ({cols}) VALUES ({marks})"
    for start in range(0, table.num_rows, _CHUNK_ROWS):
        part = table.slice(start, _CHUNK_ROWS)
        rows = list(zip(*(_sqlite_values(part.column(i)) for i in range(part.num_columns)), strict=True))
        conn.exec_driver_sql(sql, rows)


def load_tables(
    url_or_engine: str | URL | Engine | None,
    chunks: Iterable[tuple[str, pa.Table | pa.RecordBatch]],
) -> dict[str, int]:
    """Bulk-insert contract tables; one transaction per chunk; return rows per table.

    ``chunks`` yields ``(table_name, pyarrow.Table)`` in contract schema
    (columns are matched by name and cast; extra columns are allowed only if
    the SQL table has them, e.g. ``settlement.msgid``).  Timestamps must carry
    a zone.  Order chunks so that foreign keys hold (:data:`LOAD_ORDER`).
    PostgreSQL uses ``COPY``; SQLite a prepared ``executemany``.
    """
    counts: dict[str, int] = {}
    with _engine_for(url_or_engine) as engine:
        for name, data in chunks:
            table = _to_contract(name, data)
            counts[name] = counts.get(name, 0) + table.num_rows
            if table.num_rows == 0:
                continue
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    _load_pg(conn, name, table)
                elif conn.dialect.name == "sqlite":
                    _load_sqlite(conn, name, table)
                else:
                    model = contract_models()[name]
                    conn.execute(insert(model), table.to_pylist())
    return counts


def _read_pg(conn: Any, name: str, schema: pa.Schema, order: list[str]) -> pa.Table:
    exprs, types = [], {}
    for f in schema:
        q = _quote(f.name)
        if pa.types.is_timestamp(f.type):
            exprs.append(f"floor(extract(epoch from {q}))::bigint AS {q}")
            types[f.name] = pa.int64()
        elif pa.types.is_date(f.type):
            exprs.append(f"({q} - date '1970-01-01') AS {q}")
            types[f.name] = pa.int32()
        else:
            exprs.append(q)
            types[f.name] = f.type
    sql = (
        f"COPY (SELECT {', '.join(exprs)} FROM {_quote(name)} ORDER BY {', '.join(map(_quote, order))}) "
        "TO STDOUT WITH (FORMAT csv)"
    )
    buf = io.BytesIO()
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for block in copy:
            buf.write(block)
    if buf.tell() == 0:
        return schema.empty_table()
    buf.seek(0)
    t = pa_csv.read_csv(
        buf,
        read_options=pa_csv.ReadOptions(column_names=schema.names),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    return pa.Table.from_arrays([t.column(f.name).cast(f.type) for f in schema], schema=schema)


def _read_sqlite(conn: Any, name: str, schema: pa.Schema, order: list[str]) -> pa.Table:
    sql = (
        f"SELECT {', '.join(_quote(f.name) for f in schema)} FROM {_quote(name)} "
        f"ORDER BY {', '.join(map(_quote, order))}"
    )
    cur = conn.connection.driver_connection.cursor()  # skip SQLAlchemy row objects: 2x faster
    try:
        rows = cur.execute(sql).fetchall()
    finally:
        cur.close()
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    del rows
    arrays = []
    for values, f in zip(cols, schema, strict=True):
        if pa.types.is_timestamp(f.type):
            # stored as Shanghai wall clock 'YYYY-MM-DD HH:MM:SS[.ffffff]'
            text = pc.utf8_slice_codeunits(pa.array(values, pa.string()), 0, 19)
            naive = pc.strptime(text, format="%Y-%m-%d %H:%M:%S", unit="s")
            arr = pc.assume_timezone(naive, contract.TIMEZONE, ambiguous="earliest", nonexistent="earliest")
        elif pa.types.is_date(f.type):
            arr = pa.array(values, pa.string()).cast(f.type)
        elif pa.types.is_boolean(f.type):
            arr = pa.array(values, pa.int64()).cast(pa.bool_())
        else:
            arr = pa.array(values, f.type)
        arrays.append(arr.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _read_generic(conn: Any, name: str, schema: pa.Schema, order: list[str]) -> pa.Table:
    table = contract_models()[name].__table__
    stmt = select(*(table.c[f.name] for f in schema)).order_by(*(table.c[c] for c in order))
    rows = conn.execute(stmt).all()
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
    )


def read_table(url_or_engine: str | URL | Engine | None, name: str) -> pa.Table:
    """A whole contract table, ordered by primary key, in the contract's Arrow schema.

    Contract columns only (operational settlement columns are left out);
    the schema carries the contract metadata (:func:`contract.with_metadata`).
    """
    schema = _contract_schema(name)
    order = [c.name for c in sa_inspect(contract_models()[name]).primary_key]
    with _engine_for(url_or_engine) as engine, engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            t = _read_pg(conn, name, schema, order)
        elif conn.dialect.name == "sqlite":
            t = _read_sqlite(conn, name, schema, order)
        else:
            t = _read_generic(conn, name, schema, order)
    return t.cast(contract.with_metadata(schema, name))
