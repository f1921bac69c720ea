"""Bid integrity (投标价格异常治理): a graph of firms and named checks.

The graph (``networkx.MultiDiGraph``) has one node per firm (attributes:
founding date, staff mix, own plant or not, former distributor) and edges:

* ``contract_manufacturing`` holder → manufacturer (委托生产), per drug;
* ``licence_transfer`` old holder → new holder (上市许可转让), per drug, dated;
* ``agent`` agent → represented bidder (代理);
* ``control`` parent → controlled firm (股权/实际控制).

The checks are the patterns of seed 004 (the 2024 case of 4 injectables and
28 winning firms) and the batch-10 "strong association" (强关联) rules.
Each flag names the check, the drug, the firms and the evidence.  Thresholds
come from the rule set's ``integrity`` section.  A flag is a lead for review,
not a finding.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import networkx as nx
import pandas as pd

from yibao.procurement.domain import Bid, Firm, RoundInput
from yibao.procurement.params import IntegrityRules, RuleSet

EDGE_KINDS = ("contract_manufacturing", "licence_transfer", "agent", "control")

CHECKS = {
    "licence_transfer_contract_back": (
        "a holder transferred a licence to a new firm that contracts manufacturing back to it",
        "持有人将部分规格上市许可转让给新企业, 再由新企业委托原企业生产 (虚增投标主体)",
    ),
    "contract_only_holder": (
        "holder that only contracts out manufacturing (no own plant, B-certificate)",
        "仅委托生产的持有人 (B证), 资产轻、违法成本低",
    ),
    "distributor_agent_for_bidders": (
        "holder converted from a distributor that acts as agent for several bidders",
        "由经营企业转变的委托生产持有人, 同时代理多家投标企业产品",
    ),
    "transfer_hidden_tie": (
        "contract-only holder whose licence came by transfer from another bidder's side",
        "通过上市许可转让获得持有人身份, 与其他投标企业存在隐性关联",
    ),
    "manufacturer_is_bidder": (
        "a contract manufacturer that is itself a bidder for the same drug",
        "受托生产企业自身也是同品种投标持有人, 报价易形成默契",
    ),
    "new_sales_heavy_holder": (
        "newly founded holder whose staff are mostly sales and finance",
        "新成立持有人, 团队以营销和资本运作人员为主, 研发和质控人员少",
    ),
    "strong_association": (
        "bidders for one drug linked by control, licence transfer or a shared contract manufacturer (batch 10)",
        "同品种投标企业之间存在控制、转让或共用受托生产企业等强关联 (第十批)",
    ),
}


@dataclass(frozen=True)
class Relation:
    src: str
    dst: str
    kind: str
    drug_id: str = ""
    date: dt.date | None = None
    row: int = 0


@dataclass(frozen=True)
class Flag:
    check: str
    drug_id: str
    firms: tuple[str, ...]
    evidence: tuple[str, ...]

    @property
    def description_en(self) -> str:
        return CHECKS[self.check][0]

    @property
    def description_zh(self) -> str:
        return CHECKS[self.check][1]


def read_relations(path: str | Path, firms: dict[str, Firm] | None = None) -> list[Relation]:
    """Read ``relations.csv`` (src, dst, kind, drug_id, date) with clear errors."""
    from yibao.procurement.io import RoundInputError

    path = Path(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")
    out = []
    for i, r in enumerate(df.to_dict("records")):
        row = i + 2
        kind = r.get("kind", "").strip()
        if kind not in EDGE_KINDS:
            raise RoundInputError(
                path.name, row, "kind", f"unknown relation kind {kind!r}; one of {EDGE_KINDS}", f"未知关系类型 {kind!r}"
            )
        for f in ("src", "dst"):
            v = r.get(f, "").strip()
            if not v:
                raise RoundInputError(path.name, row, f, "missing value", "缺少取值")
        d = r.get("date", "").strip()
        try:
            date = dt.date.fromisoformat(d) if d else None
        except ValueError:
            raise RoundInputError(
                path.name, row, "date", f"not a date YYYY-MM-DD: {d!r}", f"日期格式错误: {d!r}"
            ) from None
        out.append(Relation(r["src"].strip(), r["dst"].strip(), kind, r.get("drug_id", "").strip(), date, row))
    return out


def build_graph(firms: dict[str, Firm], relations: Iterable[Relation], bids: Iterable[Bid] = ()) -> nx.MultiDiGraph:
    """The firm graph; bids add ``contract_manufacturing`` edges from their contract_manufacturer column."""
    g = nx.MultiDiGraph()
    for f in firms.values():
        g.add_node(
            f.firm_id,
            name=f.name,
            founded=f.founded,
            b_cert=f.b_cert,
            sales_finance=f.staff_sales_finance,
            rd_qc=f.staff_rd_qc,
            former_distributor=f.former_distributor,
        )
    for r in relations:
        for n in (r.src, r.dst):
            if n not in g:
                g.add_node(n, name=n, founded=None, b_cert=False, sales_finance=0, rd_qc=0, former_distributor=False)
        g.add_edge(r.src, r.dst, key=f"{r.kind}:{r.drug_id}", kind=r.kind, drug_id=r.drug_id, date=r.date)
    for b in bids:
        if b.contract_manufacturer and b.contract_manufacturer != b.firm_id:
            if b.contract_manufacturer not in g:
                g.add_node(
                    b.contract_manufacturer,
                    name=b.contract_manufacturer,
                    founded=None,
                    b_cert=False,
                    sales_finance=0,
                    rd_qc=0,
                    former_distributor=False,
                )
            g.add_edge(
                b.firm_id,
                b.contract_manufacturer,
                key=f"contract_manufacturing:{b.drug_id}",
                kind="contract_manufacturing",
                drug_id=b.drug_id,
                date=None,
            )
    return g


def _edges(g: nx.MultiDiGraph, kind: str, drug: str | None = None):
    for u, v, d in g.edges(data=True):
        if d["kind"] == kind and (drug is None or not d["drug_id"] or d["drug_id"] == drug):
            yield u, v, d


def _bidders(bids: Iterable[Bid]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for b in bids:
        out.setdefault(b.drug_id, set()).add(b.firm_id)
    return out


def _licence_transfer_contract_back(g: nx.MultiDiGraph, drug: str, bidders: set[str]) -> list[Flag]:
    """Check 1: a firm transfers a licence, then the receiving bidder contracts manufacturing back to it."""
    flags: list[Flag] = []
    for u, v, d in _edges(g, "licence_transfer", drug):
        if (
            v in bidders
            and g.has_edge(v, u)
            and any(
                e["kind"] == "contract_manufacturing" and e["drug_id"] in ("", drug)
                for e in g.get_edge_data(v, u).values()
            )
        ):
            ev = [
                f"{u} transferred the licence of {drug} to {v}" + (f" on {d['date']}" if d["date"] else ""),
                f"{v} contracts manufacturing of {drug} back to {u}",
            ]
            if u in bidders:
                ev.append(f"both {u} and {v} bid for {drug}")
            flags.append(Flag("licence_transfer_contract_back", drug, tuple(sorted({u, v} & bidders | {v})), tuple(ev)))
    return flags


def _manufacturer_is_bidder(g: nx.MultiDiGraph, drug: str, bidders: set[str]) -> list[Flag]:
    """Check 5: a bidder's contract manufacturer is itself a bidder for the drug."""
    return [
        Flag(
            "manufacturer_is_bidder",
            drug,
            (u, v),
            (f"{u} contracts manufacturing of {drug} to {v}", f"{v} also bids for {drug}"),
        )
        for u, v, _d in _edges(g, "contract_manufacturing", drug)
        if u in bidders and v in bidders and u != v
    ]


def _strong_association(g: nx.MultiDiGraph, drug: str, bidders: set[str]) -> list[Flag]:
    """Check 7: connected components of bidders over control / transfer / shared manufacturer."""
    h = nx.Graph()
    h.add_nodes_from(bidders)
    why: dict[frozenset, str] = {}
    for kind in ("control", "licence_transfer"):
        for u, v, _d in _edges(g, kind, drug if kind == "licence_transfer" else None):
            if u in bidders and v in bidders:
                h.add_edge(u, v)
                why[frozenset((u, v))] = f"{kind.replace('_', ' ')} {u} -> {v}"
    makers: dict[str, list[str]] = {}
    for u, v, _d in _edges(g, "contract_manufacturing", drug):
        if u in bidders:
            makers.setdefault(v, []).append(u)
    for m, hs in makers.items():
        group = sorted(set(hs) | ({m} if m in bidders else set()))
        for a, b in itertools.pairwise(group):
            h.add_edge(a, b)
            why[frozenset((a, b))] = (
                f"{a} and {b} share contract manufacturer {m}"
                if m not in (a, b)
                else f"{a}/{b}: {m} manufactures for the other"
            )
    flags: list[Flag] = []
    for comp in nx.connected_components(h):
        if len(comp) >= 2:
            sub = h.subgraph(comp)
            ev = tuple(sorted(why[frozenset(e)] for e in sub.edges()))
            flags.append(Flag("strong_association", drug, tuple(sorted(comp)), ev))
    return flags


def _contract_only_holder(
    g: nx.MultiDiGraph, f: str, node: dict, drugs: list[str], all_bidders: set[str]
) -> list[Flag]:
    """A B-certificate holder (no own plant) with contract manufacturers; and licences it got from a linked bidder."""
    makers = [(v, d["drug_id"]) for _u, v, d in g.out_edges(f, data=True) if d["kind"] == "contract_manufacturing"]
    if not (node.get("b_cert") and makers):
        return []
    flags = [
        Flag(
            "contract_only_holder",
            ",".join(drugs),
            (f,),
            (
                f"{f} has no own plant (B-certificate)",
                "manufactured by " + ", ".join(sorted({m for m, _ in makers})),
            ),
        )
    ]
    transfers_in = [(u, d) for u, _v, d in g.in_edges(f, data=True) if d["kind"] == "licence_transfer"]
    for u, d in transfers_in:
        tied = (u in all_bidders) or any(x in all_bidders for x in nx.all_neighbors(g, u) if x != f)
        if tied:
            flags.append(
                Flag(
                    "transfer_hidden_tie",
                    d["drug_id"] or ",".join(drugs),
                    (f, u),
                    (
                        f"{f} got the licence of {d['drug_id'] or 'a drug'} by transfer from {u}",
                        f"{u} is, or is linked to, another bidder in this round",
                    ),
                )
            )
    return flags


def _distributor_agent_for_bidders(
    g: nx.MultiDiGraph, f: str, node: dict, drugs: list[str], all_bidders: set[str], ir: IntegrityRules
) -> list[Flag]:
    """A former distributor (经营企业) now holding licences and acting as agent for several bidders."""
    agent_for = sorted({v for _u, v, d in g.out_edges(f, data=True) if d["kind"] == "agent" and v in all_bidders})
    if not (node.get("former_distributor") and len(agent_for) >= ir.min_agent_bidders):
        return []
    return [
        Flag(
            "distributor_agent_for_bidders",
            ",".join(drugs),
            (f, *agent_for),
            (
                f"{f} was a distributor (经营企业) and now holds licences",
                f"{f} is agent for bidders {', '.join(agent_for)}",
            ),
        )
    ]


def _new_sales_heavy_holder(
    f: str, node: dict, drugs: list[str], ir: IntegrityRules, round_date: dt.date
) -> list[Flag]:
    """A young firm whose staff is mostly sales and finance rather than R&D and quality control."""
    founded = node.get("founded")
    sf, rq = node.get("sales_finance", 0), node.get("rd_qc", 0)
    if not (founded and sf + rq > 0):
        return []
    age_limit = round_date.replace(year=round_date.year - ir.new_firm_years)
    share = Fraction(sf, sf + rq)
    if not (founded >= age_limit and share >= Fraction(str(ir.sales_finance_share))):
        return []
    return [
        Flag(
            "new_sales_heavy_holder",
            ",".join(drugs),
            (f,),
            (
                f"founded {founded}, less than {ir.new_firm_years} years before the round ({round_date})",
                f"sales and finance staff {sf} of {sf + rq} "
                f"({float(share):.0%} >= {float(ir.sales_finance_share):.0%})",
            ),
        )
    ]


def check_round(g: nx.MultiDiGraph, bids: list[Bid], rules: RuleSet, round_date: dt.date) -> list[Flag]:
    """Run every named check over the bidders of a round."""
    flags: list[Flag] = []
    by_drug = _bidders(bids)
    all_bidders: set[str] = set().union(*by_drug.values()) if by_drug else set()
    ir = rules.integrity
    for drug, bidders in sorted(by_drug.items()):
        flags += _licence_transfer_contract_back(g, drug, bidders)
        flags += _manufacturer_is_bidder(g, drug, bidders)
        flags += _strong_association(g, drug, bidders)
    # firm-level checks (over every bidder of the round)
    for f in sorted(all_bidders):
        node = g.nodes[f] if f in g else {}
        drugs = sorted(d for d, bs in by_drug.items() if f in bs)
        flags += _contract_only_holder(g, f, node, drugs, all_bidders)
        flags += _distributor_agent_for_bidders(g, f, node, drugs, all_bidders, ir)
        flags += _new_sales_heavy_holder(f, node, drugs, ir, round_date)
    return flags


def slot_groups(g: nx.MultiDiGraph, bids: Iterable[Bid]):
    """A slot-group function for the engine: bidders of a drug sharing one contract manufacturer count as one."""
    label: dict[tuple[str, str], str] = {}
    by_drug = _bidders(bids)
    for drug, bidders in by_drug.items():
        h = nx.Graph()
        h.add_nodes_from(bidders)
        for u, v, _d in _edges(g, "contract_manufacturing", drug):
            if u in bidders:
                h.add_edge(u, "mfr:" + v)
                if v in bidders:
                    h.add_edge(v, "mfr:" + v)
        for comp in nx.connected_components(h):
            members = sorted(x for x in comp if not x.startswith("mfr:"))
            for m in members:
                label[(drug, m)] = "slot:" + members[0]

    def lookup(drug_id: str, firm_id: str) -> str | None:
        return label.get((drug_id, firm_id))

    return lookup


def check_input(inp: RoundInput, relations: list[Relation], rules: RuleSet) -> list[Flag]:
    g = build_graph(inp.firms, relations, inp.bids)
    return check_round(g, inp.bids, rules, inp.round_date)
