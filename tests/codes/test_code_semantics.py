"""National-code semantics in one place (issue 18 part 3): ``yibao.core.contract``.

The scheme of an insutype, the ordered fund-payment fields, the province of a
division and the med_type values are decided in the contract; every other
module asks it.  The last tests grep ``yibao/`` for code literals elsewhere.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.api.params import load_config
from yibao.benefits.policy import PolicyBook
from yibao.codes import divisions
from yibao.core import contract as C
from yibao.core.money import fmt_yuan
from yibao.settlement.rules import Claim, PersonFacts

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "yibao"
TZ = dt.timezone(dt.timedelta(hours=8))


# --- the scheme of an insutype ----------------------------------------------


@pytest.mark.parametrize("code", ["310", "320", "330"])
def test_employee_side_codes(code):
    assert C.scheme_of(code) == C.SCHEME_EMPLOYEE and C.is_employee_side(code)


@pytest.mark.parametrize("code", ["390", "392", "", None, "999"])
def test_resident_side_codes(code):
    assert C.scheme_of(code) == C.SCHEME_RESIDENT and not C.is_employee_side(code)


def test_benefits_and_interface_agree_on_the_scheme_of_every_insutype():
    """The measured defect: 320/330 were the resident scheme in benefits.model and the employee one in api.config."""
    snap = PolicyBook.default().snapshot("990100", dt.date(2025, 7, 1))
    cfg = load_config()
    emp_code = cfg.fund_pay_types["hifp_pay"].employee
    res_code = cfg.fund_pay_types["hifp_pay"].resident
    assert emp_code != res_code  # else the check below could not fail
    for code in [*C.INSUTYPE_SCHEMES, "", "999"]:
        employee = C.is_employee_side(code)
        assert (snap.scheme_for(code) is snap.schemes["employee"]) is employee, code
        assert cfg.fund_type("hifp_pay", code) == (emp_code if employee else res_code), code
    for code in ("320", "330"):
        assert snap.scheme_for(code) is snap.schemes["employee"]
        assert cfg.fund_type("hifp_pay", code) == emp_code


def test_scheme_tables_are_consistent():
    assert set(C.SCHEME_INSUTYPES) == set(C.SCHEMES)
    for scheme, code in C.SCHEME_INSUTYPES.items():
        assert C.scheme_of(code) == scheme
    assert set(C.SCHEME_NAMES) == set(C.SCHEME_INSUTYPES.values())
    assert C.insutype_sql("p.insutype", C.SCHEME_RESIDENT) == "p.insutype = '390'"
    from yibao.pooling.arrangement import SCHEMES

    assert SCHEMES == C.SCHEME_INSUTYPES


# --- the fund-payment fields --------------------------------------------------


def test_fund_fields_cover_every_fund_share_of_the_settlement():
    funds = [
        f
        for f in C.SETTLEMENT_AMOUNTS
        if f.endswith("_pay") and f not in C.PERSON_PAY_LABELS and f != "fund_pay_sumamt"
    ]
    assert set(C.FUND_PAY_FIELDS) == set(funds)
    assert {"hifes_pay", "oth_pay"} <= set(C.FUND_PAY_FIELDS)
    assert list(C.PAYER_LABELS) == [*C.FUND_PAY_FIELDS, "acct_pay", "acct_mulaid_pay", "psn_cash_pay"]
    from yibao.api import interface
    from yibao.settlement import fundyear

    assert interface.FUND_FIELDS == C.FUND_PAY_FIELDS
    assert fundyear.FUND_FIELDS == C.PAYER_LABELS


def _write(d: Path, name: str, schema: pa.Schema, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=C.with_metadata(schema, name)), d / f"{name}.parquet")


def test_fund_year_report_includes_hifes_and_oth_pay(tmp_path: Path, capsys):
    """The measured defect: a policy layer paying into hifes_pay / oth_pay vanished from the fund-year report."""
    base = {
        "certno": "x",
        "psn_name": "合成",
        "gend": "1",
        "civil_servant": False,
        "insuplc_admdvs": "990100",
        "family_id": "F1",
        "synthetic": True,
        "brdy": dt.date(1980, 1, 1),
        "assistance": "",
        "acct_balc": 0,
    }
    _write(
        tmp_path,
        "person",
        C.PERSON,
        [
            {**base, "psn_no": "E1", "insutype": "310", "psn_type": "in_service", "contribution_base": 1_000_000},
            {**base, "psn_no": "R1", "insutype": "390", "psn_type": "resident", "contribution_base": 0},
        ],
    )
    _write(
        tmp_path,
        "institution",
        C.INSTITUTION,
        [
            {
                "fixmedins_code": "H3",
                "fixmedins_name": "三级医院",
                "fixmedins_type": "hospital",
                "hosp_lv": 3,
                "admdvs": "990101",
                "synthetic": True,
            }
        ],
    )
    zero = dict.fromkeys(C.SETTLEMENT_AMOUNTS, 0)
    row = {
        "fixmedins_code": "H3",
        "setl_time": dt.datetime(2025, 3, 5, 9, tzinfo=TZ),
        "policy_year": 2025,
        "med_type": C.MED_TYPE_INPATIENT,
        "benefit_category": "inpatient",
        "pool_prop_selfpay_bp": 0,
        "balc": 0,
        "refd_setl_flag": False,
        "synthetic": True,
    }
    s1 = {
        **zero,
        **row,
        "setl_id": "S1",
        "mdtrt_id": "M1",
        "psn_no": "E1",
        "insutype": "310",
        "medfee_sumamt": 100_000,
        "hifp_pay": 60_000,
        "hifes_pay": 12_345,
        "oth_pay": 678,
        "psn_cash_pay": 26_977,
    }
    s2 = {
        **zero,
        **row,
        "setl_id": "S2",
        "mdtrt_id": "M2",
        "psn_no": "R1",
        "insutype": "390",
        "medfee_sumamt": 50_000,
        "hifp_pay": 30_000,
        "oth_pay": 1_000,
        "psn_cash_pay": 19_000,
    }
    for s in (s1, s2):
        s["fund_pay_sumamt"] = sum(s[f] for f in C.FUND_PAY_FIELDS)
    _write(tmp_path, "settlement", C.SETTLEMENT, [s1, s2])

    from yibao.cli import _print_fund_year
    from yibao.settlement.fundyear import fund_year

    fy = fund_year(tmp_path, PolicyBook.default().snapshot("990100", dt.date(2025, 7, 1)), 2025)
    t = fy.totals.iloc[0]
    assert int(t["hifes_pay"]) == 12_345 and int(t["oth_pay"]) == 1_678
    assert sum(int(t[f]) for f in C.FUND_PAY_FIELDS) == int(t["fund_pay_sumamt"])
    by = fy.by_scheme.set_index("insutype")
    assert int(by.loc["310", "hifes_pay"]) == 12_345 and int(by.loc["390", "oth_pay"]) == 1_000
    _print_fund_year(fy)
    out = capsys.readouterr().out
    assert "hifes_pay" in out and "123.45" in out and "oth_pay" in out and "16.78" in out


# --- divisions: the cross-province test -----------------------------------------


@pytest.mark.parametrize(
    ("home", "area", "cross"),
    [
        ("990100", "", False),  # '' = treated at the insured place
        ("990100", "990105", False),
        ("990100", "320505", True),
        ("320500", "320100", False),
    ],
)
def test_cross_province(home, area, cross):
    assert C.is_cross_province(home, area) is cross
    assert divisions.is_cross_province(home, area or home) is cross
    person = PersonFacts(
        psn_no="P",
        insutype=C.INSUTYPE_RESIDENT,
        psn_type=C.PSN_TYPE_RESIDENT,
        gend=C.GEND_MALE,
        brdy=dt.date(1980, 1, 1),
        insuplc_admdvs=home,
    )
    t = dt.datetime(2025, 1, 1, tzinfo=TZ)
    claim = Claim(
        mdtrt_id="M",
        person=person,
        fixmedins_code="H",
        hosp_lv=3,
        med_type=C.MED_TYPE_INPATIENT,
        begntime=t,
        setl_time=t,
        dise_codg="J18.9",
        lines=(),
        mdtrtarea_admvs=area,
    )
    assert claim.is_cross_province is cross


def test_division_parts():
    assert C.province_part("320505") == "32" and C.province_part("") == "" and C.province_part(None) == ""
    assert C.city_part("320505") == "320500" and C.province_code("320505") == "320000"
    assert divisions.province_of("320505") == "32"
    with pytest.raises(Exception, match="6-digit"):
        divisions.is_cross_province("32", "320505")


# --- the one yuan formatter --------------------------------------------------------


def test_fmt_yuan():
    assert fmt_yuan(123456) == "1,234.56"
    assert fmt_yuan(123456, symbol=True) == "¥1,234.56"
    assert fmt_yuan(-100, symbol=True) == "-¥1.00" and fmt_yuan(-100) == "-1.00"
    assert fmt_yuan(2**53 - 1, symbol=True) == "¥90,071,992,547,409.91"  # exact, a float would round it


def test_yuan_formatter_users_agree():
    from yibao.benefits.national import show
    from yibao.pooling.cli import income_note

    assert show("yuan", 100_000) == "¥1,000.00"

    class Rates:
        source = "x"
        employer_rate_bp = 800
        retiree_monthly_credit = 9_000
        resident_per_capita = 105_000

    note = income_note(Rates())
    assert "¥90.00/month" in note and "¥1,050.00 per person" in note


# --- no code literals outside the contract --------------------------------------------

# Scanned: every Python module under yibao/.  Not scanned, by construction: the data
# files (yibao/data/**: YAML/CSV carry the codes as data) and tests/ (fixtures spell codes).
_HOME = "yibao/core/contract.py"
_INSUTYPE = re.compile(r"""["'](3[1-9]0|39[12]|510)["']""")
_MED_TYPE = re.compile(r"""(?<![=\w])["'](11|14|21|41|52)["']""")
_PROVINCE = re.compile(r"""\[:2\]|\[:4\]\s*\+\s*["']00["']|\+\s*["']0000["']|startswith\(["']3["']\)""")
_SCHEME_NAMES = re.compile(r"^SCHEME_NAMES\s*=", re.M)
_YUAN = re.compile(r"""/\s*100\s*:,\.2f|/\s*100\)\s*:,\.2f""")

# (path, text on the line): known uses that are not national-code semantics, and the files
# other engineers are editing now (issue 18: replace theirs once their change lands).
ALLOWED = {
    ("yibao/api/more_transactions.py", 'content[:2] == b"PK"'),  # zip magic
    ("yibao/payment/cases.py", "sec = int(code[:2])"),  # ICD-9-CM-3 section
    ("yibao/codes/national_structures.py", 'code[:2] in ("HY", "HJ")'),  # practitioner code prefix
    ("yibao/codes/divisions.py", "province_part"),
    ("yibao/web/modules.py", "k[:2] == key[:2]"),  # a job key, not a division
    ("yibao/api/schemas.py", "11 → '11'"),  # a docstring's example of number-to-text coercion
    # pending (another engineer owns the file right now)
    ("yibao/web/report.py", "SCHEME_NAMES = {k: "),
}


def _offences(pattern: re.Pattern) -> list[str]:
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == _HOME or rel.startswith("yibao/data/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and not any(rel == p and text in line for p, text in ALLOWED):
                found.append(f"{rel}:{n}: {line.strip()}")
    return found


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("insutype literal (use contract.INSUTYPE_* / scheme_of / insutype_sql)", _INSUTYPE),
        ("med_type literal (use contract.MED_TYPE_*)", _MED_TYPE),
        ("province check by slicing (use contract.province_part / is_cross_province or codes.divisions)", _PROVINCE),
        ("a second SCHEME_NAMES (use contract.SCHEME_NAMES)", _SCHEME_NAMES),
        ("a yuan formatter copy (use core.money.fmt_yuan)", _YUAN),
    ],
)
def test_no_code_literals_outside_the_contract(what, pattern):
    assert _offences(pattern) == [], what


def test_the_scan_can_fail(tmp_path):
    """The patterns catch what they are meant to (else the scan above proves nothing)."""
    samples = {
        _INSUTYPE: ['if p.insutype == "310":', "WHERE insutype = '390'", 'x < "390"'],
        _MED_TYPE: ['med_type == "21"', "IN ('11', '14', '21')", 'med_type: str = "11"'],
        _PROVINCE: ["area[:2] != home[:2]", 'admdvs[:4] + "00"', 'insutype.startswith("3")'],
        _SCHEME_NAMES: ['SCHEME_NAMES = {"310": 1}'],
        _YUAN: ['f"¥{fen / 100:,.2f}"'],
    }
    for pattern, lines in samples.items():
        for line in lines:
            assert pattern.search(line), (pattern.pattern, line)
    assert not _MED_TYPE.search('font-size="11"')
    for p, text in ALLOWED:
        assert text in (ROOT / p).read_text(encoding="utf-8"), f"stale allow-list entry {p}: {text}"
