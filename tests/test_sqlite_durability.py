"""SQLite's durability setting is explicit: FULL by default, NORMAL only when asked, OFF refused."""

from __future__ import annotations

import pytest

from yibao.core import db as ydb
from yibao.core.errors import YibaoError


def _synchronous(url: str) -> int:
    engine = ydb.make_engine(url)
    try:
        with engine.connect() as c:
            return int(c.exec_driver_sql("PRAGMA synchronous").scalar())
    finally:
        engine.dispose()


def test_commits_are_synced_by_default_and_normal_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("YIBAO_SQLITE_SYNCHRONOUS", raising=False)
    assert _synchronous(f"sqlite:///{tmp_path / 'a.db'}") == 2  # FULL
    monkeypatch.setenv("YIBAO_SQLITE_SYNCHRONOUS", "normal")
    assert _synchronous(f"sqlite:///{tmp_path / 'b.db'}") == 1  # NORMAL


@pytest.mark.parametrize("value", ["off", "0", "fast"])
def test_an_unsafe_or_unknown_setting_is_refused(tmp_path, monkeypatch, value):
    monkeypatch.setenv("YIBAO_SQLITE_SYNCHRONOUS", value)
    with pytest.raises(YibaoError, match="YIBAO_SQLITE_SYNCHRONOUS"):
        ydb.make_engine(f"sqlite:///{tmp_path / 'c.db'}")
