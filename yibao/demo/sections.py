"""The report sections of ``yibao demo`` (SYNTHETIC): procurement, payment (DIP and DRG) and supervision.

Each returns ``(title, html)`` pairs for :func:`yibao.web.report.render_report`; the subsystems' own report
modules only render results, they do not generate data (the procurement round here comes from :mod:`yibao.synth`).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, select_autoescape

from yibao.core.money import fmt_yuan
from yibao.payment.report import institution_names, sections
from yibao.payment.service import run
from yibao.supervision.reports import review_region, section_html

__all__ = ["payment_sections", "procurement_section", "supervision_section"]


def supervision_section(region_dir: str | Path) -> tuple[str, str]:
    """``(title, html)`` for :func:`yibao.web.report.render_report`'s ``sections``."""
    rv = review_region(region_dir)
    return ("Fund supervision 基金监管", section_html(rv))


def payment_sections(region_dir: str | Path, echo=None) -> list[tuple[str, str]]:
    """The payment sections of the ``yibao demo`` report, from the demo's region directory (settled).

    ``echo``, if given, receives a one-line summary of the DIP and DRG runs for the terminal.
    """
    region_dir = Path(region_dir)
    r = run(region_dir)
    if echo is not None:
        c = r.cases
        grouped = c[c.drg != "0000"]
        echo(
            f"DRG: {len(c):,} inpatient cases grouped with {r.scheme.name} {r.scheme.version} ({r.scheme.label}): "
            f"{grouped.mdc.nunique()} MDCs, {grouped.drg.nunique()} DRGs, {int((c.path == 'ambiguous').sum()):,} "
            "ambiguous (QY), "
            f"{int((c.drg == '0000').sum()):,} ungroupable; base rate ¥{r.drg_base_rate} per RW"
        )
        echo(f"DIP: catalog {r.catalog.version} with {r.catalog.groups.num_rows:,} groups; annual point value "
             f"¥{r.dip.annual_point_value} per point")  # fmt: skip
    return sections(r, institution_names(region_dir))


_SECTION = """<p class="synthetic">SYNTHETIC DATA 合成数据 — a simulated round ({{ n_drugs }} drugs, {{ n_bids }} bids,
{{ n_inst }} institutions) under <b>{{ ruleset }}</b>, not real bids.</p>
<table><tr><th>drug 品种</th><th>bidders</th><th>qualified</th><th>max winners</th><th>winners 中选</th>\
<th>share 约定量</th><th>cycle 周期</th>
<th>winners under {{ other }}</th></tr>
{% for r in drugs %}<tr><td>{{ r.drug_id }} {{ r.name }}</td><td>{{ r.bidders }}</td><td>{{ r.qualified }}</td>\
<td>{{ r.max }}</td>
<td>{{ r.winners }}</td><td>{{ r.share }}</td><td>{{ r.cycle }}</td><td>{{ r.other }}</td></tr>{% endfor %}</table>
<p>Contracts: {{ n_contracts }} (¥{{ amount }} under {{ ruleset }}, ¥{{ other_amount }} under {{ other }}) ·
integrity flags: {{ flags|length }}{% for f in flags %}{% if loop.first %} ({% endif %}{{ f.check }}\
: {{ f.firms|join('/') }}{% if not loop.last %}; {% else %}){% endif %}{% endfor %}</p>
<p>Bid simulation for one firm (9 competitors, {{ sim_rounds }} simulated rounds):</p>
<table><tr><th>unit price ¥</th><th>P(win)</th><th>expected revenue ¥</th></tr>
{% for r in sim %}<tr><td>{{ r.price_yuan }}</td><td>{{ '%.3f'|format(r.win_probability) }}</td>\
<td>{{ r.expected_revenue_yuan }}</td></tr>{% endfor %}</table>"""


def procurement_section(
    seed: int = 42, rules: str = "national-batch-10", other: str = "national-batch-02"
) -> tuple[str, str]:
    """``(title, html)`` for :func:`yibao.web.report.render_report`'s ``sections``: a SYNTHETIC round."""
    from yibao.procurement.engine import run_round
    from yibao.procurement.integrity import build_graph, check_round, slot_groups
    from yibao.procurement.params import get_ruleset
    from yibao.procurement.simulate import Belief, simulate_bids
    from yibao.synth.procurement import generate_round

    sr = generate_round(drugs=8, institutions=2_000, regions=12, seed=seed)
    inp, ra, rb = sr.round, get_ruleset(rules), get_ruleset(other)
    g = build_graph(inp.firms, sr.relations, inp.bids)
    res = run_round(inp, ra, slot_group=slot_groups(g, inp.bids))
    alt = run_round(inp, rb)
    flags = check_round(g, inp.bids, ra, inp.round_date)
    beliefs = [Belief("lognormal", (1.0 + 0.05 * i, 0.3), accept_revival=i % 2 == 0) for i in range(9)]
    sim = simulate_bids(
        ra,
        beliefs,
        ["0.50", "0.70", "0.90", "1.10", "1.30"],
        max_unit_price_yuan="2.00",
        base_units=1_000_000,
        rounds=20_000,
        seed=seed,
        accept_revival=True,
    )
    rows = [
        {
            "drug_id": d.drug_id,
            "name": inp.catalog[d.drug_id].generic_name,
            "bidders": len(d.outcomes),
            "qualified": d.qualified_n,
            "max": d.max_winners,
            "winners": ", ".join(w.firm_id for w in d.winners),
            "share": f"{d.share_bp / 100:.0f}%",
            "cycle": d.cycle_years,
            "other": ", ".join(w.firm_id for w in alt.drugs[d.drug_id].winners),
        }
        for d in res.drugs.values()
    ]
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    html = env.from_string(_SECTION).render(
        n_drugs=len(inp.catalog),
        n_bids=len(inp.bids),
        n_inst=f"{inp.demand['institution_id'].nunique():,}",
        ruleset=ra.id,
        other=rb.id,
        drugs=rows,
        n_contracts=f"{len(res.contracts):,}",
        amount=fmt_yuan(int(res.contracts["amount_fen"].sum())),
        other_amount=fmt_yuan(int(alt.contracts["amount_fen"].sum())),
        flags=flags,
        sim=sim.frame().to_dict("records"),
        sim_rounds=f"{sim.rounds:,}",
    )
    return ("Volume-based procurement 集采", html)
