#!/usr/bin/env python3
"""Convert the national CHS-DRG 1.1 data file into yibao's shipped files.

    python scripts/convert_chsdrg.py [../shared/chsdrg-1.1/chs-drg-1.1.json]

Writes, from the one JSON file (26 MDCs, 376 ADRGs, 628 DRGs, CC/MCC and
exclusion tables, OR procedures, the 医保版 dictionaries):

* ``yibao/data/codes/national/icd10-yb-2.0.csv``   diagnosis dictionary (医保版 ICD-10 2.0)
* ``yibao/data/codes/national/icd9cm3-yb-2.0.csv`` procedure dictionary (医保版 ICD-9-CM-3 2.0)
* ``yibao/data/payment/drg/chs-drg-1.1/``          the scheme in yibao's format (see
  ``yibao/payment/drgscheme.py``)

The output is deterministic (sorted where the source order carries no meaning,
source order where it does), so re-running it on the same input changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT.parent / "shared" / "chsdrg-1.1" / "chs-drg-1.1.json"
CODES_OUT = ROOT / "yibao" / "data" / "codes" / "national"
SCHEME_OUT = ROOT / "yibao" / "data" / "payment" / "drg" / "chs-drg-1.1"


def _write_csv(path: Path, header: list[str], rows, comment: str) -> int:
    buf = io.StringIO()
    for line in comment.strip().splitlines():
        buf.write(f"# {line}\n" if line else "#\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    n = 0
    for r in rows:
        w.writerow(r)
        n += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return n


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_dictionaries(d: dict, src: Path) -> None:
    cite = (
        f"Source: {d['scheme']}; {d['source']}.\n"
        f"Converted by scripts/convert_chsdrg.py from {src.name} (sha256 {sha256(src)[:16]}).\n"
        "Codes are matched exactly, as strings; names are the published Chinese names."
    )
    n = _write_csv(
        CODES_OUT / "icd10-yb-2.0.csv",
        ["code", "name"],
        sorted(d["dx_dictionary"].items()),
        "医保版 ICD-10 2.0 (医疗保障疾病诊断分类与代码): every valid diagnosis code and its name.\n" + cite,
    )
    print(f"diagnoses: {n:,}")
    n = _write_csv(
        CODES_OUT / "icd9cm3-yb-2.0.csv",
        ["code", "name"],
        sorted(d["proc_dictionary"].items()),
        "医保版 ICD-9-CM-3 2.0 (医疗保障手术操作分类与代码): every valid procedure code and its name.\n" + cite,
    )
    print(f"procedures: {n:,}")


# MDC names as the 分组方案 1.1 writes them (the data file carries only the codes)
MDC_NAMES = {
    "A": "先期分组疾病及相关操作",
    "B": "神经系统疾病及功能障碍",
    "C": "眼疾病及功能障碍",
    "D": "头颈、耳、鼻、口、咽疾病及功能障碍",
    "E": "呼吸系统疾病及功能障碍",
    "F": "循环系统疾病及功能障碍",
    "G": "消化系统疾病及功能障碍",
    "H": "肝、胆、胰疾病及功能障碍",
    "I": "肌肉、骨骼疾病及功能障碍",
    "J": "皮肤、皮下组织及乳腺疾病及功能障碍",
    "K": "内分泌、营养、代谢疾病及功能障碍",
    "L": "肾脏及泌尿系统疾病及功能障碍",
    "M": "男性生殖系统疾病及功能障碍",
    "N": "女性生殖系统疾病及功能障碍",
    "O": "妊娠、分娩及产褥期",
    "P": "新生儿及其他围产期新生儿疾病",
    "Q": "血液、造血器官及免疫疾病和功能障碍",
    "R": "骨髓增生疾病和功能障碍，低分化肿瘤",
    "S": "感染及寄生虫病（全身性或不明确部位的）",
    "T": "精神疾病及功能障碍",
    "U": "酒精/药物使用及其引起的器质性精神功能障碍",
    "V": "创伤、中毒及药物毒性反应",
    "W": "烧伤",
    "X": "影响健康因素及其他就医情况",
    "Y": "HIV感染疾病及相关操作",
    "Z": "多发严重创伤",
}

# MDC entry as written in the data file -> (entry, sex, newborn)
MDC_ENTRY = {
    "main_dx": ("main_dx", "", ""),
    "main_dx+male": ("main_dx", "1", ""),
    "main_dx+female": ("main_dx", "2", ""),
    "main_dx+age0": ("main_dx", "", "under_1_year"),
    "main_proc_is_OR": ("adrgs", "", ""),
}

# ADRG entry as written in the data file -> yibao's condition columns
# (dx_cond, proc_cond, proc_combo, max_age_days, weight_min_g, weight_max_g)
ADRG_ENTRY = {
    "main_dx": ("main", "", "", "", "", ""),
    "main_proc": ("", "main", "", "", "", ""),
    "main_dx+main_proc": ("main", "main", "", "", "", ""),
    "any_proc_L1+any_proc_L2": ("", "pair", "", "", "", ""),
    "main_dx+any_proc_L1+any_proc_L2": ("main", "pair", "", "", "", ""),
    "main_dx+proc_combo(1&2|1&3&4)": ("main", "combo", "1&2|1&3&4", "", "", ""),
    "main_dx+proc_combo(1|2&3)": ("main", "combo", "1|2&3", "", "", ""),
    "main_proc+ageday<=28": ("", "main", "", "28", "", ""),
    "main_dx+ageday<=28": ("main", "", "", "28", "", ""),
    "any_dx+weight<1500+ageday<=28": ("any", "", "", "28", "", "1499"),
    "any_dx+weight1500-1999+ageday<=28": ("any", "", "", "28", "1500", "1999"),
    "any_dx+weight2000-2499+ageday<=28": ("any", "", "", "28", "2000", "2499"),
    "any_dx+weight>=2500+ageday<=28": ("any", "", "", "28", "2500", ""),
    "main_proc_is_OR": ("", "main_or", "", "", "", ""),
    "any_dx+main_proc_is_OR": ("any", "main_or", "", "", "", ""),
    "no_OR_proc": ("", "no_or", "", "", "", ""),
    "always": ("", "", "", "", "", ""),
}
SEVERITY = {"any": "any", "mcc": "mcc", "mcc_or_cc": "mcc_or_cc"}


def _unique(seq):
    seen: dict = {}
    for x in seq:
        seen.setdefault(x, None)
    return list(seen)


def write_scheme(d: dict, src: Path) -> None:
    out = SCHEME_OUT
    out.mkdir(parents=True, exist_ok=True)
    dxd, prd = d["dx_dictionary"], d["proc_dictionary"]
    head = (
        f"CHS-DRG 1.1 (national scheme), converted by scripts/convert_chsdrg.py from {src.name}\n"
        f"(sha256 {sha256(src)[:16]}); {d['source']}. Do not edit: re-run the script."
    )
    adrg_mdc = {a: m for m, x in d["mdcs"].items() for a in x["adrg_order"]}
    if set(adrg_mdc) != set(d["adrgs"]):
        raise SystemExit("every ADRG must belong to exactly one MDC")
    rows = []
    for seq, m in enumerate(d["mdc_order"], start=1):
        x = d["mdcs"][m]
        entry, sex, newborn = MDC_ENTRY[x["entry"]]
        multi = "yes" if x.get("trauma_sites") else ""
        n_surg = int(x.get("ambiguous_group_after") or 0)
        # QY only where a case enters the MDC by its principal diagnosis and some surgical ADRGs precede
        amb = "yes" if entry == "main_dx" and 0 < n_surg < len(x["adrg_order"]) else ""
        rows.append([m, seq, entry, sex, newborn, multi, n_surg, amb, MDC_NAMES[m]])
    _write_csv(
        out / "mdc.csv",
        ["mdc", "seq", "entry", "sex", "newborn", "multi_trauma", "surgical_adrgs", "ambiguous_group", "name"],
        rows,
        head + "\nentry: main_dx (principal diagnosis in mdc_dx.csv) or adrgs (entered only through its ADRGs' own "
        "conditions).\n"
        "sex: '' / 1 / 2 required on entry. newborn: under_1_year = age 0 years or an age in days.\n"
        "multi_trauma: yes = injuries in two or more body regions (trauma_sites.csv) needed on entry.\n"
        "surgical_adrgs: the first N ADRGs in seq order are surgical; ambiguous_group: yes = a case with an\n"
        "operating-room procedure that entered none of them is grouped <MDC>QY (歧义组).",
    )
    rows = [[m, c] for m in d["mdc_order"] for c in sorted(set(d["mdcs"][m]["principal_dx"]))]
    _write_csv(
        out / "mdc_dx.csv", ["mdc", "code"], rows, head + "\nPrincipal diagnoses that enter each MDC (exact codes)."
    )
    rows = [[c, r] for c, r in sorted(d["mdcs"]["Z"]["trauma_sites"].items())]
    _write_csv(
        out / "trauma_sites.csv",
        ["code", "region"],
        rows,
        head + "\nBody region of each injury code, for MDC Z's two-region rule.",
    )
    arows, dxrows, prrows = [], [], []
    for m in d["mdc_order"]:
        for seq, a in enumerate(d["mdcs"][m]["adrg_order"], start=1):
            x = d["adrgs"][a]
            cond = ADRG_ENTRY[x["entry"]]
            arows.append([a, m, seq, *cond])
            for c in sorted(set(x["dx"])):
                dxrows.append([a, c])
            labels = x.get("proc_label") or [""] * len(x["proc"])
            for c, lab in _unique(zip(x["proc"], labels, strict=True)):
                prrows.append([a, c, "1", lab])
            for c in _unique(x.get("proc_2") or []):
                prrows.append([a, c, "2", ""])
    _write_csv(
        out / "adrg.csv",
        ["adrg", "mdc", "seq", "dx_cond", "proc_cond", "proc_combo", "max_age_days", "weight_min_g", "weight_max_g"],
        arows,
        head + "\nADRGs tried in seq order within their MDC; the first whose conditions all hold wins.\n"
        "dx_cond: main (principal diagnosis in adrg_dx.csv) / any (any diagnosis in it) / '' (none).\n"
        "proc_cond: main (principal = first procedure in the list) / pair (some procedure of list 1 and some of list "
        "2)\n"
        "  / combo (the procedures' labels cover proc_combo, e.g. 1&2|1&3&4) / main_or (principal procedure is an\n"
        "  operating-room procedure) / no_or (no operating-room procedure) / '' (none).\n"
        "max_age_days: age in days at most this (newborns). weight_min_g / weight_max_g: birth weight band, grams, "
        "inclusive.",
    )
    _write_csv(out / "adrg_dx.csv", ["adrg", "code"], dxrows, head + "\nDiagnoses of each ADRG (exact codes).")
    _write_csv(
        out / "adrg_proc.csv",
        ["adrg", "code", "list", "label"],
        prrows,
        head
        + "\nProcedures of each ADRG (exact codes); list 1 or 2 (for pair conditions); label for combo conditions.",
    )
    drows = []
    for m in d["mdc_order"]:
        for a in d["mdcs"][m]["adrg_order"]:
            for seq, g in enumerate(d["adrgs"][a]["drgs"], start=1):
                x = d["drgs"][g]
                drows.append([g, a, seq, SEVERITY[x["severity_rule"]], "", x["name"]])
    _write_csv(
        out / "drg.csv",
        ["drg", "adrg", "seq", "severity", "rw", "name"],
        drows,
        head
        + "\nDRGs of each ADRG tried in seq order. severity: mcc (a secondary diagnosis is an MCC) / mcc_or_cc / any.\n"
        "rw: the national scheme publishes no relative weights; each pooling region sets them in its local scheme.",
    )
    rows = [[c, "mcc", t] for c, t in sorted(d["mcc"].items())] + [[c, "cc", t] for c, t in sorted(d["cc"].items())]
    _write_csv(
        out / "cc.csv",
        ["code", "level", "exclusion_table"],
        sorted(rows),
        head + "\nSecondary diagnoses that are a CC or an MCC, with their exclusion table.",
    )
    _write_csv(
        out / "cc_exclusion.csv",
        ["code", "exclusion_table"],
        sorted(d["cc_exclusion"].items()),
        head + "\nPrincipal diagnosis -> exclusion table: a CC/MCC of the same table does not count for it.",
    )
    _write_csv(
        out / "or_procedures.csv",
        ["code"],
        [[c] for c in sorted(set(d["or_procedures"]))],
        head + "\nOperating-room procedures (手术室手术).",
    )
    outside = sorted(
        {c for x in d["adrgs"].values() for c in x["dx"] if c not in dxd}
        | {c for x in d["mdcs"].values() for c in x["principal_dx"] if c not in dxd}
        | {c for c in d["cc_exclusion"] if c not in dxd}
        | {c for c in d["cc"] if c not in dxd}
        | {c for c in d["mcc"] if c not in dxd}
    )
    outside_p = sorted(
        {c for x in d["adrgs"].values() for c in list(x["proc"]) + list(x.get("proc_2") or []) if c not in prd}
        | {c for c in d["or_procedures"] if c not in prd}
    )
    meta = {
        "format": 2,
        "name": "chs-drg-1.1",
        "version": "1.1",
        "effective_from": "2021-01-01",
        "label": "CHS-DRG 1.1, the national scheme (国家医疗保障疾病诊断相关分组 分组方案 1.1 版); no relative weights",
        "source": {
            "scheme": d["scheme"],
            "transcription": d["source"],
            "file": src.name,
            "sha256": sha256(src),
            "converted_by": "scripts/convert_chsdrg.py",
        },
        "diagnosis_system": "icd10-yb-2.0",
        "procedure_system": "icd9cm3-yb-2.0",
        "match": "exact",
        "codes_outside_dictionary": {"diagnoses": outside, "procedures": outside_p},
    }
    import yaml

    text = (
        "# CHS-DRG 1.1 in yibao's scheme format (yibao/payment/drgscheme.py). Generated by\n"
        "# scripts/convert_chsdrg.py: do not edit by hand. effective_from: the source gives only the year\n"
        "# of publication (2021), so the first of that year stands for it (UNCERTAIN day); a region's\n"
        "# local scheme (base: chs-drg-1.1) states its own dates.\n"
        "# codes_outside_dictionary: codes the scheme's tables list that the 医保版 dictionaries lack; no valid\n"
        "# case can carry them, kept as published.\n"
    )
    (out / "scheme.yaml").write_text(text + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), encoding="utf-8")
    print(f"scheme: {len(d['mdc_order'])} MDCs, {len(arows)} ADRGs, {len(drows)} DRGs -> {out}")
    print(f"codes outside the dictionaries: {outside} {outside_p}")


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else DEFAULT_SRC
    d = json.loads(src.read_text(encoding="utf-8"))
    write_dictionaries(d, src)
    if "write_scheme" in globals():
        write_scheme(d, src)  # noqa: F821
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
