"""Set-up shared by the console tests: a small settled synthetic region in SQLite, console users, a live server."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from rich.console import Console

PASSWORD = "console-pass-1"


def page_csrf(client, path: str = "/console/login") -> str:
    """The CSRF token a console page carries (what its forms post back)."""
    import re

    html = client.get(path).text
    m = re.search(r'name="csrf-token" content="([0-9a-f]*)"', html)
    assert m and m.group(1), f"{path}: no CSRF token in the page"
    return m.group(1)


def console_login(client, username: str, password: str, *, next: str = "/console/"):
    """Log in through the login form (with its CSRF token) as a browser does; returns the response (303 when done)."""
    token = page_csrf(client, "/console/login")
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "next": next, "csrf_token": token},
        follow_redirects=False,
    )


def build_region_db(root: Path, people: int = 1500, seed: int = 7) -> str:
    """Generate, settle and load a small synthetic region; returns the SQLite URL."""
    from yibao.core import db
    from yibao.core.parquet_io import load_parquet_dir
    from yibao.settlement.annual import settle_year
    from yibao.synth.cli import run_synth

    url = f"sqlite:///{root / 'yibao.db'}"
    run_synth(people=people, seed=seed, out=root / "region", db=None, year=2025, console=Console(quiet=True))
    settle_year(root / "region")
    db.upgrade(url)
    load_parquet_dir(url, root / "region")
    return url


def pick(engine) -> dict[str, str]:
    """An institution with settlements, a far-away one, and an employee with a relative on record (and their IDs)."""
    with engine.connect() as c:
        inst = c.exec_driver_sql(
            "SELECT s.fixmedins_code FROM settlement s JOIN institution i USING (fixmedins_code) "
            "WHERE i.admdvs LIKE '99%' AND i.fixmedins_type = 'hospital' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).scalar()
        far = c.exec_driver_sql(
            "SELECT fixmedins_code FROM institution WHERE admdvs = '440100' ORDER BY 1 LIMIT 1"
        ).scalar()
        psn, certno, rel, rel_cert = c.exec_driver_sql(
            "SELECT p.psn_no, p.certno, f.relative_psn_no, r.certno FROM person p JOIN family_link f ON f.psn_no = "
            "p.psn_no "
            "JOIN person r ON r.psn_no = f.relative_psn_no WHERE p.insutype = '310' AND f.relation IN "
            "('spouse','child','parent') "
            "AND EXISTS (SELECT 1 FROM settlement s WHERE s.psn_no = p.psn_no) ORDER BY p.psn_no LIMIT 1"
        ).one()
    return {"inst": inst, "far": far, "psn": psn, "certno": certno, "rel": rel, "rel_certno": rel_cert}


def add_users(engine, who: dict[str, str]) -> None:
    from yibao.web.auth import AuthService

    a = AuthService(engine)
    a.add_user("bureau1", PASSWORD, "bureau", display_name="医保局 张科长")
    a.add_user("hosp1", PASSWORD, "institution", fixmedins_code=who["inst"], display_name="医院 李主任")
    a.add_user("public1", PASSWORD, "public", psn_no=who["psn"], display_name="参保人")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``yibao serve``'s app (national interface + console) in a thread on 127.0.0.1."""

    def __init__(self, url: str):
        import tempfile

        import uvicorn

        from yibao.api.app import build_interface
        from yibao.api.security import SecurityPolicy, write_policy
        from yibao.server import create_app

        # institutions sign in with secrets issued into this file (see credential()), as with `yibao serve --security`
        self._dir = tempfile.TemporaryDirectory(prefix="yibao-security-")
        self.security = Path(self._dir.name) / "security.yaml"
        write_policy(self.security, SecurityPolicy())
        self.iface = build_interface(url, str(self.security))
        self.app = create_app(self.iface)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def credential(self, fixmedins_code: str) -> str:
        """Issue (or rotate) an institution's sign-in secret in the
        server's security file; the server reads it at the next 9001.
        """
        from yibao.api.security import issue_credential

        return issue_credential(self.security, fixmedins_code)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.iface.engine.dispose()
        self._dir.cleanup()


def seed_subsystems(engine, inst: str) -> dict:
    """A persisted SYNTHETIC procurement round with orders, and a supervision case against ``inst`` with a few steps."""
    from yibao.procurement.engine import run_round
    from yibao.procurement.params import get_ruleset
    from yibao.procurement.service import save_orders, save_round
    from yibao.supervision.cases import CaseService
    from yibao.synth.procurement import generate_orders, generate_round

    sr = generate_round(drugs=4, institutions=60, seed=3)
    res = run_round(sr.round, get_ruleset("national-batch-07"))
    rid = save_round(engine, sr.round, res)
    orders = generate_orders(res.contracts, months=6, seed=1, lag_share=0.2)
    save_orders(engine, rid, orders)
    cs = CaseService(engine)
    cid = cs.open_clue("institution", inst, "SV-TEST-01", actor="bureau1", loss_fen=123_456, note="synthetic clue")
    cs.file(cid, actor="bureau1", note="filed")
    cs.investigate(cid, actor="bureau1", note="on site")
    other = cs.open_clue(
        "institution", "H99999999", "complaint", actor="bureau1", loss_fen=9_999, note="another institution"
    )
    return {"round_id": rid, "case_id": cid, "other_case_id": other}
