"""SYNTHETIC VBP rounds (合成集采数据): catalog, firms, bids, demand, firm
relations with injected integrity patterns (and their ground truth), orders
and inventory reports.

Drug names and contents come from the shipped (synthetic) medical list of
:mod:`yibao.codes.medlist` so a round's drugs link to ``med_list_codg``.
Firms, prices, volumes and relations are invented: every round is marked
``synthetic`` and no figure here is official.  Same seed, same round.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from yibao.codes.medlist import MedList
from yibao.procurement.domain import Bid, CatalogEntry, Firm, RoundInput, Spec
from yibao.procurement.integrity import Relation

_NAME_RE = re.compile(r"^(?P<name>\S+)\s+(?:(?P<fill>[\d.]+)ml:)?(?P<num>[\d.]+)(?P<unit>mg|g)$")


def provinces() -> list[str]:
    p = Path(str(resources.files("yibao") / "data" / "procurement" / "provinces.csv"))
    return pd.read_csv(p, dtype=str, comment="#")["admdvs"].tolist()


@dataclass
class SynthRound:
    """A synthetic round and the extra tables monitoring and integrity need."""

    round: RoundInput
    relations: list[Relation]
    ground_truth: pd.DataFrame  # entity, pattern
    last_year_nonwinning: pd.DataFrame = field(default_factory=pd.DataFrame)


def _drugs_from_medlist() -> list[tuple[str, str, Decimal, Decimal | None, str, bool]]:
    out = []
    for it in MedList.load():
        if it.list_kind != "western":
            continue
        m = _NAME_RE.match(it.name)
        if not m:
            continue
        mg = Decimal(m["num"]) * (1000 if m["unit"] == "g" else 1)
        fill = Decimal(m["fill"]) if m["fill"] else None
        name = m["name"]
        if "注射" in name:
            form = "large_injection" if fill is not None and fill >= 50 else "small_injection"
        elif "片" in name or "胶囊" in name:
            form = "oral_solid"
        else:
            form = "other"
        out.append((it.med_list_codg, name, mg, fill, form, it.drug_class == "antimicrobial"))
    return out


def generate_round(
    *,
    drugs: int = 10,
    specs_per_drug: tuple[int, int] = (1, 3),
    bidders_per_drug: tuple[int, int] = (4, 10),
    institutions: int = 200,
    lines_per_institution: int = 8,
    regions: int = 8,
    seed: int = 0,
    round_date: dt.date = dt.date(2025, 3, 1),
    integrity_cases: int = 1,
) -> SynthRound:
    """A whole synthetic round.  Demand is vectorised (tens of thousands of institutions are fine)."""
    rng = np.random.default_rng(seed)
    pool = _drugs_from_medlist()
    if drugs > len(pool):
        # more drugs than the list has: reuse names with a suffix (still synthetic)
        pool = [
            (c, f"{n}" if k == 0 else f"{n}-{k}", mg, fill, form, ab)
            for k in range(drugs // len(pool) + 1)
            for (c, n, mg, fill, form, ab) in pool
        ]
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), size=drugs, replace=False))]
    provs = provinces()[:regions]
    catalog: dict[str, CatalogEntry] = {}
    for di, (code, name, mg, fill, form, ab) in enumerate(chosen):
        did = f"D{di + 1:03d}"
        n_spec = int(rng.integers(specs_per_drug[0], specs_per_drug[1] + 1))
        base_unit_yuan = Decimal(int(rng.integers(50, 3000))) / 100  # list unit price 0.50 .. 30.00 yuan (invented)
        specs = []
        for si in range(n_spec):
            content = mg * (2**si)
            upp = int(rng.choice([7, 14, 28, 30])) if form == "oral_solid" else int(rng.choice([1, 5, 10]))
            unit = base_unit_yuan * Decimal("1.7") ** si
            max_price = (unit * upp).quantize(Decimal("0.01"))
            specs.append(Spec(f"{did}-S{si + 1}", did, content, upp, int(max_price * 100), fill, False, si == 0))
        n_pass = int(rng.integers(3, 12))
        catalog[did] = CatalogEntry(
            did,
            name,
            form,
            tuple(specs),
            n_pass,
            n_pass + 1,
            ab,
            False,
            code,
            listed_avg_price_fen=specs[0].max_price_fen * 2,
            provincial_highest_win_fen=specs[0].max_price_fen,
        )
    # firms
    n_firms = max(bidders_per_drug[1] * 3, 20)
    firms: dict[str, Firm] = {}
    grades = np.array(["good", "good", "good", "ordinary", "medium", "severe"])
    for fi in range(n_firms):
        fid = f"F{fi + 1:03d}"
        fails = (round_date - dt.timedelta(days=int(rng.integers(30, 600))),) if rng.random() < 0.03 else ()
        firms[fid] = Firm(
            fid,
            f"合成药业{fi + 1:03d} (synthetic)",
            str(grades[rng.integers(0, len(grades))] if rng.random() < 0.2 else "good"),
            fails,
            bool(rng.random() < 0.15),
            int(rng.integers(0, 31)),
            round_date - dt.timedelta(days=int(rng.integers(365, 365 * 30))),
            int(rng.integers(5, 200)),
            int(rng.integers(5, 200)),
            False,
        )
    fids = list(firms)
    bids: list[Bid] = []
    # demand (vectorised)
    n_lines = institutions * lines_per_institution
    all_specs = [(s.drug_id, s.spec_id) for e in catalog.values() for s in e.specs]
    inst = np.repeat(np.arange(institutions), lines_per_institution)
    pick = rng.integers(0, len(all_specs), n_lines)
    inst_region = rng.integers(0, len(provs), institutions)
    units = rng.lognormal(mean=8.0, sigma=1.0, size=n_lines).astype(np.int64) + 1
    demand = (
        pd.DataFrame(
            {
                "institution_id": np.char.add("H", np.char.zfill(inst.astype(str), 6)),
                "region": np.array(provs, dtype=object)[inst_region[inst]],
                "drug_id": np.array([d for d, _ in all_specs], dtype=object)[pick],
                "spec_id": np.array([s for _, s in all_specs], dtype=object)[pick],
                "units": units,
                "brand_firm_id": "",
                "historical_units": (units * rng.uniform(0.9, 1.4, n_lines)).astype(np.int64),
            }
        )
        .drop_duplicates(["institution_id", "drug_id", "spec_id"])
        .reset_index(drop=True)
    )
    base = demand.groupby("drug_id")["units"].sum().to_dict()
    for did, e in catalog.items():
        nb = int(rng.integers(bidders_per_drug[0], bidders_per_drug[1] + 1))
        who = rng.choice(len(fids), size=min(nb, len(fids)), replace=False)
        for wi in who:
            fid = fids[int(wi)]
            cut = rng.beta(2.5, 2.0) * 0.9  # invented cut distribution
            for s in e.specs:
                if s is not e.specs[0] and rng.random() < 0.5:
                    continue
                price = max(1, int(s.max_price_fen * (1 - cut)))
                bids.append(
                    Bid(
                        f"B{len(bids) + 1:05d}",
                        did,
                        s.spec_id,
                        fid,
                        price,
                        capacity_units=int(base.get(did, 1000) * rng.uniform(0.5, 4)),
                        sales_volume=int(rng.lognormal(10, 1.5)),
                        consistency_date=round_date - dt.timedelta(days=int(rng.integers(100, 2000))),
                        first_registration_date=round_date - dt.timedelta(days=int(rng.integers(1000, 9000))),
                        national_highest_price_fen=int(s.max_price_fen * rng.uniform(0.8, 1.2)),
                        tech_score=Decimal(int(rng.integers(40, 100))),
                        accept_revival=bool(rng.random() < 0.5),
                    )
                )
    # brand reports: a quarter of lines name a bidder of that drug as brand
    bidders_of: dict[str, list[str]] = {}
    for b in bids:
        bidders_of.setdefault(b.drug_id, []).append(b.firm_id)
    brand_mask = rng.random(len(demand)) < 0.25
    demand.loc[brand_mask, "brand_firm_id"] = [
        bidders_of[d][int(rng.integers(0, len(bidders_of[d])))] if d in bidders_of else ""
        for d in demand.loc[brand_mask, "drug_id"]
    ]
    # relations + injected integrity patterns (ground truth)
    relations: list[Relation] = []
    truth = []
    bid_drugs = sorted({b.drug_id for b in bids})
    for case in range(integrity_cases):
        did = bid_drugs[case % len(bid_drugs)]
        holders = sorted({b.firm_id for b in bids if b.drug_id == did})
        orig = holders[0]
        new = f"N{case + 1:03d}"
        firms[new] = Firm(
            new,
            f"新设持有人{case + 1:03d} (synthetic)",
            "good",
            (),
            True,
            0,
            round_date - dt.timedelta(days=400),
            18,
            2,
            False,
        )
        relations.append(Relation(orig, new, "licence_transfer", did, round_date - dt.timedelta(days=300)))
        relations.append(Relation(new, orig, "contract_manufacturing", did))
        spec = catalog[did].specs[0]
        bids.append(
            Bid(
                f"B{len(bids) + 1:05d}",
                did,
                spec.spec_id,
                new,
                int(spec.max_price_fen * 0.3),
                capacity_units=int(base.get(did, 1000) * 3),
                sales_volume=1000,
                contract_manufacturer=orig,
                consistency_date=round_date - dt.timedelta(days=200),
            )
        )
        truth += [(new, "licence_transfer_contract_back"), (new, "new_sales_heavy_holder")]
    inp = RoundInput(
        f"synthetic-round-{seed}", round_date, catalog, firms, bids, demand, frozenset(), True, tuple(provs)
    )
    gt = pd.DataFrame(truth, columns=["entity", "pattern"])
    # pandas-stubs type groupby(as_index=False)[col].sum() as a Series; it is a DataFrame
    ly = cast(pd.DataFrame, demand.groupby(["institution_id", "drug_id"], as_index=False)["historical_units"].sum())
    ly["nonwinning_units"] = (ly["historical_units"] // 5).astype("int64")
    return SynthRound(inp, relations, gt, ly[["institution_id", "drug_id", "nonwinning_units"]])


def generate_orders(
    contracts: pd.DataFrame, *, months: int = 6, seed: int = 0, lag_share: float = 0.1, nonwinning_share: float = 0.05
) -> pd.DataFrame:
    """SYNTHETIC monthly purchase orders against contracts.

    Most institutions buy about 1/12 of the agreed volume a month; a share
    ``lag_share`` of institutions lag (buy ~half); a few orders go to a
    non-winning product (supplier ``NONWIN``).
    """
    rng = np.random.default_rng(seed)
    if not len(contracts):
        return pd.DataFrame(columns=["order_id", "institution_id", "drug_id", "spec_id", "supplier", "units", "month"])
    insts = contracts["institution_id"].unique()
    laggard = set(insts[rng.random(len(insts)) < lag_share])
    frames = []
    for mth in range(1, months + 1):
        c = contracts
        pace = np.where(c["institution_id"].isin(laggard), 0.5, 1.0) * rng.uniform(0.85, 1.2, len(c))
        u = np.maximum(0, (c["agreed_units"].to_numpy() / 12 * pace)).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "institution_id": c["institution_id"].to_numpy(),
                    "drug_id": c["drug_id"].to_numpy(),
                    "spec_id": c["spec_id"].to_numpy(),
                    "supplier": c["supplier"].to_numpy(),
                    "units": u,
                    "month": mth,
                }
            )
        )
        nw = rng.random(len(c)) < nonwinning_share
        frames.append(
            pd.DataFrame(
                {
                    "institution_id": c["institution_id"].to_numpy()[nw],
                    "drug_id": c["drug_id"].to_numpy()[nw],
                    "spec_id": c["spec_id"].to_numpy()[nw],
                    "supplier": "NONWIN",
                    "units": (u[nw] // 3) + 1,
                    "month": mth,
                }
            )
        )
    o = pd.concat(frames, ignore_index=True)
    o = o[o["units"] > 0].reset_index(drop=True)
    o.insert(0, "order_id", [f"O{i + 1:08d}" for i in range(len(o))])
    return o


def generate_inventory(
    contracts: pd.DataFrame, *, months: int = 6, seed: int = 0, missing_share: float = 0.05
) -> pd.DataFrame:
    """SYNTHETIC monthly inventory reports of winners (some missing, some low)."""
    rng = np.random.default_rng(seed)
    need = contracts.groupby(["supplier", "drug_id"], as_index=False)["agreed_units"].sum()
    rows = []
    for r in need.itertuples():
        for m in range(1, months + 1):
            if rng.random() < missing_share:
                continue
            rows.append((r.supplier, r.drug_id, m, int(r.agreed_units / 12 * rng.uniform(0.3, 3.0))))
    return pd.DataFrame(rows, columns=["supplier", "drug_id", "month", "stock_units"])
