"""The further national-interface transactions real HIS clients call (issue 16).

Handlers are functions ``(iface, ctx, data) -> Outcome`` on the
:class:`yibao.api.interface.Interface` and its message context; :func:`register`
adds them to ``TRANSACTIONS``.  They follow the Interface's rules: input
validated by the models of :mod:`yibao.api.schemas_more` (a refusal names the
field), one database transaction per message with the stored reply and the
audit record (:meth:`Ctx.commit`), a repeated ``msgid`` answered from the
store by the dispatcher, and an institution sees only its own encounters,
settlements, files and findings.

=====  ======================================  ==============================================
infno  交易                                     what yibao does
=====  ======================================  ==============================================
9002   签退 sign-out                            the sign_no stops working (``api_sign_out``)
1201   医药机构信息获取                          institutions by code / name / type
1301   目录下载 (西药中成药目录 …)                the medical list as a file (9102 downloads it)
1312   医保目录信息查询                          the medical list, filtered and paged
1901   字典表查询                                the code dictionaries yibao knows
2001   人员待遇享受检查                          the person's benefits for a medical type
2403   入院信息变更                              change admission information before settlement
2405   出院撤销                                  cancel a discharge before the final settlement
2601   冲正交易                                  reverse a message by its ``omsgid`` (idempotent)
3101   明细审核事前事中分析服务                    the supervision subsystem's in-care check
3102   事前事中反馈                              the institution's answer to a 3101 finding
3202   医药机构费用结算对明细账                    per-settlement reconciliation against an uploaded file
4101   医疗保障基金结算清单信息上传 (and 4101A)     store the list, group the case (CHS-DRG)
5201   就诊信息查询                              the person's encounters at this institution
5202   诊断信息查询                              diagnoses of an encounter
5204   费用明细查询                              fee lines of an encounter or settlement
5205   人员慢特病用药记录查询                     chronic-disease drug lines at this institution
5206   人员累计信息查询                          the person-year accumulators
5301   人员慢特病备案查询                        chronic / special diseases (derived, see h_5301)
5303   在院信息查询                              encounters in hospital at this institution
9101   文件上传                                  store a file (size-limited) → file_qury_no
9102   文件下载                                  a stored file of this institution
=====  ======================================  ==============================================

:func:`in_care_check` is the in-care check wired into 2206/2207/2304 (run by
the settlement-visit service inside their transaction): refusing rules refuse the message, warning rules put
their reasons in the reply's ``warn_msg``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import secrets
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yibao.api import schemas_more as M
from yibao.api.envelope import fmt_time
from yibao.api.models import MessageLog, SignIn, StoredReply
from yibao.api.more_models import ApiFile, IncareResult, SetlList, SignOut
from yibao.codes import registry
from yibao.core import db
from yibao.core.contract import INSUTYPE_EMPLOYEE, MED_TYPE_INPATIENT, MED_TYPE_OUTPATIENT, MED_TYPE_PHARMACY
from yibao.core.errors import ClaimRejected, YibaoError
from yibao.core.money import BP_SCALE, MoneyError, fen_to_yuan, yuan_to_fen
from yibao.core.yamldata import data_error, load_model
from yibao.rxcirc.service import release_fill_of
from yibao.settlement import ledger, records
from yibao.settlement import visits as V
from yibao.settlement.rules import PersonFacts, age_on

__all__ = ["MoreConfig", "load_more_config", "in_care_check", "register"]

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "api" / "more_transactions.yaml"
DRG_SCHEME = "chs-drg-1.1"


# --- parameters ------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileParams(_Strict):
    max_file_bytes: int = Field(gt=0, le=64 * 1024 * 1024)
    keep_hours: int = Field(gt=0)


class CumType(_Strict):
    code: str
    name: str
    unit: str = Field(pattern="^(fen|count)$")


class MoreConfig(_Strict):
    files: FileParams
    max_page_size: int = Field(gt=0)
    max_rows: int = Field(gt=0)
    reversible: dict[str, str]
    trig_scen_stage: dict[str, str]
    default_stage: str = Field(pattern="^(pre|in)$")
    severity_codes: dict[str, str]
    cum_types: dict[str, CumType]
    fixmedins_types: dict[str, str]
    hosp_lv_codes: dict[str, str]
    dictionaries: dict[str, dict[str, str]]
    list_types: dict[str, str]


_REVERSALS = ("cancel_settlement", "undo_cancellation", "cancel_visit", "withdraw_fees", "undo_discharge")


def load_more_config(path: str | Path | None = None) -> MoreConfig:
    from yibao.api.params import ConfigError

    p = Path(path) if path else DATA_PATH
    cfg = load_model(p, MoreConfig, what=("transaction parameters", "交易参数"), error=ConfigError)
    bad = {k: v for k, v in cfg.reversible.items() if v not in _REVERSALS}
    if bad:
        raise data_error(p, "reversible", f"unknown reversal kinds {bad}", f"冲正方式无效 {bad}", error=ConfigError)
    return cfg


@lru_cache(maxsize=1)
def _cfg() -> MoreConfig:
    return load_more_config()


# --- small helpers -----------------------------------------------------------------------


def _rej(en: str, zh: str, fld: str) -> ClaimRejected:
    return ClaimRejected(en, zh, field=fld)


def _yuan(fen: int | None) -> Decimal:
    return fen_to_yuan(int(fen or 0))


def _fen(v: Decimal, fld: str) -> int:
    try:
        return yuan_to_fen(v)
    except MoneyError as exc:
        raise _rej(str(exc), f"金额无效: {v}", fld) from exc


def _day(t: dt.datetime | None) -> str:
    return t.astimezone(db.SHANGHAI).date().isoformat() if t else ""


def _t(t: dt.datetime | None) -> str:
    return fmt_time(t) if t else ""


def _own_visit(s: Session, ctx, mdtrt_id: str, psn_no: str) -> tuple[records.Encounter, V.VisitState | None]:
    """An encounter of this institution and person (interface-opened or loaded), else refused."""
    enc = s.get(records.Encounter, mdtrt_id)
    if enc is None or enc.fixmedins_code != ctx.env.fixmedins_code:
        raise _rej(
            f"unknown encounter mdtrt_id {mdtrt_id!r} at this institution", f"本机构无此就诊: {mdtrt_id}", "mdtrt_id"
        )
    if enc.psn_no != psn_no:
        raise _rej(f"encounter {mdtrt_id} is not {psn_no}'s", f"就诊 {mdtrt_id} 不属于参保人 {psn_no}", "psn_no")
    return enc, s.get(V.VisitState, mdtrt_id)


def _person(s: Session, psn_no: str) -> registry.Person:
    p = s.get(registry.Person, psn_no)
    if p is None:
        raise _rej(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", "psn_no")
    return p


def _in_care_here(s: Session, ctx, psn_no: str) -> registry.Person:
    """The person, if this institution has (had) an encounter of theirs: person-level queries need a care relation."""
    p = _person(s, psn_no)
    seen = s.scalar(
        select(records.Encounter.mdtrt_id)
        .where(records.Encounter.psn_no == psn_no, records.Encounter.fixmedins_code == ctx.env.fixmedins_code)
        .limit(1)
    )
    if seen is None:
        raise _rej(
            f"person {psn_no} has no encounter at this institution", f"参保人 {psn_no} 在本机构无就诊记录", "psn_no"
        )
    return p


def _live(s: Session, mdtrt_id: str) -> list[records.Settlement]:
    St = records.Settlement
    return list(
        s.scalars(select(St).where(St.mdtrt_id == mdtrt_id, St.refd_setl_flag.is_(False)).order_by(St.setl_time))
    )


def _person_fields(iface, p: registry.Person, on: dt.date) -> dict[str, Any]:
    return {
        "psn_no": p.psn_no,
        "psn_cert_type": "01",
        "certno": p.certno or "",
        "psn_name": p.psn_name or "",
        "gend": p.gend or "",
        "naty": "",
        "brdy": p.brdy.isoformat() if p.brdy else "",
        "age": Decimal(age_on(p.brdy, on)) if p.brdy else Decimal(0),
        "insutype": p.insutype or "",
        "psn_type": iface.cfg.psn_type_codes.get(p.psn_type or "", p.psn_type or ""),
        "cvlserv_flag": "1" if p.civil_servant else "0",
    }


def _dx_name(code: str) -> str:
    if not code:
        return ""
    try:
        from yibao.codes.national import dx_name

        n = dx_name(code)
        if n:
            return n
    except Exception:  # noqa: BLE001 - a name is a courtesy; the code is the fact
        pass
    try:
        from yibao.codes.icd10 import describe

        return describe(code)
    except Exception:  # noqa: BLE001
        return ""


def _window(begin: dt.datetime, end: dt.datetime | None, fld: str = "endtime") -> tuple[dt.datetime, dt.datetime]:
    hi = end or dt.datetime(2200, 1, 1, tzinfo=db.SHANGHAI)
    if hi < begin:
        raise _rej("endtime is before begntime", "结束时间早于开始时间", fld)
    return begin, hi


def _new_id(prefix: str, now: dt.datetime) -> str:
    return f"{prefix}{now.astimezone(db.SHANGHAI):%Y%m%d%H%M%S}{secrets.token_hex(6).upper()}"


def _zip_text(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


def _store_file(s: Session, ctx, filename: str, content: bytes, kind: str) -> ApiFile:
    cfg = _cfg().files
    f = ApiFile(
        file_qury_no=_new_id("F", ctx.now),
        fixmedins_code=ctx.env.fixmedins_code,
        filename=filename,
        kind=kind,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        created_at=ctx.now,
        dld_endtime=ctx.now + dt.timedelta(hours=cfg.keep_hours),
        msgid=ctx.env.msgid,
    )
    s.add(f)
    s.flush()
    return f


def _file_ref(f: ApiFile) -> dict[str, Any]:
    return {"file_qury_no": f.file_qury_no, "filename": f.filename, "dld_endtime": fmt_time(f.dld_endtime)}


# --- 9002 sign-out ------------------------------------------------------------------------


def h_9002(iface, ctx, d: M.In9002) -> Any:
    q, env, now = d.signOut, ctx.env, ctx.now
    with iface.tx() as s:
        row = s.get(SignIn, q.sign_no)
        if row is None or row.fixmedins_code != env.fixmedins_code:
            raise _rej("unknown sign_no at this institution", "本机构无此签到编号", "signOut.sign_no")
        done = s.get(SignOut, q.sign_no)
        if done is None:
            if row.expires_at <= now:
                raise _rej("this sign-in has already expired", "签到已过期, 无需签退", "signOut.sign_no")
            done = SignOut(
                sign_no=q.sign_no,
                fixmedins_code=env.fixmedins_code,
                opter_no=q.opter_no,
                signed_out_at=now,
                msgid=env.msgid,
            )
            s.add(done)
            row.expires_at = now  # the Interface refuses an expired sign_no: it stops working now
            s.flush()
        out = {"signoutoutb": {"sign_time": fmt_time(done.signed_out_at), "sign_no": q.sign_no}}
        return ctx.commit(s, out)  # Interface._check_sign reads the expiry from the database: every worker sees it


# --- 1201 institutions ---------------------------------------------------------------------


def h_1201(iface, ctx, d: M.In1201) -> Any:
    q, cfg = d.medinsinfo, _cfg()
    Inst = registry.Institution
    stmt = select(Inst).order_by(Inst.fixmedins_code).limit(cfg.max_rows)
    if q.fixmedins_code:
        stmt = stmt.where(Inst.fixmedins_code == q.fixmedins_code)
    if q.fixmedins_name:
        stmt = stmt.where(Inst.fixmedins_name.contains(q.fixmedins_name, autoescape=True))
    if q.fixmedins_type:
        kinds = [k for k, c in cfg.fixmedins_types.items() if c == q.fixmedins_type]
        if not kinds:
            raise _rej(
                f"unknown fixmedins_type {q.fixmedins_type!r}; known {sorted(set(cfg.fixmedins_types.values()))}",
                f"定点医疗服务机构类型 {q.fixmedins_type} 无效",
                "medinsinfo.fixmedins_type",
            )
        stmt = stmt.where(Inst.fixmedins_type.in_(kinds))
    with iface.read() as s:
        rows = [
            {
                "fixmedins_code": i.fixmedins_code,
                "fixmedins_name": i.fixmedins_name or "",
                "uscc": "",
                "fixmedins_type": cfg.fixmedins_types.get(i.fixmedins_type or "", ""),
                "hosp_lv": cfg.hosp_lv_codes.get(str(int(i.hosp_lv or 0)), ""),
                "admdvs": i.admdvs or "",
            }
            for i in s.scalars(stmt)
        ]
    with iface.tx() as s:
        return ctx.commit(s, {"medinsinfo": rows})


# --- 1301 / 1312 the medical list --------------------------------------------------------------


def _catalog_for(iface, admdvs: str, on: dt.date):
    """The settlement list as published for a region (就医地目录 overrides applied)."""
    if not admdvs:
        return iface.catalog
    try:
        snap = iface.book.policy(admdvs).snapshot(on)
    except YibaoError as exc:
        raise _rej(f"unknown region {admdvs!r}: {exc.message_en}", f"医保区划 {admdvs} 无效", "insu_admdvs") from None
    return iface.catalog.with_overrides(snap.list_overrides)


def _list_row(item, admdvs: str, cfg: MoreConfig) -> dict[str, Any]:
    scope = []
    if item.lmt_gend:
        scope.append(f"限性别{item.lmt_gend}")
    if item.lmt_age_min >= 0 or item.lmt_age_max >= 0:
        scope.append(f"限年龄{max(item.lmt_age_min, 0)}-{item.lmt_age_max if item.lmt_age_max >= 0 else ''}")
    if item.lmt_hosp_lv_min > 0:
        scope.append(f"限{item.lmt_hosp_lv_min}级及以上医疗机构")
    if item.lmt_indication:
        scope.append("限适应症" + ";".join(item.lmt_indication))
    if item.lmt_med_types:
        scope.append("限医疗类别" + ";".join(item.lmt_med_types))
    return {
        "hilist_code": item.med_list_codg,
        "hilist_name": item.name,
        "insu_admdvs": admdvs,
        "med_chrgitm_type": item.list_kind,
        "chrgitm_lv": item.chrgitm_lv,
        "lmt_used_flag": "1" if item.restricted else "0",
        "list_type": cfg.list_types.get(item.list_kind, ""),
        "selfpay_prop": (Decimal(item.selfpay_prop_bp) / BP_SCALE).quantize(Decimal("0.0001")),
        "pric_uplmt_amt": _yuan(item.effective_cap),
        "vbp_flag": "1" if item.vbp_flag else "0",
        "lmt_scp": "; ".join(scope),
        "vali_flag": "1",
    }


def _catalog_version(cat) -> str:
    h = hashlib.sha256()
    for code in sorted(cat.items):
        h.update(repr(cat.items[code]).encode("utf-8"))
    return "YB" + h.hexdigest()[:16].upper()


_LIST_COLUMNS = (
    "hilist_code",
    "hilist_name",
    "insu_admdvs",
    "med_chrgitm_type",
    "chrgitm_lv",
    "lmt_used_flag",
    "list_type",
    "selfpay_prop",
    "pric_uplmt_amt",
    "vbp_flag",
    "lmt_scp",
    "vali_flag",
)


def h_1301(iface, ctx, d: M.In1301) -> Any:
    """The whole list as a zipped tab-separated text (header line first); ``ver`` = the version the HIS has.

    The reply's ``ver`` (yibao extension) names the list's version: sending it
    back yields an empty file (nothing changed) until the list changes.
    """
    cfg = _cfg()
    cat = iface.catalog
    ver = _catalog_version(cat)
    rows = [] if d.data.ver == ver else [_list_row(cat.items[c], "", cfg) for c in sorted(cat.items)]
    text = "\t".join(_LIST_COLUMNS) + "\n" + "".join("\t".join(str(r[k]) for k in _LIST_COLUMNS) + "\n" for r in rows)
    with iface.tx() as s:
        f = _store_file(s, ctx, f"{ctx.env.infno}_{ver}.zip", _zip_text(f"{ctx.env.infno}_{ver}.txt", text), "catalog")
        return ctx.commit(s, {**_file_ref(f), "data_cnt": len(rows), "ver": ver})


def h_1312(iface, ctx, d: M.In1312) -> Any:
    q, cfg = d.data, _cfg()
    if q.page_size > cfg.max_page_size:
        raise _rej(
            f"page_size {q.page_size} exceeds {cfg.max_page_size}",
            f"每页条数 {q.page_size} 超过上限 {cfg.max_page_size}",
            "data.page_size",
        )
    on = q.query_date or ctx.now.astimezone(db.SHANGHAI).date()
    cat = _catalog_for(iface, q.insu_admdvs, on)
    items = [cat.items[c] for c in sorted(cat.items)]
    if q.hilist_code:
        items = [i for i in items if i.med_list_codg == q.hilist_code]
    if q.hilist_name:
        items = [i for i in items if q.hilist_name in i.name]
    if q.med_chrgitm_type:
        items = [i for i in items if i.list_kind == q.med_chrgitm_type]
    if q.chrgitm_lv:
        items = [i for i in items if i.chrgitm_lv == q.chrgitm_lv]
    if q.lmt_used_flag:
        items = [i for i in items if ("1" if i.restricted else "0") == q.lmt_used_flag]
    if q.list_type:
        items = [i for i in items if cfg.list_types.get(i.list_kind, "") == q.list_type]
    if q.vali_flag and q.vali_flag != "1":
        items = []  # yibao holds only the list in force
    total = len(items)
    pages = (total + q.page_size - 1) // q.page_size
    page = items[(q.page_num - 1) * q.page_size : q.page_num * q.page_size]
    out = {
        "data": [_list_row(i, q.insu_admdvs, cfg) for i in page],
        "recordCounts": total,
        "pageNum": q.page_num,
        "pageSize": q.page_size,
        "pages": pages,
        "size": len(page),
        "firstPage": q.page_num == 1,
        "lastPage": q.page_num >= pages,
    }
    with iface.tx() as s:
        return ctx.commit(s, out)


# --- 1901 dictionaries ----------------------------------------------------------------------------


def _dictionaries(iface) -> dict[str, dict[str, str]]:
    cfg, icfg = _cfg(), iface.cfg
    out = {k: dict(v) for k, v in cfg.dictionaries.items()}
    names = {"in_service": "在职", "retired": "退休", "resident": "城乡居民"}
    out["psn_type"] = {code: names.get(k, k) for k, code in icfg.psn_type_codes.items()}
    cert = {"ecode": "医保电子凭证", "certno": "居民身份证", "social_card": "社会保障卡"}
    out["mdtrt_cert_type"] = {code: cert.get(k, k) for code, k in icfg.mdtrt_cert_types.items()}
    out["clr_type"] = {
        c: {MED_TYPE_OUTPATIENT: "门诊", MED_TYPE_INPATIENT: "住院", MED_TYPE_PHARMACY: "药店购药"}.get(c, c)
        for c in sorted(set(icfg.clr_types.values()))
    }
    ft: dict[str, str] = {}
    for f in icfg.fund_pay_types.values():
        for code, name in (f.employee, f.resident):
            ft.setdefault(code, name)
    out["fund_pay_type"] = ft
    idet = {"dibao": "低保对象", "tekun": "特困供养人员", "fanpin": "返贫致贫人口"}
    out["psn_idet_type"] = {code: idet.get(k, k) for k, code in icfg.psn_idet_types.items()}
    return out


def h_1901(iface, ctx, d: M.In1901) -> Any:
    q = d.data
    dicts = _dictionaries(iface)
    if q.type not in dicts:
        raise _rej(
            f"unknown dictionary type {q.type!r}; known: {sorted(dicts)}",
            f"字典类型 {q.type} 不存在, 可用: {sorted(dicts)}",
            "data.type",
        )
    if q.vali_flag and q.vali_flag not in ("0", "1"):
        raise _rej("vali_flag must be 0 or 1", "有效标志须为0或1", "data.vali_flag")
    entries = dicts[q.type]
    if q.type == "med_type" and q.admdvs:  # the region's policy decides which medical types exist
        try:
            known = iface.book.policy(q.admdvs).snapshot(q.date or ctx.now.astimezone(db.SHANGHAI).date()).med_types
        except YibaoError:
            raise _rej(f"unknown region admdvs {q.admdvs!r}", f"行政区划 {q.admdvs} 无效", "data.admdvs") from None
        entries = {k: entries.get(k, k) for k in sorted(known)}
    rows = (
        []
        if q.vali_flag == "0"
        else [
            {
                "type": q.type,
                "label": label,
                "value": value,
                "parent_value": q.parentValue,
                "sort": i + 1,
                "vali_flag": "1",
            }
            for i, (value, label) in enumerate(sorted(entries.items()))
        ]
    )
    with iface.tx() as s:
        return ctx.commit(s, {"list": rows})


# --- 2001 benefit check --------------------------------------------------------------------


def h_2001(iface, ctx, d: M.In2001) -> Any:
    """Which funds pay this person for this medical type (and, for chronic types, this disease), and why not."""
    q = d.data
    if q.fixmedins_code and q.fixmedins_code != ctx.env.fixmedins_code:
        raise _rej("fixmedins_code differs from the envelope's", "定点医药机构编号与报文不符", "data.fixmedins_code")
    _window(q.begntime, q.endtime, "data.endtime")
    with iface.read() as s:
        p = _person(s, q.psn_no)
        day = q.begntime.astimezone(db.SHANGHAI).date()
        try:
            snap = iface.book.policy(p.insuplc_admdvs or "").snapshot(day)
        except YibaoError as exc:
            raise _rej(exc.message_en, exc.message_zh, "psn_no") from None
    problems: list[str] = []
    if (p.insutype or "") != q.insutype:
        problems.append(f"险种类型 {q.insutype} 与参保人险种 {p.insutype} 不符 (insutype differs from the person's)")
    setting = snap.med_types.get(q.med_type)
    if setting is None:
        problems.append(f"医疗类别 {q.med_type} 无效, 可用 {sorted(snap.med_types)} (unknown med_type)")
    elif setting == "chronic":
        prefixes = tuple(snap.chronic_diseases.get("chronic", ())) + tuple(snap.chronic_diseases.get("special", ()))
        if not q.dise_codg:
            problems.append("门诊慢特病须填写病种编码 dise_codg (a chronic-disease visit needs dise_codg)")
        elif not any(q.dise_codg.startswith(x) for x in prefixes):
            problems.append(f"病种 {q.dise_codg} 不在门诊慢特病病种范围内 (not a chronic or special disease here)")
    flag = "0" if problems else "1"
    result = "; ".join(problems) if problems else "享受待遇 (benefits apply)"
    year0, year1 = dt.date(day.year, 1, 1).isoformat(), dt.date(day.year, 12, 31).isoformat()
    funds = ["hifp_pay"]
    if (p.insutype or "") == INSUTYPE_EMPLOYEE:
        funds += ["hifob_pay", "acct_pay"]
        if p.civil_servant:
            funds.append("cvlserv_pay")
    else:
        funds.append("hifmi_pay")
    if p.assistance:
        funds.append("maf_pay")
    rows = []
    for f in funds:
        code, name = iface.cfg.fund_type(f, p.insutype or "")
        rows.append(
            {
                "fund_pay_type": code,
                "fund_pay_type_name": name,
                "trt_enjymnt_flag": flag,
                "begndate": year0,
                "enddate": year1,
                "trt_chk_rslt": result,
            }
        )
    with iface.tx() as s:
        return ctx.commit(s, {"trtinfo": rows})


# --- 2403 change admission, 2405 cancel discharge -----------------------------------------------------


def _check_dx(iface, codes, fld: str) -> None:
    for c in codes:
        if c and not iface.valid_diagnosis(c):
            raise _rej(f"unknown diagnosis code {c!r}", f"诊断代码 {c!r} 无效", fld)


def h_2403(iface, ctx, d: M.In2403) -> Any:
    """入院信息变更: admission data change while the stay has no live settlement after discharge."""
    from yibao.api.interface import _diagnoses

    m = d.adminfo
    main, other = _diagnoses(m.dscg_maindiag_code, d.diseinfo) if (m.dscg_maindiag_code or d.diseinfo) else ("", ())
    _check_dx(iface, (main, *other), "diseinfo.diag_code")
    with iface.tx() as s:
        v, enc = V.load_visit(s, m.mdtrt_id, psn_no=m.psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=V.INPATIENT)
        if v.status not in (V.ADMITTED, V.DISCHARGED):
            raise _rej(
                f"encounter {v.mdtrt_id} is {v.status}",
                f"就诊 {v.mdtrt_id} 当前状态为 {v.status}, 不能变更",
                "mdtrt_id",
            )
        live = _live(s, v.mdtrt_id)
        if live:
            raise _rej(
                f"encounter {v.mdtrt_id} has live settlement {live[0].setl_id}; cancel it first",
                f"就诊 {v.mdtrt_id} 存在未撤销的结算 {live[0].setl_id}, 请先撤销结算",
                "mdtrt_id",
            )
        p = s.get(registry.Person, v.psn_no)
        if m.begntime is not None:
            if m.begntime > ctx.now + dt.timedelta(minutes=10):
                raise _rej("begntime is in the future", "开始时间晚于当前时间", "adminfo.begntime")
            if enc.endtime is not None and m.begntime > enc.endtime:
                raise _rej("begntime is after the discharge", "开始时间晚于出院时间", "adminfo.begntime")
            first_fee = s.scalar(
                select(func.min(records.FeeDetail.fee_ocur_time)).where(records.FeeDetail.mdtrt_id == v.mdtrt_id)
            )
            if (
                first_fee is not None
                and m.begntime.astimezone(db.SHANGHAI).date() > first_fee.astimezone(db.SHANGHAI).date()
            ):
                raise _rej(
                    "begntime is after fee lines already uploaded",
                    "开始时间晚于已上传费用的发生时间",
                    "adminfo.begntime",
                )
            enc.begntime = m.begntime
            enc.policy_year = m.begntime.astimezone(db.SHANGHAI).year
        if m.endtime is not None and enc.endtime is None:
            raise _rej(
                "endtime is set by discharge (2402), not by 2403",
                "出院时间须通过出院办理 (2402) 登记",
                "adminfo.endtime",
            )
        if m.med_type:
            known = (
                iface.book.policy(p.insuplc_admdvs or "")
                .snapshot(enc.begntime.astimezone(db.SHANGHAI).date())
                .med_types
            )
            if m.med_type not in known:
                raise _rej(
                    f"unknown med_type {m.med_type!r}",
                    f"医疗类别 {m.med_type} 无效, 可用: {sorted(known)}",
                    "adminfo.med_type",
                )
            enc.med_type = m.med_type
        if m.ipt_otp_no and m.ipt_otp_no != v.ipt_otp_no:
            dup = s.scalar(
                select(V.VisitState.mdtrt_id).where(
                    V.VisitState.fixmedins_code == v.fixmedins_code,
                    V.VisitState.ipt_otp_no == m.ipt_otp_no,
                    V.VisitState.kind == v.kind,
                    V.VisitState.status != V.CANCELLED,
                    V.VisitState.mdtrt_id != v.mdtrt_id,
                )
            )
            if dup is not None:
                raise _rej(
                    f"ipt_otp_no {m.ipt_otp_no!r} is already open as {dup}",
                    f"住院号 {m.ipt_otp_no} 已登记 (就诊ID {dup})",
                    "adminfo.ipt_otp_no",
                )
            v.ipt_otp_no = m.ipt_otp_no
        if m.adm_dept_codg:
            enc.dept_code = m.adm_dept_codg
        if m.atddr_no:
            enc.dr_code = m.atddr_no
        if main:
            enc.dise_codg = main
            enc.other_dise_codg = ";".join(other)
        v.changed_at = ctx.now
        s.flush()
        return ctx.commit(s, {})


def _undo_discharge(s: Session, v: V.VisitState, enc: records.Encounter, now: dt.datetime) -> None:
    if v.kind != V.INPATIENT or v.status != V.DISCHARGED:
        raise _rej(
            f"encounter {v.mdtrt_id} is {v.status}, not discharged",
            f"就诊 {v.mdtrt_id} 当前状态为 {v.status}, 未办理出院",
            "mdtrt_id",
        )
    after = [r for r in _live(s, v.mdtrt_id) if enc.endtime is not None and r.setl_time >= enc.endtime]
    if after:
        raise _rej(
            f"encounter {v.mdtrt_id} is settled ({after[0].setl_id}) after discharge; cancel the settlement first",
            f"就诊 {v.mdtrt_id} 出院后已结算 ({after[0].setl_id}), 请先撤销结算",
            "mdtrt_id",
        )
    enc.endtime = None
    enc.dscg_way = None
    v.status = V.ADMITTED
    v.changed_at = now
    s.flush()


def h_2405(iface, ctx, d: M.In2405) -> Any:
    with iface.tx() as s:
        v, enc = V.load_visit(
            s, d.data.mdtrt_id, psn_no=d.data.psn_no, fixmedins_code=ctx.env.fixmedins_code, kind=V.INPATIENT
        )
        _undo_discharge(s, v, enc, ctx.now)
        return ctx.commit(s, {})


# --- 2601 reversal -------------------------------------------------------------------------------


def h_2601(iface, ctx, d: M.In2601) -> Any:
    """冲正交易: undo the message ``omsgid`` (transaction ``oinfno``) of this institution.

    Idempotent by state: reversing what is already undone (by an earlier
    reversal, or by the ordinary cancel transaction) answers success with
    ``rvs_stas`` = ``already``.  A message yibao never answered (refused, or
    never arrived) cannot be reversed (field ``omsgid``): nothing was done.
    """
    q, env = d.data, ctx.env
    base = q.oinfno[:4]
    how = _cfg().reversible.get(base)
    if how is None:
        raise _rej(
            f"transaction {q.oinfno} cannot be reversed; reversible: {sorted(_cfg().reversible)}",
            f"交易 {q.oinfno} 不支持冲正",
            "data.oinfno",
        )
    if q.omsgid == env.msgid:
        raise _rej("omsgid is this message's own msgid", "原报文ID不能为本报文ID", "data.omsgid")
    with iface.read() as s:
        orig = s.get(StoredReply, q.omsgid)
        if orig is None or orig.fixmedins_code != env.fixmedins_code:
            raise _rej(
                f"no answered message {q.omsgid!r} at this institution; nothing to reverse",
                f"本机构无已成功处理的原报文 {q.omsgid}, 无需冲正",
                "data.omsgid",
            )
        # a reversal (2601) that cancelled a settlement is itself a cancellation: it may be undone like a 2208
        if orig.infno[:4] != base and not (how == "undo_cancellation" and orig.infno[:4] == "2601"):
            raise _rej(
                f"message {q.omsgid} was a {orig.infno}, not a {q.oinfno}",
                f"原报文 {q.omsgid} 的交易编号为 {orig.infno}, 与 {q.oinfno} 不符",
                "data.oinfno",
            )
        if how in ("cancel_settlement", "undo_cancellation"):
            St = records.Settlement
            col = St.msgid if how == "cancel_settlement" else St.cancel_msgid
            row = s.scalars(select(St).where(col == q.omsgid)).first()
            if row is None and how == "undo_cancellation":
                raise _rej(
                    f"message {q.omsgid} cancelled no settlement that is still recorded as its cancellation",
                    f"原报文 {q.omsgid} 的撤销记录不存在 (该结算可能已冲正)",
                    "data.omsgid",
                )
            if row is None:
                raise _rej(f"message {q.omsgid} settled nothing", f"原报文 {q.omsgid} 无结算记录", "data.omsgid")
            if row.psn_no != q.psn_no:
                raise _rej(
                    f"message {q.omsgid} is not {q.psn_no}'s",
                    f"原报文 {q.omsgid} 不属于参保人 {q.psn_no}",
                    "data.psn_no",
                )
            setl_id, cancelled = row.setl_id, bool(row.refd_setl_flag)
            cancelled_at = orig.stored_at
    result = {"omsgid": q.omsgid, "oinfno": q.oinfno, "psn_no": q.psn_no}
    if how == "cancel_settlement":
        if cancelled:
            with iface.tx() as s:
                return ctx.commit(s, {"result": {**result, "setl_id": setl_id, "rvs_stas": "already"}})

        def hook(s: Session, r) -> None:
            release_fill_of(s, r.setl_id, env.msgid)  # a pharmacy's fill of a circulated prescription
            ctx.commit(
                s,
                {
                    "result": {
                        **result,
                        "setl_id": r.setl_id,
                        "rvs_stas": "done",
                        "balc": _yuan(r.balc) if r.balc is not None else None,
                    }
                },
                maybe_repeat=r.replayed,
            )

        def guard(s: Session, row: records.Settlement) -> None:
            if row.fixmedins_code != env.fixmedins_code:
                raise _rej("settlement of another institution", "非本机构结算", "data.omsgid")

        with iface._writer:
            iface.svc.cancel(setl_id, msgid=env.msgid, at=ctx.now, guard=guard, hook=hook)
        return ctx.outcome
    if how == "undo_cancellation":
        with iface.tx() as s:
            status = _undo_cancellation(s, setl_id, q.omsgid, cancelled_at, ctx.now)
            return ctx.commit(s, {"result": {**result, "setl_id": setl_id, "rvs_stas": status}})
    with iface.tx() as s:
        status = _reverse_visit_step(s, ctx, how, orig, q)
        return ctx.commit(s, {"result": {**result, "rvs_stas": status}})


def _find_key(obj: Any, key: str) -> str | None:
    if isinstance(obj, dict):
        if isinstance(obj.get(key), str) and obj[key]:
            return obj[key]
        for v in obj.values():
            found = _find_key(v, key)
            if found:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = _find_key(v, key)
            if found:
                return found
    return None


def _visit_of_message(s: Session, ctx, orig: StoredReply, psn_no: str) -> V.VisitState:
    """The visit a stored 2201/2401/2402/2204/2301 message worked on (from its reply, else its logged request)."""
    from yibao.api.envelope import loads_exact

    rep = loads_exact(orig.reply) if isinstance(orig.reply, str) else orig.reply
    mdtrt_id = _find_key(rep.get("output") if isinstance(rep, dict) else None, "mdtrt_id")
    if mdtrt_id is None:
        req = s.scalar(
            select(MessageLog.request).where(MessageLog.msgid == orig.msgid).order_by(MessageLog.id).limit(1)
        )
        try:
            req = loads_exact(req) if isinstance(req, str) else req
        except Exception:  # noqa: BLE001 - a logged malformed body has no visit
            req = None
        mdtrt_id = _find_key(req.get("input") if isinstance(req, dict) else None, "mdtrt_id")
    if mdtrt_id is None:
        raise _rej(
            f"message {orig.msgid} left nothing to reverse", f"原报文 {orig.msgid} 无可冲正的业务记录", "data.omsgid"
        )
    v = s.execute(
        select(V.VisitState)
        .where(V.VisitState.mdtrt_id == mdtrt_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if v is None or v.fixmedins_code != ctx.env.fixmedins_code:
        raise _rej(
            f"message {orig.msgid} left nothing to reverse", f"原报文 {orig.msgid} 无可冲正的业务记录", "data.omsgid"
        )
    if v.psn_no != psn_no:
        raise _rej(
            f"message {orig.msgid} is not {psn_no}'s", f"原报文 {orig.msgid} 不属于参保人 {psn_no}", "data.psn_no"
        )
    return v


def _reverse_visit_step(s: Session, ctx, how: str, orig: StoredReply, q) -> str:
    v = _visit_of_message(s, ctx, orig, q.psn_no)
    enc = db.must_get(s, records.Encounter, v.mdtrt_id)
    if how == "cancel_visit":
        if v.status == V.CANCELLED:
            return "already"
        V.cancel_visit(s, v, now=ctx.now)
        return "done"
    if how == "undo_discharge":
        if v.status != V.DISCHARGED:
            return "already"  # undone already (2405 or an earlier reversal)
        _undo_discharge(s, v, enc, ctx.now)
        return "done"
    # withdraw_fees: the lines this message brought that are still there
    sns = list(
        s.scalars(
            select(V.FeeUpload.feedetl_sn).where(V.FeeUpload.mdtrt_id == v.mdtrt_id, V.FeeUpload.msgid == orig.msgid)
        )
    )
    if not sns:
        return "already"
    his = V.his_numbers(s, v.mdtrt_id)  # the HIS's own line numbers (strings) name the lines to withdraw
    V.withdraw_fees(s, v, now=ctx.now, feedetl_sns=[his.get(sn, str(sn)) for sn in sns])
    return "done"


def _undo_cancellation(s: Session, setl_id: str, cancel_msgid: str, cancelled_at: dt.datetime, now: dt.datetime) -> str:
    """Put a cancelled settlement back (reverse a 2208/2305): accumulators and the account as before the cancel.

    Refused when the encounter's lines were settled again, or the person has
    settled since the cancellation (the freed deductible / cap headroom may
    have been used: undoing could pay past a cap).  Locks in the settlement
    order: person, settlement row, accumulators, account.
    """
    from yibao.settlement.service import _lock_person

    St = records.Settlement
    row0 = db.must_get(s, St, setl_id)
    _lock_person(s, row0.psn_no)
    row = s.execute(
        select(St).where(St.setl_id == setl_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    if not row.refd_setl_flag:
        return "already"
    if row.cancel_msgid != cancel_msgid:
        raise _rej(
            f"settlement {setl_id} was cancelled again by another message",
            f"结算 {setl_id} 已被其他报文撤销",
            "data.omsgid",
        )
    lines = set((row.rule_trace or {}).get("feedetl_sn") or []) if isinstance(row.rule_trace, dict) else set()
    for other in _live(s, row.mdtrt_id):
        covered = (other.rule_trace or {}).get("feedetl_sn") if isinstance(other.rule_trace, dict) else None
        if covered is None or not lines or lines & set(covered):
            raise _rej(
                f"the lines of {setl_id} were settled again ({other.setl_id}); cancel that first",
                f"结算 {setl_id} 的明细已重新结算 ({other.setl_id}), 不能冲正撤销",
                "data.omsgid",
            )
    later = s.scalar(
        select(St.setl_id)
        .where(
            St.psn_no == row.psn_no,
            St.policy_year == row.policy_year,
            St.setl_id != setl_id,
            St.setl_time > cancelled_at,
        )
        .limit(1)
    )
    if later is not None:
        raise _rej(
            f"{row.psn_no} has settled since the cancellation ({later}); settle again instead of reversing",
            f"参保人撤销后已有新结算 ({later}), 不能冲正撤销, 请重新结算",
            "data.omsgid",
        )
    for (psn, year), deltas in sorted(ledger.decode_accum_delta(row.accum_delta).items()):
        ledger.lock_accumulators(s, psn, year, deltas.keys())
        ledger.apply_accumulator_deltas(s, psn, year, deltas)
    paid = int(row.acct_pay) + int(row.acct_mulaid_pay)
    if paid and row.acct_payer_psn_no:
        ledger.lock_account(s, row.acct_payer_psn_no)
        row.balc = ledger.post_account(s, row.acct_payer_psn_no, -paid, "reversal", setl_id, now, locked=True)
    row.refd_setl_flag = False  # cancel_msgid stays: a repeat of the cancel message is answered from its store
    s.flush()
    return "done"


# --- 3101 / 3102 in-care analysis; the check in 2206/2207/2304 ------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    """A fee line for the in-care check (FeeLine's fields and the time of the fee)."""

    feedetl_sn: int
    med_list_codg: str
    cnt_milli: int
    pric: int
    det_item_fee_sumamt: int
    rxno: str = ""
    prd_days: int = 0
    rx_circ_flag: bool = False
    fee_ocur_time: dt.datetime | None = None


def _facts(p: registry.Person) -> PersonFacts:
    return PersonFacts(
        p.psn_no,
        p.insutype or "",
        p.psn_type or "",
        p.gend or "",
        p.brdy or dt.date(1900, 1, 1),
        p.insuplc_admdvs or "",
        p.assistance or "",
        bool(p.civil_servant),
    )


def _run_check(
    s: Session,
    iface,
    *,
    mdtrt_id: str,
    person: registry.Person,
    fixmedins_code: str,
    hosp_lv: int,
    med_type: str,
    begntime: dt.datetime,
    setl_time: dt.datetime,
    dise: str,
    other: tuple[str, ...],
    lines,
    stage: str,
):
    from yibao.settlement.rules import Claim
    from yibao.supervision.history import history_for
    from yibao.supervision.incare import check_claim

    claim = Claim(
        mdtrt_id=mdtrt_id,
        person=_facts(person),
        fixmedins_code=fixmedins_code,
        hosp_lv=hosp_lv,
        med_type=med_type,
        begntime=begntime,
        setl_time=setl_time,
        dise_codg=dise,
        other_dise_codg=other,
        lines=tuple(lines),
    )
    hist = history_for(s, person.psn_no, begntime)
    return check_claim(claim, catalog=iface.catalog, history=hist, stage=stage)


class _Warned:
    """The Interface, but its replies carry ``warn_msg`` (the in-care check's warnings)."""

    def __init__(self, inner, warn: str):
        self._inner, self._warn = inner, warn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _reply(self, *a, **kw):
        r = self._inner._reply(*a, **kw)
        if r.get("infcode") == 0:
            r["warn_msg"] = self._warn
        return r


def in_care_check(s, iface, snap, *, kind: str, setl_time: dt.datetime) -> str:
    """The in-care check (事中审核) of the lines 2206/2207/2304 are about to settle, inside their transaction.

    ``snap``: the rows the settlement-visit service read (visit, encounter, person, unsettled lines).  A
    finding of a refusing rule refuses the message (the field of the first refusing finding is named, and
    the transaction rolls back); warnings come back as the text of the reply's ``warn_msg`` ("" if none).
    """
    enc, p = snap.encounter, snap.person
    inst = s.get(registry.Institution, snap.visit.fixmedins_code)
    lines = [
        _Line(
            pl.his_sn or pl.line.feedetl_sn,
            pl.line.med_list_codg,
            pl.line.cnt_milli,
            pl.line.pric,
            pl.line.det_item_fee_sumamt,
            pl.line.rxno,
            pl.line.prd_days,
            pl.line.rx_circ_flag,
            pl.fee_ocur_time,
        )
        for pl in snap.pending
    ]
    verdict = _run_check(
        s,
        iface,
        mdtrt_id=enc.mdtrt_id,
        person=p,
        fixmedins_code=snap.visit.fixmedins_code,
        hosp_lv=int(inst.hosp_lv or 0) if inst is not None else 0,
        med_type=snap.med_type,
        begntime=enc.begntime,
        setl_time=setl_time,
        dise=enc.dise_codg or "",
        other=tuple(x for x in (enc.other_dise_codg or "").split(";") if x),
        lines=lines,
        stage="in",
    )
    if verdict.action == "refuse":
        first = next(f for f in verdict.findings if f.action == "refuse")
        refusing = [f for f in verdict.findings if f.action == "refuse"]
        raise _rej(
            "in-care check (事中审核) refused: " + "; ".join(f"[{f.rule_id}] {f.reason_en}" for f in refusing),
            "事中审核不通过: " + "；".join(f"[{f.rule_id}] {f.reason_zh}" for f in refusing),
            first.field,
        )
    if verdict.action == "warn":
        return "事中审核提示: " + verdict.reason_zh + " | in-care check: " + verdict.reason_en
    return ""


def _order_line(i: int, o: M.OrderDto, iface) -> _Line:
    if o.hilist_code not in iface.catalog:
        raise _rej(
            f"unknown hilist_code {o.hilist_code!r}",
            f"医保目录编码 {o.hilist_code} 不存在",
            f"fsi_order_dtos.{i}.hilist_code",
        )
    cnt_milli = o.cnt * 1000
    if cnt_milli != cnt_milli.to_integral_value():
        raise _rej("cnt has more than 3 decimals", "数量最多3位小数", f"fsi_order_dtos.{i}.cnt")
    if o.cnt <= 0:
        raise _rej("cnt must be positive", "数量必须为正数", f"fsi_order_dtos.{i}.cnt")
    pric = _fen(o.pric, f"fsi_order_dtos.{i}.pric")
    if pric < 0:
        raise _rej("pric must not be negative", "单价不能为负", f"fsi_order_dtos.{i}.pric")
    from yibao.settlement.rules import line_amount

    total = _fen(o.sumamt, f"fsi_order_dtos.{i}.sumamt") if o.sumamt is not None else line_amount(int(cnt_milli), pric)
    sn = int(o.rx_id) if o.rx_id.isdigit() and len(o.rx_id) <= 9 else i + 1
    days = o.prd_days
    if not days and o.drord_begn_date and o.drord_stop_date and o.drord_stop_date > o.drord_begn_date:
        days = (o.drord_stop_date.date() - o.drord_begn_date.date()).days
    return _Line(sn, o.hilist_code, int(cnt_milli), pric, total, o.rxno, days, False, o.drord_begn_date)


def h_3101(iface, ctx, d: M.In3101) -> Any:
    """事前事中分析: the supervision subsystem's in-care check over the encounters sent (the HIS's current orders).

    Person facts come from yibao's records (``patn_id`` = ``psn_no``), the
    institution level from ``institution``; ``trig_scen`` picks the stage
    (``pre`` reminders never refuse; see ``more_transactions.yaml``).  Each
    finding is stored (``jr_id``) for the institution's feedback (3102).
    """
    q, env, cfg = d.data, ctx.env, _cfg()
    stage = cfg.trig_scen_stage.get(q.trig_scen, cfg.default_stage) if q.trig_scen else cfg.default_stage
    wanted_rules = set(q.rule_ids.split(",") if isinstance(q.rule_ids, str) else q.rule_ids) - {""}
    from yibao.supervision.knowledge import default_rulebook

    book = default_rulebook()
    unknown = sorted(r for r in wanted_rules if r not in {x.id for x in book.rules})
    if unknown:
        raise _rej(f"unknown rule_ids {unknown}", f"规则标识不存在: {unknown}", "data.rule_ids")
    results, rows = [], []
    with iface.read() as s:
        inst = s.get(registry.Institution, env.fixmedins_code)
        if inst is None:
            raise _rej("unknown institution", "定点医药机构不存在", "fixmedins_code")
        for pi, pat in enumerate(q.patient_dtos):
            p = s.get(registry.Person, pat.patn_id)
            if p is None:
                raise _rej(
                    f"unknown person {pat.patn_id!r}", f"参保人不存在: {pat.patn_id}", f"patient_dtos.{pi}.patn_id"
                )
            for ei, e in enumerate(pat.fsi_encounter_dtos):
                where = f"patient_dtos.{pi}.fsi_encounter_dtos.{ei}"
                if e.medins_id != env.fixmedins_code:
                    raise _rej(
                        "medins_id differs from the envelope's institution",
                        "医疗服务机构标识与报文机构不符",
                        f"{where}.medins_id",
                    )
                known = s.get(records.Encounter, e.mdtrt_id)
                if known is not None and (known.fixmedins_code != env.fixmedins_code or known.psn_no != p.psn_no):
                    raise _rej(
                        f"encounter {e.mdtrt_id} is not this institution's visit of {p.psn_no}",
                        f"就诊 {e.mdtrt_id} 不属于本机构该参保人",
                        f"{where}.mdtrt_id",
                    )
                dx = sorted(e.fsi_diagnose_dtos, key=lambda x: (x.maindise_flag != "1", x.dias_srt_no))
                codes = [x.dise_codg for x in dx]
                main = e.dscg_main_dise_codg or (codes[0] if codes else (known.dise_codg if known else "")) or ""
                other = tuple(c for c in codes if c != main)
                lines = [_order_line(i, o, iface) for i, o in enumerate(e.fsi_order_dtos)]
                begin = e.adm_date or (known.begntime if known else ctx.now)
                verdict = _run_check(
                    s,
                    iface,
                    mdtrt_id=e.mdtrt_id,
                    person=p,
                    fixmedins_code=env.fixmedins_code,
                    hosp_lv=int(inst.hosp_lv or 0),
                    med_type=e.med_type,
                    begntime=begin,
                    setl_time=max(ctx.now, begin),
                    dise=main,
                    other=other,
                    lines=lines,
                    stage=stage,
                )
                by_sn = {ln.feedetl_sn: (ln, o) for ln, o in zip(lines, e.fsi_order_dtos, strict=True)}
                for f in verdict.findings:
                    if wanted_rules and f.rule_id not in wanted_rules:
                        continue
                    rule = book.rule(f.rule_id)
                    jr_id = _new_id("JR", ctx.now)
                    hit = by_sn.get(f.feedetl_sn) if f.feedetl_sn is not None else None
                    amt = hit[0].det_item_fee_sumamt if hit else 0
                    details = [
                        {
                            "jrd_id": f"{jr_id}-1",
                            "patn_id": p.psn_no,
                            "mdtrt_id": e.mdtrt_id,
                            "rx_id": hit[1].rx_id if hit else "",
                            "vola_item_type": "1",
                            "vola_amt": _yuan(amt),
                        }
                    ]
                    results.append(
                        {
                            "jr_id": jr_id,
                            "rule_id": f.rule_id,
                            "rule_name": rule.name_zh,
                            "vola_cont": f.reason_zh,
                            "patn_id": p.psn_no,
                            "mdtrt_id": e.mdtrt_id,
                            "judge_result_detail_dtos": details,
                            "vola_amt": _yuan(amt),
                            "vola_amt_stas": "1" if hit else "0",
                            "sev_deg": cfg.severity_codes.get(str(f.severity), "3"),
                            "vola_evid": rule.basis,
                            "vola_bhvr_type": rule.category,
                            "task_id": env.msgid,
                            "action": f.action,
                            "field": f.field,  # yibao: refuse / warn, and the field at fault
                        }
                    )
                    rows.append(
                        IncareResult(
                            jr_id=jr_id,
                            fixmedins_code=env.fixmedins_code,
                            psn_no=p.psn_no,
                            mdtrt_id=e.mdtrt_id,
                            rule_id=f.rule_id,
                            action=f.action,
                            severity=f.severity,
                            reason=f.reason_zh,
                            vola_amt=amt,
                            evidence={
                                k: (v if isinstance(v, (str, int, bool, type(None))) else str(v))
                                for k, v in f.evidence.items()
                            },
                            msgid=env.msgid,
                            created_at=ctx.now,
                        )
                    )
    with iface.tx() as s:
        s.add_all(rows)
        s.flush()
        return ctx.commit(s, {"result": results})


def h_3102(iface, ctx, d: M.In3102) -> Any:
    """事前事中反馈: the institution's disposition of 3101 findings (1 继续执行 with a reason, 2 返回修改)."""
    env = ctx.env
    ids = [w.warn_rslt_id for w in d.data.warns]
    if len(set(ids)) != len(ids):
        raise _rej("a warn_rslt_id appears twice", "反馈中违规标识重复", "data.warns.warn_rslt_id")
    out = []
    with iface.tx() as s:
        for i, w in enumerate(d.data.warns):
            r = s.get(IncareResult, w.warn_rslt_id)
            if r is None or r.fixmedins_code != env.fixmedins_code:
                raise _rej(
                    f"unknown warn_rslt_id {w.warn_rslt_id!r} at this institution",
                    f"本机构无此违规标识 {w.warn_rslt_id}",
                    f"data.warns.{i}.warn_rslt_id",
                )
            if w.dspo_way == "1" and not w.dspo_way_rea:
                raise _rej(
                    "continuing despite a finding needs a reason (dspo_way_rea)",
                    "继续执行须填写原因",
                    f"data.warns.{i}.dspo_way_rea",
                )
            r.dspo_way, r.dspo_way_rea, r.dspo_msgid, r.dspo_at = w.dspo_way, w.dspo_way_rea, env.msgid, ctx.now
            out.append({"warn_rslt_id": r.jr_id, "rule_id": r.rule_id, "dspo_way": w.dspo_way, "dspo_stas": "1"})
        s.flush()
        return ctx.commit(s, {"result": out})


# --- 3202 detail reconciliation -----------------------------------------------------------------


_DETAIL_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag")
_RESULT_COLUMNS = (
    "psn_no",
    "mdtrt_id",
    "setl_id",
    "msgid",
    "stmt_rslt",
    "refd_setl_flag",
    "memo",
    "medfee_sumamt",
    "fund_pay_sumamt",
    "acct_pay",
)


def _file_text(content: bytes) -> str:
    if content[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise _rej(
                        "the detail file's zip must hold exactly one text file",
                        "明细文件压缩包须只含一个文本文件",
                        "data.file_qury_no",
                    )
                info = z.getinfo(names[0])
                if info.file_size > _cfg().files.max_file_bytes * 20:
                    raise _rej("the detail file unpacks too large", "明细文件解压后过大", "data.file_qury_no")
                content = z.read(names[0])
        except zipfile.BadZipFile:
            raise _rej("the detail file is not a valid zip", "明细文件不是有效的zip", "data.file_qury_no") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _rej("the detail file is not UTF-8 text", "明细文件须为UTF-8文本", "data.file_qury_no") from None


def _parse_details(text: str) -> dict[str, dict[str, Any]]:
    """Tab-separated rows ``setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay, refd_setl_flag``."""
    out: dict[str, dict[str, Any]] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        cells = [c.strip() for c in raw.split("\t")]
        if n == 1 and cells[0] == "setl_id":
            continue  # a header line
        if len(cells) < len(_DETAIL_COLUMNS):
            raise _rej(
                f"detail file line {n}: {len(cells)} columns, {len(_DETAIL_COLUMNS)} expected "
                f"({', '.join(_DETAIL_COLUMNS)})",
                f"明细文件第 {n} 行列数不足 (应为 {len(_DETAIL_COLUMNS)} 列)",
                "data.file_qury_no",
            )
        row: dict[str, Any] = dict(zip(_DETAIL_COLUMNS, cells, strict=True))
        for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay"):
            try:
                row[k] = yuan_to_fen(Decimal(row[k]))
            except Exception:  # noqa: BLE001 - InvalidOperation / MoneyError
                raise _rej(
                    f"detail file line {n}: {k} {row[k]!r} is not an amount in yuan",
                    f"明细文件第 {n} 行 {k} 金额无效",
                    "data.file_qury_no",
                ) from None
        if row["refd_setl_flag"] not in ("0", "1"):
            raise _rej(
                f"detail file line {n}: refd_setl_flag must be 0 or 1",
                f"明细文件第 {n} 行退费标志须为0或1",
                "data.file_qury_no",
            )
        if row["setl_id"] in out:
            raise _rej(
                f"detail file line {n}: setl_id {row['setl_id']} appears twice",
                f"明细文件第 {n} 行结算ID重复",
                "data.file_qury_no",
            )
        out[row["setl_id"]] = row
    return out


def h_3202(iface, ctx, d: M.In3202) -> Any:
    """对明细账: each settlement of the uploaded detail file against the platform's, and the platform's missing from it.

    Platform side: this institution's settlements with ``setl_time`` in the
    Beijing days ``stmt_begndate``..``stmt_enddate`` whose person is insured
    at ``setl_optins`` (and of ``clr_type``, if given), cancelled ones with
    ``refd_setl_flag`` 1.  The result file (9102) has one row per settlement
    with ``stmt_rslt`` 0 (agrees) / 1 (differs: ``memo`` says how).
    """
    q, env = d.data, ctx.env
    if q.stmt_enddate < q.stmt_begndate:
        raise _rej("stmt_enddate is before stmt_begndate", "对账结束日期早于开始日期", "data.stmt_enddate")
    with iface.read() as s:
        f = s.get(ApiFile, q.file_qury_no)
        if f is None or f.fixmedins_code != env.fixmedins_code or f.kind != "upload":
            raise _rej(
                f"no uploaded file {q.file_qury_no!r} at this institution (upload it with 9101)",
                f"本机构无此上传文件 {q.file_qury_no}, 请先通过9101上传",
                "data.file_qury_no",
            )
        theirs = _parse_details(_file_text(f.content))
        St, P = records.Settlement, registry.Person
        lo = dt.datetime.combine(q.stmt_begndate, dt.time(), db.SHANGHAI)
        hi = dt.datetime.combine(q.stmt_enddate + dt.timedelta(days=1), dt.time(), db.SHANGHAI)
        stmt = (
            select(St)
            .join(P, P.psn_no == St.psn_no)
            .where(
                St.fixmedins_code == env.fixmedins_code,
                P.insuplc_admdvs == q.setl_optins,
                St.setl_time >= lo,
                St.setl_time < hi,
            )
            .order_by(St.setl_time, St.setl_id)
        )
        if q.clr_type:
            med_types = [m for m, c in iface.cfg.clr_types.items() if c == q.clr_type]
            if not med_types:
                raise _rej(f"unknown clr_type {q.clr_type!r}", f"清算类别 {q.clr_type} 无效", "data.clr_type")
            stmt = stmt.where(St.med_type.in_(med_types))
        ours = {r.setl_id: r for r in s.scalars(stmt)}
        # settlements the file names that are outside the platform's selection: this institution's, or unknown
        extra = {k: s.get(St, k) for k in theirs if k not in ours}
    out_rows, bad = [], 0
    for sid in list(ours) + [k for k in theirs if k not in ours]:
        r, t = ours.get(sid), theirs.get(sid) or {}  # one of the two is there
        memo = []
        if r is None:
            other = extra.get(sid)
            if other is None or other.fixmedins_code != env.fixmedins_code:
                memo.append("平台无此结算 (unknown settlement)")
            else:
                memo.append("结算不在本次对账范围内 (outside the statement's dates, region or clearing type)")
        elif not t:
            memo.append("机构明细缺少此结算 (missing from the institution's file)")
        else:
            for k in ("mdtrt_id", "psn_no"):
                if t[k] != getattr(r, k):
                    memo.append(f"{k}: 机构 {t[k]} / 平台 {getattr(r, k)}")
            for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay"):
                if t[k] != int(getattr(r, k)):
                    memo.append(f"{k}: 机构 {_yuan(t[k])} / 平台 {_yuan(getattr(r, k))}")
            if t["refd_setl_flag"] != ("1" if r.refd_setl_flag else "0"):
                memo.append(f"refd_setl_flag: 机构 {t['refd_setl_flag']} / 平台 {'1' if r.refd_setl_flag else '0'}")
        src = r if r is not None else None
        bad += bool(memo)
        out_rows.append(
            {
                "psn_no": src.psn_no if src else t["psn_no"],
                "mdtrt_id": src.mdtrt_id if src else t["mdtrt_id"],
                "setl_id": sid,
                "msgid": (src.msgid or "") if src else "",
                "stmt_rslt": "1" if memo else "0",
                "refd_setl_flag": ("1" if src.refd_setl_flag else "0") if src else t["refd_setl_flag"],
                "memo": "; ".join(memo) or "一致 (agrees)",
                "medfee_sumamt": _yuan(src.medfee_sumamt if src else t["medfee_sumamt"]),
                "fund_pay_sumamt": _yuan(src.fund_pay_sumamt if src else t["fund_pay_sumamt"]),
                "acct_pay": _yuan(src.acct_pay if src else t["acct_pay"]),
            }
        )
    live = [r for r in ours.values() if not r.refd_setl_flag]
    totals = {
        "medfee_sumamt": sum(int(r.medfee_sumamt) for r in live),
        "fund_pay_sumamt": sum(int(r.fund_pay_sumamt) for r in live),
        "cash_payamt": sum(int(r.psn_cash_pay) for r in live),
        "fixmedins_setl_cnt": len(live),
    }
    stated = {
        "medfee_sumamt": _fen(q.medfee_sumamt, "data.medfee_sumamt"),
        "fund_pay_sumamt": _fen(q.fund_pay_sumamt, "data.fund_pay_sumamt"),
        "cash_payamt": _fen(q.cash_payamt, "data.cash_payamt"),
        "fixmedins_setl_cnt": q.fixmedins_setl_cnt,
    }
    diffs = [
        f"{k}: 机构 {stated[k] if k == 'fixmedins_setl_cnt' else _yuan(stated[k])} / 平台 "
        f"{totals[k] if k == 'fixmedins_setl_cnt' else _yuan(totals[k])}"
        for k in totals
        if totals[k] != stated[k]
    ]
    text = (
        "\t".join(_RESULT_COLUMNS)
        + "\n"
        + "".join("\t".join(str(r[k]) for k in _RESULT_COLUMNS) + "\n" for r in out_rows)
    )
    ok = not bad and not diffs
    with iface.tx() as s:
        name = f"3202_{q.stmt_begndate:%Y%m%d}_{q.stmt_enddate:%Y%m%d}"
        fobj = _store_file(s, ctx, f"{name}.zip", _zip_text(f"{name}.txt", text), "reconciliation")
        return ctx.commit(
            s,
            {
                "fileinfo": _file_ref(fobj),
                "stmtinfo": {  # stmtinfo: yibao extension (the summary)
                    "stmt_rslt": "0" if ok else "1",
                    "diff_cnt": bad,
                    "stmt_rslt_dscr": "对账平 (details agree)"
                    if ok
                    else "对账不平 (differs): " + "; ".join(diffs + ([f"{bad} 笔明细不符"] if bad else [])),
                },
            },
        )


# --- 5201 ... 5303 queries -------------------------------------------------------------------------


def _encounter_row(
    iface, enc: records.Encounter, v: V.VisitState | None, p: registry.Person, inst_name: str
) -> dict[str, Any]:
    on = enc.begntime.astimezone(db.SHANGHAI).date()
    ipt = v is not None and v.kind == V.INPATIENT
    days = ((enc.endtime or enc.begntime).astimezone(db.SHANGHAI).date() - on).days if ipt and enc.endtime else 0
    return {
        "mdtrt_id": enc.mdtrt_id,
        **_person_fields(iface, p, on),
        "insutype": (v.insutype if v is not None and v.insutype else p.insutype) or "",
        "fixmedins_code": enc.fixmedins_code or "",
        "fixmedins_name": inst_name,
        "begntime": _t(enc.begntime),
        "endtime": _t(enc.endtime),
        "med_type": enc.med_type or "",
        "ipt_otp_no": (v.ipt_otp_no or "") if v is not None else "",
        "adm_dept_codg": enc.dept_code or "",
        "atddr_no": enc.dr_code or "",
        "dscg_maindiag_code": enc.dise_codg or "",
        "dscg_maindiag_name": _dx_name(enc.dise_codg or ""),
        "dscg_way": enc.dscg_way or "",
        "inhosp_stas": "1" if ipt and v is not None and v.status == V.ADMITTED else "0",
        "ipt_days": Decimal(days),
        "vali_flag": "0" if v is not None and v.status == V.CANCELLED else "1",
        "mdtrt_stas": v.status if v is not None else "loaded",  # yibao: registered/admitted/discharged/cancelled
    }


def h_5201(iface, ctx, d: M.In5201) -> Any:
    q, env = d.data, ctx.env
    lo, hi = _window(q.begntime, q.endtime, "data.endtime")
    E = records.Encounter
    with iface.read() as s:
        p = _person(s, q.psn_no)
        stmt = (
            select(E)
            .where(E.psn_no == q.psn_no, E.fixmedins_code == env.fixmedins_code, E.begntime >= lo, E.begntime <= hi)
            .order_by(E.begntime, E.mdtrt_id)
            .limit(_cfg().max_rows)
        )
        if q.med_type:
            stmt = stmt.where(E.med_type == q.med_type)
        if q.mdtrt_id:
            stmt = stmt.where(E.mdtrt_id == q.mdtrt_id)
        inst = s.get(registry.Institution, env.fixmedins_code)
        encs = list(s.scalars(stmt))
        states = {
            v.mdtrt_id: v
            for v in s.scalars(select(V.VisitState).where(V.VisitState.mdtrt_id.in_([e.mdtrt_id for e in encs])))
        }
        rows = [
            _encounter_row(iface, e, states.get(e.mdtrt_id), p, (inst.fixmedins_name or "") if inst else "")
            for e in encs
        ]
    with iface.tx() as s:
        return ctx.commit(s, {"mdtrtinfo": rows})


def h_5202(iface, ctx, d: M.In5202) -> Any:
    with iface.read() as s:
        enc, v = _own_visit(s, ctx, d.data.mdtrt_id, d.data.psn_no)
        codes = [c for c in (enc.dise_codg or "", *(enc.other_dise_codg or "").split(";")) if c]
        inout = "2" if enc.endtime is not None else "1"  # 1 入院诊断 / 2 出院诊断 (uncertain codes)
        rows = [
            {
                "diag_info_id": f"{enc.mdtrt_id}-{i + 1}",
                "mdtrt_id": enc.mdtrt_id,
                "psn_no": enc.psn_no,
                "inout_diag_type": inout,
                "diag_type": "1",
                "maindiag_flag": "1" if i == 0 else "0",
                "diag_srt_no": i + 1,
                "diag_code": c,
                "diag_name": _dx_name(c),
                "diag_dept": enc.dept_code or "",
                "dise_dor_no": enc.dr_code or "",
                "diag_time": _t(enc.endtime or enc.begntime),
            }
            for i, c in enumerate(codes)
        ]
    with iface.tx() as s:
        return ctx.commit(s, {"diseinfo": rows})


def _fee_row(iface, f: records.FeeDetail, enc: records.Encounter, setl_id: str, chrg_bchno: str) -> dict[str, Any]:
    item = iface.catalog.items.get(f.med_list_codg)
    cfg = _cfg()
    return {
        "mdtrt_id": f.mdtrt_id,
        "setl_id": setl_id,
        "feedetl_sn": str(f.feedetl_sn),
        "rx_drord_no": f.rxno or "",
        "med_type": enc.med_type or "",
        "fee_ocur_time": _t(f.fee_ocur_time),
        "cnt": (Decimal(int(f.cnt_milli)) / 1000).quantize(Decimal("0.0001")),
        "pric": _yuan(f.pric),
        "prd_days": Decimal(int(f.prd_days or 0)),
        "det_item_fee_sumamt": _yuan(f.det_item_fee_sumamt),
        "pric_uplmt_amt": _yuan(item.effective_cap) if item else Decimal("0.00"),
        "selfpay_prop": (Decimal(item.selfpay_prop_bp) / BP_SCALE).quantize(Decimal("0.0001"))
        if item
        else Decimal("0.0000"),
        "chrgitm_lv": item.chrgitm_lv if item else "",
        "hilist_code": f.med_list_codg,
        "hilist_name": item.name if item else "",
        "list_type": cfg.list_types.get(item.list_kind, "") if item else "",
        "med_list_codg": f.med_list_codg,
        "med_chrgitm_type": item.list_kind if item else "",
        "lmt_used_flag": "1" if item and item.restricted else "0",
        "bilg_dr_codg": f.bilg_dr_code or "",
        "chrg_bchno": chrg_bchno,
        "rx_circ_flag": "1" if f.rx_circ_flag else "0",
        "fixmedins_code": enc.fixmedins_code or "",
        "psn_no": enc.psn_no,
    }


def _settled_by(s: Session, mdtrt_id: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for r in _live(s, mdtrt_id):
        for sn in ((r.rule_trace or {}).get("feedetl_sn") or []) if isinstance(r.rule_trace, dict) else []:
            out[int(sn)] = r.setl_id
    return out


def h_5204(iface, ctx, d: M.In5204) -> Any:
    q = d.data
    F = records.FeeDetail
    with iface.read() as s:
        enc, _v = _own_visit(s, ctx, q.mdtrt_id, q.psn_no)
        settled = _settled_by(s, q.mdtrt_id)
        only: set[int] | None = None
        if q.setl_id:
            st = s.get(records.Settlement, q.setl_id)
            if st is None or st.mdtrt_id != q.mdtrt_id:
                raise _rej(
                    f"settlement {q.setl_id} is not of encounter {q.mdtrt_id}",
                    f"结算 {q.setl_id} 不属于就诊 {q.mdtrt_id}",
                    "data.setl_id",
                )
            lst = (st.rule_trace or {}).get("feedetl_sn") if isinstance(st.rule_trace, dict) else None
            only = None if lst is None else {int(x) for x in lst}
            settled.update({sn: q.setl_id for sn in (only or ())})
        batches = dict(
            s.execute(
                select(V.FeeUpload.feedetl_sn, V.FeeUpload.chrg_bchno).where(V.FeeUpload.mdtrt_id == q.mdtrt_id)
            ).all()
        )
        rows = [
            _fee_row(iface, f, enc, settled.get(f.feedetl_sn, ""), batches.get(f.feedetl_sn) or "")
            for f in s.scalars(select(F).where(F.mdtrt_id == q.mdtrt_id).order_by(F.feedetl_sn))
            if only is None or f.feedetl_sn in only
        ][: _cfg().max_rows]
    with iface.tx() as s:
        return ctx.commit(s, {"feedetail": rows})


def _chronic_med_types(iface, p: registry.Person, on: dt.date) -> set[str]:
    snap = iface.book.policy(p.insuplc_admdvs or "").snapshot(on)
    return {m for m, kind in snap.med_types.items() if kind == "chronic"}


def h_5205(iface, ctx, d: M.In5205) -> Any:
    """慢特病用药记录: drug lines of the person's chronic-disease visits at this institution in the period."""
    q, env = d.data, ctx.env
    lo, hi = _window(q.begntime, q.endtime, "data.endtime")
    E, F = records.Encounter, records.FeeDetail
    with iface.read() as s:
        p = _person(s, q.psn_no)
        mts = _chronic_med_types(iface, p, lo.astimezone(db.SHANGHAI).date())
        inst = s.get(registry.Institution, env.fixmedins_code)
        encs = {
            e.mdtrt_id: e
            for e in s.scalars(
                select(E).where(
                    E.psn_no == q.psn_no, E.fixmedins_code == env.fixmedins_code, E.med_type.in_(sorted(mts))
                )
            )
        }
        rows = []
        for f in s.scalars(
            select(F)
            .where(F.mdtrt_id.in_(list(encs)), F.fee_ocur_time >= lo, F.fee_ocur_time <= hi)
            .order_by(F.fee_ocur_time, F.mdtrt_id, F.feedetl_sn)
        ):
            item = iface.catalog.items.get(f.med_list_codg)
            if item is None or not item.is_drug:
                continue
            r = _fee_row(iface, f, encs[f.mdtrt_id], "", "")
            r["fixmedins_name"] = (inst.fixmedins_name or "") if inst else ""
            rows.append(r)
            if len(rows) >= _cfg().max_rows:
                break
    with iface.tx() as s:
        return ctx.commit(s, {"feedetail": rows})


_KIND_NAMES = {
    "outpatient": "门诊",
    "chronic": "门诊慢特病",
    "special": "门诊特殊病",
    "inpatient": "住院",
    "pharmacy": "药店",
    "home_bed": "家庭病床",
    "maternity": "生育",
}


def h_5206(iface, ctx, d: M.In5206) -> Any:
    """人员累计信息: the person-year accumulators (year of ``cum_ym``, else this year), codes from the YAML."""
    q, cfg = d.data, _cfg()
    year = int(q.cum_ym[:4]) if q.cum_ym else ctx.now.astimezone(db.SHANGHAI).year
    with iface.read() as s:
        p = _in_care_here(s, ctx, q.psn_no)
        acc = ledger.read_accumulators(s, q.psn_no, year)
    rows = []
    for (kind, period), value in sorted(acc.items()):
        t = next((v for k, v in cfg.cum_types.items() if kind == k or (k.endswith(":") and kind.startswith(k))), None)
        if t is None:
            continue
        sub = kind.split(":", 1)[1] if ":" in kind else ""
        rows.append(
            {
                "insutype": p.insutype or "",
                "year": str(year),
                "cum_ym": q.cum_ym or f"{year}12",
                "cum_type_code": t.code + (f"-{sub}" if sub else ""),
                "cum_type_name": t.name + (f" ({_KIND_NAMES.get(sub, sub)})" if sub else ""),
                "cum": _yuan(value) if t.unit == "fen" else Decimal(value),
                "cum_period": period,
            }
        )
    with iface.tx() as s:
        return ctx.commit(s, {"cuminfo": rows})


def h_5301(iface, ctx, d: M.In5301) -> Any:
    """慢特病备案: yibao keeps no filing register, so the diseases are those of the person's chronic-disease
    visits at this institution (first and last visit dates), matched to the policy's chronic / special lists."""
    q, env = d.data, ctx.env
    E = records.Encounter
    with iface.read() as s:
        p = _in_care_here(s, ctx, q.psn_no)
        snap = iface.book.policy(p.insuplc_admdvs or "").snapshot(ctx.now.astimezone(db.SHANGHAI).date())
        mts = {m for m, kind in snap.med_types.items() if kind == "chronic"}
        seen: dict[str, list] = {}
        for e in s.scalars(
            select(E)
            .where(E.psn_no == q.psn_no, E.fixmedins_code == env.fixmedins_code, E.med_type.in_(sorted(mts)))
            .order_by(E.begntime)
        ):
            v = s.get(V.VisitState, e.mdtrt_id)
            if v is not None and v.status == V.CANCELLED or not e.dise_codg:
                continue
            for group in ("special", "chronic"):
                pref = next((x for x in snap.chronic_diseases.get(group, ()) if e.dise_codg.startswith(x)), None)
                if pref is not None:
                    span = seen.setdefault(pref, [group, e.begntime, e.begntime, e.dise_codg])
                    span[2] = e.begntime
                    break
    rows = [
        {
            "opsp_dise_code": pref,
            "opsp_dise_name": _dx_name(code) or pref,
            "begndate": _day(first),
            "enddate": _day(last),
            "opsp_type": "2" if group == "special" else "1",
        }
        for pref, (group, first, last, code) in sorted(seen.items())
    ]
    with iface.tx() as s:
        return ctx.commit(s, {"feedetail": rows})


def h_5303(iface, ctx, d: M.In5303) -> Any:
    """在院信息: the person's inpatient encounters at this institution that are admitted and not discharged."""
    q, env = d.data, ctx.env
    E = records.Encounter
    with iface.read() as s:
        p = _person(s, q.psn_no)
        stmt = (
            select(E, V.VisitState)
            .join(V.VisitState, V.VisitState.mdtrt_id == E.mdtrt_id)
            .where(
                E.psn_no == q.psn_no,
                E.fixmedins_code == env.fixmedins_code,
                V.VisitState.kind == V.INPATIENT,
                V.VisitState.status == V.ADMITTED,
            )
            .order_by(E.begntime)
        )
        if q.begntime is not None:
            stmt = stmt.where(E.begntime >= q.begntime)
        if q.endtime is not None:
            stmt = stmt.where(E.begntime <= q.endtime)
        rows = []
        for e, v in s.execute(stmt).all():
            on = e.begntime.astimezone(db.SHANGHAI).date()
            rows.append(
                {
                    "mdtrt_id": e.mdtrt_id,
                    **_person_fields(iface, p, on),
                    "insutype": v.insutype or p.insutype or "",
                    "begndate": on.isoformat(),
                    "begntime": _t(e.begntime),
                    "med_type": e.med_type or "",
                    "ipt_otp_no": v.ipt_otp_no or "",
                    "out_flag": "1" if e.mdtrtarea_admvs else "0",
                    "fixmedins_code": e.fixmedins_code or "",
                }
            )
    with iface.tx() as s:
        return ctx.commit(s, {"data": rows})


# --- 9101 / 9102 files --------------------------------------------------------------------------------


def _file_bytes(v: Any) -> bytes:
    limit = _cfg().files.max_file_bytes
    fld = "fsUploadIn.in"
    if isinstance(v, str):
        if len(v) > (limit * 4) // 3 + 8:
            raise _rej(f"the file is larger than {limit} bytes", f"文件超过 {limit} 字节上限", fld)
        try:
            data = base64.b64decode(v, validate=True)
        except (ValueError, TypeError):
            raise _rej(
                "in must be the file's bytes in base64 or as an array of numbers 0..255",
                "文件数据须为base64或字节数组",
                fld,
            ) from None
    elif isinstance(v, list):
        if len(v) > limit:
            raise _rej(f"the file is larger than {limit} bytes", f"文件超过 {limit} 字节上限", fld)
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in v):
            raise _rej("in must be an array of numbers 0..255", "文件数据字节数组元素须为0..255", fld)
        data = bytes(v)
    else:
        raise _rej(
            "in must be the file's bytes in base64 or as an array of numbers 0..255",
            "文件数据须为base64或字节数组",
            fld,
        )
    if not data:
        raise _rej("the file is empty", "文件为空", fld)
    if len(data) > limit:
        raise _rej(f"the file is larger than {limit} bytes", f"文件超过 {limit} 字节上限", fld)
    return data


def h_9101(iface, ctx, d: M.In9101) -> Any:
    q = d.fsUploadIn
    if q.fixmedins_code != ctx.env.fixmedins_code:
        raise _rej("fixmedins_code differs from the envelope's", "医药机构编号与报文不符", "fsUploadIn.fixmedins_code")
    if any(c in q.filename for c in "/\\\x00") or q.filename in (".", ".."):
        raise _rej("filename must be a plain file name", "文件名不能含路径", "fsUploadIn.filename")
    data = _file_bytes(q.in_)
    with iface.tx() as s:
        f = _store_file(s, ctx, q.filename, data, "upload")
        return ctx.commit(s, _file_ref(f))


def h_9102(iface, ctx, d: M.In9102) -> Any:
    """The file, base64 in ``output.data`` (yibao's envelope is JSON; the national service streams the bytes)."""
    q = d.fsDownloadIn
    if q.fixmedins_code != ctx.env.fixmedins_code:
        raise _rej(
            "fixmedins_code differs from the envelope's", "医药机构编号与报文不符", "fsDownloadIn.fixmedins_code"
        )
    with iface.read() as s:
        f = s.get(ApiFile, q.file_qury_no)
        if f is None or f.fixmedins_code != ctx.env.fixmedins_code:
            raise _rej(
                f"no file {q.file_qury_no!r} at this institution",
                f"本机构无此文件 {q.file_qury_no}",
                "fsDownloadIn.file_qury_no",
            )
        if f.dld_endtime <= ctx.now:
            raise _rej(
                f"file {q.file_qury_no} expired at {fmt_time(f.dld_endtime)}",
                f"文件已过下载截止时间 {fmt_time(f.dld_endtime)}",
                "fsDownloadIn.file_qury_no",
            )
        if q.filename not in ("", "plc", f.filename):
            raise _rej(
                f"file {q.file_qury_no} is named {f.filename!r}",
                f"文件名不符 (应为 {f.filename} 或 plc)",
                "fsDownloadIn.filename",
            )
        out = {
            **_file_ref(f),
            "size": int(f.size),
            "sha256": f.sha256,
            "data": base64.b64encode(f.content).decode("ascii"),
        }
    with iface.tx() as s:
        return ctx.commit(s, out)


# --- 4101 / 4101A settlement list --------------------------------------------------------------------


@lru_cache(maxsize=1)
def _grouper():
    """The payment subsystem's CHS-DRG 1.1 grouper (loaded once)."""
    from yibao.payment.drg import load_scheme

    return load_scheme(DRG_SCHEME)


# the grouper's refusal "refused: <input>: why" → the 结算清单 field
_GROUP_FIELDS = {
    "gend": "setlinfo.gend",
    "age": "setlinfo.age",
    "nwb_age": "setlinfo.nwb_age",
    "nwb_bir_wt": "setlinfo.nwb_bir_wt",
    "ipt_days": "setlinfo.act_ipt_days",
    "main_diag": "diseinfo",
    "other_diags": "diseinfo",
    "oprns": "oprninfo",
}


def _setl_list_codes(d: M.In4101) -> tuple[str, list[str], list[str]]:
    """The list's main diagnosis, its other diagnoses (in order, no repeats) and procedures, each code checked."""
    from yibao.codes.national import check_diagnosis, check_procedure
    from yibao.core.errors import CodeTableError

    try:
        dx = [(check_diagnosis(x.diag_code, f"diseinfo.{i}.diag_code"), x) for i, x in enumerate(d.diseinfo)]
        ops = [check_procedure(o.oprn_oprt_code, f"oprninfo.{i}.oprn_oprt_code") for i, o in enumerate(d.oprninfo)]
    except CodeTableError as exc:
        raise _rej(exc.message_en, exc.message_zh, exc.field or "diseinfo") from None
    mains = [c for c, x in dx if x.maindiag_flag == "1"]
    if len(mains) > 1:
        raise _rej("more than one main diagnosis (maindiag_flag 1)", "主诊断只能有一个", "diseinfo.maindiag_flag")
    main = mains[0] if mains else dx[0][0]
    others = list(dict.fromkeys(c for c, _x in dx if c != main))
    return main, others, list(dict.fromkeys(ops))


def _setl_list_settlement(s, info, fixmedins_code: str) -> records.Settlement:
    """The live settlement the list belongs to, at the sending institution and of the named encounter."""
    st = s.get(records.Settlement, info.setl_id)
    if st is None or st.fixmedins_code != fixmedins_code:
        raise _rej(
            f"unknown settlement {info.setl_id!r} at this institution",
            f"本机构无此结算记录: {info.setl_id}",
            "setlinfo.setl_id",
        )
    if st.mdtrt_id != info.mdtrt_id:
        raise _rej(
            f"settlement {info.setl_id} is not of encounter {info.mdtrt_id}",
            f"结算 {info.setl_id} 不属于就诊 {info.mdtrt_id}",
            "setlinfo.mdtrt_id",
        )
    if st.refd_setl_flag:
        raise _rej(f"settlement {info.setl_id} is cancelled", f"结算 {info.setl_id} 已撤销", "setlinfo.setl_id")
    return st


def _setl_list_drg(case: dict[str, Any]) -> dict[str, Any]:
    """Group an inpatient list with the CHS-DRG grouper; a refusal names the list's field it came from."""
    try:
        g = _grouper().group(**case, explain=True)
    except YibaoError as exc:
        raise _rej(exc.message_en, exc.message_zh, exc.field or "diseinfo") from None
    status = str(g.status)
    if status.startswith("refused:"):
        why = status.removeprefix("refused:").strip()
        fld = _GROUP_FIELDS.get(why.split(":", 1)[0].strip(), "diseinfo")
        raise _rej(f"the DRG grouper refused the case: {why}", f"DRG分组器拒绝该病例: {why}", fld)
    path = list(getattr(g, "path", None) or [])
    drg = {"scheme": DRG_SCHEME, "mdc": g.mdc or "", "adrg": g.adrg or "", "drg": g.drg or "", "status": status}
    drg["path"] = path
    if getattr(g, "severity", None) is not None:  # the national grouper also gives these
        drg["severity"] = str(g.severity)
        rw_e4 = getattr(g, "rw_e4", None)
        drg["rw"] = (Decimal(int(rw_e4)) / 10000).quantize(Decimal("0.0001")) if rw_e4 is not None else None
    return drg


def h_4101(iface, ctx, d: M.In4101) -> Any:
    """医疗保障基金结算清单: checked against the settlement, stored (a new upload replaces the list: version + 1),
    and the case grouped with the payment subsystem's CHS-DRG grouper."""
    info, env = d.setlinfo, ctx.env
    if info.fixmedins_code and info.fixmedins_code != env.fixmedins_code:
        raise _rej(
            "fixmedins_code differs from the envelope's", "定点医药机构编号与报文不符", "setlinfo.fixmedins_code"
        )
    main, others, oprns = _setl_list_codes(d)
    with iface.read() as s:
        st = _setl_list_settlement(s, info, env.fixmedins_code)
        enc = s.get(records.Encounter, st.mdtrt_id)
        p = s.get(registry.Person, st.psn_no)
        for k, mine in (("gend", p.gend or ""), ("brdy", p.brdy)):
            sent = getattr(info, k)
            if sent not in ("", None) and mine and sent != mine:
                raise _rej(f"{k} differs from the insured person's record", f"{k} 与参保人信息不符", f"setlinfo.{k}")
        adm = info.adm_time or enc.begntime
        dscg = info.dscg_time or enc.endtime
        if dscg is not None and dscg < adm:
            raise _rej("dscg_time is before adm_time", "出院时间早于入院时间", "setlinfo.dscg_time")
        if info.act_ipt_days is not None:
            days = info.act_ipt_days
        else:
            days = max(1, ((dscg or ctx.now).astimezone(db.SHANGHAI).date() - adm.astimezone(db.SHANGHAI).date()).days)
        paid = sum(_fen(x.fund_payamt, f"payinfo.{i}.fund_payamt") for i, x in enumerate(d.payinfo))
        if d.payinfo and paid != int(st.fund_pay_sumamt):
            raise _rej(
                f"payinfo totals {_yuan(paid)}, the settlement's funds paid {_yuan(st.fund_pay_sumamt)}",
                f"基金支付信息合计 {_yuan(paid)} 与结算基金支付 {_yuan(st.fund_pay_sumamt)} 不符",
                "payinfo",
            )
        age_days = (adm.astimezone(db.SHANGHAI).date() - p.brdy).days if p.brdy else None
        age = age_on(p.brdy, adm.astimezone(db.SHANGHAI).date()) if p.brdy else int(info.age or 0)
        nwb_age = info.nwb_age if info.nwb_age is not None else (age_days if age_days is not None and age < 1 else None)
        old = s.scalars(select(SetlList).where(SetlList.setl_id == info.setl_id)).first()
        old_id, old_ver = (old.setl_list_id, old.version) if old is not None else (None, 0)
    setting = (
        iface.book.policy(p.insuplc_admdvs or "")
        .snapshot(adm.astimezone(db.SHANGHAI).date())
        .med_types.get(st.med_type or "")
    )
    if setting == "inpatient":
        case = dict(
            case_id=info.setl_id,
            gend=p.gend or "",
            age=age,
            nwb_age=nwb_age,
            nwb_bir_wt=info.nwb_bir_wt,
            ipt_days=int(days),
            main_diag=main,
            other_diags=others,
            oprns=oprns,
        )
        drg = _setl_list_drg(case)
    else:  # 门诊慢特病 lists are stored, not grouped
        status = f"not grouped: med_type {st.med_type} is not inpatient"
        drg = {"scheme": DRG_SCHEME, "mdc": "", "adrg": "", "drg": "", "status": status, "path": []}
    payload = d.model_dump(mode="json")
    with iface.tx() as s:
        live = s.scalar(
            select(records.Settlement.refd_setl_flag)
            .where(records.Settlement.setl_id == info.setl_id)
            .with_for_update()
        )
        if live is None or live:
            raise _rej(
                f"settlement {info.setl_id} was cancelled meanwhile", f"结算 {info.setl_id} 已撤销", "setlinfo.setl_id"
            )
        row = s.scalars(select(SetlList).where(SetlList.setl_id == info.setl_id).with_for_update()).first()
        if row is None:
            row = SetlList(setl_list_id=old_id or _new_id("SL", ctx.now), setl_id=info.setl_id, version=0)
            s.add(row)
        row.mdtrt_id, row.psn_no, row.fixmedins_code = st.mdtrt_id, st.psn_no, env.fixmedins_code
        row.main_diag, row.other_diags, row.oprns, row.ipt_days = main, others, oprns, int(days)
        row.scheme, row.mdc, row.adrg, row.drg, row.group_status = (
            DRG_SCHEME,
            drg["mdc"] or None,
            drg["adrg"] or None,
            drg["drg"] or None,
            drg["status"],
        )
        row.payload, row.version, row.infno, row.msgid, row.uploaded_at = (
            payload,
            int(row.version or old_ver) + 1,
            env.infno,
            env.msgid,
            ctx.now,
        )
        s.flush()
        return ctx.commit(s, {"setl_list_id": row.setl_list_id, "version": row.version, "drginfo": drg})


# --- registration ---------------------------------------------------------------------------------------


def register(transactions: dict) -> None:
    """Add the transactions of this module to the Interface's ``TRANSACTIONS``."""
    from yibao.api.interface import Transaction

    def t(infno, zh, en, model, out, handler, rest, needs_sign=True):
        transactions[infno] = Transaction(infno, zh, en, model, out, handler, rest, needs_sign=needs_sign)

    t("9002", "签退", "sign out", M.In9002, M.Out9002, h_9002, "sign-out", needs_sign=False)
    t("1201", "医药机构信息获取", "institution information", M.In1201, M.Out1201, h_1201, "institutions/query")
    t("1301", "目录下载", "medical list download (file)", M.In1301, M.Out1301, h_1301, "catalog/download")
    t("1312", "医保目录信息查询", "medical list query", M.In1312, M.Out1312, h_1312, "catalog/query")
    t("1901", "字典表查询", "dictionary query", M.In1901, M.Out1901, h_1901, "dictionaries/query")
    t("2001", "人员待遇享受检查", "benefit check", M.In2001, M.Out2001, h_2001, "benefits/check")
    t("2403", "入院信息变更", "change admission information", M.In2403, M.AnyOut, h_2403, "inpatient/admissions/change")
    t("2405", "出院撤销", "cancel discharge", M.In2405, M.AnyOut, h_2405, "inpatient/discharges/cancel")
    t("2601", "冲正交易", "reversal by message id", M.In2601, M.Out2601, h_2601, "reversals")
    t("3101", "明细审核事前事中分析服务", "in-care rule analysis", M.In3101, M.Out3101, h_3101, "supervision/analyse")
    t(
        "3102",
        "明细审核事前事中反馈服务",
        "in-care analysis feedback",
        M.In3102,
        M.Out3102,
        h_3102,
        "supervision/feedback",
    )
    t(
        "3202",
        "医药机构费用结算对明细账",
        "detail reconciliation",
        M.In3202,
        M.Out3202,
        h_3202,
        "reconciliation/details",
    )
    t("4101", "医疗保障基金结算清单信息上传", "settlement list upload", M.In4101, M.Out4101, h_4101, "settlement-lists")
    t(
        "4101A",
        "医疗保障基金结算清单信息上传",
        "settlement list upload (A variant)",
        M.In4101,
        M.Out4101,
        h_4101,
        "settlement-lists/a",
    )
    t("5201", "就诊信息查询", "encounter query", M.In5201, M.OutRows, h_5201, "encounters/query")
    t("5202", "诊断信息查询", "diagnosis query", M.In5202, M.OutRows, h_5202, "diagnoses/query")
    t("5204", "费用明细查询", "fee detail query", M.In5204, M.OutRows, h_5204, "fees/query")
    t(
        "5205",
        "人员慢特病用药记录查询",
        "chronic-disease drug record query",
        M.In5205,
        M.OutRows,
        h_5205,
        "chronic-drugs/query",
    )
    t("5206", "人员累计信息查询", "accumulator query", M.In5206, M.OutRows, h_5206, "accumulators/query")
    t(
        "5301",
        "人员慢特病备案查询",
        "chronic-disease filing query",
        M.In5301,
        M.OutRows,
        h_5301,
        "chronic-filings/query",
    )
    t("5303", "在院信息查询", "in-hospital query", M.In5303, M.OutRows, h_5303, "inpatient/in-hospital/query")
    t("9101", "文件上传", "file upload", M.In9101, M.Out9101, h_9101, "files/upload")
    t("9102", "文件下载", "file download", M.In9102, M.AnyOut, h_9102, "files/download")
