"""The synthetic pooling region (yibao.synth)."""

from __future__ import annotations

import hashlib
import sys
import time
import types

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.codes import MedList, load_divisions, load_procedures, validate_institutions
from yibao.codes.national import national_dx_codes
from yibao.core import contract as C
from yibao.core.errors import YibaoError
from yibao.synth import PATTERNS, SynthError, collect_region, generate_region, write_parquet
from yibao.synth import formulary as F
from yibao.synth.cli import run_synth
from yibao.synth.encounters import national_procedure

YEAR = 2025
GENERATED = (
    "med_list",
    "institution",
    "practitioner",
    "person",
    "family_link",
    "encounter",
    "fee_detail",
    "ground_truth",
    "purchase",
)


@pytest.fixture(scope="module")
def small() -> dict[str, pa.Table]:
    return collect_region(1_000, 42, year=YEAR)


@pytest.fixture(scope="module")
def big() -> dict[str, pd.DataFrame]:
    """~50k people as pandas frames (timestamps as epoch seconds)."""
    tables = collect_region(50_000, 2024, year=YEAR)
    out = {}
    for name, t in tables.items():
        cols = {}
        for f in t.schema:
            col = t.column(f.name)
            if pa.types.is_timestamp(f.type):
                cols[f.name] = col.cast(pa.int64()).to_numpy()
            else:
                cols[f.name] = col.to_pandas()
        out[name] = pd.DataFrame(cols)
    return out


def local_date(seconds: np.ndarray) -> np.ndarray:
    return ((seconds + 8 * 3600) // 86400).astype("datetime64[D]")


# --- shape and labels -------------------------------------------------------------------


def test_every_table_matches_the_contract_schema_exactly(small):
    assert set(small) == set(GENERATED)
    from yibao.supervision.stock import PURCHASE

    for name, t in small.items():
        assert t.schema.equals(PURCHASE if name == "purchase" else C.TABLES[name]), name
        if "synthetic" in t.column_names:
            assert t.column("synthetic").to_pylist() == [True] * t.num_rows, name
    for name in ("person", "encounter", "fee_detail", "family_link"):
        assert small[name].num_rows > 0, name


def test_ids_are_unique_and_references_resolve(small):
    enc = small["encounter"].to_pandas()
    fee = small["fee_detail"].to_pandas()
    person = small["person"].to_pandas()
    assert enc.mdtrt_id.is_unique and person.psn_no.is_unique and person.certno.is_unique
    assert not fee.duplicated(["mdtrt_id", "feedetl_sn"]).any()
    # feedetl_sn runs 1..n inside each encounter
    g = fee.groupby("mdtrt_id").feedetl_sn
    assert (g.min() == 1).all() and (g.max() == g.count()).all()
    assert set(fee.mdtrt_id) == set(enc.mdtrt_id)
    assert set(enc.psn_no) <= set(person.psn_no)
    assert set(enc.fixmedins_code) <= set(small["institution"].column("fixmedins_code").to_pylist())
    assert set(fee.med_list_codg) <= set(small["med_list"].column("med_list_codg").to_pylist())
    # every diagnosis is a national 医保版 ICD-10 2.0 code, exactly as the dictionary writes it
    assert all(c in national_dx_codes() for c in set(enc.dise_codg))
    others = {c for s in enc.other_dise_codg for c in s.split(";") if c}
    assert all(c in national_dx_codes() for c in others)
    procs = set(load_procedures().column("oprn_codg").to_pylist())
    assert {c for s in enc.oprn_codg for c in s.split(";") if c} <= procs
    validate_institutions(small["institution"], divisions=load_divisions())
    assert person.psn_no.str.match(r"^99\d{10}$").all()


def test_certno_is_never_a_real_id_number(small):
    cert = small["person"].column("certno").to_pylist()
    assert all(len(c) == 18 and c.startswith("99") and c.endswith("S") for c in cert)  # no province 99, no check char S


# --- determinism and scale -----------------------------------------------------------------


def test_same_seed_same_tables_and_bytes(small, tmp_path):
    again = collect_region(1_000, 42, year=YEAR)
    for name in GENERATED:
        assert again[name].equals(small[name]), name
    other = collect_region(1_000, 43, year=YEAR)
    assert not other["encounter"].equals(small["encounter"])
    a, b = tmp_path / "a", tmp_path / "b"
    write_parquet(a, 1_000, 42, year=YEAR)
    write_parquet(b, 1_000, 42, year=YEAR)
    for name in GENERATED:
        assert (
            hashlib.sha256((a / f"{name}.parquet").read_bytes()).digest()
            == hashlib.sha256((b / f"{name}.parquet").read_bytes()).digest()
        ), name
    from yibao.core.manifest import load, stable_view  # the manifest agrees but for its times (created, mtime_ns)

    assert stable_view(load(a)) == stable_view(load(b))


def test_output_does_not_depend_on_the_process(tmp_path):
    """Another interpreter with another string-hash seed writes the same bytes."""
    import os
    import subprocess

    here = tmp_path / "here"
    write_parquet(here, 700, 8, year=YEAR)
    code = f"from yibao.synth import write_parquet; write_parquet({str(tmp_path / 'there')!r}, 700, 8, year={YEAR})"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    for name in GENERATED:
        assert (here / f"{name}.parquet").read_bytes() == (tmp_path / "there" / f"{name}.parquet").read_bytes(), name


def test_chunks_stream_with_unique_ids_and_deterministic_output():
    seen = []
    chunks = list(generate_region(1_000, 5, chunk_size=300, progress=lambda done, total: seen.append((done, total))))
    assert seen == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]
    names = [n for n, _ in chunks]
    assert names[:2] == ["med_list", "institution"] and names.count("person") == 4
    enc = pa.concat_tables([t for n, t in chunks if n == "encounter"])
    assert len(set(enc.column("mdtrt_id").to_pylist())) == enc.num_rows
    person = pa.concat_tables([t for n, t in chunks if n == "person"])
    assert person.num_rows == 1_000 and len(set(person.column("psn_no").to_pylist())) == 1_000
    again = list(generate_region(1_000, 5, chunk_size=300))
    assert all(t1.equals(t2) for (_, t1), (_, t2) in zip(chunks, again, strict=True))


def test_one_thousand_people_is_quick():
    t = time.perf_counter()
    tables = collect_region(1_000, 1, year=YEAR)
    assert time.perf_counter() - t < 5
    per_type = pd.Series(tables["encounter"].column("med_type").to_pylist()).value_counts()
    for mt in ("11", "14", "21", "41"):
        assert per_type.get(mt, 0) > 0, mt


def test_bad_arguments():
    for kw in (
        {"people": 0, "seed": 1},
        {"people": 10, "seed": -1},
        {"people": 10, "seed": 1, "region": "99"},
        {"people": 10, "seed": 1, "region": "990199"},
    ):
        with pytest.raises(SynthError):
            next(generate_region(**kw))


# --- people -------------------------------------------------------------------------------


def test_age_pyramid_and_schemes(big):
    p = big["person"]
    brdy = pd.to_datetime(p.brdy)
    ref = pd.Timestamp(f"{YEAR}-07-01")
    age = ref.year - brdy.dt.year - ((brdy.dt.month > 7) | ((brdy.dt.month == 7) & (brdy.dt.day > 1)))
    assert abs((age >= 60).mean() - 0.181) < 0.008  # seed: 60+ = 18.1 %
    assert abs((age >= 65).mean() - 0.119) < 0.006  # seed: 65+ = 11.9 %
    assert age.min() >= 0 and age.max() < 100
    emp = p.insutype == C.INSUTYPE_EMPLOYEE
    assert abs(emp.mean() - 1 / 3) < 0.03
    assert set(p.insutype) == {C.INSUTYPE_EMPLOYEE, C.INSUTYPE_RESIDENT}
    assert (p.psn_type[~emp] == C.PSN_TYPE_RESIDENT).all()
    assert set(p.psn_type[emp]) == {C.PSN_TYPE_IN_SERVICE, C.PSN_TYPE_RETIRED}
    retired = p.psn_type == C.PSN_TYPE_RETIRED
    assert age[retired].min() >= 55 and age[p.psn_type == C.PSN_TYPE_IN_SERVICE].max() < 60
    assert (p.contribution_base[p.psn_type == C.PSN_TYPE_IN_SERVICE] > 0).all() and (
        p.contribution_base[p.psn_type != C.PSN_TYPE_IN_SERVICE] == 0
    ).all()
    assert (p.acct_balc[~emp] == 0).all() and (p.acct_balc[emp] > 0).mean() > 0.99
    assert 0 < p.civil_servant.mean() < 0.05 and not p.civil_servant[~emp].any()
    assert set(p.assistance) == set(C.ASSISTANCE_STATUSES)
    assert (p.assistance[emp] == "").all() and 0.02 < (p.assistance[~emp] != "").mean() < 0.1
    assert (p.insuplc_admdvs == "990100").all()


def test_family_links_are_symmetric_and_consistent(big):
    link = big["family_link"]
    pairs = set(zip(link.psn_no, link.relative_psn_no, link.relation, strict=True))
    inverse = {"spouse": "spouse", "parent": "child", "child": "parent"}
    assert all((b, a, inverse[r]) in pairs for a, b, r in pairs)
    assert set(link.relation) == set(C.RELATIONS)
    assert not link.duplicated(["psn_no", "relative_psn_no"]).any()
    p = big["person"].set_index("psn_no")
    spouse = link[link.relation == "spouse"]
    assert (p.loc[spouse.psn_no, "gend"].to_numpy() != p.loc[spouse.relative_psn_no, "gend"].to_numpy()).all()
    par = link[link.relation == "parent"]
    gap = (
        pd.to_datetime(p.loc[par.psn_no, "brdy"]).dt.year.to_numpy()
        - pd.to_datetime(p.loc[par.relative_psn_no, "brdy"]).dt.year.to_numpy()
    )
    assert gap.min() >= 17  # birth years; completed ages differ by at least 18
    # many elderly residents have an employee child (family mutual aid, 共济)
    elderly = p[(p.insutype == C.INSUTYPE_RESIDENT) & (pd.to_datetime(p.brdy).dt.year <= YEAR - 61)].index
    kids = link[(link.relation == "child") & link.psn_no.isin(elderly)]
    with_emp_child = kids[p.loc[kids.relative_psn_no, "insutype"].to_numpy() == C.INSUTYPE_EMPLOYEE].psn_no.nunique()
    assert with_emp_child / len(elderly) > 0.3


# --- encounters and fee lines ----------------------------------------------------------------


def test_encounter_times_and_settings(big):
    e = big["encounter"]
    assert (e.endtime >= e.begntime).all()
    assert (e.policy_year == YEAR).all()
    start, end = local_date(e.begntime.to_numpy()), local_date(e.endtime.to_numpy())
    assert (start >= np.datetime64(f"{YEAR}-01-01")).all() and (end <= np.datetime64(f"{YEAR}-12-31")).all()
    ip = e[e.med_type == "21"]
    los = (local_date(ip.endtime.to_numpy()) - local_date(ip.begntime.to_numpy())).astype(int)
    assert los.min() >= 3 and los.max() <= 15
    n = len(big["person"])
    assert 0.12 < ip.psn_no.nunique() / n < 0.25  # share of people admitted in the year (illustrative)
    assert set(ip.dscg_way) <= {"1", "2", "3", "4", "5"} and (e.dscg_way[e.med_type != "21"] == "").all()
    assert {"11", "14", "21", "41", "52"} <= set(e.med_type)
    hb = e[e.med_type == "52"]
    assert ((hb.endtime - hb.begntime) // 86400 == 179).all()
    chronic = e[(e.med_type == "14") & e.dise_codg.str.match(r"^(I1|E1)")]
    assert chronic.groupby("psn_no").size().median() >= 4  # monthly to quarterly refills
    assert {"N18.500"} <= set(e.dise_codg[e.med_type == "14"]) and e.dise_codg[e.med_type == "14"].str.startswith(
        "C"
    ).any()


def test_nobody_is_treated_before_birth_or_after_death(big):
    e, p = big["encounter"], big["person"]
    brdy = pd.to_datetime(p.set_index("psn_no")["brdy"]).dt.date
    start = pd.Series(local_date(e.begntime.to_numpy())).dt.date
    assert (start.to_numpy() >= brdy.reindex(e.psn_no).to_numpy()).all()
    assert (
        brdy.to_numpy() > pd.Timestamp(f"{YEAR}-01-01").date()
    ).any()  # the check bites: babies born this year exist
    died = e[e.dscg_way == "5"].groupby("psn_no").endtime.min()
    assert len(died) > 0
    later = e.begntime.to_numpy() >= died.reindex(e.psn_no).fillna(np.iinfo(np.int64).max).to_numpy()
    assert not later.any()


def test_fee_lines_are_exact_and_inside_their_encounter(big):
    f = big["fee_detail"]
    assert (f.det_item_fee_sumamt == (f.cnt_milli * f.pric + 500) // 1000).all()
    assert (f.cnt_milli > 0).all() and (f.pric > 0).all()
    e = big["encounter"].set_index("mdtrt_id")
    b, en = e.loc[f.mdtrt_id, "begntime"].to_numpy(), e.loc[f.mdtrt_id, "endtime"].to_numpy()
    assert ((f.fee_ocur_time.to_numpy() >= b) & (f.fee_ocur_time.to_numpy() <= en)).all()
    ml = MedList.load()
    drug = f.med_list_codg.map(lambda c: ml[c].is_drug)
    pharmacy = e.loc[f.mdtrt_id, "med_type"].to_numpy() == "41"
    assert (f.rxno[~drug] == "").all() and (f.rxno[drug & ~pharmacy] != "").all()
    assert 0.1 < (f.rxno[drug & pharmacy] != "").mean() < 0.9  # prescriptions and over-the-counter sales
    assert (f.prd_days[~drug] == 0).all() and f.prd_days.max() <= 84
    assert not f.rx_circ_flag[~drug].any() and f.rx_circ_flag.any()
    mt = e.loc[f.mdtrt_id, "med_type"].to_numpy()
    assert set(mt[f.rx_circ_flag.to_numpy()]) == {"41"}
    # price caps hold for most lines; a few lines are above to exercise over-limit self-pay
    cap = f.med_list_codg.map(lambda c: ml[c].pric_uplmt)
    capped = cap > 0
    above = (f.pric > cap) & capped
    assert 0 < above.sum() / capped.sum() < 0.05


def test_home_bed_and_long_prescriptions(big):
    e = big["encounter"].set_index("mdtrt_id")
    f = big["fee_detail"]
    hb = f[f.mdtrt_id.isin(e.index[e.med_type == "52"])]
    assert len(hb)
    per = hb.groupby("mdtrt_id").med_list_codg
    assert (per.apply(lambda s: (s == "991000000010000").sum()) == 1).all()
    assert (per.apply(lambda s: (s == "991000000020000").sum()) >= 20).all()
    long = f[f.prd_days > 28]
    confirmed = e.loc[long.mdtrt_id, "lt_rx_confirmed"].to_numpy()
    gt = big["ground_truth"]
    unconfirmed = set(gt.entity_id[gt.pattern == "long_rx_unconfirmed"])
    assert all(ok or m in unconfirmed for ok, m in zip(confirmed, long.mdtrt_id, strict=True))
    assert confirmed.mean() > 0.98
    # excluded classes appear in long prescriptions only as tuberculosis antimicrobials
    ml = MedList.load()
    classes = long.med_list_codg.map(lambda c: ml[c].drug_class)
    dise = e.loc[long.mdtrt_id, "dise_codg"]
    assert set(dise[(classes != "").to_numpy()].str[:3]) <= {"A15", "A16"}


def test_cross_province_and_mutual_aid(big):
    e = big["encounter"]
    inst = big["institution"].set_index("fixmedins_code")
    assert (e.mdtrtarea_admvs.to_numpy() == inst.loc[e.fixmedins_code, "admdvs"].to_numpy()).all()
    away = e[~e.mdtrtarea_admvs.str.startswith("99")]
    assert 0 < len(away) / len(e) < 0.02
    assert set(away.mdtrtarea_admvs) <= {"110000", "310000", "320500", "320600", "510100", "440100"}
    p = big["person"].set_index("psn_no")
    links = set(zip(big["family_link"].psn_no, big["family_link"].relative_psn_no, strict=True))
    aid = e[e.mulaid_payer_psn_no != ""]
    assert len(aid) > 100
    assert all((a, b) in links for a, b in zip(aid.psn_no, aid.mulaid_payer_psn_no, strict=True))
    assert (p.loc[aid.mulaid_payer_psn_no, "insutype"] == C.INSUTYPE_EMPLOYEE).all()
    assert (p.loc[aid.psn_no, "insutype"] == C.INSUTYPE_RESIDENT).all()


def test_restrictions_hold_except_the_labelled_lines(big):
    """Check every line against its payment restriction independently; the violations are exactly the labelled ones."""
    f, e, p = big["fee_detail"], big["encounter"].set_index("mdtrt_id"), big["person"].set_index("psn_no")
    inst = big["institution"].set_index("fixmedins_code")
    ml = MedList.load()
    items = f.med_list_codg.map(ml.items.__getitem__)
    enc = e.loc[f.mdtrt_id]
    per = p.loc[enc.psn_no]
    gend = per.gend.to_numpy()
    brdy = pd.to_datetime(per.brdy)
    when = pd.to_datetime(local_date(enc.endtime.to_numpy()))
    age = (
        when.year
        - brdy.dt.year
        - ((when.month < brdy.dt.month) | ((when.month == brdy.dt.month) & (when.day < brdy.dt.day)))
    ).to_numpy()
    lv = inst.loc[enc.fixmedins_code, "hosp_lv"].to_numpy()
    diags = (enc.dise_codg + ";" + enc.other_dise_codg).to_numpy()
    mts = enc.med_type.to_numpy()
    bad = []
    for i, it in enumerate(items):
        if not it.restricted:
            continue
        ok = not (it.lmt_gend and it.lmt_gend != gend[i])
        ok &= not (it.lmt_age_min >= 0 and age[i] < it.lmt_age_min)
        ok &= not (it.lmt_age_max >= 0 and age[i] > it.lmt_age_max)
        ok &= not (it.lmt_hosp_lv_min and lv[i] < it.lmt_hosp_lv_min)
        ok &= not (
            it.lmt_indication
            and not any(d.startswith(px) for d in diags[i].split(";") if d for px in it.lmt_indication)
        )
        ok &= not (it.lmt_med_types and mts[i] not in it.lmt_med_types)
        if not ok:
            bad.append(f"{f.mdtrt_id.iat[i]}#{f.feedetl_sn.iat[i]:06d}")
    gt = big["ground_truth"]
    labelled = set(gt.entity_id[gt.pattern == "restricted_scope"])
    assert set(bad) == labelled
    assert 0 < len(bad) / len(f) < 0.01  # a small, realistic share


def test_formulary_refers_only_to_shipped_codes():
    ml = MedList.load()
    assert F.all_codes() <= set(ml.items)
    procs = set(load_procedures().column("oprn_codg").to_pylist())
    # the formulary may name a procedure by its ICD-9-CM-3 stem; each resolves to one national code of the list
    assert {national_procedure(pr.oprn_codg, pr.items[0][0]) for th in F.T.values() for pr in th.procs} <= procs
    assert {national_procedure(sc.oprn_codg) for sc in F.SPECIAL.values() if sc.oprn_codg} <= procs
    stent = F.T["I25"].procs[
        0
    ]  # a drug-eluting stent: 36.07 in ICD-9-CM-3, 36.0601 冠状动脉药物涂层支架置入术 in the 医保版
    assert (
        national_procedure(stent.oprn_codg, stent.items[0][0]) == "36.0601" and national_procedure("39.95") == "39.9500"
    )


# --- patterns, Parquet and the CLI piece -------------------------------------------------------------


def test_pattern_hook_injects_and_labels():
    base = collect_region(1_000, 9)
    dup = collect_region(1_000, 9, patterns={"duplicate_charge": 0.05})
    gt = dup["ground_truth"].to_pandas()
    n = (gt.pattern == "duplicate_charge").sum()
    assert n > 0 and dup["fee_detail"].num_rows == base["fee_detail"].num_rows + n
    fee = dup["fee_detail"].to_pandas()
    fee["key"] = fee.mdtrt_id + "#" + fee.feedetl_sn.map("{:06d}".format)
    copies = fee.set_index("key").loc[gt.entity_id[gt.pattern == "duplicate_charge"]]
    assert len(copies) == n
    assert "duplicate_charge" in PATTERNS
    with pytest.raises(YibaoError, match="unknown pattern"):
        collect_region(100, 1, patterns={"nope": 0.1})


def test_parquet_files_carry_contract_metadata(tmp_path):
    from yibao.supervision.stock import PURCHASE

    rows = write_parquet(tmp_path, 500, 3, year=YEAR)
    for name in GENERATED:
        schema = pq.read_schema(tmp_path / f"{name}.parquet")
        contract = PURCHASE if name == "purchase" else C.TABLES[name]  # purchase: the supervision import's shape
        assert schema.names == contract.names
        for got, want in zip(schema, contract, strict=True):
            if pa.types.is_timestamp(want.type):  # Parquet has no second unit: stored as ms, same zone
                assert got.type.tz == want.type.tz and got.type.unit in ("s", "ms")
            else:
                assert got.type == want.type, (name, got)
        assert pq.read_table(tmp_path / f"{name}.parquet").cast(contract, safe=True).num_rows == rows[name]
        md = schema.metadata
        assert md[b"yibao.table"] == name.encode() and md[b"yibao.schema_version"] == C.SCHEMA_VERSION.encode()
        assert md[b"yibao.money_unit"] == b"fen" and md[b"yibao.synthetic"] == b"true"
        assert pq.read_metadata(tmp_path / f"{name}.parquet").num_rows == rows[name]
    fee = pq.read_table(tmp_path / "fee_detail.parquet")
    assert fee.schema.field("det_item_fee_sumamt").type == pa.int64()
    assert fee.schema.field("fee_ocur_time").type.tz == "Asia/Shanghai"


def test_run_synth_writes_parquet_and_hands_chunks_to_the_db_loader(tmp_path, monkeypatch):
    rows = run_synth(300, 1, tmp_path / "out", None, YEAR)
    assert (tmp_path / "out" / "encounter.parquet").exists() and rows["person"] == 300
    got = {}

    def load_tables(url, chunks):
        for name, t in chunks:
            got[name] = got.get(name, 0) + t.num_rows
        return got

    import yibao.core

    upgraded = []
    fake = types.ModuleType("yibao.core.db")
    fake.load_tables = load_tables
    fake.upgrade = upgraded.append  # the schema is migrated before loading
    monkeypatch.setitem(sys.modules, "yibao.core.db", fake)
    monkeypatch.setattr(yibao.core, "db", fake, raising=False)
    run_synth(300, 1, None, "sqlite://", YEAR)
    assert got["person"] == 300 and got["encounter"] == rows["encounter"]
    assert rows["purchase"] > 0 and "purchase" not in got  # the database has no purchase table: it stays a file
    assert upgraded == ["sqlite://"]
    with pytest.raises(ValueError):
        run_synth(10, 1, None, None)
