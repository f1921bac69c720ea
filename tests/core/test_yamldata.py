"""One data-file loader (issue 18): exact numbers, pydantic
validation, one bilingual error naming file, key and reason.
"""

from __future__ import annotations

import pickle
import re
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from yibao.api.params import ConfigError, load_config
from yibao.api.security import SecurityError, SecurityPolicy
from yibao.core.errors import PolicyError, YibaoError
from yibao.core.yamldata import DataFileError, data_error, load_decimal_yaml, load_model, read_yaml, validate
from yibao.ecode.params import EcodeConfigError
from yibao.ecode.params import load_params as load_ecode_params
from yibao.procurement.monitor import load_params as load_monitor_params
from yibao.procurement.params import RuleSetError
from yibao.supervision.cases import CaseError, Workflow
from yibao.supervision.credit import CreditRules
from yibao.supervision.knowledge import RuleBook, SupervisionDataError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "yibao" / "data"


class Share(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    share: Decimal = Field(ge=0, le=1)


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Share]


def _write(tmp_path: Path, text: str, name: str = "d.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_numbers_are_exact() -> None:
    data = load_decimal_yaml("a: 0.1\nb: 3\nc: 1_000.50\nd: 1.0e-3\ne: '0.3'\n")
    assert data == {"a": Decimal("0.1"), "b": 3, "c": Decimal("1000.50"), "d": Decimal("1.0e-3"), "e": "0.3"}
    assert type(data["a"]) is Decimal and type(data["b"]) is int
    assert sum([data["a"]] * 3) == Decimal("0.3")  # a float would give 0.30000000000000004


@pytest.mark.parametrize("bad", [".inf", "-.inf", ".nan"])
def test_infinity_and_nan_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DataFileError, match="not valid YAML"):
        read_yaml(_write(tmp_path, f"x: {bad}\n"))


def test_load_model_validates(tmp_path: Path) -> None:
    doc = load_model(_write(tmp_path, "items:\n  - {name: a, share: 0.25}\n"), Doc)
    assert doc.items[0].share == Decimal("0.25")


def test_error_names_file_key_path_and_reason_in_both_languages(tmp_path: Path) -> None:
    p = _write(tmp_path, "items:\n  - {name: a, share: 0.25}\n  - {name: b, share: 1.5}\n", "shares.yaml")
    with pytest.raises(DataFileError) as e:
        load_model(p, Doc, what=("share file", "份额文件"))
    err = e.value
    assert isinstance(err, YibaoError) and err.code == "E_DATA_FILE"
    assert err.file == str(p) and err.key == "items.1.share" and err.field == "items.1.share"
    assert err.message_en.startswith("shares.yaml: items.1.share: ") and "less than or equal to 1" in err.message_en
    assert err.message_zh.startswith("shares.yaml: items.1.share: 份额文件取值无效")


def test_every_failure_is_the_one_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"nothing\.yaml: data file not found"):
        read_yaml(tmp_path / "nothing.yaml")
    with pytest.raises(DataFileError, match=r"broken\.yaml: not valid YAML \(line 2"):
        read_yaml(_write(tmp_path, "a: 1\nb: c: d\n", "broken.yaml"))
    with pytest.raises(DataFileError, match="top level must be a mapping"):
        read_yaml(_write(tmp_path, "- 1\n- 2\n", "list.yaml"))
    with pytest.raises(DataFileError, match="top level must be a mapping"):
        read_yaml(_write(tmp_path, "", "empty.yaml"))
    assert read_yaml(_write(tmp_path, "", "empty2.yaml"), empty={}) == {}
    with pytest.raises(DataFileError, match="cannot read"):
        read_yaml(tmp_path)  # a directory
    (tmp_path / "latin1.yaml").write_bytes("a: \xe9\n".encode("latin-1"))
    with pytest.raises(DataFileError, match="cannot read"):
        read_yaml(tmp_path / "latin1.yaml")


def test_the_callers_type_and_code_are_kept(tmp_path: Path) -> None:
    p = _write(tmp_path, "items: []\nextra: 1\n", "x.yaml")
    with pytest.raises(PolicyError) as e:
        load_model(p, Doc, error=PolicyError)
    assert isinstance(e.value, DataFileError) and e.value.code == PolicyError.code and e.value.key == "extra"
    err = data_error(p, "a.b", "bad", "坏", error=PolicyError)
    assert type(err) is type(data_error(p, "c", "x", error=PolicyError))  # one class per caller type
    back = pickle.loads(pickle.dumps(err))  # crosses worker processes intact
    assert isinstance(back, PolicyError) and isinstance(back, DataFileError)
    assert (back.file, back.key, back.message_en, back.message_zh) == (
        err.file,
        err.key,
        err.message_en,
        err.message_zh,
    )
    with pytest.raises(DataFileError):
        validate(p, Doc, {"items": "no"})


# --- the subsystem loaders all go through it ---------------------------------------------------------------------


def test_subsystem_loaders_raise_the_one_error(tmp_path: Path) -> None:
    cases = [
        (lambda d: load_config(d / "interface.yaml"), ConfigError, "interface.yaml", "infver_pattern: [1\n"),
        (lambda d: SecurityPolicy.load(d / "sec.yaml"), SecurityError, "sec.yaml", "institutions: {H1: {nope: 1}}\n"),
        (lambda d: load_ecode_params(d), EcodeConfigError, "ecode.yaml", "token: 3\n"),
        (
            lambda d: load_monitor_params(str(d / "monitoring.yaml")),
            RuleSetError,
            "monitoring.yaml",
            "behind_schedule_tolerance: x\n",
        ),
        (lambda d: CreditRules.load(d / "credit.yaml"), SupervisionDataError, "credit.yaml", "window_days: 0\n"),
        (
            lambda d: Workflow.load(d / "wf.yaml"),
            CaseError,
            "wf.yaml",
            "states: {a: {}}\ntransitions: []\nagencies: []\n",
        ),
        (lambda d: RuleBook.load(d), SupervisionDataError, "rules.yaml", "version: 1\nrules: 3\n"),
    ]
    for i, (load, legacy, name, body) in enumerate(cases):
        d = tmp_path / str(i)
        d.mkdir()
        _write(d, body, name)
        with pytest.raises(DataFileError) as e:
            load(d)
        assert isinstance(e.value, legacy), (name, type(e.value).__mro__)
        assert e.value.message_en.startswith(f"{name}: ") and e.value.message_zh.startswith(f"{name}: "), (
            e.value.message_en
        )
        assert re.search(r"[\u4e00-\u9fff]", e.value.message_zh), e.value.message_zh


def test_credit_and_workflow_checks_name_the_key(tmp_path: Path) -> None:
    credit = (DATA / "supervision" / "credit.yaml").read_text(encoding="utf-8")
    p = _write(tmp_path, credit.replace("blacklist_from: severe", "blacklist_from: nobody"), "credit.yaml")
    with pytest.raises(SupervisionDataError) as e:
        CreditRules.load(p)
    assert e.value.key == "blacklist_from" and "'nobody' is not a grade" in e.value.message_en
    wf = (DATA / "supervision" / "case_workflow.yaml").read_text(encoding="utf-8")
    p = _write(
        tmp_path,
        wf.replace("{from: clue, to: filed, action: file,", "{from: clue, to: limbo, action: file,"),
        "wf.yaml",
    )
    assert "to: limbo" in p.read_text(encoding="utf-8")  # the edit took
    with pytest.raises(CaseError) as e:
        Workflow.load(p)
    assert e.value.key == "transitions.0" and "unknown state 'limbo'" in e.value.message_en


def test_shipped_files_load_exactly() -> None:
    from yibao.procurement.monitor import load_params

    m = load_params()
    assert isinstance(m.behind_schedule_tolerance, Decimal) and isinstance(m.fund_prepay.prepay_share, Decimal)
    assert m.fund_prepay.prepay_share == Decimal(str(m.fund_prepay.prepay_share))
    assert Workflow.load().next_state("clue", "file") == "filed"
    assert CreditRules.load().grade_for(0)[0] == "good"


def test_no_other_module_parses_rule_files() -> None:
    """Only core/yamldata.py calls the YAML parser (safe_dump to write files is fine)."""
    pattern = re.compile(r"yaml\.(safe_load|load|full_load|unsafe_load|load_all|safe_load_all)\s*\(")
    offenders = set()
    for f in sorted((ROOT / "yibao").rglob("*.py")):
        rel = f.relative_to(ROOT).as_posix()
        if rel == "yibao/core/yamldata.py":
            continue
        if pattern.search(f.read_text(encoding="utf-8")):
            offenders.add(rel)
    assert not offenders, sorted(offenders)


def test_loaders_own_checks_name_file_and_key(tmp_path: Path) -> None:
    sec = _write(tmp_path, "institutions:\n  H1: {sm4_key: '" + "ab" * 16 + "', signtype: SM2}\n", "sec.yaml")
    with pytest.raises(SecurityError) as e:
        SecurityPolicy.load(sec)
    assert isinstance(e.value, DataFileError) and e.value.key == "institutions.H1.sm2_public_key"
    assert e.value.message_en.startswith("sec.yaml: institutions.H1.sm2_public_key: SM2 needs")
    with pytest.raises(SecurityError, match="insecure_demo: cannot be set in a file"):
        SecurityPolicy.load(_write(tmp_path, "insecure_demo: true\n", "demo.yaml"))
    text = (DATA / "api" / "interface.yaml").read_text(encoding="utf-8")
    body = text.split("fund_pay_types:\n", 1)[1]
    first = body.split("\n", 3)  # drop the first fund field (hifp_pay: employee, resident)
    assert first[0].strip() == "hifp_pay:"
    p = _write(tmp_path, text.split("fund_pay_types:\n", 1)[0] + "fund_pay_types:\n" + first[3], "interface.yaml")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == "fund_pay_types" and "hifp_pay" in e.value.message_en
