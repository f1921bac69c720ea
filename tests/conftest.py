"""Shared fixtures.

``db_url`` runs a test on SQLite (a fresh file) and, when
``YIBAO_TEST_POSTGRES_URL`` is set (an admin URL such as
``postgresql://postgres:pw@127.0.0.1:5432/postgres``), on PostgreSQL in a fresh
database that is dropped afterwards.  ``db_engine`` is the same, migrated to
head, as an engine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ENV = "YIBAO_TEST_POSTGRES_URL"
PG_ADMIN_URL = os.environ.get(PG_ENV, "")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not PG_ADMIN_URL, reason=f"{PG_ENV} not set"),
        ],
    ),
]


def _libpq_url(url: str) -> str:
    """An SQLAlchemy-style URL as a plain libpq URI for psycopg."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database; yields its URL, drops it after."""
    if not PG_ADMIN_URL:
        pytest.skip(f"{PG_ENV} not set")
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"yibao_test_{uuid.uuid4().hex[:16]}"
    admin = _libpq_url(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(_libpq_url(PG_ADMIN_URL)).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database URL: SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'yibao.db'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def db_engine(db_url: str):
    """An engine on ``db_url`` migrated to head."""
    from yibao.core.db import make_engine, upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()
