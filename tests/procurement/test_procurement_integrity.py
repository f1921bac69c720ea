"""Bid integrity: named checks flag constructed cases with evidence and leave ordinary firms alone;
slot reductions change selection only under rule sets that have them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from yibao.procurement.domain import Bid, CatalogEntry, Firm, Spec
from yibao.procurement.engine import evaluate_drug
from yibao.procurement.integrity import Relation, build_graph, check_round, slot_groups
from yibao.procurement.params import get_ruleset

DAY = dt.date(2025, 3, 1)
OLD = dt.date(2005, 1, 1)


def _entry():
    return CatalogEntry(
        "D1",
        "溴己新注射液",
        "small_injection",
        (Spec("S1", "D1", D(4), 1, 500, fill_ml=D(2), representative=True),),
        5,
        8,
    )


def _firms(**extra):
    f = {x: Firm(x, x, founded=OLD, staff_sales_finance=40, staff_rd_qc=60) for x in ("ORIG", "IND1", "IND2")}
    f.update(extra)
    return f


def test_transfer_and_contract_back_is_flagged_with_evidence():
    firms = _firms(
        NEW=Firm("NEW", "新设持有人", b_cert=True, founded=dt.date(2024, 6, 1), staff_sales_finance=9, staff_rd_qc=1)
    )
    rel = [Relation("ORIG", "NEW", "licence_transfer", "D1", dt.date(2024, 8, 1))]
    bids = [
        Bid("b1", "D1", "S1", "ORIG", 100),
        Bid("b2", "D1", "S1", "NEW", 101, contract_manufacturer="ORIG"),
        Bid("b3", "D1", "S1", "IND1", 120),
        Bid("b4", "D1", "S1", "IND2", 130),
    ]
    g = build_graph(firms, rel, bids)
    flags = check_round(g, bids, get_ruleset("national-batch-10"), DAY)
    by = {f.check: f for f in flags}
    assert set(by) == {
        "licence_transfer_contract_back",
        "manufacturer_is_bidder",
        "strong_association",
        "contract_only_holder",
        "transfer_hidden_tie",
        "new_sales_heavy_holder",
    }
    f = by["licence_transfer_contract_back"]
    assert f.firms == ("NEW", "ORIG") and f.drug_id == "D1"
    assert f.evidence == (
        "ORIG transferred the licence of D1 to NEW on 2024-08-01",
        "NEW contracts manufacturing of D1 back to ORIG",
        "both ORIG and NEW bid for D1",
    )
    assert by["strong_association"].firms == ("NEW", "ORIG")
    assert "90%" in by["new_sales_heavy_holder"].evidence[1]
    # the independent firms appear in no flag
    assert not any({"IND1", "IND2"} & set(x.firms) for x in flags)


def test_ordinary_independent_firms_are_not_flagged():
    firms = _firms()
    bids = [Bid("b1", "D1", "S1", "ORIG", 100), Bid("b3", "D1", "S1", "IND1", 120), Bid("b4", "D1", "S1", "IND2", 130)]
    # a contract manufacturer that does not bid, used by one firm only, is ordinary
    bids[1] = Bid("b3", "D1", "S1", "IND1", 120, contract_manufacturer="CMO")
    assert check_round(build_graph(firms, [], bids), bids, get_ruleset("national-batch-10"), DAY) == []


def test_distributor_agent_for_several_bidders():
    firms = _firms(
        DIST=Firm("DIST", "经营转持有人", former_distributor=True, founded=OLD, staff_sales_finance=5, staff_rd_qc=5)
    )
    rel = [Relation("DIST", "IND1", "agent"), Relation("DIST", "IND2", "agent")]
    bids = [Bid("b0", "D1", "S1", "DIST", 90), Bid("b3", "D1", "S1", "IND1", 120), Bid("b4", "D1", "S1", "IND2", 130)]
    flags = check_round(build_graph(firms, rel, bids), bids, get_ruleset("national-batch-10"), DAY)
    assert [(f.check, f.firms) for f in flags] == [("distributor_agent_for_bidders", ("DIST", "IND1", "IND2"))]
    # agent for one bidder only: below the threshold (2)
    flags = check_round(build_graph(firms, rel[:1], bids), bids, get_ruleset("national-batch-10"), DAY)
    assert flags == []


def test_shared_contract_manufacturer_counts_as_one_slot_only_under_batch_10():
    # seven bidders, three of which contract to the same manufacturer M; all within 1.8x
    e = _entry()
    bids = [
        Bid(f"b{i}", "D1", "S1", f, p, contract_manufacturer=m)
        for i, (f, p, m) in enumerate(
            [
                ("A", 100, "M"),
                ("B", 101, "M"),
                ("C", 102, "M"),
                ("D", 103, ""),
                ("E", 104, ""),
                ("F", 105, ""),
                ("G", 106, ""),
            ]
        )
    ]
    firms = {b.firm_id: Firm(b.firm_id, b.firm_id) for b in bids}
    g = build_graph(firms, [], bids)
    r10 = evaluate_drug(
        e, bids, firms, get_ruleset("national-batch-10"), round_date=DAY, slot_group=slot_groups(g, bids)
    )
    # N = 7 eligible bidders but 5 slots -> batch-10 table gives 3 shortlisted (7 slots would give 4)
    assert r10.eligible_n == 7 and r10.effective_n == 5 and r10.max_winners == 3 and len(r10.winners) == 3
    assert "7 eligible bidders count as 5 slots" in r10.notes[0]
    r2 = evaluate_drug(
        e, bids, firms, get_ruleset("national-batch-02"), round_date=DAY, slot_group=slot_groups(g, bids)
    )
    assert r2.effective_n == 7 and r2.max_winners == 5


def test_b_certificate_holders_remove_slots():
    e = _entry()
    prices = list(range(100, 116))
    bids = [Bid(f"b{i}", "D1", "S1", f"F{i:02d}", p) for i, p in enumerate(prices)]

    def firms(n_b):
        return {b.firm_id: Firm(b.firm_id, b.firm_id, b_cert=i < n_b) for i, b in enumerate(bids)}

    r = get_ruleset("national-batch-10")
    # 16 eligible -> 10 shortlisted; 2 B-cert holders remove 1, 5 remove 2, 8 still only 2 (capped)
    assert [evaluate_drug(e, bids, firms(n), r, round_date=DAY).max_winners for n in (0, 1, 2, 5, 8)] == [
        10,
        10,
        9,
        8,
        8,
    ]
    assert evaluate_drug(e, bids, firms(8), get_ruleset("national-batch-02"), round_date=DAY).max_winners == 10
