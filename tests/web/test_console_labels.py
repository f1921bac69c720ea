"""Chinese first, no raw codes (issue 17.5): every console page, as each role, on a settled SYNTHETIC region.

A page fails when its visible text has a raw field name or coded value known to ``yibao/data/labels.yaml``
(``fixmedins_code``, ``inpatient``, ``manual_block`` …), any snake_case word, scientific notation
(``1.379e+04``) or ``NaN`` / ``None``.  Text a page marks ``data-free-text`` (a policy's own title) is
skipped.  The checker itself is tested on pages that break each rule.
"""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest
import yaml

from tests.console_support import PASSWORD, add_users, build_region_db, console_login, pick, seed_subsystems

SCI = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[eE][+-]?\d+(?![\w.])")
NAN = re.compile(r"(?<![A-Za-z])(NaN|nan|None|null|undefined|Infinity|inf)(?![A-Za-z])")
SNAKE = re.compile(r"(?<![A-Za-z0-9_])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9_])")
WORD = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z][A-Za-z0-9_]*(?![A-Za-z0-9_\-])")


class _Text(HTMLParser):
    """Visible text, one string per text node; <script>, <style>, <title> and data-free-text elements left out."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "source", "col", "area", "base", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.parts: list[str] = []
        self.headers: list[str] = []
        self._th: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        skip = tag in ("script", "style", "title") or any(k == "data-free-text" for k, _ in attrs)
        self.stack.append((tag, skip or bool(self.stack and self.stack[-1][1])))
        if tag == "th":
            self._th = []

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if tag == "th" and self._th is not None:
            self.headers.append("".join(self._th).strip())
            self._th = None

    def handle_data(self, data):
        if self.stack and self.stack[-1][1]:
            return
        if data.strip():
            self.parts.append(data.strip())
            if self._th is not None:
                self._th.append(data)


def problems(html: str, raw_keys: set[str], *, zh: bool) -> list[str]:
    """What is wrong with one page's visible text (empty when nothing)."""
    p = _Text()
    p.feed(html)
    out: list[str] = []
    for text in p.parts:
        out += [f"scientific notation {m!r} in {text[:80]!r}" for m in SCI.findall(text)]
        out += [f"{m!r} in {text[:80]!r}" for m in NAN.findall(text)]
        out += [f"raw name {m!r} in {text[:80]!r}" for m in SNAKE.findall(text)]
        if zh:
            out += [f"raw code {m!r} in {text[:80]!r}" for m in WORD.findall(text) if m in raw_keys]
    for h in p.headers:
        if zh and h and not re.search(r"[\u4e00-\u9fff#∑]", h) and h not in ("DRG", "DIP"):
            out.append(f"table header without Chinese: {h!r}")
    return out


@pytest.fixture(scope="module")
def raw_keys() -> set[str]:
    from yibao.web import labels

    return labels.load().raw_keys()


def test_the_checker_catches_each_kind_of_raw_text(raw_keys) -> None:
    ok = (
        "<html><head><title>fixmedins_code</title><style>.a_b{}</style></head><body><h1>结算查询</h1>"
        "<table><tr><th>定点机构编号</th><th>#</th></tr><tr><td>H99010500001</td><td>¥13,790.00</td></tr></table>"
        '<p><span data-free-text="x">Example region (illustrative)</span> SV-PRICE-01 DRG ES35</p></body></html>'
    )
    assert problems(ok, raw_keys, zh=True) == []
    for bad, what in (
        ("<td>inpatient</td>", "raw code"),
        ("<td>pharmacy</td>", "raw code"),
        ("<td>manual_block</td>", "raw name"),
        ("<td>per_admission</td>", "raw name"),
        ("<td>large_amount_subsidy: 起付线</td>", "raw name"),
        ("<th>fixmedins_code</th>", "raw name"),
        ("<th>hosp_lv</th>", "raw name"),
        ("<td>1.379e+04</td>", "scientific"),
        ("<td>recall NaN</td>", "NaN"),
        ("<td>None</td>", "None"),
        ("<th>points</th>", "header without Chinese"),
    ):
        found = problems(f"<table><tr>{bad}</tr></table>", raw_keys, zh=True)
        assert any(what in f for f in found), (bad, found)
    assert problems("<td>inpatient</td>", raw_keys, zh=False) == []  # English pages may say it in words
    assert problems("<td>manual_block</td>", raw_keys, zh=False)


def test_every_coded_value_the_system_produces_has_a_label() -> None:
    from importlib import resources

    from yibao.benefits.model import CATEGORIES
    from yibao.web import labels

    lb = labels.load()
    assert set(CATEGORIES) <= set(lb.values["benefit_category"])
    wf = yaml.safe_load(
        (resources.files("yibao") / "data" / "supervision" / "case_workflow.yaml").read_text(encoding="utf-8")
    )
    assert set(wf["states"]) <= set(lb.values["case_state"])
    assert {t["action"] for t in wf["transitions"]} <= set(lb.values["case_action"])
    for state, v in wf["states"].items():  # one Chinese name for a state, wherever it is written
        assert lb.values["case_state"][state][0] == v["name_zh"], state
    ec = yaml.safe_load((resources.files("yibao") / "data" / "ecode" / "ecode.yaml").read_text(encoding="utf-8"))
    assert set(ec["risk"]["actions"]) <= set(lb.values["ecode_action"])


def test_the_fund_page_names_agree_with_the_labels_file() -> None:
    from yibao.web import figures, labels

    lb = labels.load().values
    assert {str(k): v for k, v in figures.LEVEL_NAMES.items()} == lb["hosp_lv"]
    assert figures.SCHEME_NAMES == lb["insutype_short"]


def test_labels_file_is_validated() -> None:
    from yibao.web.labels import LabelsError, parse

    assert parse({"version": 1, "fields": {"a": ["甲", "a"]}}).fields["a"] == ("甲", "a")
    for bad in (
        {"version": 2},
        {"version": 1, "fields": {"a": ["a", "a"]}},
        {"version": 1, "fields": {"a": ["甲"]}},
        {"version": 1, "extra": {}},
        {"version": 1, "values": {"g": {"x": "甲"}}},
    ):
        with pytest.raises(LabelsError):
            parse(bad)


def test_money_and_numbers() -> None:
    from yibao.web.labels import money, number, value

    assert money(1_379_012) == "¥13,790.12" and money(-5) == "-¥0.05" and money(0) == "¥0.00"
    assert money(None) == money(float("nan")) == "—"
    assert number(1.379e4) == "13,790" and number(0.98345, 4) == "0.9835" and number(float("nan")) == "—"
    assert value("hosp_lv", 2) == value("hosp_lv", 2.0) == "二级" and value("benefit_category", "inpatient") == "住院"
    assert value("benefit_category", None) == "—"
    import numpy as np
    import pandas as pd

    assert value("hosp_lv", np.int64(3)) == "三级" and value("hosp_lv", pd.NA) == money(pd.NA) == number(pd.NA) == "—"
    assert money(np.int64(12345)) == "¥123.45" and number(np.float64(0.5), 1) == "0.5"


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from yibao.api.app import build_interface
    from yibao.core import db
    from yibao.server import create_app

    root = tmp_path_factory.mktemp("labels-region")
    url = build_region_db(root)
    engine = db.make_engine(url)
    who = pick(engine)
    add_users(engine, who)
    who.update(seed_subsystems(engine, who["inst"]))
    engine.dispose()
    iface = build_interface(url)
    app = create_app(iface)
    app.state.console.data_dir = root / "region"
    # an e-code risk event with its actions, so the risk console has coded values to show (manual_block; block,…)
    app.state.console.ecode.block(who["psn"], actor="bureau1", reason="合成测试")
    yield app, who
    iface.engine.dispose()


def _get(c, path: str, seconds: int = 180):
    for _ in range(seconds):
        r = c.get(path)
        if 'id="pending"' not in r.text:
            return r
        time.sleep(1)
    raise AssertionError(f"{path}: analysis still running after {seconds} s")


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("user", ["bureau1", "hosp1", "public1"])
def test_every_page_shows_labels_not_raw_codes(region, raw_keys, user, lang) -> None:
    from fastapi.testclient import TestClient

    from yibao.web.auth import default_config

    app, who = region
    c = TestClient(app)
    assert console_login(c, user, PASSWORD).status_code == 303
    if lang == "en":
        c.get("/console/lang/en")
    role = {"bureau1": "bureau", "hosp1": "institution", "public1": "public"}[user]
    pages = [f"/console/{name}" for name in default_config().roles[role].pages]
    seen: dict[str, list[str]] = {}
    for path in pages:
        r = _get(c, path)
        assert r.status_code == 200, (path, r.status_code)
        seen[path] = problems(r.text, raw_keys, zh=lang == "zh")
        if path == "/console/settlement":  # and the first settlements' own pages
            for setl in re.findall(r'href="/console/settlement/([^"?]+)"', r.text)[:5]:
                d = c.get(f"/console/settlement/{setl}")
                assert d.status_code == 200
                seen[f"/console/settlement/{setl}"] = problems(d.text, raw_keys, zh=lang == "zh")
        if path == "/console/ecode":
            assert (
                "manual_block" in r.text and ">手动拦截<" in r.text or ">blocked by staff<" in r.text
            )  # data-kind keeps the code
        if path == "/console/supervision":  # work-queue encounters link to their settlement
            links = re.findall(r'href="(/console/encounter/[^"]+)"', r.text)
            assert links, "work queue: no encounter links"
            for href in links[:3]:
                d = c.get(href)
                assert d.status_code == 200 and "table-shares" in d.text, href
                seen[href] = problems(d.text, raw_keys, zh=lang == "zh")
    others = [x for x in ("/console/fund", "/console/ecode", "/console/mycode") if x not in pages][:1]
    for path in others:  # the refusal page speaks Chinese too
        r = c.get(path)
        assert r.status_code == 403, path
        seen[path] = problems(r.text, raw_keys, zh=lang == "zh")
    r = c.get("/console/settlement/NO-SUCH-SETTLEMENT")
    assert r.status_code == 404
    seen["404"] = problems(r.text, raw_keys, zh=lang == "zh")
    anon = TestClient(app)
    if lang == "en":
        anon.get("/console/lang/en")
    seen["anonymous /console/login"] = problems(anon.get("/console/login").text, raw_keys, zh=lang == "zh")
    seen["anonymous /"] = problems(anon.get("/").text, raw_keys, zh=False)  # the landing page is bilingual by design
    bad = {k: v[:5] for k, v in seen.items() if v}
    assert not bad, bad
    assert len(seen) >= len(pages)
