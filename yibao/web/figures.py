"""Figures behind the console pages, read from the database (services layer; no HTML here).

Money stays integer fen; the templates format it.  Fund income and spending
come from one grouped scan of ``settlement`` (by month, scheme and
institution level, every fund share summed), cached per table fingerprint so
a repeat view costs one cheap query.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, case, cast, func, select
from sqlalchemy.engine import Engine

from yibao.codes import registry
from yibao.core import db
from yibao.core.contract import SCHEME_NAMES  # noqa: F401 - the one table of scheme names; console.py reads it from here
from yibao.core.money import fmt_yuan
from yibao.settlement import records
from yibao.settlement.fundyear import FUND_FIELDS, default_year

S = records.Settlement
Inst = registry.Institution

SHARE_FIELDS = tuple(FUND_FIELDS)  # hifp_pay … psn_cash_pay
SUM_FIELDS = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    *SHARE_FIELDS,
    "fund_pay_sumamt",
)
LEVEL_NAMES = {0: ("药店", "pharmacy"), 1: ("一级", "level 1"), 2: ("二级", "level 2"), 3: ("三级", "level 3")}


def month_expr(engine: Engine):
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", S.setl_time), "YYYY-MM")
    return func.substr(cast(S.setl_time, String), 1, 7)  # SQLite stores Shanghai wall-clock text


@dataclass
class FundFigures:
    year: int | None
    years: list[int]
    scope: str | None  # None: all institutions
    rows: list[dict[str, Any]]  # one per (month, insutype, hosp_lv): claims + every SUM_FIELD
    synthetic: bool
    totals: dict[str, int] = field(default_factory=dict)

    def group(self, key: str) -> list[tuple[Any, dict[str, int]]]:
        out: dict[Any, dict[str, int]] = {}
        for r in self.rows:
            acc = out.setdefault(r[key], {k: 0 for k in ("claims", *SUM_FIELDS)})
            for k in acc:
                acc[k] += int(r[k] or 0)
        return sorted(out.items(), key=lambda kv: (kv[0] is None, kv[0]))


_cache: dict[tuple, FundFigures] = {}
_cache_lock = threading.Lock()


def _fingerprint(engine: Engine, scope: str | None) -> tuple:
    with engine.connect() as c:
        q = select(func.count(), func.max(S.setl_time), func.sum(case((S.refd_setl_flag.is_(True), 1), else_=0)))
        if scope is not None:
            q = q.where(S.fixmedins_code == scope)
        return tuple(c.execute(q).one())


def fund_figures(engine: Engine, *, year: int | None = None, scope: str | None = None) -> FundFigures:
    """Income and spending by month, scheme, level and layer (fund share), for one policy year."""
    fp = _fingerprint(engine, scope)
    key = (str(engine.url), scope, year, fp)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    with engine.connect() as c:
        yq = select(S.policy_year, func.count()).group_by(S.policy_year)
        if scope is not None:
            yq = yq.where(S.fixmedins_code == scope)
        counts = {int(y): int(n) for y, n in c.execute(yq) if y is not None}
        years = sorted(counts)
        if year is None and years:
            year = default_year(counts)
        m = month_expr(engine).label("month")
        q = (
            select(
                m,
                S.insutype,
                Inst.hosp_lv,
                func.count().label("claims"),
                *[func.coalesce(func.sum(getattr(S, f)), 0).label(f) for f in SUM_FIELDS],
            )
            .select_from(S)
            .outerjoin(Inst, Inst.fixmedins_code == S.fixmedins_code)
            .where(S.policy_year == year, S.refd_setl_flag.is_(False))
        )
        if scope is not None:
            q = q.where(S.fixmedins_code == scope)
        q = q.group_by(m, S.insutype, Inst.hosp_lv)
        rows = [dict(r._mapping) for r in c.execute(q)]
        for r in rows:  # PostgreSQL's sum(bigint) is numeric (Decimal): back to integer fen
            for k in ("claims", *SUM_FIELDS):
                r[k] = int(r[k] or 0)
            r["hosp_lv"] = None if r["hosp_lv"] is None else int(r["hosp_lv"])
        syn = c.execute(
            select(func.count()).select_from(S).where(S.synthetic.is_(True), S.policy_year == year)
        ).scalar()
    totals = {k: 0 for k in ("claims", *SUM_FIELDS)}
    for r in rows:
        for k in totals:
            totals[k] += int(r[k] or 0)
    figs = FundFigures(year, years, scope, rows, bool(syn), totals)
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = figs
    return figs


# --- settlements ---------------------------------------------------------------------------


def find_settlements(
    engine: Engine,
    *,
    scope: str | None,
    psn_no: str | None,
    setl_id: str = "",
    psn_query: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[records.Settlement], int]:
    """Settlements visible to the caller (``scope``: one institution; ``psn_no``: one person), newest first."""
    conds = []
    if scope is not None:
        conds.append(S.fixmedins_code == scope)
    if psn_no is not None:
        conds.append(S.psn_no == psn_no)
    if setl_id:
        conds.append(S.setl_id == setl_id)
    if psn_query:
        conds.append(S.psn_no == psn_query)
    where = and_(*conds) if conds else None
    with db.session_scope(engine) as s:
        q = select(S.setl_id)
        cq = select(func.count()).select_from(S)
        if where is not None:
            q, cq = q.where(where), cq.where(where)
        total = int(s.scalar(cq) or 0)
        # sort the keys only, then load those rows (sorting whole rows costs several times more)
        ids = list(s.scalars(q.order_by(S.setl_time.desc(), S.setl_id).limit(limit).offset(offset)))
        by_id = {r.setl_id: r for r in s.scalars(select(S).where(S.setl_id.in_(ids)))} if ids else {}
        rows = [by_id[i] for i in ids]
        s.expunge_all()
    return rows, total


@dataclass
class ShareLine:
    field: str
    zh: str
    en: str
    fen: int
    rule_zh: str
    rule_en: str


def _yuan(fen: int) -> str:
    return fmt_yuan(int(fen), symbol=True)  # exact from fen (core.money), never through a float


def _pct(bp: int) -> str:
    return f"{bp / 100:g}%"


def settlement_detail(engine: Engine, setl_id: str) -> dict[str, Any] | None:
    """One settlement: its person, institution, every fund's share and the policy rule behind each."""
    from yibao.benefits.policy import PolicyBook

    with db.session_scope(engine) as s:
        row = s.get(S, setl_id)
        if row is None:
            return None
        p = s.get(registry.Person, row.psn_no)
        inst = s.get(Inst, row.fixmedins_code) if row.fixmedins_code else None
        enc = s.get(records.Encounter, row.mdtrt_id)
        s.expunge_all()
    region = p.insuplc_admdvs if p is not None and p.insuplc_admdvs else "990100"
    on = row.setl_time.astimezone(db.SHANGHAI).date()
    try:
        snap = PolicyBook.default().snapshot(region, on)
    except Exception:  # noqa: BLE001 - an unknown region still shows the shares, without rules
        snap = None
    level = inst.hosp_lv if inst is not None and inst.hosp_lv is not None else 0
    cat_name = row.benefit_category or ""
    rules: dict[str, tuple[str, str]] = {}
    if snap is not None:
        sch = snap.scheme_for(row.insutype or "")
        cat = sch.categories.get(cat_name)
        if cat is not None:
            src = sch.categories.get(cat.ratio_from, cat) if cat.ratio_from else cat
            try:
                ded = cat.deductible.get(level)
            except KeyError:
                ded = 0
            try:
                ratio = src.ratio.get(level)
            except KeyError:
                ratio = 0
            cap = sch.caps.get(cat.cap_pool) if cat.cap_pool else None
            bonus = f"; retirees +{_pct(src.retiree_ratio_bonus)}" if src.retiree_ratio_bonus else ""
            bonus_zh = f"; 退休人员加 {_pct(src.retiree_ratio_bonus)}" if src.retiree_ratio_bonus else ""
            rules["hifp_pay"] = (
                f"{cat_name} 起付线 {_yuan(ded)} ({cat.deductible_mode}), "
                f"{LEVEL_NAMES.get(level, ('', ''))[0]}机构统筹支付比例 {_pct(ratio)}{bonus_zh}"
                + (f", 年度最高支付限额 {_yuan(int(cap))}" if cap else ""),
                f"{cat_name}: deductible {_yuan(ded)} ({cat.deductible_mode}), pooled-fund ratio {_pct(ratio)} at "
                f"{LEVEL_NAMES.get(level, ('', 'level ?'))[1]}{bonus}"
                + (f", annual cap {_yuan(int(cap))}" if cap else ""),
            )
        for layer in sch.layers:
            br = ", ".join(f"≥{_yuan(b.threshold)} {_pct(b.rate)}" for b in layer.brackets)
            cap_text = "" if not layer.cap or layer.cap >= 10**15 else f", cap {_yuan(int(layer.cap))}"
            base_zh = "政策范围内个人负担" if layer.base == "selfpay" else "超过统筹基金最高支付限额部分"
            rules[layer.field] = (
                f"{layer.name}: 起付线 {_yuan(layer.deductible)}, 基数 {base_zh}, 分段比例 {br}{cap_text}",
                f"{layer.name}: deductible {_yuan(layer.deductible)}, base {layer.base}, brackets {br}{cap_text}",
            )
        st = snap.assistance.statuses.get(p.assistance or "") if p is not None else None
        if st is not None and p is not None:
            rules["maf_pay"] = (
                f"医疗救助 ({p.assistance}): 起付线 {_yuan(st.deductible)}, 比例 {_pct(st.ratio)}",
                f"medical assistance ({p.assistance}): deductible {_yuan(st.deductible)}, ratio {_pct(st.ratio)}",
            )
        else:
            rules["maf_pay"] = ("无医疗救助身份", "no medical-assistance status")
        acct = sch.account
        if acct is not None:
            rules["acct_pay"] = (
                "个人账户支付: " + ", ".join(acct.payable),
                "personal account pays: " + ", ".join(acct.payable),
            )
            rules["acct_mulaid_pay"] = (
                "家庭共济: "
                + ", ".join(acct.mutual_aid_relations)
                + (f" (付款人 {row.acct_payer_psn_no})" if row.acct_payer_psn_no else ""),
                "family mutual aid: "
                + ", ".join(acct.mutual_aid_relations)
                + (f" (payer {row.acct_payer_psn_no})" if row.acct_payer_psn_no else ""),
            )
    rules.setdefault("psn_cash_pay", ("个人现金支付 = 个人负担 − 账户支付", "cash = personal part − account payments"))
    lines = [
        ShareLine(f, FUND_FIELDS[f][1], FUND_FIELDS[f][0], int(getattr(row, f) or 0), *rules.get(f, ("", "")))
        for f in SHARE_FIELDS
    ]
    trace = row.rule_trace.get("steps", []) if isinstance(row.rule_trace, dict) else []
    return {
        "row": row,
        "person": p,
        "institution": inst,
        "encounter": enc,
        "lines": lines,
        "trace": trace,
        "policy_label": snap.label if snap else "",
        "policy_status": snap.status if snap else "",
        "on": on,
    }


def institutions(engine: Engine) -> dict[str, tuple[str, int | None]]:
    with engine.connect() as c:
        return {
            code: (name or code, lv)
            for code, name, lv in c.execute(select(Inst.fixmedins_code, Inst.fixmedins_name, Inst.hosp_lv))
        }
