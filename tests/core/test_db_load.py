"""Bulk load and read back: contract tables survive the database exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from yibao.api.models import MessageLog
from yibao.codes import registry
from yibao.core import contract
from yibao.core import db as ydb
from yibao.settlement import records

SH = ZoneInfo("Asia/Shanghai")
BIG = 2**53  # money.NO_CAP: larger than any float can hold exactly next to +1


def _t(name: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=contract.TABLES[name])


def sample_tables() -> dict[str, pa.Table]:
    t0 = datetime(2024, 1, 1, 0, 0, 0, tzinfo=SH)  # midnight: day boundary in Shanghai, not UTC
    persons = [
        dict(
            psn_no="P1",
            certno="110101199001011234",
            psn_name="张三",
            gend="1",
            brdy=date(1990, 1, 1),
            insutype="310",
            psn_type="in_service",
            civil_servant=True,
            insuplc_admdvs="990100",
            assistance="",
            contribution_base=812_345,
            acct_balc=BIG + 1,
            family_id="F1",
            synthetic=True,
        ),
        dict(
            psn_no="P2",
            certno=None,
            psn_name='O\'Brien, "Jr"\nline2',
            gend="2",
            brdy=date(1950, 12, 31),
            insutype="390",
            psn_type="resident",
            civil_servant=False,
            insuplc_admdvs=None,
            assistance="dibao",
            contribution_base=0,
            acct_balc=0,
            family_id="",
            synthetic=False,
        ),
        dict(
            psn_no="P3",
            certno="NULL",
            psn_name="",
            gend=None,
            brdy=None,
            insutype="310",
            psn_type="retired",
            civil_servant=False,
            insuplc_admdvs="",
            assistance="tekun",
            contribution_base=-1,
            acct_balc=-(2**62),
            family_id=None,
            synthetic=True,
        ),
    ]
    return {
        "person": _t("person", persons),
        "family_link": _t(
            "family_link",
            [
                dict(psn_no="P1", relative_psn_no="P2", relation="parent", synthetic=True),
                dict(psn_no="P2", relative_psn_no="P1", relation="child", synthetic=False),
            ],
        ),
        "institution": _t(
            "institution",
            [
                dict(
                    fixmedins_code="H001",
                    fixmedins_name="第一医院",
                    fixmedins_type="hospital",
                    hosp_lv=3,
                    admdvs="990100",
                    synthetic=True,
                ),
                dict(
                    fixmedins_code="Y001",
                    fixmedins_name="药店",
                    fixmedins_type="pharmacy",
                    hosp_lv=0,
                    admdvs=None,
                    synthetic=False,
                ),
            ],
        ),
        "practitioner": _t(
            "practitioner",
            [
                dict(
                    prac_psn_code="D990100000001",
                    prac_psn_name="医师甲",
                    prac_psn_type="1",
                    fixmedins_code="H001",
                    synthetic=True,
                ),
                dict(
                    prac_psn_code="Y990100000001",
                    prac_psn_name=None,
                    prac_psn_type="3",
                    fixmedins_code=None,
                    synthetic=False,
                ),
            ],
        ),
        "med_list": _t(
            "med_list",
            [
                dict(
                    med_list_codg="XA01",
                    name="阿莫西林",
                    list_kind="western",
                    chrgitm_lv="02",
                    selfpay_prop_bp=1000,
                    pric_uplmt=BIG,
                    lmt_gend="",
                    lmt_age_min=-1,
                    lmt_age_max=-1,
                    lmt_hosp_lv_min=0,
                    lmt_indication="J01;J02",
                    lmt_med_types="",
                    drug_class="antimicrobial",
                    acct_excluded=False,
                    vbp_flag=True,
                    vbp_pay_std=123,
                    synthetic=True,
                ),
                dict(
                    med_list_codg="S999",
                    name=None,
                    list_kind="service",
                    chrgitm_lv="03",
                    selfpay_prop_bp=None,
                    pric_uplmt=0,
                    lmt_gend="2",
                    lmt_age_min=18,
                    lmt_age_max=32767,
                    lmt_hosp_lv_min=127,
                    lmt_indication=None,
                    lmt_med_types="21;52",
                    drug_class="",
                    acct_excluded=True,
                    vbp_flag=False,
                    vbp_pay_std=0,
                    synthetic=False,
                ),
            ],
        ),
        "encounter": _t(
            "encounter",
            [
                dict(
                    mdtrt_id="M1",
                    psn_no="P1",
                    fixmedins_code="H001",
                    med_type="21",
                    begntime=t0,
                    endtime=t0 + timedelta(days=3, seconds=59),
                    policy_year=2024,
                    dise_codg="I10",
                    other_dise_codg="E11;J44",
                    oprn_codg="",
                    dscg_way="1",
                    dept_code="A01",
                    dr_code="D1",
                    mdtrtarea_admvs="990100",
                    mulaid_payer_psn_no="",
                    lt_rx_confirmed=False,
                    synthetic=True,
                ),
                dict(
                    mdtrt_id="M2",
                    psn_no="P2",
                    fixmedins_code=None,
                    med_type="11",
                    begntime=datetime(2023, 12, 31, 23, 59, 59, tzinfo=SH),
                    endtime=None,
                    policy_year=2023,
                    dise_codg=None,
                    other_dise_codg=None,
                    oprn_codg=None,
                    dscg_way=None,
                    dept_code=None,
                    dr_code=None,
                    mdtrtarea_admvs=None,
                    mulaid_payer_psn_no="P1",
                    lt_rx_confirmed=True,
                    synthetic=False,
                ),
            ],
        ),
        "fee_detail": _t(
            "fee_detail",
            [
                dict(
                    mdtrt_id="M1",
                    feedetl_sn=1,
                    med_list_codg="XA01",
                    cnt_milli=2500,
                    pric=1999,
                    det_item_fee_sumamt=4998,
                    fee_ocur_time=t0,
                    rxno="R1",
                    rx_circ_flag=True,
                    prd_days=30,
                    bilg_dr_code="D1",
                    synthetic=True,
                ),
                dict(
                    mdtrt_id="M1",
                    feedetl_sn=2,
                    med_list_codg="S999",
                    cnt_milli=1000,
                    pric=BIG,
                    det_item_fee_sumamt=BIG,
                    fee_ocur_time=None,
                    rxno="",
                    rx_circ_flag=False,
                    prd_days=0,
                    bilg_dr_code=None,
                    synthetic=True,
                ),
                dict(
                    mdtrt_id="M2",
                    feedetl_sn=2147483647,
                    med_list_codg="S999",
                    cnt_milli=-1000,
                    pric=500,
                    det_item_fee_sumamt=-500,
                    fee_ocur_time=datetime(1970, 1, 1, 8, tzinfo=SH),
                    rxno=None,
                    rx_circ_flag=False,
                    prd_days=None,
                    bilg_dr_code="",
                    synthetic=False,
                ),
            ],
        ),
        "settlement": _t(
            "settlement",
            [
                dict(
                    setl_id="S1",
                    mdtrt_id="M1",
                    psn_no="P1",
                    fixmedins_code="H001",
                    setl_time=t0 + timedelta(days=3, hours=1),
                    policy_year=2024,
                    insutype="310",
                    med_type="21",
                    benefit_category="inpatient",
                    **{a: (i + 1) * 100_001 for i, a in enumerate(contract.SETTLEMENT_AMOUNTS)},
                    pool_prop_selfpay_bp=8500,
                    balc=None,
                    refd_setl_flag=False,
                    synthetic=True,
                ),
                dict(
                    setl_id="S2",
                    mdtrt_id="M2",
                    psn_no="P2",
                    fixmedins_code="Y001",
                    setl_time=datetime(2023, 12, 31, 16, 0, 0, tzinfo=UTC),
                    policy_year=2023,
                    insutype="390",
                    med_type="11",
                    benefit_category="",
                    **{a: 0 for a in contract.SETTLEMENT_AMOUNTS},
                    pool_prop_selfpay_bp=None,
                    balc=BIG,
                    refd_setl_flag=True,
                    synthetic=False,
                ),
            ],
        ),
        "ground_truth": _t(
            "ground_truth",
            [
                dict(entity="encounter", entity_id="M1", pattern="upcoding", detail='{"from": "I10"}'),
                dict(entity="encounter", entity_id="M1", pattern="ghost_patient", detail=None),
                dict(entity="fee_detail", entity_id="M1/2", pattern="upcoding", detail=""),
            ],
        ),
    }


def _sorted(name: str, t: pa.Table) -> pa.Table:
    pk = [c.name for c in ydb.model_of(name).__table__.primary_key.columns]
    return t.sort_by([(c, "ascending") for c in pk])


def test_round_trip_is_exact(db_engine) -> None:
    tables = sample_tables()
    counts = ydb.load_tables(db_engine, [(n, tables[n]) for n in ydb.LOAD_ORDER])
    assert counts == {n: t.num_rows for n, t in tables.items()}
    for name, expected in tables.items():
        got = ydb.read_table(db_engine, name)
        assert got.schema.equals(contract.TABLES[name], check_metadata=False)
        assert got.schema.metadata[b"yibao.table"] == name.encode()
        expected = _sorted(name, expected)
        for col in expected.column_names:
            assert got.column(col).to_pylist() == expected.column(col).to_pylist(), (name, col)
        assert got.equals(expected)


def test_orm_sees_bulk_loaded_values(db_engine) -> None:
    tables = sample_tables()
    ydb.load_tables(db_engine, [(n, tables[n]) for n in ("person", "encounter", "settlement")])
    with ydb.session_scope(db_engine) as s:
        m1 = s.get(records.Encounter, "M1")
        assert m1.begntime == datetime(2024, 1, 1, tzinfo=SH)
        assert m1.begntime.utcoffset() == timedelta(hours=8)
        assert s.get(registry.Person, "P1").acct_balc == BIG + 1
        s2 = s.get(records.Settlement, "S2")
        assert s2.setl_time == datetime(2024, 1, 1, 0, 0, tzinfo=SH)
        assert s2.refd_setl_flag is True and s2.msgid is None
        # a range query with an aware bound in another zone compares instants
        bound = datetime(2023, 12, 31, 16, 0, tzinfo=UTC)
        ids = s.scalars(
            select(records.Settlement.setl_id)
            .where(records.Settlement.setl_time >= bound)
            .order_by(records.Settlement.setl_id)
        ).all()
        assert ids == ["S1", "S2"]


def test_orm_write_then_read_table(db_engine) -> None:
    with ydb.session_scope(db_engine) as s:
        s.add(registry.Person(psn_no="Q1", brdy=date(2000, 2, 29), acct_balc=5, contribution_base=0))
        s.flush()
        s.add(
            records.Encounter(
                mdtrt_id="E1",
                psn_no="Q1",
                policy_year=2024,
                begntime=datetime(2024, 6, 30, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
            )
        )
    t = ydb.read_table(db_engine, "encounter")
    assert t.column("begntime").to_pylist() == [datetime(2024, 7, 1, 12, 0, tzinfo=SH)]
    assert t.column("synthetic").to_pylist() == [False]
    assert t.column("endtime").to_pylist() == [None]


def test_chunks_accumulate_and_accept_other_zones_and_extra_columns(db_engine) -> None:
    tables = sample_tables()
    ydb.load_tables(db_engine, [(n, tables[n]) for n in ("person", "encounter")])
    s = tables["settlement"]
    utc = s.set_column(
        s.schema.get_field_index("setl_time"), "setl_time", s.column("setl_time").cast(pa.timestamp("us", tz="UTC"))
    )
    utc = utc.append_column("msgid", pa.array(["H001202401010000001", None]))
    counts = ydb.load_tables(db_engine, [("settlement", utc.slice(0, 1)), ("settlement", utc.slice(1))])
    assert counts == {"settlement": 2}
    assert ydb.read_table(db_engine, "settlement").equals(_sorted("settlement", s))
    with ydb.session_scope(db_engine) as sess:
        assert sess.get(records.Settlement, "S1").msgid == "H001202401010000001"


def test_empty_table_round_trip(db_engine) -> None:
    assert ydb.load_tables(db_engine, [("person", contract.PERSON.empty_table())]) == {"person": 0}
    assert ydb.read_table(db_engine, "person").num_rows == 0


def test_load_is_one_transaction_per_chunk(db_engine) -> None:
    tables = sample_tables()
    ydb.load_tables(db_engine, [("person", tables["person"])])
    bad = tables["person"].slice(0, 1)  # duplicate key
    fresh = _t("person", [dict(psn_no="P9", civil_servant=False, contribution_base=0, acct_balc=0, synthetic=True)])
    with pytest.raises(IntegrityError):
        ydb.load_tables(db_engine, [("person", fresh), ("person", pa.concat_tables([fresh.slice(0, 0), bad]))])
    assert ydb.read_table(db_engine, "person").column("psn_no").to_pylist() == ["P1", "P2", "P3", "P9"]


def test_foreign_keys_enforced(db_engine) -> None:
    with pytest.raises(IntegrityError):
        ydb.load_tables(db_engine, [("encounter", sample_tables()["encounter"])])


def test_load_rejects_bad_input(db_engine) -> None:
    person = sample_tables()["person"]
    with pytest.raises(ValueError, match="not a contract table"):
        ydb.load_tables(db_engine, [("accumulator", person)])
    with pytest.raises(ValueError, match="missing contract columns.*certno"):
        ydb.load_tables(db_engine, [("person", person.drop_columns(["certno"]))])
    with pytest.raises(ValueError, match="not in the contract"):
        ydb.load_tables(db_engine, [("person", person.append_column("x", pa.array([1, 2, 3])))])
    with pytest.raises(ValueError, match="NOT NULL"):
        ydb.load_tables(
            db_engine,
            [
                (
                    "person",
                    person.set_column(
                        person.schema.get_field_index("acct_balc"), "acct_balc", pa.array([1, None, 3], pa.int64())
                    ),
                )
            ],
        )
    enc = sample_tables()["encounter"]
    naive = enc.set_column(
        enc.schema.get_field_index("begntime"), "begntime", pc.local_timestamp(enc.column("begntime"))
    )
    with pytest.raises(ValueError, match="naive"):
        ydb.load_tables(db_engine, [("encounter", naive)])
    with pytest.raises(pa.ArrowInvalid):  # money does not silently lose precision
        ydb.load_tables(
            db_engine,
            [
                (
                    "person",
                    person.set_column(
                        person.schema.get_field_index("acct_balc"), "acct_balc", pa.array([1.5, 2.0, 3.0])
                    ),
                )
            ],
        )


def test_naive_datetime_refused_by_orm(db_engine) -> None:
    with pytest.raises(Exception, match="naive"):
        with ydb.session_scope(db_engine) as s:
            s.add(registry.Person(psn_no="N1", acct_balc=0, contribution_base=0))
            s.flush()
            s.add(records.Encounter(mdtrt_id="N1", psn_no="N1", policy_year=2024, begntime=datetime(2024, 1, 1)))


def test_contract_timestamps_hold_whole_seconds(db_engine) -> None:
    """The contract is timestamp[s]: sub-seconds are truncated on write (never rounded
    into the next second or day); operational timestamps keep them."""
    late = datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=SH)
    with ydb.session_scope(db_engine) as s:
        s.add(registry.Person(psn_no="Q1", acct_balc=0, contribution_base=0))
        s.flush()
        s.add(records.Encounter(mdtrt_id="E1", psn_no="Q1", policy_year=2024, begntime=late))
        s.add(MessageLog(msgid="m", received_at=late))
    with ydb.session_scope(db_engine) as s:
        assert s.get(records.Encounter, "E1").begntime == late.replace(microsecond=0)
        assert s.scalars(select(MessageLog.received_at)).one() == late
    t = ydb.read_table(db_engine, "encounter")
    assert t.column("begntime").to_pylist() == [late.replace(microsecond=0)]
