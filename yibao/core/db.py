"""The shared data contract as SQL (SQLAlchemy 2 models), engines and row locks.

The models mirror :mod:`yibao.core.contract` column for column (the Arrow
schemas are the reference; ``tests/test_db_schema.py`` checks the mirror):

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
(:data:`SETTLEMENT_EXTRA_COLUMNS`).

Nullability: keys, foreign keys, ``policy_year``, every money column, every
boolean flag, ``encounter.begntime`` and ``settlement.setl_time`` are
``NOT NULL``; other descriptive columns may be NULL (the contract uses ``''``
for "none" in strings).

Time: every timestamp is timezone-aware.  Writing a naive ``datetime`` raises.
Values come back in Asia/Shanghai.  On SQLite they are stored as Asia/Shanghai
wall-clock text (``YYYY-MM-DD HH:MM:SS.ffffff``) so that text order is time
order; on PostgreSQL as ``timestamptz`` (and each connection's ``TimeZone`` is
set to Asia/Shanghai, so server-side ``::date`` gives the local day).

Locking protocol for settlement (see :func:`lock_accumulators`):

* run the whole settlement in ``session_scope(engine, immediate=True)``;
* lock the patient's accumulators first (one call with every key), then the
  personal accounts (:func:`lock_account`; patient first, then a mutual-aid
  payer);
* apply deltas / post movements, insert the settlement row, commit.

SQLite serialises writers with ``BEGIN IMMEDIATE``; PostgreSQL uses
``SELECT … FOR UPDATE`` on rows created on demand.  A PostgreSQL deadlock (only
possible if the order above is not kept) raises ``OperationalError``; retry.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    TypeDecorator,
    create_engine,
    event,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from yibao.core import contract
from yibao.core.errors import ClaimRejected, YibaoError

__all__ = [
    "ACCOUNT_KINDS",
    "CONTRACT_MODELS",
    "DEFAULT_URL",
    "LOAD_ORDER",
    "SETTLEMENT_EXTRA_COLUMNS",
    "SHANGHAI",
    "Account",
    "AccountLedger",
    "AccountError",
    "Accumulator",
    "AccumulatorError",
    "Base",
    "Encounter",
    "FamilyLink",
    "FeeDetail",
    "GroundTruth",
    "Institution",
    "Practitioner",
    "InsufficientBalance",
    "MedList",
    "MessageLog",
    "Person",
    "Settlement",
    "TZDateTime",
    "alembic_config",
    "apply_accumulator_deltas",
    "database_url",
    "decode_accum_delta",
    "encode_accum_delta",
    "load_tables",
    "lock_account",
    "lock_accumulators",
    "make_engine",
    "normalize_url",
    "post_account",
    "read_accumulators",
    "read_table",
    "reverse_accum_delta",
    "session_scope",
    "upgrade",
]

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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- contract tables -------------------------------------------------------


class Person(Base):
    __tablename__ = "person"

    psn_no: Mapped[str] = mapped_column(String, primary_key=True)
    certno: Mapped[str | None] = mapped_column(String)
    psn_name: Mapped[str | None] = mapped_column(String)
    gend: Mapped[str | None] = mapped_column(String)
    brdy: Mapped[date | None] = mapped_column(Date)
    insutype: Mapped[str | None] = mapped_column(String)
    psn_type: Mapped[str | None] = mapped_column(String)
    civil_servant: Mapped[bool] = mapped_column(Boolean, default=False)
    insuplc_admdvs: Mapped[str | None] = mapped_column(String)
    assistance: Mapped[str | None] = mapped_column(String)
    contribution_base: Mapped[int] = mapped_column(BigInteger, default=0)
    acct_balc: Mapped[int] = mapped_column(BigInteger, default=0)  # opening balance, see Account
    family_id: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    # 个人参保日期 (1101 psn_insu_date); not a data-contract column: None where the register does not hold it
    insured_since: Mapped[date | None] = mapped_column(Date)


class FamilyLink(Base):
    __tablename__ = "family_link"

    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"), primary_key=True)
    relative_psn_no: Mapped[str] = mapped_column(
        String, ForeignKey("person.psn_no"), primary_key=True, index=True
    )
    relation: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Institution(Base):
    __tablename__ = "institution"

    fixmedins_code: Mapped[str] = mapped_column(String, primary_key=True)
    fixmedins_name: Mapped[str | None] = mapped_column(String)
    fixmedins_type: Mapped[str | None] = mapped_column(String)
    hosp_lv: Mapped[int | None] = mapped_column(SmallInteger)
    admdvs: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Practitioner(Base):
    """医保医师/护士/药师 (contract ``practitioner``); ``prac_psn_code`` is what encounters and fee lines name."""

    __tablename__ = "practitioner"

    prac_psn_code: Mapped[str] = mapped_column(String, primary_key=True)
    prac_psn_name: Mapped[str | None] = mapped_column(String)
    prac_psn_type: Mapped[str | None] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String, ForeignKey("institution.fixmedins_code"), index=True)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class MedList(Base):
    __tablename__ = "med_list"

    med_list_codg: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str | None] = mapped_column(String)
    list_kind: Mapped[str | None] = mapped_column(String)
    chrgitm_lv: Mapped[str | None] = mapped_column(String)
    selfpay_prop_bp: Mapped[int | None] = mapped_column(Integer)
    pric_uplmt: Mapped[int] = mapped_column(BigInteger, default=0)
    lmt_gend: Mapped[str | None] = mapped_column(String)
    lmt_age_min: Mapped[int | None] = mapped_column(SmallInteger)
    lmt_age_max: Mapped[int | None] = mapped_column(SmallInteger)
    lmt_hosp_lv_min: Mapped[int | None] = mapped_column(SmallInteger)
    lmt_indication: Mapped[str | None] = mapped_column(String)
    lmt_med_types: Mapped[str | None] = mapped_column(String)
    drug_class: Mapped[str | None] = mapped_column(String)
    acct_excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    vbp_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    vbp_pay_std: Mapped[int] = mapped_column(BigInteger, default=0)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Encounter(Base):
    __tablename__ = "encounter"
    __table_args__ = (
        Index(None, "psn_no", "policy_year"),
        Index(None, "fixmedins_code", "begntime"),
    )

    mdtrt_id: Mapped[str] = mapped_column(String, primary_key=True)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"))
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    med_type: Mapped[str | None] = mapped_column(String)
    begntime: Mapped[datetime] = mapped_column(TZ_SECONDS)
    endtime: Mapped[datetime | None] = mapped_column(TZ_SECONDS)  # NULL while still in hospital
    policy_year: Mapped[int] = mapped_column(SmallInteger)
    dise_codg: Mapped[str | None] = mapped_column(String)
    other_dise_codg: Mapped[str | None] = mapped_column(String)
    oprn_codg: Mapped[str | None] = mapped_column(String)
    dscg_way: Mapped[str | None] = mapped_column(String)
    dept_code: Mapped[str | None] = mapped_column(String)
    dr_code: Mapped[str | None] = mapped_column(String)
    mdtrtarea_admvs: Mapped[str | None] = mapped_column(String)
    mulaid_payer_psn_no: Mapped[str | None] = mapped_column(String)
    lt_rx_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class FeeDetail(Base):
    """Fee lines; the primary key (mdtrt_id, feedetl_sn) serves reads by mdtrt_id."""

    __tablename__ = "fee_detail"

    mdtrt_id: Mapped[str] = mapped_column(String, ForeignKey("encounter.mdtrt_id"), primary_key=True)
    feedetl_sn: Mapped[int] = mapped_column(Integer, primary_key=True)
    med_list_codg: Mapped[str] = mapped_column(String)
    cnt_milli: Mapped[int] = mapped_column(BigInteger)
    pric: Mapped[int] = mapped_column(BigInteger)
    det_item_fee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fee_ocur_time: Mapped[datetime | None] = mapped_column(TZ_SECONDS)
    rxno: Mapped[str | None] = mapped_column(String)
    rx_circ_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    prd_days: Mapped[int | None] = mapped_column(SmallInteger)
    bilg_dr_code: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


SETTLEMENT_EXTRA_COLUMNS = (
    "msgid",
    "cancel_msgid",
    "accum_delta",
    "acct_payer_psn_no",
    "rule_trace",
)
"""Operational settlement columns that are not in the Arrow contract."""


class Settlement(Base):
    __tablename__ = "settlement"
    __table_args__ = (
        Index(None, "psn_no", "setl_time"),
        Index(None, "mdtrt_id"),
        Index(None, "fixmedins_code", "setl_time"),
    )

    setl_id: Mapped[str] = mapped_column(String, primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(String, ForeignKey("encounter.mdtrt_id"))
    psn_no: Mapped[str] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    setl_time: Mapped[datetime] = mapped_column(TZ_SECONDS)
    policy_year: Mapped[int] = mapped_column(SmallInteger)
    insutype: Mapped[str | None] = mapped_column(String)
    med_type: Mapped[str | None] = mapped_column(String)
    benefit_category: Mapped[str | None] = mapped_column(String)
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fulamt_ownpay_amt: Mapped[int] = mapped_column(BigInteger)
    overlmt_selfpay: Mapped[int] = mapped_column(BigInteger)
    preselfpay_amt: Mapped[int] = mapped_column(BigInteger)
    inscp_scp_amt: Mapped[int] = mapped_column(BigInteger)
    act_pay_dedc: Mapped[int] = mapped_column(BigInteger)
    hifp_pay: Mapped[int] = mapped_column(BigInteger)
    hifmi_pay: Mapped[int] = mapped_column(BigInteger)
    hifob_pay: Mapped[int] = mapped_column(BigInteger)
    cvlserv_pay: Mapped[int] = mapped_column(BigInteger)
    maf_pay: Mapped[int] = mapped_column(BigInteger)
    hifes_pay: Mapped[int] = mapped_column(BigInteger)
    oth_pay: Mapped[int] = mapped_column(BigInteger)
    hosp_part_amt: Mapped[int] = mapped_column(BigInteger)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    psn_part_amt: Mapped[int] = mapped_column(BigInteger)
    acct_pay: Mapped[int] = mapped_column(BigInteger)
    acct_mulaid_pay: Mapped[int] = mapped_column(BigInteger)
    psn_cash_pay: Mapped[int] = mapped_column(BigInteger)
    pool_prop_selfpay_bp: Mapped[int | None] = mapped_column(Integer)
    balc: Mapped[int | None] = mapped_column(BigInteger)  # NULL in batch settlement
    refd_setl_flag: Mapped[bool] = mapped_column(Boolean, default=False)  # cancelled
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    # operational (not in the Arrow contract)
    msgid: Mapped[str | None] = mapped_column(String, unique=True)  # NULL for batch
    cancel_msgid: Mapped[str | None] = mapped_column(String, unique=True)
    accum_delta: Mapped[Any | None] = mapped_column(JSONType)  # see encode_accum_delta
    acct_payer_psn_no: Mapped[str | None] = mapped_column(String)
    rule_trace: Mapped[Any | None] = mapped_column(JSONType)


class GroundTruth(Base):
    __tablename__ = "ground_truth"
    __table_args__ = (Index(None, "pattern"),)

    entity: Mapped[str] = mapped_column(String, primary_key=True)
    entity_id: Mapped[str] = mapped_column(String, primary_key=True)
    pattern: Mapped[str] = mapped_column(String, primary_key=True)
    detail: Mapped[str | None] = mapped_column(String)


# --- operational tables ----------------------------------------------------


class Accumulator(Base):
    """Person-year running totals; changed only by settlement and cancellation.

    ``period`` is ``''`` for per-year kinds, else a sub-period id (e.g. a
    home-bed 180-day cycle).  ``value`` is fen or a count, never negative.
    """

    __tablename__ = "accumulator"

    psn_no: Mapped[str] = mapped_column(String, primary_key=True)
    policy_year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String, primary_key=True)
    period: Mapped[str] = mapped_column(String, primary_key=True, default="")
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Account(Base):
    """Personal account balance (the row settlement locks).

    Created on first use from ``person.acct_balc`` (the opening balance, also
    written to the ledger as a ``credit``), so ``balc == sum(ledger.amount)``.
    """

    __tablename__ = "account"

    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"), primary_key=True)
    balc: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=0)


ACCOUNT_KINDS = ("credit", "pay", "mulaid_pay", "reversal")


class AccountLedger(Base):
    """Append-only personal-account movements (+credit / −debit), fen."""

    __tablename__ = "account_ledger"
    __table_args__ = (Index(None, "psn_no", "time"), Index(None, "setl_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String, ForeignKey("account.psn_no"))
    time: Mapped[datetime] = mapped_column(TZDateTime)
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String)
    setl_id: Mapped[str | None] = mapped_column(String)


class MessageLog(Base):
    """Append-only log of national-interface messages (HTTP service)."""

    __tablename__ = "message_log"
    __table_args__ = (Index(None, "msgid"), Index(None, "fixmedins_code", "received_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msgid: Mapped[str | None] = mapped_column(String)
    infno: Mapped[str | None] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String)
    received_at: Mapped[datetime] = mapped_column(TZDateTime)
    request: Mapped[Any | None] = mapped_column(JSONType)
    response: Mapped[Any | None] = mapped_column(JSONType)


CONTRACT_MODELS: dict[str, type[Base]] = {
    "person": Person,
    "family_link": FamilyLink,
    "institution": Institution,
    "practitioner": Practitioner,
    "med_list": MedList,
    "encounter": Encounter,
    "fee_detail": FeeDetail,
    "settlement": Settlement,
    "ground_truth": GroundTruth,
}
LOAD_ORDER = tuple(CONTRACT_MODELS)
"""An order of contract tables that satisfies the foreign keys."""


# --- errors ----------------------------------------------------------------


class AccumulatorError(YibaoError):
    """An accumulator change that would make a running total negative."""

    code = "E_ACCUM"


class AccountError(ClaimRejected):
    """A personal-account operation that cannot be done (unknown person, bad kind)."""

    code = "E_ACCT"


class InsufficientBalance(AccountError):
    """The personal account cannot pay this much."""

    code = "E_ACCT_BALANCE"


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
        raise YibaoError(f"YIBAO_SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS)}, not {v!r}",
                               f"YIBAO_SQLITE_SYNCHRONOUS 须为 {', '.join(SQLITE_SYNCHRONOUS)} 之一, 而非 {v!r}")
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

AccKey = tuple[str, str]


def _norm_keys(keys: Iterable[AccKey | str]) -> list[AccKey]:
    out = set()
    for k in keys:
        if isinstance(k, str):
            out.add((k, ""))
        else:
            kind, period = k
            out.add((str(kind), str(period)))
    return sorted(out)


def _dialect_insert(session: Session, model: type[Base]) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model)
    if name == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"yibao supports SQLite and PostgreSQL, not {name}")


def _require_write_lock(session: Session, what: str) -> None:
    conn = session.connection()
    if conn.dialect.name == "sqlite" and conn.get_execution_options().get(_SQLITE_BEGIN) != "IMMEDIATE":
        raise RuntimeError(
            f"{what} on SQLite needs a write-locked transaction: use session_scope(engine, immediate=True)"
        )


def lock_accumulators(
    session: Session, psn_no: str, year: int, keys: Iterable[AccKey | str]
) -> dict[AccKey, int]:
    """Lock and read a person-year's accumulators; absent ones read as 0.

    ``keys`` are ``(kind, period)`` pairs (a bare ``kind`` means period
    ``''``).  Missing rows are created with value 0 so that they can be locked
    too; rows are locked in sorted key order.  The locks last until the
    session's transaction ends.  Call once per transaction with every key.
    """
    _require_write_lock(session, "lock_accumulators")
    ks = _norm_keys(keys)
    if not ks:
        return {}
    ins = _dialect_insert(session, Accumulator).values(
        [
            {"psn_no": psn_no, "policy_year": year, "kind": kind, "period": period, "value": 0}
            for kind, period in ks
        ]
    )
    session.execute(ins.on_conflict_do_nothing())
    rows = session.execute(
        select(Accumulator.kind, Accumulator.period, Accumulator.value)
        .where(
            Accumulator.psn_no == psn_no,
            Accumulator.policy_year == year,
            tuple_(Accumulator.kind, Accumulator.period).in_(ks),
        )
        .order_by(Accumulator.kind, Accumulator.period)
        .with_for_update()
    ).all()
    got = {(r.kind, r.period): int(r.value) for r in rows}
    return {k: got.get(k, 0) for k in ks}


def read_accumulators(session: Session, psn_no: str, year: int) -> dict[AccKey, int]:
    """Every accumulator of a person-year, without locking (pre-settlement, reports)."""
    rows = session.execute(
        select(Accumulator.kind, Accumulator.period, Accumulator.value).where(
            Accumulator.psn_no == psn_no, Accumulator.policy_year == year
        )
    ).all()
    return {(r.kind, r.period): int(r.value) for r in rows}


def apply_accumulator_deltas(
    session: Session, psn_no: str, year: int, deltas: Mapping[AccKey | str, int]
) -> dict[AccKey, int]:
    """Add ``deltas`` to a person-year's accumulators (upsert); return the new values.

    Zero deltas are skipped.  A result below zero raises
    :class:`AccumulatorError` (roll the transaction back).
    """
    rows = []
    for key, delta in deltas.items():
        (kind, period) = _norm_keys([key])[0]
        d = int(delta)
        if d != delta:
            raise TypeError(f"accumulator delta must be an integer: {delta!r}")
        if d:
            rows.append({"psn_no": psn_no, "policy_year": year, "kind": kind, "period": period, "value": d})
    if not rows:
        return {}
    rows.sort(key=lambda r: (r["kind"], r["period"]))
    ins = _dialect_insert(session, Accumulator).values(rows)
    stmt = ins.on_conflict_do_update(
        index_elements=["psn_no", "policy_year", "kind", "period"],
        set_={"value": Accumulator.value + ins.excluded.value},
    ).returning(Accumulator.kind, Accumulator.period, Accumulator.value)
    result = {(r.kind, r.period): int(r.value) for r in session.execute(stmt)}
    negative = {k: v for k, v in result.items() if v < 0}
    if negative:
        raise AccumulatorError(
            f"accumulators of {psn_no}/{year} would go negative: {negative}",
            f"累计值不能为负: {psn_no}/{year} {negative}",
            field="accumulator",
        )
    return result


def encode_accum_delta(psn_no: str, year: int, deltas: Mapping[AccKey | str, int]) -> list[dict[str, Any]]:
    """Deltas as JSON-ready rows for ``settlement.accum_delta`` (zero deltas dropped).

    Concatenate the lists of several people if a settlement touches more than one.
    """
    out = []
    for key, delta in deltas.items():
        kind, period = _norm_keys([key])[0]
        if int(delta):
            out.append(
                {"psn_no": psn_no, "policy_year": int(year), "kind": kind, "period": period, "delta": int(delta)}
            )
    out.sort(key=lambda r: (r["psn_no"], r["policy_year"], r["kind"], r["period"]))
    return out


def decode_accum_delta(rows: Iterable[Mapping[str, Any]] | None) -> dict[tuple[str, int], dict[AccKey, int]]:
    """``settlement.accum_delta`` back to ``{(psn_no, year): {(kind, period): delta}}``."""
    out: dict[tuple[str, int], dict[AccKey, int]] = {}
    for r in rows or ():
        per = out.setdefault((str(r["psn_no"]), int(r["policy_year"])), {})
        key = (str(r["kind"]), str(r.get("period", "")))
        per[key] = per.get(key, 0) + int(r["delta"])
    return out


def reverse_accum_delta(session: Session, rows: Iterable[Mapping[str, Any]] | None) -> None:
    """Undo the deltas recorded in ``settlement.accum_delta`` (for cancellation).

    Locks the affected accumulators first (same protocol as settlement).
    """
    for (psn_no, year), deltas in sorted(decode_accum_delta(rows).items()):
        lock_accumulators(session, psn_no, year, deltas.keys())
        apply_accumulator_deltas(session, psn_no, year, {k: -v for k, v in deltas.items()})


# --- personal accounts -----------------------------------------------------


def _ensure_account(session: Session, psn_no: str) -> None:
    """Create the account row from ``person.acct_balc`` if it does not exist yet."""
    if session.execute(select(Account.psn_no).where(Account.psn_no == psn_no)).first() is not None:
        return
    opening = session.execute(select(Person.acct_balc).where(Person.psn_no == psn_no)).scalar()
    if opening is None:
        raise AccountError(
            f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", field="psn_no"
        )
    ins = (
        _dialect_insert(session, Account)
        .values(psn_no=psn_no, balc=int(opening), version=0)
        .on_conflict_do_nothing()
        .returning(Account.psn_no)
    )
    created = session.execute(ins).first() is not None
    if created and opening:
        session.add(
            AccountLedger(
                psn_no=psn_no, time=datetime.now(SHANGHAI), amount=int(opening), kind="credit", setl_id=None
            )
        )
        session.flush()


def lock_account(session: Session, psn_no: str) -> int:
    """Lock a person's account row until the transaction ends; return its balance (fen)."""
    _require_write_lock(session, "lock_account")
    _ensure_account(session, psn_no)
    balc = session.execute(
        select(Account.balc).where(Account.psn_no == psn_no).with_for_update()
    ).scalar_one()
    return int(balc)


def post_account(
    session: Session,
    psn_no: str,
    amount: int,
    kind: str,
    setl_id: str | None,
    time: datetime,
    *,
    locked: bool = False,
) -> int:
    """Move ``amount`` fen (+credit / −debit) on an account; return the new balance.

    ``locked=True``: the caller already holds :func:`lock_account` on this
    account in the same transaction (so the row exists; skip that check).

    ``kind``: ``credit`` (amount ≥ 0), ``pay`` and ``mulaid_pay`` (≤ 0), or
    ``reversal`` (either sign).  Refuses to take the balance below zero
    (:class:`InsufficientBalance`).  A zero amount posts nothing.
    """
    if kind not in ACCOUNT_KINDS:
        raise AccountError(f"unknown account movement kind {kind!r}", f"未知的账户变动类型: {kind}", field="kind")
    if isinstance(amount, bool) or int(amount) != amount:
        raise TypeError(f"amount must be integer fen: {amount!r}")
    amount = int(amount)
    if kind == "credit" and amount < 0 or kind in ("pay", "mulaid_pay") and amount > 0:
        raise AccountError(
            f"a {kind} movement of {amount} fen has the wrong sign",
            f"账户变动金额符号错误: {kind} {amount}",
            field="amount",
        )
    if not locked:
        _ensure_account(session, psn_no)
    if amount == 0:
        return int(session.execute(select(Account.balc).where(Account.psn_no == psn_no)).scalar_one())
    new = session.execute(
        update(Account)
        .where(Account.psn_no == psn_no, Account.balc + amount >= 0)
        .values(balc=Account.balc + amount, version=Account.version + 1)
        .returning(Account.balc)
    ).scalar()
    if new is None:
        balc = session.execute(select(Account.balc).where(Account.psn_no == psn_no)).scalar_one()
        raise InsufficientBalance(
            f"personal account {psn_no} has {balc} fen, cannot pay {-amount} fen",
            f"个人账户余额不足: {psn_no} 余额 {balc} 分, 需支付 {-amount} 分",
            field="acct_pay",
        )
    session.add(AccountLedger(psn_no=psn_no, time=time, amount=amount, kind=kind, setl_id=setl_id))
    session.flush()
    return int(new)


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
    sql_cols = CONTRACT_MODELS[name].__table__.columns
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
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for start in range(0, table.num_rows, _CHUNK_ROWS):
            buf = io.BytesIO()
            pa_csv.write_csv(table.slice(start, _CHUNK_ROWS), buf, opts)
            copy.write(buf.getvalue())


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
        rows = list(zip(*(_sqlite_values(part.column(i)) for i in range(part.num_columns))))
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
                    model = CONTRACT_MODELS[name]
                    conn.execute(model.__table__.insert(), table.to_pylist())
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
    cols = list(zip(*rows)) if rows else [() for _ in schema]
    del rows
    arrays = []
    for values, f in zip(cols, schema):
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
    table = CONTRACT_MODELS[name].__table__
    stmt = select(*(table.c[f.name] for f in schema)).order_by(*(table.c[c] for c in order))
    rows = conn.execute(stmt).all()
    cols = list(zip(*rows)) if rows else [[] for _ in schema]
    return pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in zip(cols, schema)], schema=schema)


def read_table(url_or_engine: str | URL | Engine | None, name: str) -> pa.Table:
    """A whole contract table, ordered by primary key, in the contract's Arrow schema.

    Contract columns only (operational settlement columns are left out);
    the schema carries the contract metadata (:func:`contract.with_metadata`).
    """
    schema = _contract_schema(name)
    order = [c.name for c in CONTRACT_MODELS[name].__table__.primary_key.columns]
    with _engine_for(url_or_engine) as engine, engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            t = _read_pg(conn, name, schema, order)
        elif conn.dialect.name == "sqlite":
            t = _read_sqlite(conn, name, schema, order)
        else:
            t = _read_generic(conn, name, schema, order)
    return t.cast(contract.with_metadata(schema, name))
