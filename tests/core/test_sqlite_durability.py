"""SQLite: the durability setting is explicit (FULL by default, NORMAL only when asked, OFF refused); writers queue."""

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


def test_writers_queue_across_threads_and_processes(tmp_path):
    """The writer queue is re-entrant in a thread, excludes other threads, and holds an OS lock other processes see."""
    import os
    import subprocess
    import sys
    import threading

    url = f"sqlite:///{tmp_path / 'q.db'}"
    engine = ydb.make_engine(url)
    q = ydb.writer_queue(engine)
    assert ydb.writer_queue(ydb.make_engine(url)) is q  # one queue per database file in a process
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('free')\n"
        "except BlockingIOError:\n    print('held')\n"
    )
    lock_file = str(tmp_path / "q.db") + ".writer-lock"

    def other_process() -> str:
        return subprocess.run([sys.executable, "-c", probe, lock_file], capture_output=True, text=True).stdout.strip()

    got: list[str] = []
    with q:
        with q:  # re-entrant
            assert other_process() == "held"
        assert other_process() == "held"
        t = threading.Thread(target=lambda: (q.__enter__(), got.append("in"), q.__exit__(None, None, None)))
        t.start()
        t.join(0.3)
        assert got == []  # another thread waits
    t.join(5)
    assert got == ["in"] and other_process() == "free"
    assert os.path.exists(lock_file)
    assert ydb.writer_queue(ydb.make_engine("sqlite://")) is not q
