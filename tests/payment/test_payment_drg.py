"""DRG payment over the SAMPLE scheme (WHO ICD-10 prefixes, a scheme that declares WHO): each branch, batch = scalar,
scheme errors, bad input, weights, base rate, CMI.  The national scheme is tested in test_drg_national.py."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core.errors import CodeTableError
from yibao.payment.cases import PaymentInputError
from yibao.payment.drg import base_rate, cmi, drg_weights, group_batch, group_case, load_scheme, sample_scheme_dir
from yibao.payment.drgscheme import SchemeTables
from yibao.payment.grouper import Grouper

S = load_scheme("sample")


def Scheme(d):  # noqa: N802 - a scheme from a directory
    return Grouper(SchemeTables(d))


def g(dx, other="", oprn="", age=50):
    return group_case(S, dx, other, oprn, age)


def test_sample_scheme_is_labelled_sample():
    assert "SAMPLE" in S.label and S.name == "sample"


@pytest.mark.parametrize(
    "dx, other, oprn, age, drg, path, severity",
    [
        (
            "N18.5",
            "",
            "55.6900",
            50,
            "PRE-A1-9",
            "surgical",
            "none",
        ),  # pre-MDC (MDC PRE, entered by its ADRGs): kidney transplant
        ("I21.9", "", "36.0700", 70, "CIRC-S1-5", "surgical", "none"),  # surgical ADRG of the MDC
        ("I21.9", "E11.2", "36.0700", 70, "CIRC-S1-3", "surgical", "cc"),  # CC
        ("I21.9", "E11.2;J96.0", "36.0700", 70, "CIRC-S1-1", "surgical", "mcc"),  # MCC beats CC
        ("I21.9", "", "", 70, "CIRC-M1-5", "medical", "none"),  # medical ADRG by diagnosis
        ("I21.9", "", "87.0300", 70, "CIRC-M1-5", "medical", "none"),  # a diagnostic procedure is not an OR procedure
        ("K35.8", "", "81.5400", 30, "DIGEQY", "ambiguous", "none"),  # OR procedure unrelated to the diagnosis
        ("Z00.0", "", "", 30, "0000", "ungroupable", "none"),  # principal diagnosis in no MDC
        (
            "J44.1",
            "J96.0",
            "",
            70,
            "RESP-M2-5",
            "medical",
            "none",
        ),  # J96 excluded for a respiratory principal diagnosis
        ("J44.1", "A41.9", "", 70, "RESP-M2-1", "medical", "mcc"),  # sepsis is not excluded for COPD
        ("A41.9", "A41.9", "", 70, "INFE-M1-5", "medical", "none"),  # a CC never counts for its own principal diagnosis
        ("J18.9", "", "", 5, "RESP-M1-7", "medical", "none"),  # age split: children 0-17
        (
            "J18.9",
            "J96.0;N17.9",
            "",
            17,
            "RESP-M1-7",
            "medical",
            "mcc",
        ),  # the age row comes first whatever the severity
        ("J18.9", "N17.9", "", 18, "RESP-M1-1", "medical", "mcc"),  # adult with MCC
        ("J18.9", "", "", 40, "RESP-M1-5", "medical", "none"),  # pneumonia → RESP-M1 (priority 1), not RESP-M4
        ("J06.9", "", "", 40, "RESP-M4-5", "medical", "none"),  # other respiratory: the catch-all of the MDC
        ("K80.2", "", "51.2300", 50, "HEPB-S1-5", "surgical", "none"),  # K8 → hepatobiliary (longest prefix over K)
        ("I63.9", "", "99.1000", 70, "NERV-M1-5", "medical", "none"),  # I6 → nervous system (longest prefix over I)
        ("E11.6", "E11.2", "", 60, "ENDO-M1-5", "medical", "none"),  # diabetes CC excluded for a diabetes principal
        ("H25.9", "J96.0", "13.4100", 70, "EYE-S1-9", "surgical", "mcc"),  # one DRG for every severity
    ],
)
def test_each_branch(dx, other, oprn, age, drg, path, severity):
    r = g(dx, other, oprn, age)
    assert (r.drg, r.path, r.severity) == (drg, path, severity)
    b = group_batch(S, pd.DataFrame({"dise_codg": [dx], "other_dise_codg": [other], "oprn_codg": [oprn], "age": [age]}))
    assert (b.drg.iloc[0], b.path.iloc[0], b.severity.iloc[0]) == (drg, path, severity)


def test_rw_comes_from_the_scheme():
    r = g("I21.9", "", "36.0700", 70)
    assert r.rw_e4 == S.drgs["CIRC-S1-5"].rw_e4 > 0
    assert g("Z00.0").rw_e4 == 0


@pytest.mark.parametrize(
    "args, field",
    [
        (("", "", "", 40), "dise_codg"),
        ((None, "", "", 40), "dise_codg"),
        (("XYZ", "", "", 40), "dise_codg"),
        (("I21.9", "NOPE", "", 40), "other_dise_codg"),
        (("I21.9", "", "99.99", 40), "oprn_codg"),
        (("I21.9", "", "", -1), "age"),
        (("I21.9", "", "", "old"), "age"),
    ],
)
def test_bad_input_scalar_and_batch(args, field):
    with pytest.raises(PaymentInputError) as e:
        group_case(S, *args)
    assert e.value.field == field and e.value.message_zh
    df = pd.DataFrame(
        {
            "mdtrt_id": ["OK", "BAD"],
            "dise_codg": ["J18.9", args[0]],
            "other_dise_codg": ["", args[1]],
            "oprn_codg": ["", args[2]],
            "age": [30, args[3]],
        }
    )
    b = group_batch(S, df)  # the batch refuses the bad case only, naming the field
    assert b.status.iloc[0] == "ok" and b.drg.iloc[0]
    grouper_field = {"dise_codg": "main_diag", "other_dise_codg": "other_diags", "oprn_codg": "oprns"}.get(field, field)
    assert (
        b.status.iloc[1].startswith(f"refused: {grouper_field}") and b.drg.iloc[1] == "" and b.path.iloc[1] == "refused"
    )


DX = [
    "I21.9",
    "I20.0",
    "I63.9",
    "J18.9",
    "J44.1",
    "J06.9",
    "K35.8",
    "K80.2",
    "A41.9",
    "E11.6",
    "N18.5",
    "N20.0",
    "O80.0",
    "Z00.0",
    "S72.0",
    "S06.0",
    "H25.9",
    "C34.9",
    "D25.9",
    "R56.0",
    "T14.0",
]
OTHER = [
    "J96.0",
    "R57.0",
    "A41.9",
    "N17.9",
    "I50.9",
    "I11.9",
    "I48.9",
    "E11.2",
    "E11.4",
    "E11.5",
    "E10.9",
    "N18.5",
    "J44.1",
    "I10",
    "E11.9",
    "K80.2",
]
OPRN = ["55.6900", "36.0700", "87.0300", "81.5400", "51.2300", "99.1000", "13.4100", "47.0901", "01.3900"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(DX),
            st.lists(st.sampled_from(OTHER), max_size=4),
            st.lists(st.sampled_from(OPRN), max_size=3),
            st.integers(0, 150),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_batch_equals_scalar(rows):
    df = pd.DataFrame(
        {
            "dise_codg": [r[0] for r in rows],
            "other_dise_codg": [";".join(r[1]) for r in rows],
            "oprn_codg": [";".join(r[2]) for r in rows],
            "age": [r[3] for r in rows],
        }
    )
    b = group_batch(S, df)
    for i, (dx, ot, op, age) in enumerate(rows):
        s = group_case(S, dx, ot, op, age)
        assert (s.drg, s.adrg, s.mdc, s.severity, s.rw_e4, s.path) == tuple(
            b.iloc[i][["drg", "adrg", "mdc", "severity", "rw_e4", "path"]]
        )


def test_weights_base_rate_and_cmi():
    df = pd.DataFrame(
        {
            "fixmedins_code": ["A", "A", "B", "B"],
            "drg": ["X", "X", "Y", "0000"],
            "medfee_sumamt": [100, 300, 800, 50],
            "rw_e4": [5000, 5000, 20000, 0],
        }
    )
    w = drg_weights(df).set_index("drg")
    # overall mean of grouped cases 1200/3 = 400: X mean 200 → 0.5, Y 800 → 2.0
    assert w.loc["X", "rw_e4"] == 5000 and w.loc["Y", "rw_e4"] == 20000
    c = cmi(df).set_index("fixmedins_code")
    assert c.loc["A", "cmi"] == 0.5 and c.loc["B", "cmi"] == 2.0 and c.loc["B", "n_cases"] == 1
    assert str(base_rate(3_000_000, 30_000)) == "10000.00"  # ¥30,000 over 3 RW


def _copy(tmp_path):
    d = tmp_path / "scheme"
    shutil.copytree(sample_scheme_dir(), d)
    return d


def test_a_scheme_is_data(tmp_path):
    """A new DRG split is a data change: add a child row to an ADRG and the grouper follows it."""
    d = _copy(tmp_path)
    f = d / "drg.csv"
    f.write_text(
        f.read_text(encoding="utf-8").replace(
            "CIRC-M1-1,", "CIRC-M1-8,CIRC-M1,0,mcc|cc|none,3.5,AMI age 80+,80,-1\nCIRC-M1-1,", 1
        ),
        encoding="utf-8",
    )
    s = Scheme(d)
    assert group_case(s, "I21.9", "", "", 85).drg == "CIRC-M1-8"
    assert group_case(s, "I21.9", "", "", 79).drg == "CIRC-M1-5"


@pytest.mark.parametrize(
    "file, old, new, field",
    [
        ("mdc_dx.csv", "NERV,G\n", "NOPE,G\n", "mdc"),
        ("adrg.csv", "NERV-S1,NERV,1,,any", "NERV-S1,NERV,1,,magic", "proc_cond"),
        ("adrg_proc.csv", "NERV-S1,01.39,1,\n", "", "proc_cond"),  # a surgical ADRG without procedures
        (
            "drg.csv",
            "RESP-M1-5,RESP-M1,4,none,",
            "RESP-M1-5,RESP-M1,4,cc,",
            "drg",
        ),  # no DRG for RESP-M1 without CC (coverage)
        ("drg.csv", "(age 0-17),0,17\n", "(age 0-17),20,17\n", "age_min"),
        ("cc.csv", "J96,mcc,EX-RESP", "J96,severe,EX-RESP", "level"),
        ("cc.csv", "J96,mcc,EX-RESP", "J9Z,mcc,EX-RESP", "code"),  # not a WHO ICD-10 prefix
    ],
)
def test_bad_scheme_files_name_the_field(tmp_path, file, old, new, field):
    d = _copy(tmp_path)
    f = d / file
    text = f.read_text(encoding="utf-8")
    assert old in text
    f.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CodeTableError) as e:
        Scheme(d)
    assert e.value.field == field
    assert file in str(e.value)


def test_reweighting_a_scheme_from_cases(tmp_path):
    """Weights computed from cases become a local scheme: a dated override of the scheme, not a copy."""
    from yibao.payment.drg import weights_override_csv

    # grouped cases: overall mean (100 + 300 + 800) / 3 = 400; CIRC-S1-5 mean 200 → 0.5; RESP-M1-5 800 → 2
    df = pd.DataFrame(
        {
            "drg": ["CIRC-S1-5", "CIRC-S1-5", "RESP-M1-5", "0000"],
            "adrg": ["CIRC-S1", "CIRC-S1", "RESP-M1", "0000"],
            "medfee_sumamt": [100, 300, 800, 99],
        }
    )
    d = tmp_path / "city"
    d.mkdir()
    (d / "scheme.yaml").write_text(
        "format: 2\nname: city\nversion: '1'\neffective_from: 2026-01-01\nbase: sample\n", encoding="utf-8"
    )
    (d / "drg.csv").write_text(weights_override_csv(S, df), encoding="utf-8")
    s = Scheme(d)
    rw = {x.code: x.rw_e4 for x in s.drgs.values()}
    assert rw["CIRC-S1-5"] == 5000 and rw["RESP-M1-5"] == 20000
    assert rw["CIRC-S1-1"] == 5000  # no cases of its own: its ADRG's weight
    assert rw["NERV-S1-5"] == 10000  # no cases in the ADRG: 1
    assert s.drgs["CIRC-S1-5"].name == S.drgs["CIRC-S1-5"].name  # what the override leaves out comes from the base
    assert [m.name for m in s.t.chain] == ["sample", "city"]
