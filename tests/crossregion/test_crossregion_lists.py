"""就医地目录 / 参保地政策: a cross-province claim is priced by the treatment province's list, paid by the insured
place's policy (issue 13).  Hand-worked from yibao/data/crossregion/lists/*.yaml (ILLUSTRATIVE overlays of the
SYNTHETIC sample list yibao/data/codes/med_list.csv).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import TZ, claim, line, person
from yibao.benefits.policy import PolicyBook
from yibao.codes import registry
from yibao.codes.medlist import load_med_list
from yibao.core import db as ydb
from yibao.core.errors import YibaoError
from yibao.crossregion.lists import ListError, TreatmentLists, load_lists, treatment_catalog
from yibao.settlement.batch import settle_batch
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import settle_claim
from yibao.settlement.sequential import Ledger, settle_in_order
from yibao.settlement.service import SettlementService

BOOK = PolicyBook.default()
CAT = Catalog.from_table(load_med_list(), validate=False)
HOME, HOME_B = "990100", "990200"
SUZHOU, GUANGZHOU, BEIJING = "320500", "440100", "110100"
NIFEDIPINE = "XV99AAS002Z999010200000"  # 硝苯地平控释片: 乙 10 %, cap 2.20 in the sample list
TELMISARTAN = "XV99AAS007Z999010700000"  # 替米沙坦片: 乙 10 %
PERINDOPRIL = "XV99AAS009Z999010900000"  # 培哚普利: 乙 10 %, cap 2.50
WHEN = dt.datetime(2025, 3, 1, 10, tzinfo=TZ)


def _claim(area: str, region: str = HOME, when: dt.datetime = WHEN, mdtrt_id: str = "X1"):
    lines = [line(1, NIFEDIPINE, "2.10", 30), line(2, TELMISARTAN, "3.00", 10), line(3, PERINDOPRIL, "2.00", 10)]
    c = claim(mdtrt_id, person("E1", region=region), lines, med_type="21", hosp_lv=2, when=when)
    return dataclasses.replace(c, mdtrtarea_admvs=area)


def _settle(c):
    benefit = BOOK.policy(c.person.insuplc_admdvs).snapshot(c.setl_time.date())
    priced = treatment_catalog(CAT, c.person.insuplc_admdvs, c.mdtrtarea_admvs, c.setl_time.date())
    return settle_claim(c, benefit, priced, {}, None)


def _split(s) -> tuple[int, int, int, int]:
    return s.fulamt_ownpay_amt, s.overlmt_selfpay, s.preselfpay_amt, s.inscp_scp_amt


def test_the_sample_list_is_as_the_hand_work_assumes():
    n, t, p = CAT[NIFEDIPINE], CAT[TELMISARTAN], CAT[PERINDOPRIL]
    assert (n.chrgitm_lv, n.selfpay_prop_bp, n.effective_cap) == ("02", 1000, 220)
    assert (t.chrgitm_lv, t.selfpay_prop_bp, t.effective_cap) == ("02", 1000, 0)
    assert (p.chrgitm_lv, p.selfpay_prop_bp, p.effective_cap) == ("02", 1000, 250)


def test_same_claim_two_treatment_provinces_different_class_b_self_pay():
    # lines: 30 × 2.10 = 63.00 硝苯地平, 10 × 3.00 = 30.00 替米沙坦, 10 × 2.00 = 20.00 培哚普利 (113.00 yuan)
    # at home: every line 乙 10 %: 630 + 300 + 200 = 1130 fen self-pay-first
    assert _split(_settle(_claim(""))) == (0, 0, 1130, 11300 - 1130)
    # Jiangsu: 硝苯地平 5 % → 315; 替米沙坦 10 % → 300; 培哚普利 甲 → 0: 615
    assert _split(_settle(_claim(SUZHOU))) == (0, 0, 615, 11300 - 615)
    # Guangdong: 硝苯地平 capped at 2.00: over 30 × 0.10 = 300, 15 % of 6000 = 900; 替米沙坦 丙: 3000 fully self-paid;
    # 培哚普利 10 % → 200
    assert _split(_settle(_claim(GUANGZHOU))) == (3000, 300, 1100, 11300 - 3000 - 300 - 1100)
    # a province without a list file (Beijing): the medical list as it is
    assert _split(_settle(_claim(BEIJING))) == (0, 0, 1130, 11300 - 1130)


def test_the_list_is_dated_guangdong_2026():
    s = _settle(_claim(GUANGZHOU, when=dt.datetime(2026, 3, 1, 10, tzinfo=TZ)))
    # from 2026-01-01 硝苯地平 10 % of the capped 6000 = 600; + 200 培哚普利
    assert _split(s) == (3000, 300, 800, 11300 - 4100)


def test_the_insured_place_pays_the_treatment_place_prices():
    a, b = _settle(_claim(GUANGZHOU, region=HOME)), _settle(_claim(GUANGZHOU, region=HOME_B))
    assert _split(a) == _split(b)  # priced and classified by Guangdong either way
    pa_ = BOOK.policy(HOME).snapshot(WHEN.date()).schemes["employee"].categories["inpatient"]
    pb = BOOK.policy(HOME_B).snapshot(WHEN.date()).schemes["employee"].categories["inpatient"]
    assert (a.pool_prop_selfpay_bp, b.pool_prop_selfpay_bp) == (pa_.ratio.get(2), pb.ratio.get(2))
    assert a.pool_prop_selfpay_bp != b.pool_prop_selfpay_bp  # 90 % at home A, 85 % at B
    # the insured place's deductible (600 yuan per admission, level 2) takes the whole in-scope 69.00 yuan
    assert a.act_pay_dedc == b.act_pay_dedc == 6900 and a.hifp_pay == 0


def test_inside_the_insured_province_no_overlay():
    # a Jiangsu insured person treated in Suzhou is not cross-province: the Jiangsu list does not apply
    assert treatment_catalog(CAT, "320100", SUZHOU, WHEN.date()) is CAT
    assert treatment_catalog(CAT, HOME, SUZHOU, dt.date(2023, 12, 31)) is CAT  # before the first version


def test_list_files_are_validated(tmp_path):
    (tmp_path / "a.yaml").write_text(
        'province: "32"\nname_zh: x\nlabel: x\nstatus: illustrative\nversions:\n'
        "  - from: 2025-01-01\n    items: {X: {selfpay_prop: 1.5}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ListError) as e:
        TreatmentLists(tmp_path)
    assert "selfpay_prop" in str(e.value.message_en)
    (tmp_path / "a.yaml").write_text(
        'province: "32"\nname_zh: x\nlabel: x\nstatus: illustrative\nversions:\n'
        "  - from: 2025-01-01\n    items: {X: {selfpay_prop: 0.2}}\n",
        encoding="utf-8",
    )
    (tmp_path / "b.yaml").write_text((tmp_path / "a.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(YibaoError):
        TreatmentLists(tmp_path)  # two files for one province


def test_shipped_lists_name_codes_of_the_shipped_list():
    for pl in load_lists().by_province.values():
        assert pl.status == "illustrative"
        for v in pl.versions:
            assert set(v.items) <= set(CAT.items)


@pytest.fixture
def svc(db_engine) -> SettlementService:
    with ydb.session_scope(db_engine) as s:
        s.add(
            registry.Person(
                psn_no="E1",
                gend="1",
                brdy=dt.date(1970, 5, 1),
                insutype="310",
                psn_type="in_service",
                civil_servant=False,
                insuplc_admdvs=HOME,
                assistance="",
                contribution_base=0,
                acct_balc=0,
                synthetic=True,
            )
        )
        s.add(
            registry.Institution(
                fixmedins_code="H44", fixmedins_type="hospital", hosp_lv=2, admdvs=GUANGZHOU, synthetic=True
            )
        )
    return SettlementService(db_engine, BOOK, CAT)


def test_the_settlement_service_prices_by_the_treatment_province(svc):
    c = dataclasses.replace(_claim(GUANGZHOU), fixmedins_code="H44")
    r = svc.settle(c, msgid="g1", pre=True, use_account=False)
    assert _split(r.settlement) == (3000, 300, 1100, 6900)


# --- batch = scalar ----------------------------------------------------------------------------

AREAS = ["", SUZHOU, GUANGZHOU, BEIJING, "990105"]
CODES = [NIFEDIPINE, TELMISARTAN, PERINDOPRIL, "XV99AAS001Z999010100000"]
line_st = st.tuples(st.sampled_from(CODES), st.integers(1, 40), st.integers(50, 400))
claim_st = st.fixed_dictionaries(
    {
        "day": st.integers(0, 800),
        "area": st.sampled_from(AREAS),
        "lines": st.lists(line_st, min_size=1, max_size=4),
    }
)
START = dt.date(2025, 1, 1)


def _tables(claims):
    crow, lrows = [], []
    for k in claims:
        crow.append(
            {
                "mdtrt_id": k.mdtrt_id,
                "psn_no": "E1",
                "fixmedins_code": "H2",
                "med_type": k.med_type,
                "begntime": pd.Timestamp(k.begntime),
                "setl_time": pd.Timestamp(k.setl_time),
                "dise_codg": k.dise_codg,
                "mdtrtarea_admvs": k.mdtrtarea_admvs,
                "cross_filed": True,
            }
        )
        for ln in k.lines:
            lrows.append(
                {
                    "mdtrt_id": k.mdtrt_id,
                    "feedetl_sn": ln.feedetl_sn,
                    "med_list_codg": ln.med_list_codg,
                    "cnt_milli": ln.cnt_milli,
                    "pric": ln.pric,
                    "det_item_fee_sumamt": ln.det_item_fee_sumamt,
                    "prd_days": ln.prd_days,
                }
            )
    return pd.DataFrame(crow), pd.DataFrame(lrows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims_in=st.lists(claim_st, min_size=1, max_size=5))
def test_batch_equals_scalar_on_cross_province_claims(claims_in):
    p = person("E1", region=HOME)
    claims = []
    for j, c in enumerate(claims_in):
        when = dt.datetime.combine(START + dt.timedelta(days=c["day"]), dt.time(10), tzinfo=TZ)
        lines = [line(i + 1, code, f"{fen / 100:.2f}", qty) for i, (code, qty, fen) in enumerate(c["lines"])]
        k = claim(f"M{j}", p, lines, med_type="21", hosp_lv=2, when=when)
        claims.append(dataclasses.replace(k, fixmedins_code="H2", mdtrtarea_admvs=c["area"]))
    persons = {
        "E1": {
            "psn_no": "E1",
            "gend": p.gend,
            "brdy": p.brdy,
            "insutype": "310",
            "psn_type": "in_service",
            "civil_servant": False,
            "insuplc_admdvs": HOME,
            "assistance": "",
            "contribution_base": 0,
            "acct_balc": 0,
        }
    }
    policy = BOOK.policy(HOME)
    scalar = settle_in_order(claims, Ledger(policy, persons, START, book=BOOK), CAT)
    ct, lt = _tables(claims)
    res = settle_batch(
        ct,
        lt,
        pd.DataFrame(list(persons.values())),
        pd.DataFrame({"fixmedins_code": ["H2"], "hosp_lv": [2]}),
        CAT,
        policy=policy,
        book=BOOK,
        account_start=START,
    )
    batch = {r["mdtrt_id"]: r for r in res.settlements.to_pylist()}
    for k, sc in zip(claims, scalar, strict=True):
        assert not isinstance(sc, Exception), sc
        b = batch[k.mdtrt_id]
        for name, v in sc.amounts().items():
            assert b[name] == v, (k.mdtrtarea_admvs, name, b[name], v)


def test_cli_shows_the_lists():
    from typer.testing import CliRunner

    from yibao.cli import app

    r = CliRunner().invoke(app, ["filing", "lists", "--province", "44"])
    assert r.exit_code == 0, r.output
    assert "15.00%" in r.output and "2.00" in r.output and "广东省" in r.output and "江苏省" not in r.output
