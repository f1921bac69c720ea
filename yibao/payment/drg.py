"""DRG payment (按疾病诊断相关分组付费): grouping a region's cases, relative weights, base rate, CMI.

Grouping itself is :mod:`yibao.payment.grouper` over a scheme given as data
(:mod:`yibao.payment.drgscheme`): the national CHS-DRG 1.1 scheme ships as
``chs-drg-1.1`` (no weights: the national scheme publishes none), a region's
scheme as a dated local override that sets its weights (``example-city-a``:
SYNTHETIC weights from the synthetic region), and ``sample`` is a small
WHO-coded scheme for quick tests.

This module maps the contract's encounter columns (``dise_codg``,
``other_dise_codg``, ``oprn_codg``, ``age``, ``gend``, ``mdtrt_id``) onto the
grouper's 结算清单 columns and holds the payment arithmetic on grouped cases.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from yibao.payment.cases import PaymentInputError
from yibao.payment.drgscheme import UNGROUPABLE, schemes_root
from yibao.payment.grouper import Grouper, load_grouper
from yibao.payment.params import E4

Scheme = Grouper
DEFAULT_SCHEME = "chs-drg-1.1"
# the scheme the synthetic region's payment run uses: the national scheme with a region's (synthetic) weights
REGION_SCHEME = "example-city-a"

__all__ = [
    "DEFAULT_SCHEME",
    "REGION_SCHEME",
    "Grouped",
    "Scheme",
    "UNGROUPABLE",
    "base_rate",
    "cmi",
    "drg_weights",
    "group_batch",
    "group_case",
    "load_scheme",
    "sample_scheme_dir",
    "weights_override_csv",
]


@dataclass(frozen=True)
class Grouped:
    """One case's grouping: DRG, ADRG, MDC, severity (none/cc/mcc), RW (× 10 000; None if the scheme sets none),
    branch."""

    drg: str
    adrg: str
    mdc: str
    severity: str
    rw_e4: int | None
    path: str  # surgical / medical / ambiguous / ungroupable
    status: str
    explain: tuple[str, ...] = ()


def sample_scheme_dir() -> Path:
    return schemes_root() / "sample"


def load_scheme(name_or_path: str | Path | None = None, on: dt.date | None = None) -> Grouper:
    """A scheme by name (the version in force ``on``) or directory; default the national CHS-DRG 1.1."""
    return load_grouper(name_or_path or DEFAULT_SCHEME, on)


def branch(g: Grouper, adrg: str, status: str) -> str:
    """How the case was placed: ``surgical`` (an ADRG with a procedure condition), ``medical``, ``ambiguous`` (QY),
    ``ungroupable``."""
    if status != "ok" and adrg != UNGROUPABLE:
        return "refused"
    if adrg == UNGROUPABLE:
        return "ungroupable"
    if adrg.endswith("QY") and adrg not in g.adrgs:
        return "ambiguous"
    a = g.adrgs[adrg]
    return "surgical" if a.proc_cond and a.proc_cond != "no_or" else "medical"


def group_case(
    scheme: Grouper,
    dise_codg,
    other_dise_codg=(),
    oprn_codg=(),
    age=40,
    *,
    gend="1",
    nwb_age="",
    nwb_bir_wt="",
    ipt_days="",
    case_id: str = "",
    explain: bool = False,
) -> Grouped:
    """Group one case; bad input raises :class:`PaymentInputError` naming the field."""
    r = scheme.group(
        case_id=case_id or "1",
        gend=gend,
        age=age,
        nwb_age=nwb_age,
        nwb_bir_wt=nwb_bir_wt,
        ipt_days=ipt_days,
        main_diag=dise_codg,
        other_diags=other_dise_codg,
        oprns=oprn_codg,
        explain=explain,
    )
    if r.status.startswith("refused: "):
        reason = r.status[len("refused: ") :]
        field = reason.split(":", 1)[0]
        raise PaymentInputError(
            (f"case {case_id}: " if case_id else "") + reason, reason, field=_CONTRACT_FIELD.get(field, field)
        )
    return Grouped(r.drg, r.adrg, r.mdc, r.severity, r.rw_e4, branch(scheme, r.adrg, r.status), r.status, r.path)


# the grouper's 结算清单 names -> the contract's encounter columns (for refusals)
_CONTRACT_FIELD = {"main_diag": "dise_codg", "other_diags": "other_dise_codg", "oprns": "oprn_codg"}


def group_batch(scheme: Grouper, cases: pd.DataFrame) -> pd.DataFrame:
    """Group many contract cases (``dise_codg, other_dise_codg, oprn_codg, age``; optional ``gend``, ``mdtrt_id``,
    ``nwb_age``, ``nwb_bir_wt``, ``ipt_days``).  Returns ``drg, adrg, mdc, severity, rw_e4, path, status``
    aligned with ``cases``; a case with bad input has ``status`` ``refused: …`` and empty groups."""
    n = len(cases)
    frame = pd.DataFrame({
        "case_id": cases["mdtrt_id"].astype(str).to_numpy() if "mdtrt_id" in cases else [str(i) for i in range(n)],
        "gend": cases["gend"].to_numpy() if "gend" in cases else ["1"] * n,
        "age": cases["age"].to_numpy(),
        "nwb_age": cases["nwb_age"].to_numpy() if "nwb_age" in cases else [None] * n,
        "nwb_bir_wt": cases["nwb_bir_wt"].to_numpy() if "nwb_bir_wt" in cases else [None] * n,
        "ipt_days": cases["ipt_days"].to_numpy() if "ipt_days" in cases else [None] * n,
        "main_diag": cases["dise_codg"].to_numpy(),
        "other_diags": cases["other_dise_codg"].to_numpy(),
        "oprns": cases["oprn_codg"].to_numpy(),
    })  # fmt: skip
    out = scheme.group_frame(frame)
    kinds = {a: branch(scheme, a, "ok") for a in out.adrg.unique() if a}
    path = [kinds[a] if s == "ok" or a == UNGROUPABLE else "refused" for a, s in zip(out.adrg, out.status, strict=True)]
    return pd.DataFrame(
        {
            "drg": out.drg.to_numpy(),
            "adrg": out.adrg.to_numpy(),
            "mdc": out.mdc.to_numpy(),
            "severity": out.severity.to_numpy(),
            "rw_e4": out.rw_e4.to_numpy(),
            "path": path,
            "status": out.status.to_numpy(),
        },
        index=cases.index,
    )


def require_weights(grouped: pd.DataFrame, scheme: Grouper) -> None:
    """Every grouped case's DRG must carry a relative weight (a payment run cannot price it otherwise)."""
    paid = grouped[(grouped.status == "ok")]
    missing = paid[paid.rw_e4.isna()]
    if len(missing):
        drgs = sorted(missing.drg.unique())[:5]
        raise PaymentInputError(
            f"scheme {scheme.name} {scheme.version} sets no relative weight for {missing.drg.nunique()} DRG(s) with "
            "cases "
            f"(e.g. {drgs}); use a region's scheme with weights (e.g. {REGION_SCHEME}) or set them with "
            "'yibao payment drg weights'",
            f"分组方案 {scheme.name} 未设置相对权重 (例如 {drgs})",
            field="rw",
        )


# --- weights, base rate, CMI --------------------------------------------------------------------


def drg_weights(grouped: pd.DataFrame, cost_col: str = "medfee_sumamt") -> pd.DataFrame:
    """RW per DRG from data: group mean cost ÷ overall mean cost, rounded half up to 4 places (exact integers)."""
    from yibao.payment.catalog import round_div

    g = grouped[grouped.drg != UNGROUPABLE]
    if "status" in g:
        g = g[g.status == "ok"]
    n_all, s_all = len(g), int(g[cost_col].sum())
    agg = g.groupby("drg")[cost_col].agg(["count", "sum"]).reset_index()
    agg["rw_e4"] = [
        round_div(int(s) * n_all * E4, int(c) * s_all) for c, s in zip(agg["count"], agg["sum"], strict=True)
    ]
    agg["mean_cost_fen"] = [round_div(int(s), int(c)) for c, s in zip(agg["count"], agg["sum"], strict=True)]
    return agg.rename(columns={"count": "n_cases", "sum": "total_cost_fen"})


def base_rate(budget_fen: int, total_rw_e4: int) -> Decimal:
    """Base rate (费率) in yuan per RW unit: budget ÷ total RW of the period's cases."""
    if total_rw_e4 <= 0:
        raise PaymentInputError("total RW is zero: no base rate", "总权重为零, 无法计算费率", field="rw")
    return (Decimal(budget_fen) / 100 / (Decimal(total_rw_e4) / E4)).quantize(Decimal("0.01"))


def cmi(grouped: pd.DataFrame, by: str = "fixmedins_code") -> pd.DataFrame:
    """Case-mix index (CMI) = mean RW of the grouped cases of each institution (ungroupable cases left out)."""
    g = grouped[grouped.drg != UNGROUPABLE]
    if "status" in g:
        g = g[g.status == "ok"]
    out = g.groupby(by).agg(n_cases=("rw_e4", "size"), total_rw_e4=("rw_e4", "sum")).reset_index()
    out["total_rw_e4"] = out["total_rw_e4"].astype("int64")
    out["cmi"] = (out.total_rw_e4 / out.n_cases / E4).round(4)  # an index for display, not money
    return out


def weights_override_csv(
    scheme: Grouper, grouped: pd.DataFrame, cost_col: str = "medfee_sumamt", *, label: str = ""
) -> str:
    """A local scheme's ``drg.csv``: every DRG of ``scheme`` with its RW recomputed from ``grouped`` cases.

    A DRG with cases takes its own mean ÷ the overall mean; one without cases its
    ADRG's; an ADRG without cases 1.  QY groups take their MDC's mean ÷ the overall
    mean where they have cases (else 1); ``0000`` gets no weight (not paid by DRG).
    """
    from yibao.payment.catalog import round_div

    g = grouped[(grouped.drg != UNGROUPABLE) & (grouped.get("status", "ok") == "ok")]
    if g.empty:
        raise PaymentInputError("no grouped cases to compute weights from", "无已入组病例, 无法计算权重", field="rw")
    n_all, s_all = len(g), int(g[cost_col].sum())
    own: Any = drg_weights(g, cost_col).set_index("drg")["rw_e4"]  # Any: pandas-stubs type its items as any scalar
    ad: Any = g.groupby("adrg")[cost_col].agg(["count", "sum"])  # Any: as ``own``

    def rw_text(rw: int) -> str:
        return str((Decimal(rw) / E4).quantize(Decimal("0.0001")))

    buf = io.StringIO()
    for line in (
        label or f"Relative weights computed from {n_all:,} grouped cases (group mean cost / overall mean cost)."
    ).splitlines():
        buf.write(f"# {line}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["drg", "adrg", "seq", "severity", "rw"])
    for a in scheme.adrgs.values():
        for d in a.drgs:
            if d.code in own.index:
                rw = int(own[d.code])
            elif a.code in ad.index:
                rw = round_div(int(ad.loc[a.code, "sum"]) * n_all * E4, int(ad.loc[a.code, "count"]) * s_all)
            else:
                rw = E4
            sev = "|".join(x for i, x in enumerate(("none", "cc", "mcc")) if i in d.severities)
            w.writerow([d.code, a.code, d.seq, sev, rw_text(rw)])
    for m in scheme.mdcs:
        if m.ambiguous_group:
            code = f"{m.code}QY"
            rw = int(own[code]) if code in own.index else E4
            w.writerow([code, code, 1, "mcc|cc|none", rw_text(rw)])
    return buf.getvalue()
