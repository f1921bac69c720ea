"""Loading a directory of contract Parquet tables (files and dataset directories) into the database."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from tests.core.test_db_load import _sorted, sample_tables
from tests.factories import TZ, catalog, line
from yibao.benefits.policy import PolicyBook
from yibao.core import contract
from yibao.core import db as ydb
from yibao.core.parquet_io import load_parquet_dir
from yibao.settlement import ledger, records
from yibao.settlement.rules import Claim, PersonFacts
from yibao.settlement.service import SettlementService

ACC = pa.table(
    {
        "psn_no": ["P1", "P1", "P2"],
        "policy_year": pa.array([2024, 2024, 2023], pa.int16()),
        "kind": ["ded:outpatient", "visits:home_bed", "admissions"],
        "period": ["", "M1#0", None],  # a NULL period means the year
        "value": pa.array([50_000, 3, 1], pa.int64()),
    }
)


def write_dir(d, tables: dict[str, pa.Table]) -> None:
    for name, t in tables.items():
        if name == "family_link":  # a dataset directory of several files
            (d / name).mkdir()
            for i in range(t.num_rows):
                pq.write_table(t.slice(i, 1), d / name / f"part-{i}.parquet")
        elif name == "settlement":  # an extra column no table has is ignored
            pq.write_table(t.append_column("analyst_note", pa.array(["x"] * t.num_rows)), d / f"{name}.parquet")
        else:
            pq.write_table(t, d / f"{name}.parquet")


def test_load_parquet_dir_round_trip(db_url, tmp_path):
    tables = sample_tables()
    d = tmp_path / "data"
    d.mkdir()
    write_dir(d, tables)
    pq.write_table(ACC, d / "accumulator.parquet")

    counts = load_parquet_dir(db_url, d, batch_rows=1)  # migrates an empty database first
    assert counts == {**{n: t.num_rows for n, t in tables.items()}, "accumulator": 3}
    engine = ydb.make_engine(db_url)
    try:
        for name, expected in tables.items():
            assert ydb.read_table(engine, name).equals(_sorted(name, expected)), name
        with ydb.session_scope(engine) as s:
            assert ledger.read_accumulators(s, "P1", 2024) == {
                ("ded:outpatient", ""): 50_000,
                ("visits:home_bed", "M1#0"): 3,
            }
            assert ledger.read_accumulators(s, "P2", 2023) == {("admissions", ""): 1}
    finally:
        engine.dispose()


def test_absent_tables_are_skipped_and_bad_ones_refused(db_engine, tmp_path):
    tables = sample_tables()
    d = tmp_path / "data"
    d.mkdir()
    pq.write_table(tables["person"], d / "person.parquet")
    pq.write_table(tables["institution"].slice(0, 0), d / "institution.parquet")  # empty table
    assert load_parquet_dir(db_engine, d) == {"person": 3, "institution": 0}

    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(tables["med_list"].drop_columns(["chrgitm_lv"]), bad / "med_list.parquet")
    with pytest.raises(ValueError, match="chrgitm_lv"):
        load_parquet_dir(db_engine, bad)
    neg = tmp_path / "neg"
    neg.mkdir()
    pq.write_table(ACC.set_column(4, "value", pa.array([1, -1, 0], pa.int64())), neg / "accumulator.parquet")
    with pytest.raises(ValueError, match="negative"):
        load_parquet_dir(db_engine, neg)
    with pytest.raises(FileNotFoundError):
        load_parquet_dir(db_engine, tmp_path / "missing")


def test_realtime_settlement_continues_from_loaded_accumulators(db_engine, tmp_path):
    """Accumulators from the batch year carry into the real-time path: the outpatient deductible is used up."""
    person = pa.Table.from_pylist(
        [
            dict(
                psn_no="E9",
                certno="",
                psn_name="",
                gend="1",
                brdy=dt.date(1980, 1, 1),
                insutype="310",
                psn_type="in_service",
                civil_servant=False,
                insuplc_admdvs="990100",
                assistance="",
                contribution_base=0,
                acct_balc=0,
                family_id="",
                synthetic=True,
            )
        ],
        schema=contract.PERSON,
    )
    inst = pa.Table.from_pylist(
        [
            dict(
                fixmedins_code="H2",
                fixmedins_name="",
                fixmedins_type="hospital",
                hosp_lv=2,
                admdvs="990100",
                synthetic=True,
            )
        ],
        schema=contract.INSTITUTION,
    )
    d = tmp_path / "data"
    d.mkdir()
    pq.write_table(person, d / "person.parquet")
    pq.write_table(inst, d / "institution.parquet")
    pq.write_table(
        pa.table(
            {
                "psn_no": ["E9"],
                "policy_year": pa.array([2025], pa.int16()),
                "kind": ["ded:outpatient"],
                "period": [""],
                "value": pa.array([100_000], pa.int64()),
            }
        ),
        d / "accumulator.parquet",
    )
    load_parquet_dir(db_engine, d)
    svc = SettlementService(db_engine, PolicyBook.default(), catalog())
    when = dt.datetime(2025, 5, 1, 9, tzinfo=TZ)
    c = Claim(
        "OP9",
        PersonFacts("E9", "310", "in_service", "1", dt.date(1980, 1, 1), "990100"),
        "H2",
        2,
        "11",
        when,
        when,
        "J06.9",
        (line(1, "A-DRUG", 100),),
    )
    r = svc.settle(c, msgid="m-9")
    assert r.settlement.act_pay_dedc == 0 and r.settlement.hifp_pay == 5500  # ¥1,000 deductible already met; 55 %
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(records.Accumulator)).scalar_one() == 3
