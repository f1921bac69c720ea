"""The SQL schema: models mirror the Arrow contract, migrations match the models."""

from __future__ import annotations

import pyarrow as pa
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Boolean, Date, Integer, SmallInteger, String, inspect, text

from yibao.codes import registry
from yibao.core import contract
from yibao.core import db as ydb
from yibao.settlement import records


def _sql_type_for(arrow_type: pa.DataType) -> type:
    if pa.types.is_int64(arrow_type):
        return BigInteger
    if pa.types.is_int32(arrow_type):
        return Integer
    if pa.types.is_int16(arrow_type) or pa.types.is_int8(arrow_type):
        return SmallInteger
    if pa.types.is_boolean(arrow_type):
        return Boolean
    if pa.types.is_string(arrow_type):
        return String
    if pa.types.is_date32(arrow_type):
        return Date
    if pa.types.is_timestamp(arrow_type):
        return ydb.TZDateTime
    raise AssertionError(f"no SQL mapping for {arrow_type}")


@pytest.mark.parametrize("name", list(contract.TABLES))
def test_models_mirror_contract(name: str) -> None:
    schema = contract.TABLES[name]
    table = ydb.model_of(name).__table__
    assert table.name == name
    extra = {"settlement": records.SETTLEMENT_EXTRA_COLUMNS, "person": registry.PERSON_EXTRA_COLUMNS}.get(name, ())
    assert [c.name for c in table.columns] == schema.names + list(extra)
    for field in schema:
        col = table.columns[field.name]
        expected = _sql_type_for(field.type)
        assert type(col.type) is expected, (name, field.name, col.type, expected)
        if expected is BigInteger and not col.primary_key:  # money / counts never NULL
            assert not col.nullable or field.name == "balc", field.name
        if expected is Boolean:
            assert not col.nullable, field.name


def test_timestamps_use_contract_zone() -> None:
    for schema in contract.TABLES.values():
        for field in schema:
            if pa.types.is_timestamp(field.type):
                assert field.type.tz == contract.TIMEZONE and field.type.unit == "s"


def test_migrated_schema_matches_models(db_url: str) -> None:
    from yibao.tables import load_all

    load_all()  # every subsystem's tables
    ydb.upgrade(db_url)
    ydb.upgrade(db_url)  # idempotent
    engine = ydb.make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diffs = compare_metadata(ctx, ydb.Base.metadata)
            assert diffs == []
            tables = set(inspect(conn).get_table_names())
        assert tables == set(ydb.Base.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    from alembic import command

    ydb.upgrade(db_url)
    command.downgrade(ydb.alembic_config(db_url), "base")
    engine = ydb.make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        ydb.upgrade(engine)  # also accepts an engine
        with engine.connect() as conn:
            assert "settlement" in inspect(conn).get_table_names()
    finally:
        engine.dispose()


def test_migrations_ship_in_package() -> None:
    from importlib.resources import files

    mig = files("yibao") / "migrations"
    assert (mig / "env.py").is_file()
    assert any(p.name.endswith(".py") for p in (mig / "versions").iterdir())
    assert (files("yibao") / "alembic.ini").is_file()


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YIBAO_DATABASE_URL", raising=False)
    assert ydb.database_url(None) == "sqlite:///yibao.db"
    monkeypatch.setenv("YIBAO_DATABASE_URL", "postgresql://u@h/db")
    assert ydb.database_url(None) == "postgresql://u@h/db"
    assert ydb.database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_default_url_is_in_current_directory(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YIBAO_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    engine = ydb.make_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    finally:
        engine.dispose()
    assert (tmp_path / "yibao.db").exists()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_urls_use_psycopg3(scheme: str) -> None:
    engine = ydb.make_engine(f"{scheme}://u:p@localhost:1/db")
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


def test_sqlite_pragmas(tmp_path) -> None:
    engine = ydb.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()
