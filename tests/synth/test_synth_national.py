"""The synthetic region in national 医保版 codes: diagnoses, procedures, newborns and multiple trauma."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yibao.codes import load_diagnosis_mix
from yibao.codes.national import national_dx_codes, national_proc_codes
from yibao.codes.procedures import load_procedure_mix
from yibao.core.errors import CodeTableError
from yibao.synth import collect_region
from yibao.synth import formulary as F
from yibao.synth.encounters import national_procedure

YEAR = 2025


@pytest.fixture(scope="module")
def region() -> dict[str, pd.DataFrame]:
    t = collect_region(30_000, 11, year=YEAR)
    enc = t["encounter"].to_pandas()
    person = t["person"].to_pandas()
    return {"encounter": enc, "person": person}


def test_every_code_is_national_and_surgical_cases_are_coherent(region):
    enc = region["encounter"]
    assert set(enc.dise_codg) <= national_dx_codes()
    assert {c for s in enc.other_dise_codg for c in s.split(";") if c} <= national_dx_codes()
    assert {c for s in enc.oprn_codg for c in s.split(";") if c} <= national_proc_codes()
    # a procedure of the procedure mix is only ever coded with its own principal diagnosis
    pm = load_procedure_mix()
    pairs = set(zip(pm.column("dise_codg").to_pylist(), pm.column("oprn_codg").to_pylist(), strict=True))
    mix_procs = {op for _, op in pairs}
    ip = enc[enc.med_type == "21"]
    coded = set(zip(ip.dise_codg, ip.oprn_codg, strict=True))
    formulary = {
        national_procedure(pr.oprn_codg, pr.items[0][0] if pr.items else "") for th in F.T.values() for pr in th.procs
    }
    assert all((dx, op) in pairs for dx, op in coded if op in mix_procs - formulary)
    assert len({op for _, op in coded if op}) >= 40  # surgery across many ADRGs, not a handful of procedures


def test_inpatient_mix_is_wide(region):
    ip = region["encounter"][region["encounter"].med_type == "21"]
    # principal diagnoses of many ICD-10 chapters (the 26 MDCs of CHS-DRG 1.1 need them)
    assert ip.dise_codg.str[0].nunique() >= 19
    assert ip.dise_codg.nunique() >= 80


def test_newborns_are_admitted_in_their_first_weeks(region):
    enc, person = region["encounter"], region["person"]
    ip = enc[(enc.med_type == "21") & enc.dise_codg.str.startswith("P")].merge(person[["psn_no", "brdy"]], on="psn_no")
    assert len(ip) > 0
    adm = ip.begntime.dt.tz_convert("Asia/Shanghai").dt.date
    days = (pd.to_datetime(adm) - pd.to_datetime(ip.brdy)).dt.days
    born_this_year = pd.to_datetime(ip.brdy).dt.year == YEAR
    assert born_this_year.any()
    assert ((days[born_this_year] >= 1) & (days[born_this_year] <= 21)).all()


def test_multiple_trauma_carries_its_second_injury(region):
    enc = region["encounter"]
    mix = load_diagnosis_mix()
    fixed = {c: o for c, o, s in zip(mix.code, mix.other, mix.setting, strict=True) if o and s == "inpatient"}
    assert fixed  # the mix holds multiple-trauma rows (MDC Z needs two body regions)
    rows = enc[(enc.med_type == "21") & enc.dise_codg.isin(list(fixed))]
    assert len(rows) > 0
    assert all(
        set(fixed[d].split(";")) <= set(o.split(";")) for d, o in zip(rows.dise_codg, rows.other_dise_codg, strict=True)
    )


def test_mix_other_codes_are_validated(tmp_path):
    base = "code,setting,weight,gend,age_min,age_max,other_codg,note\n" + "".join(
        f"{c},{s},1,,-1,-1,,x\n"
        for c, s in (("J06.900", "outpatient"), ("I10.x00", "chronic"), ("N18.500", "special"), ("I69.300", "home_bed"))
    )
    path = tmp_path / "mix.csv"
    path.write_text(base + "S72.300,inpatient,1,,-1,-1,S27.000,x\n", encoding="utf-8")
    assert list(load_diagnosis_mix(path).other) == ["", "", "", "", "S27.000"]
    path.write_text(base + "S72.300,inpatient,1,,-1,-1,S27.0,x\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"line 6.*other_codg: unknown diagnosis code 'S27.0'"):
        load_diagnosis_mix(path)
    path.write_text(base + "S72.300,inpatient,1,,-1,-1,S72.300,x\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match="repeats a code"):
        load_diagnosis_mix(path)
    assert np.array_equal(load_diagnosis_mix().code, load_diagnosis_mix().code)
