"""Alembic environment for yibao.

Used programmatically by :func:`yibao.core.db.upgrade` (which passes the URL,
or an open connection, through ``config.attributes``) and from the command
line with ``alembic -c yibao/alembic.ini …`` (URL from ``-x url=…``,
``$YIBAO_DATABASE_URL`` or ``sqlite:///yibao.db``).
"""

from __future__ import annotations

from alembic import context

from yibao.core.db import Base, database_url, make_engine, normalize_url
from yibao.tables import load_all

load_all()  # every subsystem's tables in Base.metadata

config = context.config
target_metadata = Base.metadata


def _url():
    url = config.attributes.get("yibao_url")
    if url is None:
        url = normalize_url(context.get_x_argument(as_dictionary=True).get("url") or database_url(None))
    return url


def _configure(**kw) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        **kw,
    )


def run_migrations_offline() -> None:
    url = _url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
