"""Round reports: Excel workbook, self-contained HTML, and OCDS JSON.

The OCDS export is a release package (Open Contracting Data Standard 1.1)
with the bids extension (``bids.details``): one release per drug, the tender
with its items (specifications), every bid with its status, the awards to
winners and the contracts (aggregated per supplier and region).  Synthetic
rounds say so in the package's ``publisher`` and each release's
``description``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
from jinja2 import Environment, select_autoescape

from yibao.core.exactjson import dumps_exact
from yibao.core.money import fmt_yuan
from yibao.procurement.domain import RoundInput
from yibao.procurement.engine import RoundResult

OCDS_PREFIX = "ocds-yibao0"  # placeholder prefix: a real publisher registers its own with the OCDS helpdesk


def drug_frame(inp: RoundInput, res: RoundResult) -> pd.DataFrame:
    rows = []
    for d in res.drugs.values():
        e = inp.catalog.get(d.drug_id)
        amount = (
            int(res.contracts.loc[res.contracts["drug_id"] == d.drug_id, "amount_fen"].sum())
            if len(res.contracts)
            else 0
        )
        rows.append(
            {
                "drug_id": d.drug_id,
                "generic_name": e.generic_name if e else "",
                "dosage_form": e.dosage_form if e else "",
                "in_catalog": d.entered,
                "bidders": len(d.outcomes),
                "eligible": d.eligible_n,
                "qualified": d.qualified_n,
                "effective_slots": d.effective_n,
                "max_winners": d.max_winners,
                "winners": len(d.winners),
                "procedure": d.procedure,
                "share": f"{d.share_bp / 100:.0f}%",
                "cycle_years": d.cycle_years,
                "anchor_yuan": str(Decimal(d.anchor_e4) / 10000) if d.anchor_e4 else "",
                "contract_amount_yuan": fmt_yuan(amount),
                "notes": "; ".join(d.notes),
            }
        )
    return pd.DataFrame(rows)


def region_frame(res: RoundResult) -> pd.DataFrame:
    rows = []
    for d in res.drugs.values():
        for r, f in sorted(d.primary.items()):
            rows.append(
                {"drug_id": d.drug_id, "region": r, "primary_supplier": f, "backup_supplier": d.backup.get(r, "")}
            )
    return pd.DataFrame(rows, columns=["drug_id", "region", "primary_supplier", "backup_supplier"])


def write_excel(inp: RoundInput, res: RoundResult, path: str | Path) -> Path:
    """The round as an Excel workbook: drugs, bidders with reasons, regions, agreed volumes, contracts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        info = pd.DataFrame(
            {
                "item": ["round", "rule set", "round date", "synthetic", "note"],
                "value": [
                    res.name,
                    res.ruleset_id,
                    inp.round_date.isoformat(),
                    res.synthetic,
                    "SYNTHETIC DATA 合成数据: not real bids" if res.synthetic else "",
                ],
            }
        )
        info.to_excel(xw, sheet_name="round", index=False)
        drug_frame(inp, res).to_excel(xw, sheet_name="drugs 品种", index=False)
        pd.DataFrame(res.outcome_rows()).to_excel(xw, sheet_name="bidders 企业", index=False)
        region_frame(res).to_excel(xw, sheet_name="regions 供应地区", index=False)
        c = res.contracts
        if len(c) > 1_000_000:
            c = c.groupby(["region", "drug_id", "spec_id", "supplier"], as_index=False)[
                ["agreed_units", "amount_fen"]
            ].sum()
        c.to_excel(xw, sheet_name="contracts 协议", index=False)
    return path


_HTML = """<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{{ name }} — VBP round report</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0;\
font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}.won{background:#e6f6e6}.revived{background:#fff4d6}\
.ineligible{color:#888}
.synthetic{background:#ffeb3b;padding:6px;font-weight:bold}</style></head><body>
{% if synthetic %}<p class="synthetic">SYNTHETIC DATA 合成数据 — the figures describe a simulation, not a real round\
</p>{% endif %}
<h1>集采结果 VBP round: {{ name }}</h1>
<p>Rule set <b>{{ ruleset }}</b> · round date {{ date }} · {{ drugs|length }} drugs · contracts ¥{{ total }}</p>
{% for w in warnings %}<p>⚠ {{ w }}</p>{% endfor %}
<h2>Drugs 品种</h2><table><tr>{% for c in drug_cols %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in drugs %}<tr>{% for c in drug_cols %}<td>{{ r[c] }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>Bidders and reasons 企业中选情况及原因</h2><table><tr><th>drug</th><th>firm</th><th>rank</th><th>status</th>\
<th>unit comparable ¥</th><th>reason</th><th>原因</th></tr>
{% for r in bidders %}<tr class="{{ r.status }}"><td>{{ r.drug_id }}</td><td>{{ r.firm_id }}</td><td>{{ r.rank or '' }}\
</td><td>{{ r.status }}</td>
<td>{{ r.comparable_yuan }}</td><td>{{ r.reason_en }}</td><td>{{ r.reason_zh }}</td></tr>{% endfor %}</table>
<h2>Supply regions 供应地区</h2><table><tr><th>drug</th><th>region</th><th>primary 主供</th><th>backup 备供</th></tr>
{% for r in regions %}<tr><td>{{ r.drug_id }}</td><td>{{ r.region }}</td><td>{{ r.primary_supplier }}</td>\
<td>{{ r.backup_supplier }}</td></tr>{% endfor %}</table>
{% if integrity %}<h2>Bid integrity flags 投标异常线索</h2><table><tr><th>check</th><th>drug</th><th>firms</th>\
<th>evidence</th></tr>
{% for f in integrity %}<tr><td>{{ f.check }}</td><td>{{ f.drug_id }}</td><td>{{ f.firms|join(', ') }}</td>\
<td>{{ f.evidence|join(' · ') }}</td></tr>{% endfor %}</table>{% endif %}
</body></html>"""


def render_html(inp: RoundInput, res: RoundResult, path: str | Path | None = None, flags: list | None = None) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    df = drug_frame(inp, res)
    total = int(res.contracts["amount_fen"].sum()) if len(res.contracts) else 0
    text = env.from_string(_HTML).render(
        name=res.name,
        ruleset=res.ruleset_id,
        date=inp.round_date.isoformat(),
        synthetic=res.synthetic,
        warnings=res.warnings,
        drugs=df.to_dict("records"),
        drug_cols=list(df.columns),
        bidders=res.outcome_rows(),
        regions=region_frame(res).to_dict("records"),
        total=fmt_yuan(total),
        integrity=flags or [],
    )
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    return text


def _value(fen: int) -> dict:
    return {
        "amount": (Decimal(fen) / 100).quantize(Decimal("0.01")),
        "currency": "CNY",
    }  # exact yuan, written by dumps_exact


def to_ocds(inp: RoundInput, res: RoundResult, published: dt.datetime | None = None) -> dict:
    """An OCDS 1.1 release package with the bids extension."""
    published = published or dt.datetime.combine(
        inp.round_date, dt.time(0, 0), tzinfo=dt.timezone(dt.timedelta(hours=8))
    )
    date = published.isoformat()
    releases = []
    bids_by_drug: dict[str, list] = {}
    for b in inp.bids:
        bids_by_drug.setdefault(b.drug_id, []).append(b)
    for drug_id, d in res.drugs.items():
        e = inp.catalog[drug_id]
        ocid = f"{OCDS_PREFIX}-{res.name}-{drug_id}"
        status = {o.firm_id: o for o in d.outcomes}
        parties = [
            {
                "id": "buyer-alliance",
                "name": "联合采购办公室 (joint procurement office)",
                "roles": ["buyer", "procuringEntity"],
            }
        ]
        parties += [
            {"id": f, "name": inp.firms[f].name, "roles": ["tenderer"] + (["supplier"] if status[f].won else [])}
            for f in sorted(status)
        ]
        details = []
        for b in bids_by_drug.get(drug_id, []):
            o = status.get(b.firm_id)
            details.append(
                {
                    "id": b.bid_id,
                    "date": date,
                    "status": "valid" if o and o.status != "ineligible" else "disqualified",
                    "tenderers": [{"id": b.firm_id, "name": inp.firms[b.firm_id].name}],
                    "value": _value(b.price_fen),
                    "items": [{"id": b.spec_id}],
                }
            )
        awards, contracts = [], []
        for w in d.winners:
            aid = f"{ocid}-award-{w.firm_id}"
            c = (
                res.contracts[(res.contracts["drug_id"] == drug_id) & (res.contracts["supplier"] == w.firm_id)]
                if len(res.contracts)
                else res.contracts
            )
            amount = int(c["amount_fen"].sum()) if len(c) else 0
            awards.append(
                {
                    "id": aid,
                    "status": "active",
                    "date": date,
                    "title": w.reason_en,
                    "suppliers": [{"id": w.firm_id, "name": inp.firms[w.firm_id].name}],
                    "value": _value(amount),
                }
            )
            contracts.append(
                {
                    "id": f"{ocid}-contract-{w.firm_id}",
                    "awardID": aid,
                    "status": "pending",
                    "value": _value(amount),
                    "period": {"durationInDays": 365 * max(d.cycle_years, 1)},
                }
            )
        releases.append(
            {
                "ocid": ocid,
                "id": f"{ocid}-{res.ruleset_id}",
                "date": date,
                "tag": ["award"],
                "initiationType": "tender",
                "language": "zh",
                "parties": parties,
                "buyer": {"id": "buyer-alliance", "name": parties[0]["name"]},
                "description": ("SYNTHETIC DATA 合成数据. " if res.synthetic else "") + f"rule set {res.ruleset_id}",
                "tender": {
                    "id": f"{ocid}-tender",
                    "title": e.generic_name,
                    "status": "complete",
                    "procurementMethod": "open",
                    "procurementMethodDetails": "volume-based procurement 带量采购"
                    + (" (negotiation 议价)" if d.procedure == "negotiation" else ""),
                    "items": [
                        {
                            "id": s.spec_id,
                            "description": f"{e.generic_name} {s.content_mg}mg x{s.units_per_pack}",
                            "unit": {"name": "pack", "value": _value(s.max_price_fen)}
                            if s.max_price_fen
                            else {"name": "pack"},
                        }
                        for s in e.specs
                    ],
                    "numberOfTenderers": len(d.outcomes),
                },
                "bids": {"details": details},
                "awards": awards,
                "contracts": contracts,
            }
        )
    return {
        "uri": f"https://example.invalid/yibao/{res.name}.json",
        "version": "1.1",
        "publishedDate": date,
        "publisher": {"name": "yibao" + (" (SYNTHETIC DATA)" if res.synthetic else "")},
        "extensions": [
            "https://raw.githubusercontent.com/open-contracting-extensions/ocds_bid_extension/master/extension.json"
        ],
        "releases": releases,
    }


# The parts of the OCDS 1.1 release schema and the bids extension that this export relies on
# (a subset written from the published schema's required fields and code lists).  It is the FALLBACK:
# with a local copy of the published schema (YIBAO_OCDS_SCHEMA or --ocds-schema, see
# yibao.procurement.ocds_schema) the export is validated against the full schema and the bids extension.
OCDS_SUBSET_SCHEMA = {
    "type": "object",
    "required": ["uri", "publishedDate", "publisher", "releases", "version"],
    "properties": {
        "version": {"const": "1.1"},
        "publisher": {"type": "object", "required": ["name"]},
        "releases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["ocid", "id", "date", "tag", "initiationType"],
                "properties": {
                    "ocid": {"type": "string", "pattern": "^ocds-[a-z0-9]{6}-"},
                    "tag": {
                        "type": "array",
                        "items": {
                            "enum": [
                                "planning",
                                "planningUpdate",
                                "tender",
                                "tenderAmendment",
                                "tenderUpdate",
                                "tenderCancellation",
                                "award",
                                "awardUpdate",
                                "awardCancellation",
                                "contract",
                                "contractUpdate",
                                "contractAmendment",
                                "implementation",
                                "implementationUpdate",
                                "contractTermination",
                                "compiled",
                            ]
                        },
                    },
                    "initiationType": {"const": "tender"},
                    "bids": {
                        "type": "object",
                        "properties": {
                            "details": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["id"],
                                    "properties": {
                                        "status": {
                                            "enum": ["invited", "pending", "valid", "disqualified", "withdrawn"]
                                        },
                                        "value": {"type": "object", "required": ["amount", "currency"]},
                                    },
                                },
                            }
                        },
                    },
                    "awards": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"status": {"enum": ["pending", "active", "cancelled", "unsuccessful"]}},
                        },
                    },
                    "contracts": {"type": "array", "items": {"type": "object", "required": ["id", "awardID"]}},
                },
            },
        },
    },
}


def validate_ocds(package: dict, schema: str | Path | None = None) -> list[str]:
    """Validate the export; returns the error messages.

    Against the full published OCDS 1.1 schema patched with the bids extension when a local copy is
    given (``schema`` or ``YIBAO_OCDS_SCHEMA``), else against :data:`OCDS_SUBSET_SCHEMA`
    (:func:`ocds_validation_mode` says which).
    """
    import jsonschema

    from yibao.procurement.ocds_schema import configured_location, load_full_schema, validate_full

    loc = configured_location(schema)
    if loc:
        return validate_full(package, load_full_schema(loc))
    v = jsonschema.Draft202012Validator(OCDS_SUBSET_SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(package)]


def ocds_validation_mode(schema: str | Path | None = None) -> str:
    """Which schema :func:`validate_ocds` uses, in words (printed beside every export)."""
    from yibao.procurement.ocds_schema import configured_location, load_full_schema

    loc = configured_location(schema)
    if not loc:
        return (
            "SUBSET schema only: the full OCDS schema is not available offline "
            "(set YIBAO_OCDS_SCHEMA or --ocds-schema to a local copy of the published schema)"
        )
    fs = load_full_schema(loc)
    return f"full OCDS 1.1 schema from {fs.source}" + (
        " with the bids extension" if fs.extension_found else " (bids extension NOT found)"
    )


def write_ocds(inp: RoundInput, res: RoundResult, path: str | Path, schema: str | Path | None = None) -> Path:
    pkg = to_ocds(inp, res)
    errors = validate_ocds(pkg, schema)
    if errors:
        raise ValueError("OCDS export does not validate: " + "; ".join(errors[:5]))
    Path(path).write_text(dumps_exact(pkg, indent=1), encoding="utf-8")
    return Path(path)
