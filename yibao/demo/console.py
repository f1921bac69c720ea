"""First contact for ``yibao demo --db URL`` (演示): console users and a procurement round in the database.

After the demo has loaded its settled synthetic region into a database,
:func:`seed_console` makes the web console usable at once:

* three **DEMO ONLY** console users, one per role — ``demo-bureau`` (医保局,
  sees everything), ``demo-hospital`` (the region's hospital with the most
  settlements, sees only its own) and ``demo-public`` (参保人: the README's
  example person ``990000000002`` when they have settlements, else the first
  person with settlements, preferring one with a relative on record) — each
  with a fresh random password, printed once and written to
  ``<out>/demo-users.txt`` (readable by its owner only);
* one SYNTHETIC volume-based procurement round (集采) with its contracts and
  six months of purchase orders, so the console's procurement page has
  content.

Nothing here is for a real deployment: real users are made with ``yibao
console add-user`` and real rounds with ``yibao procurement run --db``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

__all__ = ["DEMO_PUBLIC_PSN_NO", "DemoUser", "pick_demo_people", "save_demo_round", "seed_console", "write_credentials"]

# The example person README.md names: an employee with a relative on record and settlements in the default demo
# (100,000 people, seed 42).
DEMO_PUBLIC_PSN_NO = "990000000002"
DEMO_ROUND_RULES = "national-batch-10"
DEMO_ROUND_DRUGS = 8
DEMO_ROUND_INSTITUTIONS = 500
DEMO_ROUND_MONTHS = 6


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str
    scope: str  # the institution or person the user is limited to ("" for the bureau)
    display_name: str


def pick_demo_people(engine: Engine, preferred_psn_no: str = DEMO_PUBLIC_PSN_NO) -> tuple[str, str]:
    """``(fixmedins_code, psn_no)``: the busiest hospital of the home region and a person with settlements."""
    with engine.connect() as c:
        inst = c.execute(
            text(
                "SELECT s.fixmedins_code FROM settlement s JOIN institution i USING (fixmedins_code) "
                "WHERE i.fixmedins_type = 'hospital' AND i.admdvs = (SELECT insuplc_admdvs FROM person ORDER BY "
                "psn_no LIMIT 1) "
                "GROUP BY s.fixmedins_code ORDER BY count(*) DESC, s.fixmedins_code LIMIT 1"
            )
        ).scalar()
        if inst is None:  # no hospital settlement in the home region: any institution with settlements
            inst = c.execute(
                text("SELECT fixmedins_code FROM settlement GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
            ).scalar()
        has = c.execute(text("SELECT 1 FROM settlement WHERE psn_no = :p LIMIT 1"), {"p": preferred_psn_no}).scalar()
        psn = preferred_psn_no if has else None
        if psn is None:
            psn = c.execute(
                text(
                    "SELECT s.psn_no FROM settlement s WHERE EXISTS (SELECT 1 FROM family_link f WHERE f.psn_no = "
                    "s.psn_no) "
                    "ORDER BY s.psn_no LIMIT 1"
                )
            ).scalar()
        if psn is None:
            psn = c.execute(text("SELECT psn_no FROM settlement ORDER BY psn_no LIMIT 1")).scalar()
    if inst is None or psn is None:
        from yibao.core.errors import YibaoError

        raise YibaoError(
            "the database holds no settlements: load a settled region first (yibao demo --db URL)",
            "数据库中没有结算记录，请先载入已结算的区域",
            field="settlement",
        )
    return str(inst), str(psn)


def _password() -> str:
    return "demo-" + secrets.token_urlsafe(9)  # 12 random characters after the prefix


def create_demo_users(engine: Engine) -> list[DemoUser]:
    """The three demo console users (created or reset, with fresh random passwords)."""
    from yibao.web.auth import AuthService

    inst, psn = pick_demo_people(engine)
    users = [
        DemoUser("demo-bureau", "bureau", _password(), "", "演示 医保局 DEMO bureau"),
        DemoUser("demo-hospital", "institution", _password(), inst, "演示 医院 DEMO hospital"),
        DemoUser("demo-public", "public", _password(), psn, "演示 参保人 DEMO insured person"),
    ]
    auth = AuthService(engine)
    for u in users:
        auth.add_user(
            u.username,
            u.password,
            u.role,
            fixmedins_code=u.scope if u.role == "institution" else None,
            psn_no=u.scope if u.role == "public" else None,
            display_name=u.display_name,
        )
    return users


def save_demo_round(engine: Engine, seed: int) -> tuple[int, int, int]:
    """Run one SYNTHETIC procurement round and persist it with its orders; ``(round id, contracts, orders)``."""
    from yibao.procurement.engine import run_round
    from yibao.procurement.integrity import build_graph, slot_groups
    from yibao.procurement.params import get_ruleset
    from yibao.procurement.service import save_orders, save_round
    from yibao.synth.procurement import generate_orders, generate_round

    sr = generate_round(drugs=DEMO_ROUND_DRUGS, institutions=DEMO_ROUND_INSTITUTIONS, regions=12, seed=seed)
    graph = build_graph(sr.round.firms, sr.relations, sr.round.bids)
    res = run_round(sr.round, get_ruleset(DEMO_ROUND_RULES), slot_group=slot_groups(graph, sr.round.bids))
    rid = save_round(engine, sr.round, res)
    orders = generate_orders(res.contracts, months=DEMO_ROUND_MONTHS, seed=seed)
    n = save_orders(engine, rid, orders)
    return rid, len(res.contracts), n


def write_credentials(path: Path, users: list[DemoUser], db_shown: str) -> Path:
    """``demo-users.txt``: the demo users and passwords, readable by the owner only."""
    lines = [
        "DEMO ONLY 仅供演示 - console users created by `yibao demo` for a SYNTHETIC region; never use them on real "
        "data.",
        f"database: {db_shown}",
        "",
        *(f"{u.username:<14} {u.role:<12} {u.scope or '(all)':<14} password: {u.password}" for u in users),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.chmod(path, 0o600)
    return path


def seed_console(
    engine: Engine, seed: int, out_dir: Path, db_shown: str
) -> tuple[list[DemoUser], tuple[int, int, int], Path]:
    """Demo users and a procurement round in ``engine``; the credentials file in ``out_dir``."""
    users = create_demo_users(engine)
    round_info = save_demo_round(engine, seed)
    from yibao.demo.enrolment import demo_enrolment  # 参保缴费: enrol, pay, stop, a refusal with its reason

    (out_dir / "demo-enrolment.txt").write_text("\n".join(demo_enrolment(engine)) + "\n", encoding="utf-8")
    from yibao.demo.ltc import demo_ltc  # synthetic LTC recipients (长护险)

    demo_ltc(engine, seed)
    from yibao.demo.filing import demo_filing

    demo_filing(engine, pick_demo_people(engine)[1])  # a synthetic 异地就医备案 for the public demo person
    from yibao.demo.maternity import demo_maternity  # 生育保险: visits settle, the allowance claim is approved

    (out_dir / "demo-maternity.txt").write_text(
        "\n".join(demo_maternity(engine, pick_demo_people(engine)[0])) + "\n", encoding="utf-8"
    )
    from yibao.demo.reimbursement import demo_reimbursement  # 手工报销: a paper claim reviewed and paid

    (out_dir / "demo-reimbursement.txt").write_text("\n".join(demo_reimbursement(engine)) + "\n", encoding="utf-8")
    from yibao.demo.rxcirc import demo_rxcirc  # 处方流转 + 互联网复诊: a fill settled at a pharmacy

    (out_dir / "demo-rxcirc.txt").write_text("\n".join(demo_rxcirc(engine)) + "\n", encoding="utf-8")
    from yibao.demo.journey import demo_journey  # one person through every flow: enrol … long-term care

    (out_dir / "demo-journey.txt").write_text(
        "\n".join(demo_journey(engine, pick_demo_people(engine)[0])) + "\n", encoding="utf-8"
    )
    return users, round_info, write_credentials(out_dir / "demo-users.txt", users, db_shown)
