"""Execution reports as import formats (集采执行监测数据导入): winners' monthly
inventory reports (中选企业库存报告), institutions' purchase reports
(采购订单/入库明细) and last year's use of non-winning products (未中选产品上年用量).

Each is a CSV (UTF-8, optional BOM) or an Excel sheet (``.xlsx``) with English
or Chinese headers (:data:`ALIASES`).  Every cell is checked: unknown columns
are kept but ignored, a missing required column, a blank or non-integer
quantity, a negative quantity, a bad month, a duplicate key or (given the
round's contracts) an unknown drug, specification or supplier stops the import
with one line that names the file, the row as a spreadsheet user counts it
(header = row 1), the column and the reason, in English and Chinese
(:class:`~yibao.procurement.io.RoundInputError`).  Nothing is partly read.

Months: an integer month of the procurement cycle (1 = the first month), or a
calendar month ``YYYY-MM`` converted with ``cycle_start`` (``YYYY-MM``, the
first month of the cycle).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from yibao.procurement.io import RoundInputError

ALIASES = {
    "供应企业": "supplier",
    "中选企业": "supplier",
    "配送企业": "supplier",
    "企业编码": "supplier",
    "品种编码": "drug_id",
    "规格编码": "spec_id",
    "月份": "month",
    "库存数量": "stock_units",
    "库存": "stock_units",
    "订单编号": "order_id",
    "医疗机构编码": "institution_id",
    "采购数量": "units",
    "数量": "units",
    "未中选用量": "nonwinning_units",
    "上年未中选用量": "nonwinning_units",
}

COLUMNS = {
    "inventory": ("supplier", "drug_id", "month", "stock_units"),
    "purchases": ("order_id", "institution_id", "drug_id", "spec_id", "supplier", "units", "month"),
    "last_year": ("institution_id", "drug_id", "nonwinning_units"),
}
KEYS = {
    "inventory": ("supplier", "drug_id", "month"),
    "purchases": ("order_id",),
    "last_year": ("institution_id", "drug_id"),
}
QUANTITY = {"inventory": "stock_units", "purchases": "units", "last_year": "nonwinning_units"}
KIND_ZH = {"inventory": "库存报告", "purchases": "采购报告", "last_year": "上年未中选用量"}

_CAL = re.compile(r"^(\d{4})-(\d{2})$")
MAX_CYCLE_MONTHS = 60


def _read(path: Path, kind: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise RoundInputError(path.name, None, kind, "file not found", f"找不到{KIND_ZH[kind]}文件")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            df = pd.read_excel(path, sheet_name=0, dtype=str, keep_default_na=False)
        elif suffix in (".csv", ".txt"):
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        else:
            raise RoundInputError(
                path.name,
                None,
                kind,
                f"unsupported file type {suffix!r}: use .csv or .xlsx",
                f"不支持的文件类型 {suffix!r}: 请使用 .csv 或 .xlsx",
            )
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        if isinstance(exc, RoundInputError):
            raise
        raise RoundInputError(
            path.name,
            None,
            kind,
            f"cannot be read as {suffix[1:]}: {str(exc).splitlines()[0]}",
            f"无法读取: {str(exc).splitlines()[0]}",
        ) from None
    df = df.rename(columns={c: ALIASES.get(str(c).strip(), str(c).strip()) for c in df.columns})
    for col in COLUMNS[kind]:
        if col not in df.columns:
            raise RoundInputError(path.name, None, col, "missing column", "缺少列")
    return df[list(COLUMNS[kind])].apply(lambda s: s.astype(str).str.strip())


def _month(v: str, source: str, row: int, cycle_start: str | None) -> int:
    if v.isdigit():
        m = int(v)
    elif (g := _CAL.match(v)) is not None:
        if cycle_start is None or (s := _CAL.match(cycle_start)) is None:
            raise RoundInputError(
                source,
                row,
                "month",
                f"calendar month {v!r} needs the cycle start (YYYY-MM)",
                f"日历月份 {v!r} 需要给出采购周期起始月 (YYYY-MM)",
            )
        if not 1 <= int(g[2]) <= 12 or not 1 <= int(s[2]) <= 12:
            raise RoundInputError(
                source,
                row,
                "month",
                f"{v!r} (cycle start {cycle_start!r}) is not a calendar month",
                f"{v!r} (周期起始 {cycle_start!r}) 不是有效月份",
            )
        m = (int(g[1]) - int(s[1])) * 12 + int(g[2]) - int(s[2]) + 1
    else:
        raise RoundInputError(
            source,
            row,
            "month",
            f"{v!r} is neither a cycle month (1, 2, …) nor YYYY-MM",
            f"{v!r} 既不是周期月序号也不是 YYYY-MM",
        )
    if not 1 <= m <= MAX_CYCLE_MONTHS:
        raise RoundInputError(
            source,
            row,
            "month",
            f"month {v!r} falls outside the cycle (month {m})",
            f"月份 {v!r} 不在采购周期内 (第 {m} 月)",
        )
    return m


def _quantity(v: str, source: str, row: int, col: str) -> int:
    if not re.fullmatch(r"\d+", v.replace(",", "")):
        why = "blank" if not v else f"{v!r} is not a whole number of minimum units"
        raise RoundInputError(
            source,
            row,
            col,
            why + " (must be an integer >= 0)",
            ("为空" if not v else f"{v!r} 不是最小制剂单位的整数") + " (须为 >= 0 的整数)",
        )
    return int(v.replace(",", ""))


def read_report(
    path: str | Path, kind: str, *, cycle_start: str | None = None, contracts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Read and validate one execution report (``inventory``, ``purchases`` or ``last_year``).

    With ``contracts`` (a round's contract table) every drug, specification
    and supplier must be one the round knows; purchases from a supplier that
    holds no contract for that drug are allowed (they are the non-winning
    products monitoring looks for) but the drug and spec must exist.
    """
    if kind not in COLUMNS:
        raise ValueError(f"unknown report kind {kind!r}")
    path = Path(path)
    df = _read(path, kind)
    src = path.name
    qty = QUANTITY[kind]
    for col in COLUMNS[kind]:
        if col in (qty, "month"):
            continue
        blank = df.index[df[col] == ""]
        if len(blank):
            raise RoundInputError(src, int(blank[0]) + 2, col, "blank", "为空")
    df[qty] = [_quantity(v, src, i + 2, qty) for i, v in enumerate(df[qty])]
    if kind == "purchases" and (df[qty] == 0).any():
        i = int((df[qty] == 0).to_numpy().nonzero()[0][0])
        raise RoundInputError(src, i + 2, qty, "an order must be for at least one unit", "订单数量必须大于 0")
    if "month" in df:
        df["month"] = [_month(v, src, i + 2, cycle_start) for i, v in enumerate(df["month"])]
    dup = df.duplicated(list(KEYS[kind]), keep="first")
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        key = ", ".join(f"{k}={df.at[i, k]!s}" for k in KEYS[kind])
        raise RoundInputError(src, i + 2, "/".join(KEYS[kind]), f"duplicate line ({key})", f"重复记录 ({key})")
    if contracts is not None:
        _check_known(df, kind, src, contracts)
    df[qty] = df[qty].astype("int64")
    if "month" in df:
        df["month"] = df["month"].astype("int64")
    df.attrs["source"] = src
    df.attrs["synthetic"] = False
    return df.reset_index(drop=True)


def _check_known(df: pd.DataFrame, kind: str, src: str, contracts: pd.DataFrame) -> None:
    drugs = set(contracts["drug_id"].astype(str))
    checks = [("drug_id", drugs, "not a drug of this round", "不是本轮集采品种")]
    if "spec_id" in df:
        checks.append(
            ("spec_id", set(contracts["spec_id"].astype(str)), "not a specification of this round", "不是本轮集采规格")
        )
    if kind == "inventory":
        checks.append(
            (
                "supplier",
                set(contracts["supplier"].astype(str)),
                "not a winner holding a contract",
                "不是持有合同的中选企业",
            )
        )
    if "institution_id" in df and kind == "purchases":
        checks.append(
            (
                "institution_id",
                set(contracts["institution_id"].astype(str)),
                "not an institution of this round",
                "不是本轮参与的医疗机构",
            )
        )
    for col, known, en, zh in checks:
        bad = ~df[col].isin(known)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise RoundInputError(src, i + 2, col, f"{df.at[i, col]!r} is {en}", f"{df.at[i, col]!r} {zh}")
