"""Small hand-made catalogues, people and claims for settlement tests."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from yibao.core.contract import MED_LIST
from yibao.settlement.catalog import Catalog
from yibao.settlement.rules import Claim, FeeLine, PersonFacts

TZ = dt.timezone(dt.timedelta(hours=8))


def item(code, name="item", kind="western", lv="01", selfpay="0", cap=0, **kw):
    row = {
        "med_list_codg": code,
        "name": name,
        "list_kind": kind,
        "chrgitm_lv": lv,
        "selfpay_prop_bp": int(round(float(selfpay) * 10000)),
        "pric_uplmt": cap,
        "lmt_gend": "",
        "lmt_age_min": -1,
        "lmt_age_max": -1,
        "lmt_hosp_lv_min": 0,
        "lmt_indication": "",
        "lmt_med_types": "",
        "drug_class": "",
        "acct_excluded": False,
        "vbp_flag": False,
        "vbp_pay_std": 0,
        "synthetic": True,
    }
    row.update(kw)
    return row


ITEMS = [
    item("A-DRUG", "甲类药", lv="01"),
    item("B-DRUG", "乙类药", lv="02", selfpay="0.10"),
    item("B-DRUG20", "乙类药20", lv="02", selfpay="0.20"),
    item("C-DRUG", "丙类药", lv="03"),
    item("CAP-DEV", "限价耗材", kind="consumable", lv="01", cap=10000),
    item("F-ONLY", "限女性", lv="01", lmt_gend="2"),
    item("KID", "限儿童", lv="02", selfpay="0.05", lmt_age_max=17),
    item("L3-ONLY", "限三级", kind="service", lv="01", lmt_hosp_lv_min=3),
    item("DIAB-ONLY", "限糖尿病", lv="02", selfpay="0.10", lmt_indication="E10;E11"),
    item("SVC", "诊查费", kind="service", lv="01"),
    item("BED", "床位费", kind="service", lv="01"),
    item("991000000010000", "家庭病床建床费", kind="service", lv="01"),
    item("991000000020000", "家庭病床巡诊费", kind="service", lv="01"),
    item("NARC", "吗啡片", lv="01", drug_class="narcotic"),
    item("RIF", "利福平胶囊", lv="01", drug_class="antimicrobial"),
    item("AMLO", "苯磺酸氨氯地平片", lv="01"),
    item("GYM", "健身卡", kind="service", lv="03", acct_excluded=True),
]


def catalog(extra=()) -> Catalog:
    # hand-made codes ("A-DRUG"): a local list, not the national code structures
    schema = MED_LIST.with_metadata({b"yibao.code_structure": b"local"})
    return Catalog.from_table(pa.Table.from_pylist(ITEMS + list(extra), schema=schema))


def person(
    psn_no="P1",
    insutype="310",
    psn_type="in_service",
    gend="1",
    brdy=dt.date(1970, 5, 1),
    assistance="",
    civil=False,
    region="990100",
):
    return PersonFacts(psn_no, insutype, psn_type, gend, brdy, region, assistance, civil)


def line(sn, code, yuan_price, qty=1, prd_days=0):
    from decimal import Decimal

    pric = int(Decimal(str(yuan_price)) * 100)
    cnt = int(Decimal(str(qty)) * 1000)
    return FeeLine(sn, code, cnt, pric, (cnt * pric + 500) // 1000, prd_days=prd_days)


def claim(
    mdtrt_id,
    psn,
    lines,
    med_type="21",
    hosp_lv=2,
    when=dt.datetime(2025, 3, 1, 10, tzinfo=TZ),
    begin=None,
    dise="J18.9",
    **kw,
):
    return Claim(
        mdtrt_id=mdtrt_id,
        person=psn,
        fixmedins_code=f"H{hosp_lv}",
        hosp_lv=hosp_lv,
        med_type=med_type,
        begntime=begin or when,
        setl_time=when,
        dise_codg=dise,
        lines=tuple(lines),
        **kw,
    )
