"""VBP rule sets as data: every shipped file validates; tables; inheritance; clear errors."""

from __future__ import annotations

import shutil
from decimal import Decimal as D

import pytest

from yibao.procurement.params import RuleSetError, get_ruleset, list_rulesets, load_ruleset, rules_dir

NATIONAL = [
    "national-4plus7",
    "national-expansion",
    "national-batch-02",
    "national-batch-03",
    "national-batch-07",
    "national-batch-10",
    "national-batch-11",
]
ALLIANCES = [
    "alliance-guangdong-16",
    "alliance-jingjinji-3n",
    "alliance-shaanxi-11",
    "alliance-chongqing-8",
    "alliance-chongqing-5",
    "alliance-xinjiang-2n",
    "alliance-heilongjiang-8p2r",
    "alliance-gansu-shaanxi",
    "consumables-alliance",
]


def test_every_shipped_rule_set_validates():
    names = list_rulesets()
    assert set(NATIONAL + ALLIANCES) <= set(names)
    assert "national-base" not in names and "alliance-base" not in names  # abstract
    for n in names:
        assert load_ruleset(n).id == n


def test_spec_volume_and_cycle_tables():
    r = get_ruleset("national-batch-02")
    assert [r.share_for(n) for n in range(1, 7)] == [D("0.5"), D("0.6"), D("0.7"), D("0.8"), D("0.8"), D("0.8")]
    assert [r.share_for(n, antibiotic=True) for n in range(1, 5)] == [D("0.4"), D("0.5"), D("0.6"), D("0.7")]
    assert [r.cycle_years_for(n) for n in range(1, 7)] == [1, 1, 2, 3, 3, 3]
    assert r.share_for(0) == 0


def test_injectables_get_lower_share_and_shorter_cycle_from_batch_3():
    b2, b3 = get_ruleset("national-batch-02"), get_ruleset("national-batch-03")
    assert b2.share_for(4, injectable=True) == D("0.8")
    for n in range(1, 6):
        assert b3.share_for(n, injectable=True) < b3.share_for(n)
        assert b3.cycle_years_for(n, injectable=True) <= b3.cycle_years_for(n)
    assert b3.cycle_years_for(4, injectable=True) < b3.cycle_years_for(4)
    # antibiotic injectables take both reductions
    assert b3.share_for(1, injectable=True, antibiotic=True) == D("0.3")


def test_sole_product_and_overlap_rules():
    assert get_ruleset("alliance-chongqing-5").share_for(1, sole_product=True) == 1
    assert get_ruleset("national-batch-02").share_for(1, sole_product=True) == D("0.5")
    assert get_ruleset("alliance-heilongjiang-8p2r").cycle.alliance_overlap_cycles == 1


def test_later_batches_change_only_what_the_spec_lists():
    b7, b10, b11 = get_ruleset("national-batch-07"), get_ruleset("national-batch-10"), get_ruleset("national-batch-11")
    assert b7.supply.backup_regions and b7.selection.elimination.enabled
    assert not get_ruleset("national-batch-03").supply.backup_regions
    q10 = b10.selection.qualification
    assert not q10.cut_alone_qualifies and set(q10.absolute_unit_price) == {
        "oral_solid",
        "small_injection",
        "large_injection",
    }
    assert b10.selection.revival.enabled and b10.selection.revival.single_winner_ratio == D("1.8")
    assert (
        b10.selection.slots.shared_contract_manufacturer_one_slot and b10.selection.slots.b_cert_holders_per_slot == 2
    )
    assert b11.catalog.min_competitors == 7 and b11.selection.qualification.anchor == "max_lowest_share_of_mean"
    assert set(b11.selection.qualification.absolute_unit_price) == {"oral_solid"}
    assert b11.chain[-2:] == ("national-batch-10.yaml", "national-batch-11.yaml")
    # inherited unchanged
    assert b11.selection.qualification.ratio_to_anchor == D("1.8") and b11.price_difference.content_coef == D("1.7")


def test_alliance_variants_are_rule_sets_not_code_paths():
    assert get_ruleset("alliance-guangdong-16").selection.grouping.enabled
    assert get_ruleset("alliance-jingjinji-3n").tie_break[0].key == "first_registration_date"
    assert get_ruleset("alliance-shaanxi-11").eligibility.two_envelope_min_score == 60
    assert get_ruleset("alliance-chongqing-8").eligibility.cap_by_national_highest_price
    x = get_ruleset("alliance-xinjiang-2n")
    assert x.eligibility.capacity_multiple == 2 and max(x.selection.max_winners.values()) == 10
    c = get_ruleset("consumables-alliance")
    assert (
        c.goods == "consumable"
        and c.consumables.min_bidders_for_bidding == 2
        and c.consumables.volume_base_share == D("0.8")
    )


@pytest.fixture
def rule_dir(tmp_path):
    for p in rules_dir().glob("*.yaml"):
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def test_a_new_batch_is_a_new_file(rule_dir):
    (rule_dir / "national-batch-99.yaml").write_text(
        "extends: national-batch-11\nid: national-batch-99\nname_zh: 测试批\nname_en: test batch\n"
        "selection:\n  qualification:\n    ratio_to_anchor: 1.5\n",
        encoding="utf-8",
    )
    r = load_ruleset(rule_dir / "national-batch-99.yaml")
    assert r.selection.qualification.ratio_to_anchor == D("1.5")
    assert r.catalog.min_competitors == 7  # everything else inherited


@pytest.mark.parametrize(
    "body, key, words",
    [
        ("volume:\n  shares: {1: 1.5, 2: 0.6}\n", "volume.shares", "share for 1 winners must be in (0, 1]"),
        ("selection:\n  max_winners: {1: 1, 2: 3}\n", "selection", "max_winners[2]=3"),
        ("selection:\n  method: cheapest\n", "selection.method", "Input should be"),
        ("tie_break:\n  - {key: colour, prefer: higher}\n", "tie_break.0.key", "Input should be"),
        ("price_difference:\n  content_coef: 0.9\n", "price_difference.content_coef", "greater than 1"),
        (
            "catalog:\n  max_price_method: min_listed_share_provincial\n  listed_avg_share: null\n",
            "catalog",
            "listed_avg_share is required",
        ),
        ("surprise: 1\n", "surprise", "Extra inputs are not permitted"),
    ],
)
def test_bad_rule_files_name_file_key_and_reason(rule_dir, body, key, words):
    p = rule_dir / "bad.yaml"
    p.write_text("extends: national-batch-02\nid: bad\nname_zh: 坏\nname_en: bad\n" + body, encoding="utf-8")
    with pytest.raises(RuleSetError) as ei:
        load_ruleset(p)
    msg = str(ei.value)
    assert "bad.yaml" in msg and key in msg and words in msg, msg
    assert ei.value.field == key and "取值无效" in ei.value.message_zh


def test_missing_parent_and_abstract_base_are_errors(rule_dir):
    p = rule_dir / "orphan.yaml"
    p.write_text("extends: national-batch-77\nid: orphan\n", encoding="utf-8")
    with pytest.raises(RuleSetError, match="national-batch-77.yaml: rule-set file not found"):
        load_ruleset(p)
    with pytest.raises(RuleSetError, match="abstract"):
        load_ruleset(rule_dir / "national-base.yaml")
