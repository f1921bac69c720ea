"""Issue 16's acceptance test: HIS client shapes settle whole stays unchanged (HIS 报文回放).

Each fixture in ``tests/fixtures/his/`` is a recorded-style sequence of raw request envelopes exactly as one client
shape sends them — the national spec edition and four shapes taken from public HIS-side code (see each file's
``sources``; ``build_fixtures.py`` wrote them). The replay posts every envelope through the real HTTP app (the
FastAPI app ``yibao serve`` runs, with a credentialed sign-in), with the platform's clock at the message's
``inf_time``, and checks that every reply has ``infcode`` 0 and every output field the client reads, with the
type the client reads it as; that the day's reconciliations (3201 per clearing type, 3202 over the detail file)
balance against the client's own record of its settlements; and that the accounts end where that record says.

The test is strict on purpose: a step the server does not serve as the client expects fails the test, with the
request, the reply and what the client expected. ``YIBAO_HIS_REPLAY_REPORT=<file>`` also writes them as JSON lines.
Synthetic data.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, SECURITY, SH, Clock, seed
from yibao.api.envelope import dumps_exact, loads_exact
from yibao.api.interface import Interface
from yibao.api.models import MessageLog
from yibao.api.params import InstitutionParams, default_config
from yibao.codes import registry
from yibao.core import db as ydb
from yibao.server import create_app
from yibao.settlement import records

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "his"
FIXTURES = sorted(HERE.glob("*.json"))
WHOLE = re.compile(r"^\{\{(str:)?([^{}]+)\}\}$")
PART = re.compile(r"\{\{(str:)?([^{}]+)\}\}")
INSURED_SINCE = {"E1": dt.date(2003, 7, 1), "E2": dt.date(1998, 1, 1)}  # synthetic


class Missing(Exception):
    """A placeholder whose value an earlier (failed) step should have given."""


class Replay:
    """One client's session: the values it keeps from replies and its own record of its settlements."""

    def __init__(self, client: TestClient, clock: Clock, transport: dict, credential: str):
        self.client, self.clock, self.transport = client, clock, transport
        self.saved: dict[str, Any] = {"credential": credential}
        self.ledger: list[dict] = []  # the HIS's settlements: what it reconciles with

    # --- filling a recorded envelope -------------------------------------------------------------------------
    def value(self, name: str) -> Any:
        if name.startswith("ledger:"):
            _, clr, fld = name.split(":")
            live = [r for r in self.ledger if not r["refd"] and clr in ("*", r["clr_type"])]
            if fld == "count":
                return len(live)
            return sum((r[fld] for r in live), Decimal("0.00"))
        if name == "ledger_file":
            data = self.detail_file()
            return base64.b64encode(data).decode() if self.transport["file_encoding"] == "base64" else list(data)
        head, *rest = name.split(".")
        if head not in self.saved:
            raise Missing(name)
        v = self.saved[head]
        for p in rest:
            if not isinstance(v, dict) or p not in v:
                raise Missing(name)
            v = v[p]
        return v

    @staticmethod
    def text(v: Any) -> str:
        return v if isinstance(v, str) else dumps_exact(v)

    def fill(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: self.fill(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.fill(v) for v in obj]
        if isinstance(obj, str):
            m = WHOLE.match(obj)
            if m:
                v = self.value(m.group(2))
                return self.text(v) if m.group(1) else v
            return PART.sub(lambda m: self.text(self.value(m.group(2))), obj)
        return obj

    def detail_file(self) -> bytes:
        """The 3202 detail file: one tab-separated line per settlement the HIS made, cancelled ones flagged."""
        head = "setl_id\tmdtrt_id\tpsn_no\tmedfee_sumamt\tfund_pay_sumamt\tacct_pay\trefd_setl_flag\n"
        rows = [
            f"{r['setl_id']}\t{r['mdtrt_id']}\t{r['psn_no']}\t{r['medfee_sumamt']}\t{r['fund_pay_sumamt']}\t"
            f"{r['acct_pay']}\t{1 if r['refd'] else 0}\n"
            for r in self.ledger
        ]
        return (head + "".join(rows)).encode()

    # --- sending ----------------------------------------------------------------------------------------------
    def post(self, env: dict) -> tuple[int, Any]:
        when = dt.datetime.strptime(env["inf_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SH)
        self.clock.t = when  # the platform's clock at the message's time: the recorded times stay meaningful
        path = self.transport["path"] + (f"/{env['infno']}" if self.transport["infno_in_path"] else "")
        r = self.client.post(path, content=dumps_exact(env).encode(), headers=self.transport["headers"])
        try:
            return r.status_code, loads_exact(r.content)
        except Exception:  # noqa: BLE001 - a non-JSON answer is itself the finding
            return r.status_code, r.text[:500]

    def keep(self, step: dict, env: dict, reply: dict) -> None:
        for name, path in step.get("save", {}).items():
            found = lookup(env, path.removeprefix("request.")) if path.startswith("request.") else lookup(reply, path)
            if found:
                self.saved[name] = found[0]
        led = step.get("ledger")
        if led and led["op"] == "settle":
            s = reply["output"]["setlinfo"]
            self.ledger.append(
                {
                    "setl_id": s["setl_id"],
                    "mdtrt_id": s["mdtrt_id"],
                    "psn_no": s["psn_no"],
                    "medfee_sumamt": s["medfee_sumamt"],
                    "fund_pay_sumamt": s["fund_pay_sumamt"],
                    "acct_pay": s["acct_pay"],
                    "cash_payamt": s["psn_cash_pay"],
                    "clr_type": led["clr_type"],
                    "refd": False,
                }
            )
        elif led and led["op"] == "cancel":
            setl_id = self.saved.get(led["setl_id"])
            for r in self.ledger:
                if r["setl_id"] == setl_id:
                    r["refd"] = True


def lookup(obj: Any, path: str) -> list[Any]:
    """Every value at ``path`` ("a.b[].c"); [] for a missing key. An input sent as a JSON string is read as JSON."""
    vals = [obj]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part[:-2] if many else part
        nxt = []
        for v in vals:
            if isinstance(v, str) and v.startswith("{"):
                v = loads_exact(v)
            if not isinstance(v, dict) or key not in v:
                return []
            v = v[key]
            if many:
                if not isinstance(v, list):
                    return []
                nxt.extend(v)
            else:
                nxt.append(v)
        vals = nxt
    return vals


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


TYPES = {
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "money": lambda v: _is_number(v) and (isinstance(v, int) or v.as_tuple().exponent >= -2),
    "numstr": lambda v: isinstance(v, str) or _is_number(v),  # bound into string / BigDecimal fields: either binds
    "date": lambda v: isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) is not None,
    "datetime": lambda v: isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", v) is not None,
    "time17": lambda v: isinstance(v, str) and re.fullmatch(r"\d{17}", v) is not None,  # yyyyMMddHHmmssSSS
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def check_reads(reply: dict, reads: dict[str, str]) -> list[str]:
    """The fields the client reads that are missing or of a type it cannot read."""
    problems = []
    for path, kind in reads.items():
        nullable = kind.endswith("|null")
        base = kind.removesuffix("|null")
        parent, _, last = path.rpartition(".")
        holders = lookup(reply, parent) if parent else [reply]
        if not holders:
            if parent.endswith("[]") and isinstance((lookup(reply, parent[:-2]) or [None])[0], list):
                continue  # an empty list: nothing in it to read
            problems.append(f"{path}: missing ({parent} absent)")
            continue
        for h in holders:
            if not isinstance(h, dict) or last not in h:
                problems.append(f"{path}: missing")
                break
            v = h[last]
            if v is None and nullable:
                continue
            if not TYPES[base](v):
                problems.append(f"{path}: {type(v).__name__} {str(v)[:40]!r}, the client reads {kind}")
                break
    return problems


def replay(db_engine, fixture: Path) -> tuple[list[dict], Replay]:
    doc = loads_exact(fixture.read_bytes())
    seed(db_engine)
    with ydb.session_scope(db_engine) as s:  # the replayed persons' insured-since dates (1101 psn_insu_date)
        for psn, since in INSURED_SINCE.items():
            s.get(registry.Person, psn).insured_since = since
    cfg = default_config()
    settings = doc["transport"].get("institution_settings")
    if settings:
        cfg = cfg.model_copy(update={"institutions": {"H2": InstitutionParams(**settings)}})
    clock = Clock(dt.datetime(2025, 3, 9, 14, 0, tzinfo=SH))
    iface = Interface(db_engine, BOOK, CAT, clock=clock, security=SECURITY, config=cfg)
    rp = Replay(TestClient(create_app(iface)), clock, doc["transport"], CREDENTIALS["H2"])
    failures = []
    for n, step in enumerate(doc["steps"], 1):
        try:
            env = rp.fill(step["request"])
        except Missing as m:
            failures.append(
                {
                    "shape": doc["shape"],
                    "n": n,
                    "step": step["step"],
                    "problems": [f"not sent: {{{{{m}}}}} comes from an earlier step that failed"],
                }
            )
            continue
        status, reply = rp.post(env)
        problems = []
        if status != 200 or not isinstance(reply, dict):
            problems.append(f"HTTP {status}, not a national reply: {str(reply)[:200]}")
        elif reply.get("infcode") not in (0, "0"):
            problems.append(f"refused: {str(reply.get('err_msg'))[:400]}")
        else:
            problems += check_reads(reply, step["reads"])
            for path, want in step.get("expect", {}).items():
                got = lookup(reply, path)
                if not got or str(got[0]) != want:
                    problems.append(f"{path} = {got[0] if got else 'missing'!s}, expected {want}")
            problems += consistency(step, reply, rp)
            rp.keep(step, env, reply)
        if problems:
            failures.append(
                {
                    "shape": doc["shape"],
                    "n": n,
                    "step": step["step"],
                    "problems": problems,
                    "request": env,
                    "reply": reply,
                    "client_reads": step["reads"],
                    "expect": step.get("expect", {}),
                }
            )
    leaks = audit_leaks(db_engine, doc)
    if leaks:
        failures.append(
            {"shape": doc["shape"], "n": len(doc["steps"]) + 1, "step": "audit log (message_log)", "problems": leaks}
        )
    return failures, rp


def audit_leaks(db_engine, doc: dict) -> list[str]:
    """Secrets and personal numbers the audit log keeps in clear (it is append-only: they could never be removed).

    The institution's credential, the persons' ID numbers and any card token the client sent must appear masked.
    """
    secret = {"the sign-in credential": CREDENTIALS["H2"]}
    secret.update({f"{p}'s ID number": PEOPLE[p][8] for p in ("E1", "E2")})
    for token in sorted(set(re.findall(r'card_token\\?": ?\\?"([^"\\]+)', dumps_exact(doc["steps"])))):
        secret[f"card token {token[:4]}…"] = token
    with db_engine.connect() as c:
        rows = c.execute(select(MessageLog.request, MessageLog.response, MessageLog.infno)).all()
    logged = [
        (
            r.infno,
            " ".join(x if isinstance(x, str) else dumps_exact(x) for x in (r.request, r.response) if x is not None),
        )
        for r in rows
    ]
    out = []
    for what, value in secret.items():
        where = sorted({infno for infno, text in logged if value in text})
        if where:
            out.append(f"{what} in clear in the log of {', '.join(where)}")
    return out


def consistency(step: dict, reply: dict, rp: Replay) -> list[str]:
    """What any client's cashier relies on: a settlement's parts add up, a cancellation negates the settlement."""
    out = []
    info = reply.get("output", {}).get("setlinfo") if isinstance(reply.get("output"), dict) else None
    if isinstance(info, dict) and all(
        _is_number(info.get(k)) for k in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt")
    ):
        if info["fund_pay_sumamt"] + info["psn_part_amt"] != info["medfee_sumamt"]:
            out.append(
                f"setlinfo: fund_pay_sumamt {info['fund_pay_sumamt']} + psn_part_amt {info['psn_part_amt']} "
                f"!= medfee_sumamt {info['medfee_sumamt']}"
            )
    led = step.get("ledger")
    if led and led["op"] == "cancel" and isinstance(info, dict):
        orig = next((r for r in rp.ledger if r["setl_id"] == rp.saved.get(led["setl_id"])), None)
        if orig and info.get("medfee_sumamt") != -orig["medfee_sumamt"]:
            out.append(f"the cancellation's medfee_sumamt {info.get('medfee_sumamt')} is not -{orig['medfee_sumamt']}")
    return out


def _report(failures: list[dict]) -> None:
    out = os.environ.get("YIBAO_HIS_REPLAY_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            for x in failures:
                f.write(dumps_exact(x) + "\n")


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_client_shape_settles_whole_stays(db_engine, fixture):
    failures, rp = replay(db_engine, fixture)
    _report(failures)
    summary = "\n".join(f"  step {x['n']} {x['step']}: " + "; ".join(x["problems"]) for x in failures)
    assert not failures, f"{fixture.stem}: {len(failures)} step(s) not served as the client expects:\n{summary}"
    # the accounts end where the client's own record says: opening balance less the live settlements' acct_pay
    with ydb.session_scope(db_engine) as s:
        for psn in ("E1", "E2"):
            paid = sum((r["acct_pay"] for r in rp.ledger if r["psn_no"] == psn and not r["refd"]), Decimal("0.00"))
            balc = s.scalar(select(records.Account.balc).where(records.Account.psn_no == psn))
            assert Decimal(balc) / 100 == Decimal(PEOPLE[psn][7]) / 100 - paid, psn


def test_fixtures_are_what_the_builder_writes(tmp_path, monkeypatch):
    """The recorded-style fixtures and their builder agree (a fixture edited by hand, or a stale one, fails)."""
    sys.path.insert(0, str(HERE))
    try:
        import build_fixtures as bf
    finally:
        sys.path.remove(str(HERE))
    monkeypatch.setattr(bf, "HERE", tmp_path)
    bf.main()
    for f in FIXTURES:
        assert (tmp_path / f.name).read_text(encoding="utf-8") == f.read_text(encoding="utf-8"), f.name  # byte for byte
    assert {f.name for f in tmp_path.glob("*.json")} == {f.name for f in FIXTURES}


def test_the_replay_checks_can_fail():
    """The read checks catch a missing field, a wrong type and a money amount with more than two decimals."""
    reply = {"infcode": 0, "output": {"setlinfo": {"setl_id": 5, "hifp_pay": Decimal("1.234")}, "setldetail": [{}]}}
    problems = check_reads(
        reply,
        {
            "output.setlinfo.setl_id": "string",
            "output.setlinfo.hifp_pay": "money",
            "output.setlinfo.balc": "money",
            "output.setldetail[].fund_payamt": "money",
            "output.setlinfo.setl_id ": "numstr",
        },
    )
    assert len(problems) == 5
    assert check_reads(reply, {"output.setlinfo.setl_id": "numstr", "output.setldetail": "array"}) == []


def test_a_replay_that_does_not_balance_fails(db_engine, tmp_path):
    """Tampered totals in a recorded 3201, a missing reply field and a secret in the log are each reported."""
    doc = json.loads((HERE / "hubei_yinhai.json").read_text(encoding="utf-8"))
    for step in doc["steps"]:
        if step["request"]["infno"] == "3201":
            step["request"]["input"]["data"]["medfee_sumamt"] = 1
            break
    doc["steps"][0]["reads"]["output.signinoutb.no_such_field"] = "string"
    doc["steps"][1]["request"]["dev_no"] = "{{credential}}"  # a secret where masking does not look
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    failures, _ = replay(db_engine, bad)
    assert [(x["n"], x["problems"]) for x in failures] == [
        (1, ["output.signinoutb.no_such_field: missing"]),
        (
            next(i for i, s in enumerate(doc["steps"], 1) if s["request"]["infno"] == "3201"),
            ["output.stmtinfo.stmt_rslt = 1, expected 0"],
        ),
        (len(doc["steps"]) + 1, ["the sign-in credential in clear in the log of 1101"]),
    ]
