"""National floors, ceilings and targets (yibao/data/benefits/national-rules.yaml) checked by `policy validate`.

Every error rule is shown failing on a SYNTHETIC test city that breaks it, with
the floor and its source in the message; targets warn without failing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yibao.benefits.national import RULES_FILE, check_policy, findings, load_rules, not_checked, select, show
from yibao.benefits.policy import Policy, PolicyBook
from yibao.cli import app
from yibao.core.errors import PolicyError

runner = CliRunner()
HEAD = 'policy: t\nregion: "990910"\nlabel: "synthetic test city"\nstatus: example\ninherits: national-default\n'
SEED_002 = "002_6b101652983aaebf.txt"


def write(d: Path, body: str, name: str = "t") -> Path:
    p = d / f"{name}.yaml"
    p.write_text(HEAD + body, encoding="utf-8")
    return p


def flat(text: str) -> str:
    return "".join(text.split())


def test_rules_file_is_valid_and_every_rule_cites_a_seed_clause():
    rules = load_rules()
    assert len(rules.rules) >= 10
    for r in rules.rules:
        doc = rules.documents[r.source.document]
        assert doc.seed.endswith(".txt") and r.source.clause and r.source.line > 0
        seed = Path("/work/shared/seeds") / doc.seed
        if seed.exists():  # the clause's key figure is on the cited line of the seed
            line = seed.read_text(encoding="utf-8").splitlines()[r.source.line - 1]
            assert any(tok in line for tok in r.source.clause.replace("……", "，").split("，") if len(tok) >= 4), (
                r.id,
                line[:80],
            )


def test_shipped_policies_meet_every_floor():
    for name, pol in PolicyBook().by_name.items():
        errors = [f for f in findings(pol) if f.severity == "error"]
        assert errors == [], (name, [str(e) for e in errors])


RES_OUT = "schemes:\n  resident:\n    categories:\n      outpatient:\n        ratio: {ratio}\n"


def test_resident_outpatient_30_percent_fails_with_the_floor_and_its_source(tmp_path):
    pol = Policy(write(tmp_path, RES_OUT.format(ratio="{all: 0.30}")))
    with pytest.raises(PolicyError) as e:
        pol.validate_all(national=True)
    msg = str(e.value)
    assert "schemes.resident.categories.outpatient.ratio" in msg
    assert "30 % is below the national floor 50 %" in msg
    assert "居民医保门诊统筹支付比例不低于 50%" in msg and SEED_002 in msg and "line 1075" in msg
    assert "低于国家底线 50 %" in e.value.message_zh


def test_resident_outpatient_one_level_below_names_that_level(tmp_path):
    pol = Policy(write(tmp_path, RES_OUT.format(ratio="{level_1: 0.60, level_2: 0.55, level_3: 0.45}")))
    errs = [f for f in findings(pol) if f.severity == "error"]
    assert [f.where for f in errs] == ["schemes.resident.categories.outpatient.ratio.level_3"]


def test_cli_validate_fails_with_floor_and_source(tmp_path):
    p = write(tmp_path, RES_OUT.format(ratio="{all: 0.30}"))
    res = runner.invoke(app, ["policy", "validate", str(p)])
    assert res.exit_code == 2
    out = flat(res.output)
    assert "30%isbelowthenationalfloor50%" in out and "居民医保门诊统筹支付比例不低于50%" in out and SEED_002 in out
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("body", "rule_id", "figure"),
    [
        (
            "schemes:\n  resident:\n    layers:\n      - {name: critical_illness, field: hifmi_pay, base: selfpay, "
            "deductible: 15000, brackets: [{threshold: 0, rate: 0.55}], cap: 400000, applies_to: [inpatient], "
            "poverty: {deductible_factor: 0.5, ratio_bonus: 0.05, no_cap: true}}\n",
            "critical_illness_ratio_floor",
            "55 % is below the national floor 60 %",
        ),
        (
            "schemes:\n  resident:\n    layers:\n      - {name: critical_illness, field: hifmi_pay, base: selfpay, "
            "deductible: 15000, brackets: [{threshold: 0, rate: 0.60}], cap: 400000, applies_to: [inpatient]}\n",
            "critical_illness_poverty_tilt_required",
            "required but not set",
        ),
        (
            "schemes:\n  resident:\n    layers:\n      - {name: critical_illness, field: hifmi_pay, base: selfpay, "
            "deductible: 15000, brackets: [{threshold: 0, rate: 0.60}], cap: 400000, applies_to: [inpatient], "
            "poverty: {deductible_factor: 0.8, ratio_bonus: 0.05, no_cap: true}}\n",
            "critical_illness_poverty_deductible_ceiling",
            "80 % is above the national ceiling 50 %",
        ),
        (
            "schemes:\n  resident:\n    layers:\n      - {name: critical_illness, field: hifmi_pay, base: selfpay, "
            "deductible: 15000, brackets: [{threshold: 0, rate: 0.60}], cap: 400000, applies_to: [inpatient], "
            "poverty: {deductible_factor: 0.5, ratio_bonus: 0.02, no_cap: true}}\n",
            "critical_illness_poverty_ratio_bonus_floor",
            "2 % is below the national floor 5 %",
        ),
        (
            "schemes:\n  resident:\n    layers:\n      - {name: critical_illness, field: hifmi_pay, base: selfpay, "
            "deductible: 15000, brackets: [{threshold: 0, rate: 0.60}], cap: 400000, applies_to: [inpatient], "
            "poverty: {deductible_factor: 0.5, ratio_bonus: 0.05, no_cap: false}}\n",
            "critical_illness_poverty_no_cap",
            "the national rule requires true",
        ),
        (
            "assistance:\n  statuses:\n    dibao: {ratio: 0.65}\n",
            "assistance_ratio_floor_dibao",
            "65 % is below the national floor 70 %",
        ),
        (
            "assistance:\n  statuses:\n    tekun: {ratio: 0.69}\n",
            "assistance_ratio_floor_tekun",
            "69 % is below the national floor 70 %",
        ),
        (
            "schemes:\n  employee:\n    account:\n      in_service_credit_rate: 0.03\n",
            "account_credit_ceiling",
            "3 % is above the national ceiling 2 %",
        ),
        (
            "long_term_prescription:\n  normal_max_days: 35\n",
            "long_prescription_normal_ceiling",
            "35 days is above the national ceiling 28 days",
        ),
        (
            "long_term_prescription:\n  max_days: 90\n",
            "long_prescription_max_ceiling",
            "90 days is above the national ceiling 84 days",
        ),
        (
            "long_term_prescription:\n  excluded_classes: [toxic, radioactive, precursor, psychotropic_1, "
            "psychotropic_2, antimicrobial, special_storage]\n",
            "long_prescription_excluded_classes",
            "lacks ['narcotic']",
        ),
    ],
)
def test_each_floor_and_ceiling_fails(tmp_path, body, rule_id, figure):
    pol = Policy(write(tmp_path, body))
    with pytest.raises(PolicyError) as e:
        check_policy(pol)
    msg = str(e.value)
    assert rule_id in msg and figure in msg, msg
    rule = next(r for r in load_rules().rules if r.id == rule_id)
    assert rule.source.clause in msg


def test_inpatient_target_warns_but_does_not_fail(tmp_path):
    body = "schemes:\n  resident:\n    categories:\n      inpatient:\n        ratio: {all: 0.50}\n"
    pol = Policy(write(tmp_path, body))
    warnings = check_policy(pol)  # no error raised
    w = [f for f in warnings if f.rule_id == "inpatient_ratio_target"]
    assert len(w) == 1 and w[0].severity == "warning"
    assert w[0].where == "schemes.resident.categories.inpatient.ratio"
    assert "50 % is outside the national target 75 % ± 15 %" in w[0].message_en
    res = runner.invoke(app, ["policy", "validate", str(tmp_path / "t.yaml")])
    assert res.exit_code == 0 and "warning" in res.output


def test_cap_multiple_needs_local_income_and_warns_far_from_six(tmp_path):
    pol = Policy(write(tmp_path, ""))
    snap = pol.snapshot(dt.date(2025, 6, 1))
    assert any("local_income.average_wage" in n for n in not_checked(snap))
    assert not [f for f in findings(pol) if f.rule_id == "combined_cap_multiple_target"]
    # employee: basic 400,000 + large-amount 400,000 = 800,000 yuan against a 50,000 wage → 16 ×
    pol = Policy(
        write(tmp_path, "local_income: {average_wage: 50000, disposable_income: 100000, source: synthetic}\n", name="u")
    )
    w = [f for f in findings(pol) if f.rule_id == "combined_cap_multiple_target"]
    assert [f.where for f in w] == ["schemes.employee"]
    assert "16.00 ×" in w[0].message_en and w[0].severity == "warning"


def test_a_floor_applies_from_its_document_date(tmp_path):
    body = RES_OUT.format(ratio="{all: {2020-01-01: 0.30, 2022-01-01: 0.55}}")
    pol = Policy(write(tmp_path, body))
    assert [f for f in findings(pol) if f.severity == "error"] == []  # 2020's 30 % predates the 2021 list
    body = RES_OUT.format(ratio="{all: {2020-01-01: 0.55, 2022-01-01: 0.30}}")
    pol = Policy(write(tmp_path, body, name="late"))
    errs = [f for f in findings(pol) if f.severity == "error"]
    assert [f.on for f in errs] == [dt.date(2022, 1, 1)]


def test_path_language():
    snap = PolicyBook().require("990200").snapshot(dt.date(2025, 6, 1))
    rates = select(snap, "schemes.*.layers[field=hifmi_pay].brackets.*.rate")
    assert [v for _, v in rates] == [6000, 6500, 7500]
    assert rates[0][0] == "schemes.resident.layers[critical_illness].brackets.0.rate"
    assert select(snap, "schemes.employee.layers[field=hifmi_pay].cap") == []
    assert select(snap, "no.such.key") == []


def test_show_formats():
    assert show("ratio", 5000) == "50 %" and show("ratio", 550) == "5.5 %"
    assert show("yuan", 123456) == "¥1,234.56" and show("days", 28) == "28 days"


def test_a_bad_rules_file_is_refused(tmp_path):
    text = RULES_FILE.read_text(encoding="utf-8").replace(
        "document: daiyu_qingdan, line: 1075", "document: nowhere, line: 1075"
    )
    bad = tmp_path / "rules.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown document 'nowhere'"):
        load_rules(bad)


def test_resident_scheme_without_critical_illness_layer_fails(tmp_path):
    pol = Policy(write(tmp_path, "schemes:\n  resident:\n    layers: []\n"))
    with pytest.raises(PolicyError) as e:
        check_policy(pol)
    assert "resident_critical_illness_layer_required" in str(e.value) and "居民医保叠加大病保险" in str(e.value)


def test_other_assisted_people_above_dibao_warns(tmp_path):
    pol = Policy(write(tmp_path, "assistance:\n  statuses:\n    fanpin: {ratio: 0.72, deductible: 1000, cap: 40000}\n"))
    w = [f for f in check_policy(pol) if f.rule_id == "assistance_other_statuses_below_dibao"]
    assert len(w) == 1 and w[0].severity == "warning"
    assert "72 % is above assistance.statuses.dibao.ratio = 70 %" in w[0].message_en
