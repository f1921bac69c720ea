"""The published structures of the national codes: parsing, refusals, and validation on load."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.codes import (
    MedList,
    load_divisions,
    load_institutions,
    load_med_list,
    validate_institutions,
    validate_med_list,
)
from yibao.codes import national_structures as NS
from yibao.codes._table import data_path
from yibao.codes.practitioners import load_practitioners, validate_practitioners
from yibao.core import contract as C
from yibao.core.errors import CodeTableError

# Real codes seen in public HIS interface data (see yibao/data/codes/README.md): each must parse.
REAL = [
    ("drug_western", "XR05CBA198A001010100863", {"category": "R05CB", "name": "A198", "dosage_form": "A0"}),
    ("drug_western", "XG03FBC051A001020178890", {"category": "G03FB"}),
    ("drug_tcm", "ZI02AAN0001020103906", {"category": "I02AA", "name": "N000"}),
    ("drug_tcm", "ZD01BAY0318010302251", {"category": "D01BA"}),
    (
        "consumable",
        "C0101010011303807555",
        {"class1": "01", "generic": "001", "feature": "13038", "enterprise": "07555"},
    ),
    ("service", "001102000000100", {"prefix": "00", "item": "110200000", "extension": "0100"}),
    ("service", "001102000000100-110200002.10", {"local": "110200002.10"}),
    ("service", "003401000230600", {"item": "340100023"}),
    ("institution", "H52020101218", {"kind": "H", "division": "520201", "serial": "01218"}),
    ("practitioner", "D421003007628", {"kind": "D", "division": "421003", "serial": "007628"}),
    ("practitioner", "HY421003000001", {"kind": "HY", "division": "421003"}),
]


@pytest.mark.parametrize("structure, code, parts", REAL)
def test_real_codes_parse_into_their_segments(structure, code, parts):
    p = NS.parse(structure, code)
    assert "".join(v for k, v in p.segments if k != "local") + ("-" + p["local"] if "local" in parts else "") == code
    for k, v in parts.items():
        assert p[k] == v


@pytest.mark.parametrize(
    "structure, code, reason",
    [
        ("drug_western", "W0101", "must start with 'X'"),
        ("drug_western", "XR05CBA198A00101010086", "22 characters, not 23"),
        ("drug_western", "XZ01CAA001A001010100863", "does not start with an ATC main group"),
        ("drug_western", "XR05CB1198A001010100863", "generic-name code"),
        ("drug_tcm", "ZI02AAN000102010390", "19 characters, not 20"),
        ("herbal", "H0001", "must start with 'T'"),
        ("consumable", "C010101001130380755", "19 characters, not 20 or 27"),
        ("consumable", "C01010100113038075551234567X", "28 characters"),
        ("service", "S0601", "15 digits"),
        ("service", "00110200000010", "15 digits"),
        ("institution", "H99000001", "9 characters, not 12"),
        ("institution", "X52020101218", "must start with H"),
        ("practitioner", "D9900000001", "11 characters, not 13 or 14"),
        ("practitioner", "Q421003007628", "must start with D, N, Y, HY or HJ"),
        ("practitioner", "", "empty"),
    ],
)
def test_refusals_name_the_field_the_code_and_the_layout(structure, code, reason):
    with pytest.raises(CodeTableError) as ei:
        NS.parse(structure, code)
    msg = str(ei.value)
    assert reason in msg and repr(code) in msg
    assert ei.value.field == {"institution": "fixmedins_code", "practitioner": "prac_psn_code"}.get(
        structure, "med_list_codg"
    )


def test_27_character_consumable_and_letters_that_must_fit_the_type():
    assert NS.parse("consumable", "C0101010011303807555" + "0000001")["model"] == "0000001"
    assert NS.parse_institution_code("P52020100001", "pharmacy")["kind"] == "P"
    with pytest.raises(CodeTableError, match="a pharmacy has a code starting with P, not H"):
        NS.parse_institution_code("H52020100001", "pharmacy")
    with pytest.raises(CodeTableError, match="a hospital has a code starting with H, not P"):
        NS.parse_institution_code("P52020100001", "hospital")
    assert NS.parse_practitioner_code("N421003000001", "2")["kind"] == "N"
    with pytest.raises(CodeTableError, match=r"prefix D is for prac_psn_type 1 \(医师\), not '2'"):
        NS.parse_practitioner_code("D421003000001", "2")
    with pytest.raises(CodeTableError, match="prefix HJ is for prac_psn_type 4"):
        NS.parse_practitioner_code("HJ421003000001", "3")
    with pytest.raises(CodeTableError, match="no national structure for list_kind"):
        NS.parse_med_list_code("X", "drug")


def test_embedded_division_checked_against_the_division_table():
    d = load_divisions()
    NS.check_division(NS.parse("institution", "H99010100001"), d, admdvs="990101")
    NS.check_division(NS.parse("practitioner", "D320581000001"), d)  # a county of 苏州市 (320500 is listed)
    with pytest.raises(CodeTableError, match="embedded division 120101 is not in the division table"):
        NS.check_division(NS.parse("institution", "H12010100001"), d)
    with pytest.raises(CodeTableError, match="lies in another province than admdvs 990101"):
        NS.check_division(NS.parse("institution", "H32050000001"), d, admdvs="990101")
    assert NS.parse("service", "003401000230600").division is None


def test_declarations():
    assert NS.declared_in_csv("# a comment\n# code_structure: local\nhead\n# code_structure: national\n") == "local"
    assert NS.declared_in_csv("head\n") is None
    assert (
        NS.declared_in_metadata({NS.METADATA_KEY: b"national"}) == "national" and NS.declared_in_metadata(None) is None
    )
    assert NS.resolve(None, None) == "national" and NS.resolve("local", "national") == "local"
    with pytest.raises(CodeTableError, match="code_structure 'strict' must be one of"):
        NS.declared_in_csv("# code_structure: strict\n")


# --- on load --------------------------------------------------------------------------------


def test_every_shipped_med_list_code_has_its_national_structure_and_is_synthetic():
    table = load_med_list()
    assert NS.declared_in_csv(data_path("med_list.csv").read_text(encoding="utf-8")) == "national"
    assert table.schema.metadata[NS.METADATA_KEY] == b"national"
    for code, kind, syn in zip(
        *(table.column(c).to_pylist() for c in ("med_list_codg", "list_kind", "synthetic")), strict=True
    ):
        p = NS.parse_med_list_code(code, kind)
        assert syn
        # visibly synthetic: no published code has these segments
        marker = p["category"] if kind in ("western", "tcm_patent") else p.segments[0 if kind == "service" else 1][1]
        assert marker.startswith(("V99", "Z99") if kind in ("western", "tcm_patent") else "99"), code
    recode = data_path("med_list_recode.csv").read_text(encoding="utf-8").splitlines()
    mapping = dict(ln.split(",") for ln in recode[3:])
    assert (
        set(mapping.values()) == set(table.column("med_list_codg").to_pylist())
        and mapping["W0101"] == "XV99AAS001Z999010100000"
    )


def _med_csv(tmp_path, code, kind="western", declaration=""):
    from tests.codes.test_codes import GOOD  # the same good row, with a chosen code

    row = {**GOOD, "med_list_codg": code, "list_kind": kind, "lmt_indication": ""}
    path = tmp_path / "ml.csv"
    path.write_text(
        declaration + ",".join(C.MED_LIST.names) + "\n" + ",".join(row[c] for c in C.MED_LIST.names) + "\n",
        encoding="utf-8",
    )
    return path


def test_med_list_is_national_by_default_and_local_when_declared(tmp_path):
    path = _med_csv(tmp_path, "W0101")
    with pytest.raises(CodeTableError) as ei:
        load_med_list(path)
    msg = str(ei.value)
    assert (
        str(path) in msg
        and "line 2 (med_list_codg='W0101')" in msg
        and "must start with 'X'" in msg
        and "code_structure: local" in msg
    )
    assert ei.value.field == "med_list_codg"
    assert load_med_list(path, code_structure="local").num_rows == 1  # the loader's parameter
    local = _med_csv(tmp_path, "W0101", declaration="# code_structure: local\n")
    t = load_med_list(local)  # the file's declaration
    assert t.schema.metadata[NS.METADATA_KEY] == b"local"
    with pytest.raises(CodeTableError, match="must start with 'X'"):
        load_med_list(local, code_structure="national")  # the parameter wins
    assert load_med_list(_med_csv(tmp_path, "XR05CBA198A001010100863")).num_rows == 1
    with pytest.raises(CodeTableError, match=r"line 2 .*'ZI02AAN0001020103906'.*must start with 'X'"):
        load_med_list(_med_csv(tmp_path, "ZI02AAN0001020103906"))  # a 中成药 code on a western row
    assert load_med_list(_med_csv(tmp_path, "ZI02AAN0001020103906", kind="tcm_patent")).num_rows == 1
    with pytest.raises(CodeTableError, match="code_structure 'strict' must be one of"):
        load_med_list(_med_csv(tmp_path, "W0101", declaration="# code_structure: strict\n"))


def test_parquet_and_in_memory_tables_follow_their_metadata(tmp_path):
    t = load_med_list(_med_csv(tmp_path, "W0101", declaration="# code_structure: local\n"))
    pq.write_table(t, tmp_path / "local.parquet")
    assert load_med_list(tmp_path / "local.parquet").num_rows == 1  # metadata travels with the file
    bare = t.replace_schema_metadata(None)
    with pytest.raises(CodeTableError, match=r"row 0, med_list_codg='W0101'.*must start with 'X'"):
        validate_med_list(bare)
    pq.write_table(bare, tmp_path / "bare.parquet")
    with pytest.raises(CodeTableError, match="must start with 'X'"):
        load_med_list(tmp_path / "bare.parquet")
    with pytest.raises(CodeTableError, match="must start with 'X'"):
        MedList(bare)
    assert len(MedList(bare, code_structure="local")) == 1


def test_institutions_national_on_load(tmp_path):
    head = ",".join(C.INSTITUTION.names)
    path = tmp_path / "inst.csv"
    path.write_text(
        head + "\nH99010100001,一院,hospital,3,990101,true\nP99010200001,药店,pharmacy,0,990102,true\n",
        encoding="utf-8",
    )
    t = load_institutions(path, divisions=load_divisions())
    assert t.num_rows == 2 and t.schema.metadata[NS.METADATA_KEY] == b"national"
    for row, reason in [
        ("H1,医院,hospital,1,990101,true", "2 characters, not 12"),
        ("H99010100002,药店,pharmacy,0,990101,true", "a pharmacy has a code starting with P"),
        ("H12010100001,医院,hospital,1,990101,true", "embedded division 120101 is not in the division table"),
        ("H32050000001,医院,hospital,1,990101,true", "another province than admdvs 990101"),
    ]:
        path.write_text(head + "\nH99010100001,一院,hospital,3,990101,true\n" + row + "\n", encoding="utf-8")
        with pytest.raises(CodeTableError) as ei:
            load_institutions(path, divisions=load_divisions())
        assert "line 3" in str(ei.value) and reason in str(ei.value) and ei.value.field == "fixmedins_code", (
            row,
            str(ei.value),
        )
    path.write_text("# code_structure: local\n" + head + "\nH1,医院,hospital,1,990101,true\n", encoding="utf-8")
    assert load_institutions(path).num_rows == 1
    with pytest.raises(CodeTableError, match=r"row 0, fixmedins_code='H1'"):
        validate_institutions(load_institutions(path).replace_schema_metadata(None))


def _inst():
    return pa.Table.from_pylist(
        [
            {
                "fixmedins_code": "H99010100001",
                "fixmedins_name": "x",
                "fixmedins_type": "hospital",
                "hosp_lv": 3,
                "admdvs": "990101",
                "synthetic": True,
            },
            {
                "fixmedins_code": "P99010200001",
                "fixmedins_name": "y",
                "fixmedins_type": "pharmacy",
                "hosp_lv": 0,
                "admdvs": "990102",
                "synthetic": True,
            },
        ],
        schema=C.INSTITUTION,
    )


def test_practitioners_load_and_refusals(tmp_path):
    head = ",".join(C.PRACTITIONER.names)
    path = tmp_path / "prac.csv"
    good = (
        "D990101000001,合成医师,1,H99010100001,true\n"
        "N990101000001,合成护士,2,H99010100001,true\n"
        "Y990102000001,合成药师,3,P99010200001,true\n"
        "HY990101000001,合成药学,3,H99010100001,true\n"
    )
    path.write_text(head + "\n" + good, encoding="utf-8")
    t = load_practitioners(path, divisions=load_divisions(), institutions=_inst())
    assert t.schema.equals(C.PRACTITIONER) and t.num_rows == 4
    for row, field, reason in [
        ("D99010100001,x,1,H99010100001,true", "prac_psn_code", "12 characters, not 13 or 14"),
        ("N990101000002,x,1,H99010100001,true", "prac_psn_code", "prefix N is for prac_psn_type 2"),
        (
            "D120101000001,x,1,H99010100001,true",
            "prac_psn_code",
            "embedded division 120101 is not in the division table",
        ),
        ("D320500000001,x,1,H99010100001,true", "prac_psn_code", "another province than admdvs 990101"),
        ("D990101000002,x,5,H99010100001,true", "prac_psn_type", "prac_psn_type '5'"),
        ("D990101000002,,1,H99010100001,true", "prac_psn_name", "name is empty"),
        ("D990101000002,x,1,H99010100009,true", "fixmedins_code", "not in the institution table"),
        ("D990101000001,x,1,H99010100001,true", "prac_psn_code", "duplicate code, first on line 2"),
        ("D990101000002,x,1,H99010100001,maybe", "synthetic", "true or false"),
    ]:
        path.write_text(head + "\n" + good + row + "\n", encoding="utf-8")
        with pytest.raises(CodeTableError) as ei:
            load_practitioners(path, divisions=load_divisions(), institutions=_inst())
        assert "line 6" in str(ei.value) and reason in str(ei.value) and ei.value.field == field, (row, str(ei.value))
    path.write_text("# code_structure: local\n" + head + "\nDOC1,x,1,H99010100001,true\n", encoding="utf-8")
    local = load_practitioners(path)
    pq.write_table(local, tmp_path / "p.parquet")
    assert load_practitioners(tmp_path / "p.parquet").num_rows == 1
    with pytest.raises(CodeTableError, match=r"row 0, prac_psn_code='DOC1'.*13 or 14"):
        validate_practitioners(local.replace_schema_metadata(None))


def test_synthetic_region_codes_are_national_and_linked():
    from yibao.synth import collect_region

    r = collect_region(3000, 5, year=2025)
    d = load_divisions()
    validate_institutions(r["institution"], divisions=d, code_structure="national")
    validate_practitioners(r["practitioner"], divisions=d, institutions=r["institution"], code_structure="national")
    validate_med_list(r["med_list"], code_structure="national")
    prac = r["practitioner"].to_pandas()
    assert prac.synthetic.all() and set(prac.prac_psn_type) == {"1", "2", "3"}
    assert prac.prac_psn_name.str.endswith("(synthetic)").all()
    doctors = set(prac.prac_psn_code[prac.prac_psn_type == "1"])
    enc = r["encounter"].to_pandas()
    fee = r["fee_detail"].to_pandas()
    used = set(enc.dr_code[enc.dr_code != ""]) | set(fee.bilg_dr_code[fee.bilg_dr_code != ""])
    assert used and used <= doctors  # every doctor column names a practitioner of the table
    by_code = dict(zip(prac.prac_psn_code, prac.fixmedins_code, strict=True))
    e = enc[enc.dr_code != ""]
    assert (e.dr_code.map(by_code) == e.fixmedins_code).all()  # the doctor practises where the patient was seen
