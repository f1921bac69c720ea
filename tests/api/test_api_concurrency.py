"""Two HIS clients at once against a real server (uvicorn on loopback), SQLite and PostgreSQL.

Accumulators and the personal account must equal the sequential ledger's,
and the same msgid sent by two clients at once must settle once.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from decimal import Decimal

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from tests.api_support import BOOK, CAT, CREDENTIALS, PEOPLE, REGION, SH, Clock, make_interface, seed
from tests.factories import claim, line
from tests.settlement_support import facts, ledger_persons
from yibao.api.envelope import dumps_exact, loads_exact
from yibao.api.hisclient import HisClient, Item, http_transport
from yibao.server import create_app
from yibao.settlement import records
from yibao.settlement.sequential import Ledger, settle_in_order

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SH)
FLOWS = 12  # per client


@pytest.fixture
def server(db_engine):
    seed(db_engine)
    clock = Clock(T0)
    iface = make_interface(db_engine, clock)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = uvicorn.Server(uvicorn.Config(create_app(iface), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    assert srv.started
    try:
        yield f"http://127.0.0.1:{port}", clock, iface
    finally:
        srv.should_exit = True
        th.join(10)


def _client(base: str, clock: Clock, code: str = "H2") -> tuple[httpx.Client, HisClient]:
    http = httpx.Client(base_url=base, timeout=60)
    his = HisClient(http_transport(http), code, clock=clock, credential=CREDENTIALS[code])
    his.sign_in()
    return http, his


def test_two_clients_settling_one_person_lose_nothing(server, db_engine):
    base, clock, iface = server
    clients = [_client(base, clock) for _ in range(2)]
    items = [Item("A-DRUG", "1", "60"), Item("B-DRUG", "1", "40")]
    barrier = threading.Barrier(2)
    replies: list[dict] = []
    errors: list[BaseException] = []

    def run(his: HisClient) -> None:
        try:
            barrier.wait()
            for _ in range(FLOWS):
                out = his.outpatient("C1", "310", PEOPLE["C1"][8], items, pre=False, visit=False)
                replies.append(out["2207"]["output"]["setlinfo"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(his,)) for _http, his in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for http, _his in clients:
        http.close()
    assert not errors, errors
    assert len(replies) == 2 * FLOWS

    # the same claims in sequence through the pure ledger
    claims = [
        claim(
            f"X{i}",
            facts("C1"),
            [line(1, "A-DRUG", 60), line(2, "B-DRUG", 40)],
            med_type="11",
            hosp_lv=2,
            when=T0,
            dise="",
        )
        for i in range(2 * FLOWS)
    ]
    ledger = Ledger(BOOK.policy(REGION), ledger_persons(), dt.date(2025, 3, 1))
    seq = settle_in_order(claims, ledger, CAT)
    want = {(p, y, k, per): v for (p, y), acc in ledger.accum.items() for (k, per), v in acc.items() if v and p == "C1"}
    with db_engine.connect() as conn:
        got = {
            (r.psn_no, r.policy_year, r.kind, r.period): r.value
            for r in conn.execute(select(records.Accumulator.__table__)).all()
        }
        n = conn.execute(select(func.count()).select_from(records.Settlement)).scalar_one()
        bal = conn.execute(select(records.Account.balc).where(records.Account.psn_no == "C1")).scalar_one()
    assert got == want
    assert n == 2 * FLOWS
    debits = sum(int(r["acct_pay"] * 100) for r in replies)
    assert debits == sum(x.acct_pay for x in seq) > 0
    assert bal == PEOPLE["C1"][7] - debits
    assert sorted(r["balc"] for r in replies) == sorted(
        Decimal(PEOPLE["C1"][7] - sum(x.acct_pay for x in seq[: k + 1])) / 100 for k in range(2 * FLOWS)
    )

    # reconciliation equals the sum of the replies
    http, his = _client(base, clock)
    tot = {
        "medfee_sumamt": sum(r["medfee_sumamt"] for r in replies),
        "fund_pay_sumamt": sum(r["fund_pay_sumamt"] for r in replies),
        "acct_pay": sum(r["acct_pay"] for r in replies),
        "fixmedins_setl_cnt": len(replies),
    }
    r = his.call(
        "3201",
        {
            "data": {
                "insutype": "310",
                "clr_type": "11",
                "setl_optins": REGION,
                "stmt_begndate": "2025-03-10",
                "stmt_enddate": "2025-03-10",
                **tot,
            }
        },
    )
    assert r["output"]["stmtinfo"]["stmt_rslt"] == "0", r
    http.close()


def test_one_msgid_from_two_clients_settles_once(server, db_engine):
    base, clock, iface = server
    (h1, c1), (h2, c2) = _client(base, clock), _client(base, clock)
    reg = c1.call(
        "2201",
        {
            "data": {
                "psn_no": "E2",
                "insutype": "310",
                "begntime": "2025-03-10 08:00:00",
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": PEOPLE["E2"][8],
                "ipt_otp_no": "R-1",
            }
        },
    )
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    c1.call("2204", {"feedetail": c1.feedetail(mdtrt_id, "E2", [Item("A-DRUG", "2", "33.33")], when=T0)})
    data = {
        "data": {
            "psn_no": "E2",
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": PEOPLE["E2"][8],
            "med_type": "11",
            "medfee_sumamt": "66.66",
            "mdtrt_id": mdtrt_id,
            "insutype": "310",
        }
    }
    env1 = c1.envelope("2207", data, msgid="H2-SAME-0001")
    env2 = dict(env1, sign_no=c2.sign_no)
    barrier = threading.Barrier(2)
    out: list = [None, None]

    def run(k: int, http: httpx.Client, env: dict) -> None:
        barrier.wait()
        out[k] = http.post("/fsi/api/rsfComIfsService/callService", content=dumps_exact(env).encode()).content

    ths = [threading.Thread(target=run, args=(0, h1, env1)), threading.Thread(target=run, args=(1, h2, env2))]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    a, b = (loads_exact(x) for x in out)
    assert a["infcode"] == b["infcode"] == 0, (a, b)
    assert a == b  # byte-identical replies
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(records.Settlement)).scalar_one() == 1
    h1.close()
    h2.close()
