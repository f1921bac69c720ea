"""Reading a round (directory of CSV files or an Excel workbook) with clear errors.

A round directory holds ``round.yaml`` (name, round_date, synthetic,
banned_firms) and ``catalog.csv``, ``specs.csv``, ``firms.csv``,
``bids.csv``, ``demand.csv``.  An Excel workbook holds the same tables as
sheets (English or Chinese sheet and column names, see :data:`ALIASES`), the
layout procurement offices exchange.  Money is yuan with at most 2 decimals
in files and fen inside.

Every error names the file, the row (as a spreadsheet user sees it: header
is row 1) and the field, in English and Chinese (:class:`RoundInputError`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from yibao.core.errors import YibaoError
from yibao.core.money import MoneyError, yuan_to_fen
from yibao.core.yamldata import read_yaml
from yibao.procurement.domain import Bid, CatalogEntry, Firm, RoundInput, Spec
from yibao.procurement.params import DOSAGE_FORMS, RuleSet

TABLES = ("catalog", "specs", "firms", "bids", "demand")

SHEET_ALIASES = {
    "采购目录": "catalog",
    "规格": "specs",
    "企业": "firms",
    "投标": "bids",
    "申报": "bids",
    "报量": "demand",
    "需求": "demand",
}

ALIASES = {
    "品种编码": "drug_id",
    "通用名": "generic_name",
    "剂型": "dosage_form",
    "过评企业数": "passed_consistency",
    "竞争企业数": "competitors",
    "抗菌药": "antibiotic",
    "独家": "sole_product",
    "医保目录编码": "med_list_codg",
    "规格编码": "spec_id",
    "含量mg": "content_mg",
    "包装数量": "units_per_pack",
    "最高有效申报价": "max_price",
    "装量ml": "fill_ml",
    "儿童": "pediatric",
    "代表品": "representative",
    "企业编码": "firm_id",
    "企业名称": "name",
    "信用等级": "credit_grade",
    "申报编码": "bid_id",
    "申报价": "price",
    "产能": "capacity_units",
    "销量": "sales_volume",
    "过评日期": "consistency_date",
    "首次注册日期": "first_registration_date",
    "全国最高价": "national_highest_price",
    "技术标得分": "tech_score",
    "接受复活价": "accept_revival",
    "供应地区意向": "region_preferences",
    "受托生产企业": "contract_manufacturer",
    "医疗机构编码": "institution_id",
    "地区": "region",
    "报量": "units",
    "品牌企业": "brand_firm_id",
    "历史用量": "historical_units",
}

REQUIRED = {
    "catalog": ("drug_id", "generic_name", "dosage_form"),
    "specs": ("spec_id", "drug_id", "content_mg", "units_per_pack"),
    "firms": ("firm_id", "name"),
    "bids": ("bid_id", "drug_id", "spec_id", "firm_id", "price"),
    "demand": ("institution_id", "region", "drug_id", "spec_id", "units"),
}


class RoundInputError(YibaoError):
    """Bad round input: names file, row and field."""

    code = "E_VBP_INPUT"

    def __init__(self, source: str, row: int | None, field: str, reason_en: str, reason_zh: str):
        where = f"{source}" + (f", row {row}" if row is not None else "")
        self.source, self.row, self.reason = source, row, reason_en
        super().__init__(f"{where}: {field}: {reason_en}", f"{where}: {field}: {reason_zh}", field=field)


def _frame(df: pd.DataFrame, table: str, source: str) -> pd.DataFrame:
    df = df.rename(columns={c: ALIASES.get(str(c).strip(), str(c).strip()) for c in df.columns})
    for col in REQUIRED[table]:
        if col not in df.columns:
            raise RoundInputError(source, None, col, "missing column", "缺少列")
    df = df.reset_index(drop=True)
    df.attrs["source"] = source
    return df


def read_round_dir(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_round_excel(path)
    meta_path = path / "round.yaml"
    meta = read_yaml(meta_path, what=("round file", "集采批次文件"), empty={}) if meta_path.exists() else {}
    frames = {}
    for t in TABLES:
        f = path / f"{t}.csv"
        if not f.exists():
            raise RoundInputError(str(f), None, t, "file not found", "找不到文件")
        frames[t] = _frame(pd.read_csv(f, dtype=str, keep_default_na=False, comment="#"), t, f.name)
    return {"meta": meta or {}, **frames}


def read_round_excel(path: Path) -> dict[str, Any]:
    xl = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False)
    frames: dict[str, Any] = {"meta": {}}
    for name, df in xl.items():
        t = SHEET_ALIASES.get(name.strip(), name.strip())
        if t == "round":
            frames["meta"] = {str(k): v for k, v in zip(df.iloc[:, 0], df.iloc[:, 1], strict=True)}
        elif t in TABLES:
            frames[t] = _frame(df, t, f"{path.name}[{name}]")
    for t in TABLES:
        if t not in frames:
            raise RoundInputError(path.name, None, t, "missing sheet", "缺少工作表")
    return frames


# --- cell parsers --------------------------------------------------------------


class _Row:
    def __init__(self, rec: dict, source: str, row: int):
        self.rec, self.source, self.row = rec, source, row

    def err(self, field: str, en: str, zh: str) -> RoundInputError:
        return RoundInputError(self.source, self.row, field, en, zh)

    def s(self, f: str, required: bool = False) -> str:
        v = str(self.rec.get(f, "") or "").strip()
        if required and not v:
            raise self.err(f, "missing value", "缺少取值")
        return v

    def i(self, f: str, default: int | None = 0, min_value: int | None = 0) -> int:
        v = self.s(f)
        if not v:
            if default is None:
                raise self.err(f, "missing value", "缺少取值")
            return default
        try:
            x = int(Decimal(v))
            if Decimal(v) != x:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            raise self.err(f, f"not a whole number: {v!r}", f"不是整数: {v!r}") from None
        if min_value is not None and x < min_value:
            raise self.err(f, f"must be >= {min_value}, got {x}", f"不得小于 {min_value}, 实为 {x}")
        return x

    def dec(self, f: str, required: bool = False, positive: bool = False) -> Decimal | None:
        v = self.s(f, required)
        if not v:
            return None
        try:
            d = Decimal(v)
        except InvalidOperation:
            raise self.err(f, f"not a number: {v!r}", f"不是数字: {v!r}") from None
        if positive and d <= 0:
            raise self.err(f, f"must be > 0, got {v}", f"必须大于 0, 实为 {v}")
        return d

    def money(self, f: str, required: bool = False) -> int:
        v = self.s(f, required)
        if not v:
            return 0
        try:
            fen = yuan_to_fen(v)
        except MoneyError as exc:
            raise self.err(f, str(exc), f"金额无效: {v!r}") from None
        if fen < 0 or (required and fen == 0):
            raise self.err(f, f"must be a positive amount, got {v}", f"必须为正金额, 实为 {v}")
        return fen

    def b(self, f: str) -> bool:
        v = self.s(f).lower()
        if v in ("", "0", "false", "no", "n", "否"):
            return False
        if v in ("1", "true", "yes", "y", "是"):
            return True
        raise self.err(f, f"not a yes/no value: {v!r}", f"不是是/否取值: {v!r}")

    def d(self, f: str) -> dt.date | None:
        v = self.s(f)
        if not v:
            return None
        try:
            return dt.date.fromisoformat(v[:10])
        except ValueError:
            raise self.err(f, f"not a date YYYY-MM-DD: {v!r}", f"日期格式应为 YYYY-MM-DD: {v!r}") from None

    def lst(self, f: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.s(f).split(";") if x.strip())


def _rows(df: pd.DataFrame):
    src = df.attrs.get("source", "?")
    for i, rec in enumerate(df.to_dict("records")):
        yield _Row(rec, src, i + 2)


def _med_list():
    """The shared medical list (yibao.codes): catalog entries link to it by ``med_list_codg``."""
    global _ML
    if _ML is None:
        from yibao.codes.medlist import MedList

        _ML = MedList.load()
    return _ML


_ML = None


def _parse_specs(frames: dict[str, Any], drug_ids: set[str]) -> dict[str, list[Spec]]:
    """The specifications (规格) by drug, each of a known drug and listed once."""
    specs_by_drug: dict[str, list[Spec]] = {}
    spec_ids: set[str] = set()
    for r in _rows(frames["specs"]):
        sid, did = r.s("spec_id", True), r.s("drug_id", True)
        if sid in spec_ids:
            raise r.err("spec_id", f"duplicate specification {sid!r}", f"规格编码重复 {sid!r}")
        if did not in drug_ids:
            raise r.err("drug_id", f"unknown drug {did!r}", f"未知品种 {did!r}")
        spec_ids.add(sid)
        specs_by_drug.setdefault(did, []).append(
            Spec(
                sid,
                did,
                r.dec("content_mg", True, positive=True),
                r.i("units_per_pack", None, 1),
                r.money("max_price"),
                r.dec("fill_ml"),
                r.b("pediatric"),
                r.b("representative"),
            )
        )
    return specs_by_drug


def _parse_catalog(catalog_rows: list, specs_by_drug: dict[str, list[Spec]]) -> dict[str, CatalogEntry]:
    """The drugs (品种) of the round, each with a known dosage form and at least one specification."""
    catalog: dict[str, CatalogEntry] = {}
    for r in catalog_rows:
        did = r.s("drug_id", True)
        if did in catalog:
            raise r.err("drug_id", f"duplicate drug {did!r}", f"品种编码重复 {did!r}")
        form = r.s("dosage_form", True)
        if form not in DOSAGE_FORMS:
            raise r.err("dosage_form", f"unknown dosage form {form!r}; one of {DOSAGE_FORMS}", f"未知剂型 {form!r}")
        if did not in specs_by_drug:
            raise r.err("drug_id", f"drug {did!r} has no specification in specs", f"品种 {did!r} 无规格")
        code = r.s("med_list_codg")
        if code:
            ml = _med_list()
            if code not in ml:
                raise r.err("med_list_codg", f"unknown medical-list code {code!r}", f"医保目录中无此编码 {code!r}")
        attrs = tuple(tuple(kv.split("=", 1)) for kv in r.lst("attributes") if "=" in kv)
        catalog[did] = CatalogEntry(
            did,
            r.s("generic_name", True),
            form,
            tuple(specs_by_drug[did]),
            r.i("passed_consistency"),
            r.i("competitors"),
            r.b("antibiotic"),
            r.b("sole_product"),
            r.s("med_list_codg"),
            r.money("reference_price"),
            r.money("listed_avg_price"),
            r.money("provincial_highest_win"),
            attrs,
        )
    return catalog


def _parse_firms(frames: dict[str, Any]) -> dict[str, Firm]:
    """The firms (企业), each listed once."""
    firms: dict[str, Firm] = {}
    for r in _rows(frames["firms"]):
        fid = r.s("firm_id", True)
        if fid in firms:
            raise r.err("firm_id", f"duplicate firm {fid!r}", f"企业编码重复 {fid!r}")
        fails = tuple(dt.date.fromisoformat(x) for x in r.lst("quality_failures")) if r.s("quality_failures") else ()
        firms[fid] = Firm(
            fid,
            r.s("name", True),
            r.s("credit_grade") or "good",
            fails,
            r.b("b_cert"),
            r.i("supply_regions"),
            r.d("founded"),
            r.i("staff_sales_finance"),
            r.i("staff_rd_qc"),
            r.b("former_distributor"),
        )
    return firms


def _parse_bids(frames: dict[str, Any], catalog: dict[str, CatalogEntry], firms: dict[str, Firm]) -> list[Bid]:
    """The bids (申报), each of a known drug, specification and firm, one per firm and specification."""
    bids: list[Bid] = []
    seen_bid: set[str] = set()
    seen_pair: dict[tuple[str, str], int] = {}
    for r in _rows(frames["bids"]):
        bid_id, did, sid, fid = r.s("bid_id", True), r.s("drug_id", True), r.s("spec_id", True), r.s("firm_id", True)
        if bid_id in seen_bid:
            raise r.err("bid_id", f"duplicate bid {bid_id!r}", f"申报编码重复 {bid_id!r}")
        if did not in catalog:
            raise r.err("drug_id", f"unknown drug {did!r}", f"未知品种 {did!r}")
        if catalog[did].spec(sid) is None:
            raise r.err("spec_id", f"unknown specification {sid!r} of drug {did!r}", f"品种 {did!r} 无此规格 {sid!r}")
        if fid not in firms:
            raise r.err("firm_id", f"unknown firm {fid!r}", f"未知企业 {fid!r}")
        if (fid, sid) in seen_pair:
            raise r.err(
                "firm_id",
                f"duplicate bidder: firm {fid!r} already bid for {sid!r} in row {seen_pair[(fid, sid)]}",
                f"重复申报: 企业 {fid!r} 已在第 {seen_pair[(fid, sid)]} 行申报规格 {sid!r}",
            )
        seen_bid.add(bid_id)
        seen_pair[(fid, sid)] = r.row
        bids.append(
            Bid(
                bid_id,
                did,
                sid,
                fid,
                r.money("price", True),
                r.i("capacity_units"),
                r.i("sales_volume"),
                r.d("consistency_date"),
                r.d("first_registration_date"),
                r.money("national_highest_price"),
                r.dec("tech_score"),
                r.b("accept_revival"),
                r.lst("region_preferences"),
                r.s("contract_manufacturer"),
                r.row,
            )
        )
    return bids


def parse_round(frames: dict[str, Any], name: str | None = None, default_name: str = "round") -> RoundInput:
    """Validate raw tables into a :class:`RoundInput`."""
    meta = frames.get("meta", {}) or {}
    catalog_rows = list(_rows(frames["catalog"]))
    drug_ids = {r.s("drug_id") for r in catalog_rows}
    specs_by_drug = _parse_specs(frames, drug_ids)
    catalog = _parse_catalog(catalog_rows, specs_by_drug)
    firms = _parse_firms(frames)
    bids = _parse_bids(frames, catalog, firms)
    demand = parse_demand(frames["demand"], catalog, firms)
    rd = meta.get("round_date") or dt.date.today()
    if isinstance(rd, str):
        rd = dt.date.fromisoformat(rd)
    return RoundInput(
        name or str(meta.get("name") or default_name),
        rd,
        catalog,
        firms,
        bids,
        demand,
        frozenset(meta.get("banned_firms") or ()),
        bool(meta.get("synthetic", False)),
    )


def parse_demand(df: pd.DataFrame, catalog: dict[str, CatalogEntry], firms: dict[str, Firm]) -> pd.DataFrame:
    """Vectorised demand validation (tens of thousands of institutions)."""
    src = df.attrs.get("source", "demand")
    out = pd.DataFrame(
        {
            "institution_id": df["institution_id"].astype(str).str.strip(),
            "region": df["region"].astype(str).str.strip(),
            "drug_id": df["drug_id"].astype(str).str.strip(),
            "spec_id": df["spec_id"].astype(str).str.strip(),
        }
    )
    for col in ("institution_id", "region", "drug_id", "spec_id"):
        bad = out.index[out[col] == ""]
        if len(bad):
            raise RoundInputError(src, int(bad[0]) + 2, col, "missing value", "缺少取值")
    raw = df["units"].astype(str).str.strip()
    miss = raw.index[raw == ""]
    if len(miss):
        raise RoundInputError(src, int(miss[0]) + 2, "units", "missing demand", "缺少报量")
    units = pd.to_numeric(raw, errors="coerce")
    bad = units.index[units.isna() | (units != units.round())]
    if len(bad):
        raise RoundInputError(
            src, int(bad[0]) + 2, "units", f"not a whole number: {raw[bad[0]]!r}", f"报量不是整数: {raw[bad[0]]!r}"
        )
    neg = units.index[units < 0]
    if len(neg):
        raise RoundInputError(
            src, int(neg[0]) + 2, "units", f"negative demand {int(units[neg[0]])}", f"报量为负数 {int(units[neg[0]])}"
        )
    out["units"] = units.astype("int64")
    known = {(d, s.spec_id) for d, e in catalog.items() for s in e.specs}
    pairs = pd.MultiIndex.from_arrays([out["drug_id"], out["spec_id"]])
    okm = pairs.isin(list(known))
    if not okm.all():
        i = int(okm.argmin())
        raise RoundInputError(
            src,
            i + 2,
            "spec_id",
            f"unknown specification {out['spec_id'][i]!r} of drug {out['drug_id'][i]!r}",
            f"品种 {out['drug_id'][i]!r} 无此规格 {out['spec_id'][i]!r}",
        )
    brand = df["brand_firm_id"].astype(str).str.strip() if "brand_firm_id" in df else pd.Series([""] * len(df))
    bb = brand[(brand != "") & ~brand.isin(list(firms))]
    if len(bb):
        raise RoundInputError(
            src,
            int(bb.index[0]) + 2,
            "brand_firm_id",
            f"unknown brand firm {bb.iloc[0]!r}",
            f"未知品牌企业 {bb.iloc[0]!r}",
        )
    out["brand_firm_id"] = brand.to_numpy()
    hist = (
        pd.to_numeric(df["historical_units"], errors="coerce").fillna(0).astype("int64")
        if "historical_units" in df
        else 0
    )
    out["historical_units"] = hist
    return out


def validate_against_rules(inp: RoundInput, rules: RuleSet) -> None:
    """Checks that need the rule set: no bid above the maximum valid bid price (最高有效申报价)."""
    from yibao.procurement.engine import max_valid_price_fen

    for b in inp.bids:
        entry = inp.catalog[b.drug_id]
        spec = entry.spec(b.spec_id)
        cap = max_valid_price_fen(entry, spec, rules)  # type: ignore[arg-type]
        if cap and b.price_fen > cap:
            raise RoundInputError(
                "bids",
                b.row or None,
                "price",
                f"bid {b.bid_id} price {b.price_fen / 100:.2f} above the maximum valid bid price "
                f"{cap / 100:.2f} of {b.spec_id}",
                f"申报 {b.bid_id} 价格 {b.price_fen / 100:.2f} 高于 {b.spec_id} 最高有效申报价 {cap / 100:.2f}",
            )


def load_round(path: str | Path, name: str | None = None) -> RoundInput:
    """Read and validate a round directory (or workbook); ``relations.csv`` is optional."""
    from yibao.procurement.integrity import read_relations

    path = Path(path)
    inp = parse_round(read_round_dir(path), name, path.stem)
    rel = path / "relations.csv"
    if path.is_dir() and rel.exists():
        inp.relations = read_relations(rel, inp.firms)
    return inp


def write_round_dir(inp: RoundInput, path: Path) -> Path:
    """Write a :class:`RoundInput` as a round directory (inverse of :func:`load_round`)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    y = lambda fen: f"{fen / 100:.2f}" if fen else ""  # noqa: E731
    meta = {
        "name": inp.name,
        "round_date": inp.round_date.isoformat(),
        "synthetic": inp.synthetic,
        "banned_firms": sorted(inp.banned_firms),
    }
    (path / "round.yaml").write_text(
        ("# SYNTHETIC round (合成数据), not real bids\n" if inp.synthetic else "")
        + yaml.safe_dump(meta, allow_unicode=True),
        encoding="utf-8",
    )
    cat, specs = [], []
    for e in inp.catalog.values():
        cat.append(
            {
                "drug_id": e.drug_id,
                "generic_name": e.generic_name,
                "dosage_form": e.dosage_form,
                "passed_consistency": e.passed_consistency,
                "competitors": e.competitors,
                "antibiotic": e.antibiotic,
                "sole_product": e.sole_product,
                "med_list_codg": e.med_list_codg,
                "reference_price": y(e.reference_price_fen),
                "listed_avg_price": y(e.listed_avg_price_fen),
                "provincial_highest_win": y(e.provincial_highest_win_fen),
                "attributes": ";".join(f"{k}={v}" for k, v in e.attributes),
            }
        )
        for s in e.specs:
            specs.append(
                {
                    "spec_id": s.spec_id,
                    "drug_id": s.drug_id,
                    "content_mg": str(s.content_mg),
                    "units_per_pack": s.units_per_pack,
                    "max_price": y(s.max_price_fen),
                    "fill_ml": "" if s.fill_ml is None else str(s.fill_ml),
                    "pediatric": s.pediatric,
                    "representative": s.representative,
                }
            )
    firms = [
        {
            "firm_id": f.firm_id,
            "name": f.name,
            "credit_grade": f.credit_grade,
            "quality_failures": ";".join(map(str, f.quality_failures)),
            "b_cert": f.b_cert,
            "supply_regions": f.supply_regions,
            "founded": f.founded or "",
            "staff_sales_finance": f.staff_sales_finance,
            "staff_rd_qc": f.staff_rd_qc,
            "former_distributor": f.former_distributor,
        }
        for f in inp.firms.values()
    ]
    bids = [
        {
            "bid_id": b.bid_id,
            "drug_id": b.drug_id,
            "spec_id": b.spec_id,
            "firm_id": b.firm_id,
            "price": y(b.price_fen),
            "capacity_units": b.capacity_units,
            "sales_volume": b.sales_volume,
            "consistency_date": b.consistency_date or "",
            "first_registration_date": b.first_registration_date or "",
            "national_highest_price": y(b.national_highest_price_fen),
            "tech_score": "" if b.tech_score is None else str(b.tech_score),
            "accept_revival": b.accept_revival,
            "region_preferences": ";".join(b.region_preferences),
            "contract_manufacturer": b.contract_manufacturer,
        }
        for b in inp.bids
    ]
    for t, rows in (("catalog", cat), ("specs", specs), ("firms", firms), ("bids", bids)):
        pd.DataFrame(rows).to_csv(path / f"{t}.csv", index=False)
    inp.demand.to_csv(path / "demand.csv", index=False)
    if inp.relations:
        pd.DataFrame(
            [
                {"src": r.src, "dst": r.dst, "kind": r.kind, "drug_id": r.drug_id, "date": r.date or ""}
                for r in inp.relations
            ]
        ).to_csv(path / "relations.csv", index=False)
    return path
