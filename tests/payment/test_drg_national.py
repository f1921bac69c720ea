"""The national CHS-DRG 1.1 scheme: every entry kind, built from the scheme's own tables."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core.errors import CodeTableError
from yibao.payment.drgcases import CaseBuilder, scheme_cases
from yibao.payment.drgscheme import SchemeTables, schemes_root
from yibao.payment.grouper import INPUT_COLUMNS, Grouper, GroupingInputError, load_grouper

G = load_grouper("chs-drg-1.1")
CASES = scheme_cases(G, per_drg=1, seed=3)


def grp(main_diag, other_diags="", oprns="", gend="1", age=45, nwb_age="", nwb_bir_wt="", ipt_days="5", explain=False):
    return G.group(
        case_id="t",
        gend=gend,
        age=age,
        nwb_age=nwb_age,
        nwb_bir_wt=nwb_bir_wt,
        ipt_days=ipt_days,
        main_diag=main_diag,
        other_diags=other_diags,
        oprns=oprns,
        explain=explain,
    )


def test_the_national_scheme_is_whole():
    assert [m.code for m in G.mdcs] == list("APYZMNBCDEFGHIJKLOQRSTUVWX")
    assert (len(G.mdcs), len(G.adrgs), len(G.drgs)) == (26, 376, 628)
    assert sum(m.ambiguous_group for m in G.mdcs) == 24  # every MDC entered by diagnosis that has surgical ADRGs
    assert G.t.meta.diagnosis_system == "icd10-yb-2.0" and G.t.meta.match == "exact"


def test_every_drg_is_reached_by_a_case_from_its_tables_and_batch_agrees():
    reached = set(CASES.expected_drg)
    assert set(G.drgs) <= reached, sorted(set(G.drgs) - reached)
    out = G.group_frame(CASES[list(INPUT_COLUMNS)])
    assert (out.drg == CASES.expected_drg).all()
    assert (out.status == "ok").all()
    assert list(out.case_id) == list(CASES.case_id)


@pytest.mark.parametrize("adrg", sorted({a.code for a in G.adrgs.values()}))
def test_each_adrg_condition_from_the_tables(adrg):
    """A case built for the ADRG's own condition lands in it, and explains why."""
    b = CaseBuilder(G, seed=11)
    a = G.adrgs[adrg]
    case = b.case_for(a.drgs[-1].code)
    assert case is not None
    r = G.group(case_id="x", **case, explain=True)
    assert r.adrg == adrg and r.status == "ok"
    assert any(step.startswith(f"ADRG {adrg} ") for step in r.path)


def test_exact_codes_no_prefix_matching():
    assert grp("K22.301").drg.startswith("G")
    for near in ("K22.3", "K22.30", "K22.3011", "K22"):
        r = grp(near)
        assert r.status.startswith("refused: main_diag: unknown diagnosis code") and repr(near) in r.status


def test_sex_on_mdc_entry():
    m_dx = sorted(next(m for m in G.mdcs if m.code == "M").dx)[0]
    assert grp(m_dx, gend="1").mdc == "M"
    r = grp(m_dx, gend="2", explain=True)
    assert r.mdc != "M"
    assert any("needs sex male" in p for p in r.path)


def test_newborn_age_in_days_and_birth_weight_bands():
    dx = "P07.200"  # in PS1..PS4's any-diagnosis list
    for wt, adrg in (
        (1499, "PS1"),
        (1500, "PS2"),
        (1999, "PS2"),
        (2000, "PS3"),
        (2499, "PS3"),
        (2500, "PS4"),
        (4200, "PS4"),
    ):
        assert grp(dx, gend="2", age=0, nwb_age=3, nwb_bir_wt=wt).adrg == adrg, wt
    # the same baby at 29 days is past the ≤ 28-day ADRGs
    assert grp(dx, gend="2", age=0, nwb_age=29, nwb_bir_wt=1400).adrg not in ("PS1", "PS2", "PS3", "PS4")
    # an age in days is only for a baby under one year
    assert grp(dx, age=2, nwb_age=10).status.startswith("refused: nwb_age")
    assert grp(dx, age=0, nwb_age=400).status.startswith("refused: nwb_age")
    assert grp(dx, age=0, nwb_age=3, nwb_bir_wt=50).status.startswith("refused: nwb_bir_wt")
    # an adult with a perinatal code does not enter MDC P
    assert grp(dx, age=30).mdc != "P"


def test_mcc_excluded_by_the_principal_diagnosis_table():
    dx = "J18.900"
    tables = G.exclusion_tables(dx)
    same = next(c for c, (lv, t) in sorted(G.t.cc.items()) if lv == 2 and t in tables and c != dx)
    other = next(c for c, (lv, t) in sorted(G.t.cc.items()) if lv == 2 and t not in tables)
    assert grp(dx, same).severity == "none"
    assert grp(dx, other).severity == "mcc"
    assert grp(dx, f"{same};{other}").severity == "mcc"
    r = grp(dx, same, explain=True)
    assert any("excluded" in p for p in r.path)


def test_principal_procedure_order_matters():
    """AA1 (heart transplant) needs the transplant as the principal (first) procedure."""
    from yibao.codes.national import national_proc_codes

    dx = sorted(next(m for m in G.mdcs if m.code == "F").dx)[0]
    assert grp(dx, oprns="37.5100").drg == "AA19"
    minor = next(c for c in sorted(national_proc_codes()) if c not in G.or_procedures)
    assert grp(dx, oprns=f"{minor};37.5100").drg != "AA19"
    assert grp(dx, oprns=f"37.5100;{minor}").drg == "AA19"


def test_procedure_pair_and_label_combinations():
    ac = G.adrgs["AC1"]
    p, q = sorted(ac.proc1)[0], sorted(ac.proc2)[0]
    assert grp("N18.500", oprns=f"{q};{p}").adrg == "AC1"  # any order: pair condition
    assert grp("N18.500", oprns=p).adrg != "AC1"
    ja = G.adrgs["JA1"]
    by_label = {lab: sorted(c for c, labs in ja.labels.items() if lab in labs)[0] for lab in "1234"}
    dx = sorted(ja.dx)[0]
    assert grp(dx, gend="2", oprns=f"{by_label['1']};{by_label['2']}").adrg == "JA1"
    assert grp(dx, gend="2", oprns=f"{by_label['3']};{by_label['1']};{by_label['4']}").adrg == "JA1"
    assert grp(dx, gend="2", oprns=f"{by_label['1']};{by_label['3']}").adrg != "JA1"


def test_multiple_trauma_needs_two_body_regions():
    z = next(m for m in G.mdcs if m.code == "Z")
    dx = sorted(z.dx)[0]
    region = G.t.trauma[dx]
    other = next(c for c, r in sorted(G.t.trauma.items()) if r != region)
    same = next(c for c, r in sorted(G.t.trauma.items()) if r == region and c != dx)
    assert grp(dx, other).mdc == "Z"
    assert grp(dx, same).mdc != "Z"


def test_ambiguous_groups_qy():
    b = CaseBuilder(G, seed=5)
    found = 0
    for m in G.mdcs:
        if m.ambiguous_group:
            c = b.qy_case(m.code)
            if c is not None:
                r = G.group(case_id="q", **c, explain=True)
                assert r.drg == f"{m.code}QY" and r.adrg == f"{m.code}QY" and r.mdc == m.code
                assert any("歧义组" in p for p in r.path)
                found += 1
    assert found >= 15
    # no operating-room procedure: not ambiguous
    assert not grp("K22.301").drg.endswith("QY")


def test_fall_through_to_the_next_mdc(tmp_path):
    """A case that enters an MDC but none of its ADRGs is tried in the next MDC (a local override makes one)."""
    dx = "S06.000"  # enters MDC B (BY1) when there is one injured region only
    assert grp(dx).adrg == "BY1"
    v_adrg = next(
        a
        for a in sorted(G.adrgs.values(), key=lambda a: a.seq)
        if a.mdc == "V" and a.dx_cond == "main" and not a.proc_cond
    )
    local = tmp_path / "city"
    local.mkdir()
    (local / "scheme.yaml").write_text(
        "format: 2\nname: city-test\nversion: '1'\neffective_from: 2025-01-01\nbase: chs-drg-1.1\n", encoding="utf-8"
    )
    (local / "adrg_dx.csv").write_text(f"adrg,code,action\nBY1,{dx},remove\n{v_adrg.code},{dx},set\n", encoding="utf-8")
    (local / "mdc_dx.csv").write_text(f"mdc,code\nV,{dx}\n", encoding="utf-8")
    g = Grouper(SchemeTables(local))
    r = g.group(case_id="f", gend="1", age=40, main_diag=dx, explain=True)
    assert (r.mdc, r.adrg) == ("V", v_adrg.code), r.path
    assert any(p.startswith("MDC B") and "falls through" in p for p in r.path)


def test_ungroupable_with_a_reason():
    # a valid 医保版 code that no MDC lists
    listed = {c for m in G.mdcs for c in m.dx}
    from yibao.codes.national import national_dx_codes

    code = sorted(national_dx_codes() - listed)[0]
    r = grp(code)
    assert r.drg == "0000" and r.status.startswith("ungroupable: principal diagnosis") and code in r.status


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"gend": "3"}, "gend"),
        ({"gend": ""}, "gend"),
        ({"age": -1}, "age"),
        ({"age": 151}, "age"),
        ({"age": "forty"}, "age"),
        ({"ipt_days": "-2"}, "ipt_days"),
        ({"main_diag": ""}, "main_diag"),
        ({"main_diag": "E11.9"}, "main_diag"),  # WHO, not 医保版: this scheme declares 医保版
        ({"other_diags": "I10.x05;XX"}, "other_diags"),
        ({"oprns": "47.09"}, "oprns"),
    ],
)
def test_bad_input_is_refused_naming_the_field(kw, field):
    args = {"main_diag": "K22.301", **kw}
    r = grp(**args)
    assert r.status.startswith(f"refused: {field}") and r.drg == "" and r.mdc == ""
    frame = G.group_frame(
        pd.DataFrame(
            [
                {c: "" for c in INPUT_COLUMNS}
                | {"case_id": "a", "gend": "1", "age": "45", **{k: str(v) for k, v in args.items()}}
            ]
        )
    )
    assert frame.status.iat[0] == r.status


def test_table_level_errors_refuse_the_whole_file():
    good = CASES[list(INPUT_COLUMNS)].head(3).copy()
    with pytest.raises(GroupingInputError, match="missing columns"):
        G.group_frame(good.drop(columns=["oprns"]))
    dup = good.copy()
    dup.loc[2, "case_id"] = dup.loc[0, "case_id"]
    with pytest.raises(GroupingInputError, match="duplicate case_id"):
        G.group_frame(dup)
    blank = good.copy()
    blank.loc[1, "case_id"] = " "
    with pytest.raises(GroupingInputError, match="empty case_id"):
        G.group_frame(blank)


def test_local_scheme_is_a_dated_override(tmp_path):
    local = tmp_path / "city"
    local.mkdir()
    (local / "scheme.yaml").write_text(
        "format: 2\nname: city-x\nversion: '2026'\neffective_from: 2026-01-01\nbase: chs-drg-1.1\nlabel: test\n",
        encoding="utf-8",
    )
    (local / "drg.csv").write_text("drg,adrg,seq,severity,rw\nGZ15,GZ1,2,any,0.6123\n", encoding="utf-8")
    g = Grouper(SchemeTables(local))
    assert g.drgs["GZ15"].rw_e4 == 6123 and g.drgs["GZ15"].name  # the name comes from the base
    assert all(d.rw_e4 is None for d in g.drgs.values() if d.code != "GZ15")
    assert len(g.drgs) == 628
    r = g.group(case_id="1", gend="1", age=60, main_diag="K22.301")
    assert (r.drg, r.rw_e4) == ("GZ15", 6123)
    # an override that removes a row the base lacks, or a local dated before its base, is refused
    (local / "or_procedures.csv").write_text("code,action\n99.9999,remove\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match="remove: no row"):
        SchemeTables(local)
    (local / "or_procedures.csv").unlink()
    (local / "scheme.yaml").write_text(
        "format: 2\nname: city-x\nversion: '2019'\neffective_from: 2019-01-01\nbase: chs-drg-1.1\n", encoding="utf-8"
    )
    with pytest.raises(CodeTableError, match="not in force|before its base"):
        SchemeTables(local)


def test_scheme_files_are_validated_on_load(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(schemes_root() / "chs-drg-1.1", bad)
    text = (bad / "adrg_dx.csv").read_text(encoding="utf-8")
    (bad / "adrg_dx.csv").write_text(text + "GZ1,K22.3\n", encoding="utf-8")  # a prefix, not a 医保版 code
    with pytest.raises(CodeTableError, match="K22.3"):
        SchemeTables(bad)
    (bad / "adrg_dx.csv").write_text(text, encoding="utf-8")
    drg = (bad / "drg.csv").read_text(encoding="utf-8")
    (bad / "drg.csv").write_text(drg.replace("GZ15,GZ1,2,any", "GZ15,GZ1,2,mcc_or_cc"), encoding="utf-8")
    with pytest.raises(CodeTableError, match="no DRG for severity none"):
        SchemeTables(bad)


ROWS = CASES[list(INPUT_COLUMNS)].to_dict("records")
CODES = sorted({c for r in ROWS for c in str(r["other_diags"]).split(";") if c})


@st.composite
def case_rows(draw):
    base = dict(draw(st.sampled_from(ROWS)))
    if draw(st.booleans()):
        base["gend"] = draw(st.sampled_from(["1", "2", "0", "3", ""]))
    if draw(st.booleans()):
        base["age"] = draw(st.sampled_from(["0", "1", "45", "90", "-1", "200", "x"]))
    if draw(st.booleans()):
        base["nwb_age"] = draw(st.sampled_from(["", "0", "28", "29", "300", "400"]))
    if draw(st.booleans()):
        base["nwb_bir_wt"] = draw(st.sampled_from(["", "1499", "1500", "2499", "2500", "20"]))
    if draw(st.booleans()):
        procs = [p for p in str(base["oprns"] or "").split(";") if p]
        base["oprns"] = (
            ";".join(draw(st.permutations(procs))) if procs else draw(st.sampled_from(["", "37.5100", "47.09"]))
        )
    if draw(st.booleans()):
        base["other_diags"] = ";".join(draw(st.lists(st.sampled_from([*CODES, "E11.9"]), max_size=4)))
    return base


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(case_rows(), min_size=1, max_size=25))
def test_batch_equals_one_by_one(rows):
    df = pd.DataFrame(rows)
    df["case_id"] = [f"p{i}" for i in range(len(df))]
    out = G.group_frame(df)
    for i, r in enumerate(df.to_dict("records")):
        one = G.group(**r)
        assert (out.mdc.iat[i], out.adrg.iat[i], out.drg.iat[i], out.status.iat[i], out.severity.iat[i]) == (
            one.mdc,
            one.adrg,
            one.drg,
            one.status,
            one.severity,
        ), r
        rw = out.rw_e4.iat[i]
        assert (None if pd.isna(rw) else int(rw)) == one.rw_e4


def test_cli_groups_a_file_and_refuses_a_bad_one(tmp_path):
    from typer.testing import CliRunner

    from yibao.cli import app

    src = tmp_path / "cases.csv"
    CASES[list(INPUT_COLUMNS)].head(40).to_csv(src, index=False)
    out = tmp_path / "groups.parquet"
    res = CliRunner().invoke(
        app, ["drg", "group", "--scheme", "chs-drg-1.1", "--in", str(src), "--out", str(out), "--explain"]
    )
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    assert list(got.columns) == ["case_id", "mdc", "adrg", "drg", "status", "path"]
    assert (got.drg.to_numpy() == CASES.expected_drg.head(40).to_numpy()).all()
    assert got.path.str.contains("ADRG ").all()
    bad = tmp_path / "bad.csv"
    CASES[list(INPUT_COLUMNS)].head(3).drop(columns=["main_diag"]).to_csv(bad, index=False)
    out2 = tmp_path / "none.parquet"
    res = CliRunner().invoke(app, ["drg", "group", "--in", str(bad), "--out", str(out2)])
    assert res.exit_code == 2 and "main_diag" in res.output and not out2.exists()
