"""Each audit rule on constructed positive and negative cases: the post-care SQL and the in-care check."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.codes.medlist import MedList
from yibao.core import contract as C
from yibao.settlement.rules import Claim, FeeLine, PersonFacts
from yibao.supervision.batch import scan
from yibao.supervision.incare import History, PastAdmission, check_claim
from yibao.supervision.knowledge import RuleBook, SupervisionDataError, default_rulebook
from yibao.supervision.stock import PURCHASE

SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=SH)
ML = MedList.load()


def price(code: str) -> int:
    it = ML.items[code]
    return it.pric_uplmt or 1000


class Region:
    """A hand-built region: persons, institutions, encounters and lines, written as contract Parquet."""

    def __init__(self):
        self.persons: dict[str, dict] = {}
        self.encs: list[dict] = []
        self.lines: list[dict] = []
        self.purchases: list[dict] = []

    def person(self, psn: str, gend: str = "1", brdy: dt.date = dt.date(1960, 5, 5)) -> str:
        self.persons[psn] = dict(
            psn_no=psn,
            certno=psn,
            psn_name="合成",
            gend=gend,
            brdy=brdy,
            insutype="310",
            psn_type="in_service",
            civil_servant=False,
            insuplc_admdvs="990100",
            assistance="",
            contribution_base=0,
            acct_balc=0,
            family_id=psn,
            synthetic=True,
        )
        return psn

    def enc(
        self,
        mid: str,
        lines: list,
        *,
        psn: str | None = None,
        med_type: str = "11",
        inst: str = "H1",
        day: float = 0,
        days: float = 0.02,
        dx: str = "I10",
        other: str = "",
        oprn: str = "",
        dscg: str = "",
        lt: bool = True,
    ) -> str:
        psn = psn or self.person("P" + mid)
        b = T0 + dt.timedelta(days=day)
        e = b + dt.timedelta(days=days)
        self.encs.append(
            dict(
                mdtrt_id=mid,
                psn_no=psn,
                fixmedins_code=inst,
                med_type=med_type,
                begntime=b,
                endtime=e,
                policy_year=2025,
                dise_codg=dx,
                other_dise_codg=other,
                oprn_codg=oprn,
                dscg_way=dscg,
                dept_code="A03",
                dr_code="D1",
                mdtrtarea_admvs="990101",
                mulaid_payer_psn_no="",
                lt_rx_confirmed=lt,
                synthetic=True,
            )
        )
        for sn, ln in enumerate(lines, start=1):
            code, cnt, *rest = ln if isinstance(ln, tuple) else (ln, 1)
            pric = rest[0] if len(rest) > 0 and rest[0] is not None else price(code)
            prd = rest[1] if len(rest) > 1 else 0
            t = rest[2] if len(rest) > 2 else b + dt.timedelta(minutes=sn)
            self.lines.append(
                dict(
                    mdtrt_id=mid,
                    feedetl_sn=sn,
                    med_list_codg=code,
                    cnt_milli=cnt * 1000,
                    pric=pric,
                    det_item_fee_sumamt=(cnt * 1000 * pric + 500) // 1000,
                    fee_ocur_time=t,
                    rxno="",
                    rx_circ_flag=False,
                    prd_days=prd,
                    bilg_dr_code="D1",
                    synthetic=True,
                )
            )
        return mid

    def write(self, d) -> None:
        def table(rows, schema):
            return pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False).select(schema.names).cast(schema)

        pq.write_table(table(list(self.persons.values()), C.PERSON), d / "person.parquet")
        pq.write_table(table(self.encs, C.ENCOUNTER), d / "encounter.parquet")
        pq.write_table(table(self.lines, C.FEE_DETAIL), d / "fee_detail.parquet")
        inst = [
            dict(
                fixmedins_code=c,
                fixmedins_name=c,
                fixmedins_type="hospital",
                hosp_lv=lv,
                admdvs="990101",
                synthetic=True,
            )
            for c, lv in (("H1", 1), ("H3", 3))
        ]
        pq.write_table(table(inst, C.INSTITUTION), d / "institution.parquet")
        pq.write_table(ML.table, d / "med_list.parquet")
        if self.purchases:
            pq.write_table(table(self.purchases, PURCHASE), d / "purchase.parquet")


def line(mid: str, sn: int) -> str:
    return f"{mid}#{sn:06d}"


# (rule id, positive entity ids, negative entity ids) filled by the builder below
CASES: dict[str, tuple[set, set]] = {}


def build(r: Region) -> None:
    def case(rule, pos, neg):
        CASES[rule] = (set(pos), set(neg))

    # 挂床: stay-only charges over 5 days vs a stay with a drug
    case(
        "SV-PHANTOM-01",
        [r.enc("PH1", [("990200000010000", 5), ("990200000070000", 5)], med_type="21", days=5)],
        [
            r.enc("PH2", [("990200000010000", 5), ("XV99AAS001Z999010100000", 10, None, 0)], med_type="21", days=5),
            r.enc("PH3", [("990200000010000", 2)], med_type="21", days=2),
        ],
    )
    # 过度检查: 4 exams or 2 CT in a clinic visit vs 3 exams; inpatient stays are not judged
    case(
        "SV-EXAM-01",
        [
            r.enc("EX1", ["990400000010000", "990400000020000", "990400000040000", "990400000050000"]),
            r.enc("EX2", ["990500000020000", "990500000030000"]),
        ],
        [
            r.enc("EX3", ["990400000010000", "990400000020000", "990400000040000"]),
            r.enc(
                "EX4",
                ["990400000010000", "990400000020000", "990400000040000", "990400000050000"],
                med_type="21",
                days=3,
            ),
        ],
    )
    # 长期处方 over 84 days
    case(
        "SV-LRX-01",
        [line(r.enc("LR1", [("XV99AAS001Z999010100000", 90, None, 90)], med_type="14"), 1)],
        [line(r.enc("LR2", [("XV99AAS001Z999010100000", 84, None, 84)], med_type="14"), 1)],
    )
    # > 28 days without confirmation (not at a pharmacy fill)
    case(
        "SV-LRX-02",
        [r.enc("LC1", [("XV99AAS001Z999010100000", 56, None, 56)], med_type="14", lt=False)],
        [
            r.enc("LC2", [("XV99AAS001Z999010100000", 56, None, 56)], med_type="14", lt=True),
            r.enc("LC3", [("XV99AAS001Z999010100000", 56, None, 56)], med_type="41", inst="H1", lt=False),
            r.enc("LC4", [("XV99AAS001Z999010100000", 28, None, 28)], med_type="14", lt=False),
        ],
    )
    # 重复收费: same item, quantity, price and time twice vs at another time
    t = T0 + dt.timedelta(days=10)
    case(
        "SV-DUP-01",
        [line(r.enc("DU1", [("990400000010000", 1, None, 0, t), ("990400000010000", 1, None, 0, t)]), 2)],
        [
            line(
                r.enc(
                    "DU2",
                    [("990400000010000", 1, None, 0, t), ("990400000010000", 1, None, 0, t + dt.timedelta(hours=2))],
                ),
                2,
            ),
            line("DU1", 1),
        ],
    )
    # 超标准收费: a service above its price; a drug above its cap is not (self-paid excess)
    case(
        "SV-PRICE-01",
        [line(r.enc("PR1", [("990400000010000", 1, 2500)]), 1)],
        [line(r.enc("PR2", [("990400000010000", 1, 2000)]), 1)],
    )
    # 分解收费: PTCA billed with the stent placement
    case(
        "SV-UNBUNDLE-01",
        [line(r.enc("UB1", ["990600000040000", "990600000050000"], med_type="21", days=4, inst="H3"), 2)],
        [line(r.enc("UB2", ["990600000050000"], med_type="21", days=4, inst="H3"), 1)],
    )
    # 串换: a locking plate without a fracture operation
    case(
        "SV-SWAP-01",
        [line(r.enc("SW1", ["990200000010000", "C9901010100000099999"], med_type="21", days=4), 2)],
        [line(r.enc("SW2", ["990600000110000", "C9901010100000099999"], med_type="21", days=4), 2)],
    )
    # 限定支付范围
    case(
        "SV-SCOPE-SEX",
        [line(r.enc("SX1", ["990400000280000"], psn=r.person("PF", "2")), 1)],
        [line(r.enc("SX2", ["990400000280000"], psn=r.person("PM", "1")), 1)],
    )
    case(
        "SV-SCOPE-AGE",
        [
            line(
                r.enc(
                    "AG1",
                    [("XV99AES010Z999051000000", 6, None, 3)],
                    psn=r.person("PK", "1", dt.date(2015, 1, 1)),
                    dx="J20.900",
                ),
                1,
            )
        ],
        [
            line(
                r.enc(
                    "AG2",
                    [("XV99AES010Z999051000000", 6, None, 3)],
                    psn=r.person("PA", "1", dt.date(1990, 1, 1)),
                    dx="J20.900",
                ),
                1,
            )
        ],
    )
    case(
        "SV-SCOPE-LEVEL",
        [line(r.enc("LV1", ["990500000060000"], inst="H1"), 1)],
        [line(r.enc("LV2", ["990500000060000"], inst="H3"), 1)],
    )
    case(
        "SV-SCOPE-IND",
        [line(r.enc("IN1", ["990400000220000"], dx="I10.x00x002"), 1)],
        [line(r.enc("IN2", ["990400000220000"], dx="I10.x00x002", other="J18.900"), 1)],
    )
    case(
        "SV-SCOPE-MEDTYPE",
        [line(r.enc("MT1", ["990300000170000"], inst="H3", med_type="11"), 1)],
        [line(r.enc("MT2", ["990300000170000"], inst="H3", med_type="21", days=3), 1)],
    )
    # 超量开药: XV99AAS001Z999010100000 at most 2 a day, flagged above 6 x 2 x 7 + 1 = 85 units for 7 days
    case(
        "SV-QTY-01",
        [line(r.enc("QT1", [("XV99AAS001Z999010100000", 86, None, 7)]), 1)],
        [line(r.enc("QT2", [("XV99AAS001Z999010100000", 85, None, 7)]), 1)],
    )
    # 分解住院: readmitted the next day for the same disease at the same hospital; 60 days later is not
    p = r.person("PS")
    r.enc("SP1", [("990200000010000", 5), "XV99AAS001Z999010100000"], psn=p, med_type="21", day=0, days=5, dx="I63.900")
    sp2 = r.enc(
        "SP2", [("990200000010000", 5), "XV99AAS001Z999010100000"], psn=p, med_type="21", day=6, days=5, dx="I63.900"
    )
    sp3 = r.enc(
        "SP3", [("990200000010000", 5), "XV99AAS001Z999010100000"], psn=p, med_type="21", day=70, days=5, dx="I63.900"
    )
    sp4 = r.enc(
        "SP4",
        [("990200000010000", 5), "XV99AAS001Z999010100000"],
        psn=p,
        med_type="21",
        day=76,
        days=5,
        dx="K35.800x001",
    )  # other disease
    case("SV-SPLIT-01", [sp2], ["SP1", sp3, sp4])
    # 低标入院: a 2-day admission for a cold vs an 8-day one
    case(
        "SV-LOWADM-01",
        [r.enc("LA1", [("990200000010000", 2), "XV99AAS001Z999010100000"], med_type="21", days=2, dx="J06.900")],
        [
            r.enc("LA2", [("990200000010000", 8), "XV99AAS001Z999010100000"], med_type="21", days=8, dx="J06.900"),
            r.enc("LA3", [("990200000010000", 2), "XV99AAS001Z999010100000"], med_type="21", days=2, dx="J18.900"),
        ],
    )
    # 高套: respiratory failure on paper, or with only a routine blood gas; sepsis with only a routine culture,
    # vs respiratory failure with ventilation and sepsis with culture + a broad-spectrum antibiotic (every group met)
    case(
        "SV-UPCODE-01",
        [
            r.enc(
                "UP1",
                [("990200000010000", 5), "XV99AAS001Z999010100000"],
                med_type="21",
                days=5,
                dx="J18.900",
                other="I10.x00x002;J96.000",
            ),
            r.enc(
                "UP3", [("990200000010000", 5), "990400000150000"], med_type="21", days=5, dx="J18.900", other="J96.000"
            ),
            r.enc(
                "UP4", [("990200000010000", 5), "990400000200000"], med_type="21", days=5, dx="J18.900", other="A41.900"
            ),
            r.enc(
                "UP5",
                [("990200000010000", 5), "XV99AES018Z999051800000"],
                med_type="21",
                days=5,
                dx="J18.900",
                other="A41.900",
            ),
        ],
        [
            r.enc(
                "UP2", [("990200000010000", 5), "990300000170000"], med_type="21", days=5, dx="J18.900", other="J96.000"
            ),
            r.enc(
                "UP6",
                [("990200000010000", 5), "990400000200000", "XV99AES018Z999051800000"],
                med_type="21",
                days=5,
                dx="J18.900",
                other="A41.900",
            ),
        ],
    )
    # 冒名就医: a delivery on a man's card; a claim after the recorded death
    case(
        "SV-IMP-01",
        [r.enc("IM1", ["990600000080000"], psn=r.person("PM2", "1"), med_type="21", days=3, dx="O80.000")],
        [r.enc("IM2", ["990600000080000"], psn=r.person("PF2", "2"), med_type="21", days=3, dx="O80.000")],
    )
    pd_ = r.person("PD")
    r.enc("DE1", [("990200000010000", 3)], psn=pd_, med_type="21", day=50, days=3, dx="I21.900", dscg="5")
    case(
        "SV-IMP-02",
        [r.enc("DE2", ["XV99AAS001Z999010100000"], psn=pd_, med_type="41", day=70)],
        ["DE1", r.enc("DE0", ["XV99AAS001Z999010100000"], psn=pd_, med_type="41", day=20)],
    )
    # 进销存: H3 billed 50 of XV99AAS002Z999010200000 but bought 10; bought 50
    # of XV99AAS003Z999010300000. Slack is 12 % of purchases + stock, at least
    # 1 unit: 20 billed of 14 bought + 2 in stock (25 %) is found, 9 of 8 + 0 (12.5 %, 1 unit) too;
    # 11 of 10 + 0 (10 %) and 56 of 50 + 0 (12 %, not above) are within the slack.
    r.enc(
        "ST1",
        [
            ("XV99AAS002Z999010200000", 50, None, 25),
            ("XV99AAS003Z999010300000", 50, None, 25),
            ("XV99AAS004Z999010400000", 20, None, 10),
            ("XV99AAS005Z999010500000", 9, None, 9),
            ("XV99AAS006Z999010600000", 11, None, 11),
            ("XV99AAS007Z999010700000", 56, None, 28),
        ],
        inst="H3",
        med_type="14",
    )
    for code, bought, stock in (
        ("XV99AAS002Z999010200000", 10, 0),
        ("XV99AAS003Z999010300000", 50, 0),
        ("XV99AAS004Z999010400000", 14, 2),
        ("XV99AAS005Z999010500000", 8, 0),
        ("XV99AAS006Z999010600000", 10, 0),
        ("XV99AAS007Z999010700000", 50, 0),
    ):
        r.purchases.append(
            dict(
                fixmedins_code="H3",
                med_list_codg=code,
                policy_year=2025,
                qty_milli=bought * 1000,
                opening_stock_milli=stock * 1000,
                synthetic=True,
            )
        )
    case(
        "SV-STOCK-01",
        ["H3#XV99AAS002Z999010200000", "H3#XV99AAS004Z999010400000", "H3#XV99AAS005Z999010500000"],
        ["H3#XV99AAS003Z999010300000", "H3#XV99AAS006Z999010600000", "H3#XV99AAS007Z999010700000"],
    )


@pytest.fixture(scope="module")
def hits(tmp_path_factory):
    d = tmp_path_factory.mktemp("sv_rules")
    r = Region()
    build(r)
    r.write(d)
    return scan(d).hits


def test_every_post_rule_has_cases():
    r = Region()
    build(r)
    assert {x.id for x in default_rulebook().by_stage("post")} == set(CASES)


@pytest.mark.parametrize("rule_id", sorted({x.id for x in default_rulebook().by_stage("post")}))
def test_post_rule_positive_and_negative(hits, rule_id):
    r = Region()
    build(r)
    pos, neg = CASES[rule_id]
    got = set(hits.loc[hits.rule_id == rule_id, "entity_id"])
    assert pos <= got, f"{rule_id} missed {pos - got}"
    assert not (neg & got), f"{rule_id} flagged negatives {neg & got}"
    assert hits.loc[hits.rule_id == rule_id, "evidence"].str.startswith("{").all()


def test_hits_carry_money_and_evidence(hits):
    h = hits[hits.rule_id == "SV-PRICE-01"].iloc[0]
    assert h.amount == 500 and '"pric_uplmt":2000' in h.evidence  # 25.00 charged for a 20.00 service
    q = hits[hits.rule_id == "SV-QTY-01"].iloc[0]
    assert q.amount == (86_000 - 84_000) * price("XV99AAS001Z999010100000") // 1000


# --- in-care (事中) ------------------------------------------------------------------------------


def claim(
    lines,
    *,
    gend="1",
    brdy=dt.date(1960, 5, 5),
    med_type="11",
    hosp_lv=1,
    dx="I10.x00x002",
    other=(),
    lt=True,
    begin=T0,
    inst="H1",
    mid="M1",
):
    fl = []
    for sn, ln in enumerate(lines, start=1):
        code, cnt, *rest = ln if isinstance(ln, tuple) else (ln, 1)
        pric = rest[0] if rest and rest[0] is not None else price(code)
        prd = rest[1] if len(rest) > 1 else 0
        fl.append(FeeLine(sn, code, cnt * 1000, pric, (cnt * 1000 * pric + 500) // 1000, prd_days=prd))
    person = PersonFacts("P1", "310", "in_service", gend, brdy, "990100")
    return Claim(
        mid,
        person,
        inst,
        hosp_lv,
        med_type,
        begin,
        begin + dt.timedelta(hours=1),
        dx,
        tuple(fl),
        tuple(other),
        lt_rx_confirmed=lt,
    )


def rules_hit(c, history=None, stage="in"):
    v = check_claim(c, catalog=ML.items, history=history, stage=stage)
    return v, {f.rule_id for f in v.findings}


INCARE = [
    ("SV-SCOPE-SEX", claim(["990400000280000"], gend="2"), claim(["990400000280000"], gend="1")),
    (
        "SV-SCOPE-AGE",
        claim([("XV99AES010Z999051000000", 6, None, 3)], brdy=dt.date(2015, 1, 1), dx="J20.900"),
        claim([("XV99AES010Z999051000000", 6, None, 3)], dx="J20.900"),
    ),
    ("SV-SCOPE-LEVEL", claim(["990500000060000"], hosp_lv=1), claim(["990500000060000"], hosp_lv=3)),
    ("SV-SCOPE-IND", claim(["990400000220000"]), claim(["990400000220000"], other=("J18.900",))),
    ("SV-SCOPE-MEDTYPE", claim(["990300000170000"], hosp_lv=3), claim(["990300000170000"], hosp_lv=3, med_type="21")),
    ("SV-PRICE-01", claim([("990400000010000", 1, 2500)]), claim([("990400000010000", 1, 2000)])),
    ("SV-DUP-01", claim(["990400000010000", "990400000010000"]), claim(["990400000010000", ("990400000010000", 2)])),
    (
        "SV-LRX-01",
        claim([("XV99AAS001Z999010100000", 90, None, 90)], med_type="14"),
        claim([("XV99AAS001Z999010100000", 84, None, 84)], med_type="14"),
    ),
    (
        "SV-LRX-02",
        claim([("XV99AAS001Z999010100000", 56, None, 56)], med_type="14", lt=False),
        claim([("XV99AAS001Z999010100000", 56, None, 56)], med_type="14", lt=True),
    ),
    ("SV-QTY-01", claim([("XV99AAS001Z999010100000", 86, None, 7)]), claim([("XV99AAS001Z999010100000", 85, None, 7)])),
    (
        "SV-UNBUNDLE-01",
        claim(["990600000040000", "990600000050000"], med_type="21", hosp_lv=3),
        claim(["990600000050000"], med_type="21", hosp_lv=3),
    ),
    (
        "SV-EXAM-01",
        claim(["990400000010000", "990400000020000", "990400000040000", "990400000050000"]),
        claim(["990400000010000", "990400000020000", "990400000040000"]),
    ),
    (
        "SV-IMP-01",
        claim(["990600000080000"], dx="O80.000", med_type="21"),
        claim(["990600000080000"], dx="O80.000", med_type="21", gend="2"),
    ),
]


@pytest.mark.parametrize("rule_id,pos,neg", INCARE, ids=[c[0] for c in INCARE])
def test_incare_rule_positive_and_negative(rule_id, pos, neg):
    v, got = rules_hit(pos)
    assert rule_id in got
    f = next(f for f in v.findings if f.rule_id == rule_id)
    assert f.reason_en and f.reason_zh and f.field and f.evidence
    assert v.action == ("refuse" if any(x.action == "refuse" for x in v.findings) else "warn")
    assert rule_id not in rules_hit(neg)[1]


def test_incare_history_rules():
    adm = PastAdmission("A1", "H1", "I63.900", T0 - dt.timedelta(days=8), T0 - dt.timedelta(days=2))
    c = claim(["990200000010000"], med_type="21", dx="I63.900")
    assert "SV-SPLIT-01" in rules_hit(c, History((adm,)))[1]
    assert (
        "SV-SPLIT-01" not in rules_hit(claim(["990200000010000"], med_type="21", dx="K35.800x001"), History((adm,)))[1]
    )
    old = PastAdmission("A0", "H1", "I63.900", T0 - dt.timedelta(days=40), T0 - dt.timedelta(days=30))
    assert "SV-SPLIT-01" not in rules_hit(c, History((old,)))[1]
    v, got = rules_hit(claim(["XV99AAS001Z999010100000"]), History(death_time=T0 - dt.timedelta(days=3)))
    assert "SV-IMP-02" in got and v.action == "refuse"
    assert (
        "SV-IMP-02"
        not in rules_hit(claim(["XV99AAS001Z999010100000"]), History(death_time=T0 + dt.timedelta(days=3)))[1]
    )


def test_settlement_catalog_is_accepted():
    from yibao.settlement.catalog import Catalog

    v = check_claim(claim(["990400000280000"], gend="2"), catalog=Catalog(dict(ML.items)))
    assert {f.rule_id for f in v.findings} == {"SV-SCOPE-SEX"}


def test_clean_claim_passes_and_pre_stage_never_refuses():
    v, got = rules_hit(claim([("XV99AAS001Z999010100000", 14, None, 7), "990100000010000"]))
    assert v.action == "pass" and not got
    v, got = rules_hit(claim([("XV99AAS001Z999010100000", 90, None, 90)], med_type="14"), stage="pre")
    assert "SV-LRX-01" in got and v.action == "warn"


def test_bad_rule_file_is_refused_with_the_field_named(tmp_path):
    import shutil

    src = default_rulebook().directory
    shutil.copytree(src, tmp_path / "sv")
    p = tmp_path / "sv" / "rules.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace("severity: 5", "severity: 9", 1), encoding="utf-8")
    with pytest.raises(SupervisionDataError, match="severity"):
        RuleBook.load(tmp_path / "sv")
    shutil.rmtree(tmp_path / "sv")
    shutil.copytree(src, tmp_path / "sv")
    (tmp_path / "sv" / "sql" / "SV-DUP-01.sql").unlink()
    with pytest.raises(SupervisionDataError, match="SV-DUP-01"):
        RuleBook.load(tmp_path / "sv")


def test_long_rx_message_follows_the_rule_files_threshold(tmp_path):
    """The threshold and its message both come from ``confirm_over_days`` (the message once said "4 weeks")."""
    import shutil

    from yibao.supervision.knowledge import DATA_DIR

    c = claim([("XV99AAS001Z999010100000", 56, None, 56)], med_type="14", lt=False)
    v, got = rules_hit(c)
    f = next(f for f in v.findings if f.rule_id == "SV-LRX-02")
    assert "28 days" in f.reason_en and "28天" in f.reason_zh
    d = tmp_path / "sv"
    shutil.copytree(DATA_DIR, d)
    text = (d / "rules.yaml").read_text(encoding="utf-8")
    assert "confirm_over_days: 28" in text
    (d / "rules.yaml").write_text(text.replace("confirm_over_days: 28", "confirm_over_days: 55"), encoding="utf-8")
    book = RuleBook.load(d)
    v = check_claim(c, catalog=ML.items, book=book)
    f = next(f for f in v.findings if f.rule_id == "SV-LRX-02")
    assert "55 days" in f.reason_en and "55天" in f.reason_zh
    c56 = claim([("XV99AAS001Z999010100000", 55, None, 55)], med_type="14", lt=False)
    assert "SV-LRX-02" not in {f.rule_id for f in check_claim(c56, catalog=ML.items, book=book).findings}
