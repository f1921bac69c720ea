"""Re-code the SYNTHETIC sample medical list into the national code structures (kept for the record).

The sample list shipped short codes (``W0101`` western, ``Z0101`` 中成药,
``H0001`` 中药饮片, ``C0101`` consumable, ``S0101`` / ``S-HB-*`` service).  This
script gives each row a code with the published structure of its kind
(``yibao/codes/national_structures.py``) whose segments are visibly synthetic
("99"/"V99" parts that no published code uses), writes the old → new table to
``yibao/data/codes/med_list_recode.csv`` and rewrites the listed files token by
token.  ``procedures.csv`` is not rewritten here: only its ``med_list_codg``
column may change (see ``--procedures``).

    python scripts/recode_med_list_national.py --map           # write the mapping only
    python scripts/recode_med_list_national.py FILE ...        # rewrite old codes in FILEs
    python scripts/recode_med_list_national.py --procedures    # rewrite procedures.csv's med_list_codg column
"""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODES = ROOT / "yibao" / "data" / "codes"
MAP = CODES / "med_list_recode.csv"
HB = {"S-HB-SETUP": 1, "S-HB-VISIT": 2, "S-HB-NURSE": 3}


def new_code(old: str, kind: str) -> str:
    if old in HB:
        g, n = 10, HB[old]
    else:
        g, n = int(old[1:3]), int(old[3:5])
    if kind == "western":  # X + category V99xx (no ATC group V99) + name S nnn + form Z9 + 11 digits
        return f"XV99A{chr(ord('A') + g - 1)}S{n:03d}Z999{g:02d}{n:02d}00000"
    if kind == "tcm_patent":  # Z + category Z99Ax + name S nnn + 10 digits
        return f"ZZ99A{chr(ord('A') + g - 1)}S{n:03d}99{g:02d}{n:02d}0000"
    if kind == "herbal":  # T + 9 digits
        return f"T99000{n:04d}"
    if kind == "consumable":  # C + class 99 01 01 + generic nnn + feature 00000 + enterprise 99999
        return f"C990101{n:03d}0000099999"
    if kind == "service":  # 99 + 9-digit item (gg 0000 nnn) + extension 0000
        return f"99{g:02d}0000{n:03d}0000"
    raise ValueError(kind)


def build_map() -> dict[str, str]:
    text = (CODES / "med_list.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO("\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))))
    out = {r["med_list_codg"]: new_code(r["med_list_codg"], r["list_kind"]) for r in rows}
    assert len(set(out.values())) == len(out), "new codes collide"
    return out


def write_map(m: dict[str, str]) -> None:
    lines = [
        "# Old SYNTHETIC sample codes of the medical list → their SYNTHETIC national-structure codes (2026-12).",
        "# Written by scripts/recode_med_list_national.py; for data generated before the re-coding. Not an official "
        "table.",
        "old_code,med_list_codg",
    ] + [f"{o},{n}" for o, n in m.items()]
    MAP.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_map() -> dict[str, str]:
    text = MAP.read_text(encoding="utf-8")
    return dict(ln.split(",") for ln in text.splitlines()[3:] if ln.strip())


def rewrite(path: Path, m: dict[str, str]) -> int:
    rx = re.compile(
        r"(?<![A-Za-z0-9_-])(" + "|".join(sorted(map(re.escape, m), key=len, reverse=True)) + r")(?![A-Za-z0-9_-])"
    )
    text = path.read_text(encoding="utf-8")
    new, n = rx.subn(lambda mo: m[mo.group(1)], text)
    if n:
        path.write_text(new, encoding="utf-8")
    return n


def rewrite_procedures(m: dict[str, str]) -> int:
    """Only the med_list_codg column of procedures.csv (re-read now: others edit its other columns)."""
    path = CODES / "procedures.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header_at = next(i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#"))
    cols = next(csv.reader([lines[header_at]]))
    k = cols.index("med_list_codg")
    n = 0
    for i in range(header_at + 1, len(lines)):
        ln = lines[i]
        if not ln.strip() or ln.startswith("#"):
            continue
        vals = next(csv.reader([ln]))
        if vals[k] in m:
            vals[k] = m[vals[k]]
            n += 1
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow(vals)
            lines[i] = buf.getvalue() + ("\n" if ln.endswith("\n") else "")
    path.write_text("".join(lines), encoding="utf-8")
    return n


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--map"]:
        write_map(build_map())
    elif args == ["--procedures"]:
        print(rewrite_procedures(read_map()))
    else:
        m = read_map()
        for a in args:
            print(a, rewrite(Path(a), m))
