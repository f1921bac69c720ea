"""The batch engine pays a circulated prescription (外配处方) at the level the rule file says, as RxService does.

The scalar path (RxService.fill → SettlementService.settle(level_of=issuer)) and the batch path (settle_batch with
a PrescriberLevel: the issuer found through the line's prescriber) must agree to the fen on the same claim.
Synthetic people and institutions, the region 990100 and the small list of tests/factories.py.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import TZ
from tests.rxcirc.test_rxcirc_service import (
    CAT,
    DOCTOR,
    HOSP,
    PHARMACY,
    REGION,
    _person,
    fill_req,
    issue_req,
    rx,  # noqa: F401  (the fixture)
)
from yibao.benefits.policy import PolicyBook
from yibao.core import db as ydb
from yibao.core.contract import MED_TYPE_OUTPATIENT
from yibao.rxcirc.params import load_circulation
from yibao.rxcirc.service import FillLine, IssueLine
from yibao.settlement.batch import settle_batch
from yibao.settlement.circulation import PrescriberLevel, prescribers_on_circulated_lines
from yibao.settlement.rules import Claim, FeeLine, PersonFacts, line_amount

BOOK = PolicyBook.default()
RULES = [(r.valid_from, r.benefit_level) for r in load_circulation().rules]
OTHER_HOSP = "H44010000002"  # another level-2 hospital
TOP_HOSP = "H44010000003"  # a level-3 hospital
PRESCRIBERS = pa.table(
    {
        "prac_psn_code": [DOCTOR, "D44010000002", "D44010000003"],
        "fixmedins_code": [HOSP, OTHER_HOSP, TOP_HOSP],
    }
)
INSTITUTIONS = pd.DataFrame({"fixmedins_code": [HOSP, OTHER_HOSP, TOP_HOSP, PHARMACY], "hosp_lv": [2, 2, 3, 0]})
AT = lambda d, h=10: dt.datetime(2026, 3, d, h, tzinfo=TZ)  # noqa: E731


def person_row(psn_no: str) -> dict:
    return {
        "psn_no": psn_no, "gend": "2", "brdy": dt.date(1990, 1, 1), "insutype": "390", "psn_type": "resident",
        "civil_servant": False, "insuplc_admdvs": REGION, "assistance": "", "contribution_base": 0, "acct_balc": 0,
        "family_id": psn_no, "synthetic": True,
    }  # fmt: skip


def claim_row(mdtrt_id: str, psn_no: str, inst: str, when: dt.datetime) -> dict:
    return {
        "mdtrt_id": mdtrt_id, "psn_no": psn_no, "fixmedins_code": inst, "med_type": MED_TYPE_OUTPATIENT,
        "begntime": pd.Timestamp(when), "setl_time": pd.Timestamp(when), "dise_codg": "J06.9",
    }  # fmt: skip


def line_row(mdtrt_id: str, sn: int, code: str, cnt: int, pric: int, *, circ: bool, doctor: str = DOCTOR) -> dict:
    return {
        "mdtrt_id": mdtrt_id, "feedetl_sn": sn, "med_list_codg": code, "cnt_milli": cnt, "pric": pric,
        "det_item_fee_sumamt": line_amount(cnt, pric), "prd_days": 7, "rx_circ_flag": circ, "bilg_dr_code": doctor,
    }  # fmt: skip


def batch(claims: list[dict], lines: list[dict], persons: list[str], circulation: PrescriberLevel | None):
    return settle_batch(
        pd.DataFrame(claims),
        pd.DataFrame(lines),
        pd.DataFrame([person_row(p) for p in persons]),
        INSTITUTIONS,
        CAT,
        book=BOOK,
        account_start=dt.date(2026, 1, 1),
        circulation=circulation,
    )


ISSUER = PrescriberLevel.from_rules(RULES, PRESCRIBERS)


def amounts_of(res, mdtrt_id: str) -> dict:
    rows = [r for r in res.settlements.to_pylist() if r["mdtrt_id"] == mdtrt_id]
    assert len(rows) == 1, res.rejected
    return rows[0]


def test_the_rule_file_says_issuer_from_its_first_day():
    assert ISSUER.ever_at_issuer
    first = RULES[0][0]
    days = pd.Series([first - dt.timedelta(days=1), first]).map(lambda d: (d - dt.date(1970, 1, 1)).days)
    assert ISSUER.at_issuer(days.to_numpy()).tolist() == [False, True]


def test_property_batch_fill_equals_the_scalar_fill(rx):  # noqa: F811
    """For any quantities, prices and earlier spending, the batch engine settles the pharmacy's claim of a
    circulated prescription to the fen as RxService.fill did (the issuer's level, 2, not the pharmacy's, 0)."""
    counter = iter(range(10_000))
    drug = st.tuples(st.integers(1, 60_000), st.integers(1, 50_000))

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    @given(a=drug, b=drug, prior=st.integers(0, 20_000))
    def check(a, b, prior):
        n = next(counter)
        psn = f"BP{n}"
        with ydb.session_scope(rx.engine) as s:
            _person(s, psn)
        claims, lines = [], []
        if prior:  # part of the year's deductible used at the hospital first, in both paths
            c = Claim(
                f"PRIOR-{psn}", PersonFacts(psn, "", "", "", dt.date(1900, 1, 1), ""), HOSP, 0,
                MED_TYPE_OUTPATIENT, AT(1), AT(1), "J06.9", (FeeLine(1, "A-DRUG", 1000, prior, prior),),
            )  # fmt: skip
            rx.settlement.settle(c, msgid=f"MSG-BPRIOR-{psn}")
            claims.append(claim_row(f"PRIOR-{psn}", psn, HOSP, AT(1)))
            lines.append(line_row(f"PRIOR-{psn}", 1, "A-DRUG", 1000, prior, circ=False, doctor=""))
        v = rx.issue(
            issue_req(
                psn_no=psn, hosp_rxno=f"HRX-B{n}", lines=(IssueLine("A-DRUG", a[0], 7), IssueLine("B-DRUG", b[0], 7))
            )
        )
        fills = (FillLine("A-DRUG", a[0], a[1], 7), FillLine("B-DRUG", b[0], b[1], 7))
        got = rx.fill(fill_req(v.hi_rxno, lines=fills, msgid=f"MSG-BF{n}"))
        assert got.hosp_lv == 2
        claims.append(claim_row("FILL", psn, PHARMACY, AT(3)))
        lines += [line_row("FILL", i, f.med_list_codg, f.cnt_milli, f.pric, circ=True) for i, f in enumerate(fills, 1)]
        row = amounts_of(batch(claims, lines, [psn], ISSUER), "FILL")
        for name, value in got.settlement.settlement.amounts().items():
            assert row[name] == value, (name, row[name], value)

    check()


FILL = [
    line_row("FILL", 1, "A-DRUG", 10_000, 3000, circ=True),
    line_row("FILL", 2, "B-DRUG", 2_000, 5000, circ=True),
]


def test_at_the_pharmacy_level_without_the_rule_or_under_dispenser():
    """Without a rule, or with benefit_level dispenser, the pharmacy's own level (0) applies: no pooled fund for an
    outpatient claim there; under issuer the same claim is paid as at the level-2 hospital."""
    claims = [claim_row("FILL", "R1", PHARMACY, AT(3))]
    issuer = amounts_of(batch(claims, FILL, ["R1"], ISSUER), "FILL")
    none = amounts_of(batch(claims, FILL, ["R1"], None), "FILL")
    dispenser = amounts_of(
        batch(claims, FILL, ["R1"], PrescriberLevel.from_rules([(RULES[0][0], "dispenser")], PRESCRIBERS)), "FILL"
    )
    before = amounts_of(
        batch(claims, FILL, ["R1"], PrescriberLevel.from_rules([(dt.date(2027, 1, 1), "issuer")], PRESCRIBERS)), "FILL"
    )
    assert none["hifp_pay"] == dispenser["hifp_pay"] == before["hifp_pay"] == 0
    assert issuer["hifp_pay"] > 0
    same_at_hospital = amounts_of(
        batch(
            [claim_row("H", "R1", HOSP, AT(3))],
            [{**ln, "mdtrt_id": "H", "rx_circ_flag": False} for ln in FILL],
            ["R1"],
            ISSUER,
        ),
        "H",
    )
    assert {k: issuer[k] for k in ("hifp_pay", "psn_cash_pay", "act_pay_dedc")} == {
        k: same_at_hospital[k] for k in ("hifp_pay", "psn_cash_pay", "act_pay_dedc")
    }


@pytest.mark.parametrize(
    ("doctors", "why"),
    [
        (("D44019999999", DOCTOR), "prescriber"),  # not in the practitioner table
        (("", DOCTOR), "prescriber"),  # a circulated line with no prescriber
        ((DOCTOR, "D44010000003"), "different levels"),  # a level-2 and a level-3 issuer in one claim
    ],
)
def test_refused_claims_and_the_rest_settle(doctors, why):
    lines = [{**ln, "bilg_dr_code": d} for ln, d in zip(FILL, doctors, strict=True)]
    other = [{**ln, "mdtrt_id": "OK"} for ln in FILL]
    claims = [claim_row("FILL", "R1", PHARMACY, AT(3)), claim_row("OK", "R2", PHARMACY, AT(3))]
    res = batch(claims, lines + other, ["R1", "R2"], ISSUER)
    assert res.rejected["mdtrt_id"].tolist() == ["FILL"]
    assert res.rejected["field"].tolist() == ["bilg_dr_code"]
    assert why in res.rejected["reason_en"].iloc[0]
    assert amounts_of(res, "OK")["hifp_pay"] > 0


def test_two_issuers_of_one_level_settle_as_one_claim():
    lines = [FILL[0], {**FILL[1], "bilg_dr_code": "D44010000002"}]  # two level-2 hospitals
    res = batch([claim_row("FILL", "R1", PHARMACY, AT(3))], lines, ["R1"], ISSUER)
    assert res.rejected.empty
    assert (
        amounts_of(res, "FILL")["hifp_pay"]
        == amounts_of(batch([claim_row("FILL", "R1", PHARMACY, AT(3))], FILL, ["R1"], ISSUER), "FILL")["hifp_pay"]
    )


def test_no_practitioner_table_refuses_circulated_claims_only():
    res = batch(
        [claim_row("FILL", "R1", PHARMACY, AT(3)), claim_row("H", "R2", HOSP, AT(3))],
        FILL + [{**ln, "mdtrt_id": "H", "rx_circ_flag": False} for ln in FILL],
        ["R1", "R2"],
        PrescriberLevel.from_rules(RULES, None),
    )
    assert res.rejected["mdtrt_id"].tolist() == ["FILL"]
    assert amounts_of(res, "H")["hifp_pay"] > 0


def test_periods_must_be_in_order():
    with pytest.raises(ValueError, match="increasing"):
        PrescriberLevel.from_rules([(dt.date(2022, 1, 1), "issuer"), (dt.date(2021, 1, 1), "dispenser")], PRESCRIBERS)
    with pytest.raises(ValueError, match="lacks"):
        PrescriberLevel((), pa.table({"prac_psn_code": ["D1"]}))


def test_the_year_readers_keep_the_prescriber_only_on_circulated_lines():
    """prescribers_on_circulated_lines nulls bilg_dr_code where rx_circ_flag is not set (False or null), keeps it
    where it is, and leaves a table without the two columns alone; the claims settle to the same fen."""
    lines = pa.Table.from_pandas(
        pd.DataFrame(FILL + [{**ln, "mdtrt_id": "H", "rx_circ_flag": False} for ln in FILL]), preserve_index=False
    )
    flags = pa.chunked_array([[True, True], [False, None]], pa.bool_())
    lines = lines.set_column(lines.column_names.index("rx_circ_flag"), "rx_circ_flag", flags)
    kept = prescribers_on_circulated_lines(lines)
    assert kept.column("bilg_dr_code").to_pylist() == [DOCTOR, DOCTOR, None, None]
    assert kept.drop_columns(["bilg_dr_code"]).equals(lines.drop_columns(["bilg_dr_code"]))
    bare = lines.drop_columns(["rx_circ_flag"])
    assert prescribers_on_circulated_lines(bare) is bare
    claims = [claim_row("FILL", "R1", PHARMACY, AT(3)), claim_row("H", "R2", HOSP, AT(3))]
    full, lean = (batch(claims, t.to_pandas(), ["R1", "R2"], ISSUER) for t in (lines, kept))
    assert full.rejected.empty and lean.rejected.empty
    assert full.settlements.equals(lean.settlements)
