"""The e-insurance code (医保电子凭证): tokens, binding, family accounts, risk controls."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from yibao.codes import registry
from yibao.core import db
from yibao.ecode import risk, tokens
from yibao.ecode.models import EcodeBinding, EcodeBlock, EcodeRiskEvent, EcodeUse
from yibao.ecode.params import EcodeConfigError, default_params, load_params
from yibao.ecode.service import EcodeRefused, EcodeService

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=db.SHANGHAI)
GOOD = {"certno": "990101199001010011", "face": "live-match"}


class Clock:
    def __init__(self, t: dt.datetime):
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t


def seed_people(engine) -> None:
    with db.session_scope(engine) as s:
        for psn, cert, fam in (
            ("P1", "990101199001010011", "F1"),
            ("P2", "990101199201010022", "F1"),
            ("P3", "990101201501010033", "F1"),
            ("P4", "990101198001010044", "F2"),
        ):
            s.add(
                registry.Person(
                    psn_no=psn,
                    certno=cert,
                    psn_name=f"张{psn}",
                    gend="1",
                    insutype="310",
                    psn_type="in_service",
                    insuplc_admdvs="990100",
                    family_id=fam,
                    synthetic=True,
                )
            )
        s.flush()
        s.add(registry.FamilyLink(psn_no="P1", relative_psn_no="P2", relation="spouse", synthetic=True))
        s.add(registry.FamilyLink(psn_no="P1", relative_psn_no="P3", relation="child", synthetic=True))
        for code, adm in (("H-LOCAL1", "990101"), ("H-LOCAL2", "990102"), ("H-GZ", "440100"), ("H-BJ", "110000")):
            s.add(
                registry.Institution(
                    fixmedins_code=code,
                    fixmedins_name=code,
                    fixmedins_type="hospital",
                    hosp_lv=3,
                    admdvs=adm,
                    synthetic=True,
                )
            )


@pytest.fixture
def svc(db_engine):
    seed_people(db_engine)
    return EcodeService(db_engine, clock=Clock(T0))


# --- tokens (pure) -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["hmac-sm3", "hmac-sha256", "sm2"])
def test_token_round_trip_expiry_and_forgery(alg: str) -> None:
    k = tokens.SigningKey.generate(alg)
    code = tokens.issue(k, "b1", T0)
    keys = {k.kid: k}
    assert tokens.verify(code, keys, T0 + dt.timedelta(seconds=60), ttl_seconds=60).subject == "b1"
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(code, keys, T0 + dt.timedelta(seconds=61), ttl_seconds=60)
    with pytest.raises(tokens.TokenError, match="not yet valid"):
        tokens.verify(code, keys, T0 - dt.timedelta(seconds=6), ttl_seconds=60, max_skew_seconds=5)
    prefix, payload, sig = code.split(".")
    other = tokens.issue(k, "b2", T0).split(".")[1]
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify(f"{prefix}.{other}.{sig}", keys, T0, ttl_seconds=60)
    k2 = (
        tokens.SigningKey(k.kid, alg, secret=b"x" * 32)
        if alg != "sm2"
        else tokens.SigningKey.generate("sm2", kid=k.kid)
    )
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify(code, {k.kid: k2}, T0, ttl_seconds=60)
    with pytest.raises(tokens.TokenError, match="not an e-insurance code"):
        tokens.verify("990101199001010011", keys, T0, ttl_seconds=60)


def test_sm3_hmac_matches_pure_python_gmssl(monkeypatch) -> None:
    """The OpenSSL HMAC-SM3 and the pure-Python fallback agree (and SM3('abc') is the standard's test vector)."""
    import hashlib

    assert hashlib.new("sm3", b"abc").hexdigest() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    fast = tokens.sm3_hmac(b"key" * 30, b"message")
    monkeypatch.setattr(tokens, "_OPENSSL_SM3", False)
    assert tokens.sm3_hmac(b"key" * 30, b"message") == fast


@settings(max_examples=50, deadline=None)
@given(
    subject=st.text(alphabet="ABCDEFGHIJ0123456789", min_size=1, max_size=20),
    age=st.integers(min_value=-5000, max_value=70_000),
)
def test_token_accepted_exactly_within_ttl(subject: str, age: int) -> None:
    k = tokens.SigningKey("k1", "hmac-sm3", secret=b"s" * 32)
    code = tokens.issue(k, subject, T0)
    now = T0 + dt.timedelta(milliseconds=age)
    ok = -5000 <= age <= 60_000
    try:
        assert tokens.verify(code, {"k1": k}, now, ttl_seconds=60, max_skew_seconds=5).subject == subject
        assert ok
    except tokens.TokenError:
        assert not ok


# --- risk rules (pure) -----------------------------------------------------------------


def test_impossible_travel_hand_computed() -> None:
    p = default_params()
    bj, gz = p.places["110000"], p.places["440100"]
    km = risk.haversine_km(bj, gz)
    assert 1850 < km < 1950  # Beijing–Guangzhou is about 1,890 km great-circle
    first = risk.Use(T0, "110000", "H-BJ")
    # 30 minutes later in Guangzhou: ~3,800 km/h, impossible
    found = risk.detect(risk.Use(T0 + dt.timedelta(minutes=30), "440100", "H-GZ"), [first], p.risk, p.places)
    assert [a.kind for a in found] == ["impossible_travel"]
    assert found[0].evidence["km"] == pytest.approx(km, abs=0.1)
    # 6 hours later: outside the 120-minute window
    assert risk.detect(risk.Use(T0 + dt.timedelta(hours=6), "440100"), [first], p.risk, p.places) == []
    # two districts of the synthetic city ~10 km apart, 5 minutes: below min_distance_km
    assert (
        risk.detect(risk.Use(T0 + dt.timedelta(minutes=5), "990102"), [risk.Use(T0, "990101")], p.risk, p.places) == []
    )


def test_burst() -> None:
    p = default_params()
    n = p.risk.burst_uses
    recent = [risk.Use(T0 + dt.timedelta(seconds=i), "990101") for i in range(n - 1)]
    assert risk.detect(risk.Use(T0 + dt.timedelta(seconds=n), "990101"), recent, p.risk, p.places) == []
    recent.append(risk.Use(T0 + dt.timedelta(seconds=n), "990101"))
    assert [
        a.kind for a in risk.detect(risk.Use(T0 + dt.timedelta(seconds=n + 1), "990101"), recent, p.risk, p.places)
    ] == ["burst"]


def test_bad_params_name_the_field(tmp_path) -> None:
    (tmp_path / "ecode.yaml").write_text(
        "version: 1\ntoken: {ttl_seconds: 0, max_skew_seconds: 5, algorithm: hmac-sm3, prefix: YB1}\n"
        "binding: {verifier: fake, max_relatives: 3, relations: [spouse]}\n"
        "risk: {min_distance_km: 100, window_minutes: 60, max_speed_kmh: 400, burst_uses: 5, burst_window_minutes: 5, "
        "actions: [block]}\n"
    )
    with pytest.raises(EcodeConfigError) as e:
        load_params(tmp_path)
    assert e.value.field == "token.ttl_seconds"


# --- service -----------------------------------------------------------------------------


def test_bind_requires_identity(svc: EcodeService, db_engine) -> None:
    with pytest.raises(EcodeRefused) as e:
        svc.bind("acct-1", "P1", {"certno": GOOD["certno"], "face": "no-match"})
    assert e.value.field == "evidence" and "人脸" in e.value.message_zh
    with pytest.raises(EcodeRefused):
        svc.bind("acct-1", "P1", {"certno": "990101199901019999", "face": "live-match"})
    with db.session_scope(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(EcodeBinding)) == 0  # refusals change nothing
    b = svc.bind("acct-1", "P1", GOOD)
    assert svc.bind("acct-1", "P1", GOOD) == b  # idempotent
    with pytest.raises(EcodeRefused, match="another account"):
        svc.bind("acct-2", "P1", GOOD)


def test_code_generates_verifies_and_expires(svc: EcodeService) -> None:
    svc.bind("acct-1", "P1", GOOD)
    code = svc.generate("acct-1", "P1")
    assert "P1" not in code and GOOD["certno"] not in code  # opaque: names a binding, not the person
    v = svc.verify(code, fixmedins_code="H-LOCAL1", purpose="1101")
    assert (v.psn_no, v.relation) == ("P1", "self")
    svc.clock.t = T0 + dt.timedelta(seconds=61)
    with pytest.raises(EcodeRefused, match="expired"):
        svc.verify(code, fixmedins_code="H-LOCAL1")
    with pytest.raises(EcodeRefused, match="no active binding"):
        svc.generate("acct-1", "P2")


def test_family_account_and_mutual_aid(svc: EcodeService) -> None:
    with pytest.raises(EcodeRefused, match="bind your own"):
        svc.add_relative("acct-1", "P2", {"certno": "990101199201010022", "face": "live-match"})
    svc.bind("acct-1", "P1", GOOD)
    with pytest.raises(EcodeRefused, match="not a recorded"):
        svc.add_relative("acct-1", "P4", {"certno": "990101198001010044", "face": "live-match"})
    svc.add_relative("acct-1", "P3", {"certno": "990101201501010033", "face": "live-match"}, mutual_aid=True)
    assert svc.mutual_aid_payer("P3") == "P1"
    code = svc.generate("acct-1", "P3")  # the parent shows the child's code (一老一小)
    v = svc.verify(code, fixmedins_code="H-LOCAL1")
    assert (v.psn_no, v.holder_psn_no, v.relation, v.mutual_aid) == ("P3", "P1", "child", True)
    svc.set_mutual_aid("acct-1", "P3", False)
    assert svc.mutual_aid_payer("P3") is None
    svc.unbind("acct-1", "P1")  # relatives go with the holder
    assert all(b.status == "unbound" for b in svc.bindings("acct-1"))
    with pytest.raises(EcodeRefused, match="binding was removed"):
        svc.verify(code, fixmedins_code="H-LOCAL1")


def test_anomaly_blocks_unbinds_and_reports(svc: EcodeService, db_engine) -> None:
    svc.bind("acct-1", "P1", GOOD)
    svc.verify(svc.generate("acct-1", "P1"), fixmedins_code="H-BJ")
    svc.clock.t = T0 + dt.timedelta(minutes=20)
    code = svc.generate("acct-1", "P1")
    with pytest.raises(EcodeRefused, match="anomalous use") as e:
        svc.verify(code, fixmedins_code="H-GZ")
    assert "异常" in e.value.message_zh
    with db.session_scope(db_engine) as s:
        ev = s.scalars(select(EcodeRiskEvent)).one()
        assert (ev.kind, ev.actions, ev.actor) == ("impossible_travel", "block,unbind,report", "risk-engine")
        assert ev.reported_at is not None and ev.evidence["from"] == "110000"
        assert s.get(EcodeBlock, "P1").active
        assert s.scalars(select(EcodeBinding.status)).all() == ["unbound"]
        uses = s.execute(select(EcodeUse.fixmedins_code, EcodeUse.accepted).order_by(EcodeUse.id)).all()
        assert uses == [("H-BJ", True), ("H-GZ", False)]
    with pytest.raises(EcodeRefused, match="blocked"):
        svc.bind("acct-1", "P1", GOOD)
    svc.unblock("P1", actor="bureau1")
    svc.bind("acct-1", "P1", GOOD)
    assert svc.generate("acct-1", "P1")


def test_manual_block_and_force_unbind(svc: EcodeService, db_engine) -> None:
    svc.bind("acct-1", "P1", GOOD)
    svc.block("P1", actor="bureau1", reason="complaint")
    with pytest.raises(EcodeRefused, match="blocked"):
        svc.generate("acct-1", "P1")
    svc.force_unbind("P1", actor="bureau1")
    with db.session_scope(db_engine) as s:
        kinds = s.scalars(select(EcodeRiskEvent.kind).order_by(EcodeRiskEvent.id)).all()
        assert kinds == ["manual_block", "manual_unbind"]
        assert s.scalars(select(EcodeBinding.unbind_reason)).one() == "forced: manual_unbind"


def test_group_commit_mode_sees_unflushed_uses_and_writes_them(db_engine) -> None:
    """usage_log.flush_ms > 0: uses are written in groups, yet the risk rules see the ones not written yet."""
    seed_people(db_engine)
    p = default_params()
    params = p.model_copy(update={"usage_log": p.usage_log.model_copy(update={"flush_ms": 5000, "max_batch": 10_000})})
    svc = EcodeService(db_engine, params=params, clock=Clock(T0))
    try:
        svc.bind("acct-1", "P1", GOOD)
        svc.verify(svc.generate("acct-1", "P1"), fixmedins_code="H-BJ")
        with db.session_scope(db_engine) as s:
            assert s.scalar(select(func.count()).select_from(EcodeUse)) == 0  # buffered
        svc.clock.t = T0 + dt.timedelta(minutes=20)
        with pytest.raises(EcodeRefused, match="anomalous use"):
            svc.verify(svc.generate("acct-1", "P1"), fixmedins_code="H-GZ")
        assert svc.flush() == 1
        with db.session_scope(db_engine) as s:
            uses = sorted(s.execute(select(EcodeUse.fixmedins_code, EcodeUse.accepted)).all())
            assert uses == [("H-BJ", True), ("H-GZ", False)]
            assert s.get(EcodeBlock, "P1").active
    finally:
        svc.close()


def test_payer_for_code_only_with_mutual_aid(svc: EcodeService) -> None:
    svc.bind("acct-1", "P1", GOOD)
    svc.add_relative("acct-1", "P2", {"certno": "990101199201010022", "face": "live-match"}, mutual_aid=False)
    svc.add_relative("acct-1", "P3", {"certno": "990101201501010033", "face": "live-match"}, mutual_aid=True)
    assert svc.payer_for_code(svc.generate("acct-1", "P1")) is None  # own code: own account
    assert svc.payer_for_code(svc.generate("acct-1", "P2")) is None  # no mutual aid authorised
    code = svc.generate("acct-1", "P3")
    assert svc.payer_for_code(code) == "P1"
    svc.clock.t = T0 + dt.timedelta(seconds=61)
    assert svc.payer_for_code(code) is None  # expired
    assert svc.payer_for_code("garbage") is None


def test_key_rotation_keeps_shown_codes_valid(svc: EcodeService, db_engine) -> None:
    svc.bind("acct-1", "P1", GOOD)
    old = svc.generate("acct-1", "P1")
    kid = svc.rotate_key()
    new = svc.generate("acct-1", "P1")
    assert tokens.peek(new).kid == kid != tokens.peek(old).kid
    other = EcodeService(db_engine, clock=svc.clock)  # another process: loads every key from the database
    assert other.verify(old, fixmedins_code="H-LOCAL1").psn_no == "P1"
    assert other.verify(new, fixmedins_code="H-LOCAL1").psn_no == "P1"
