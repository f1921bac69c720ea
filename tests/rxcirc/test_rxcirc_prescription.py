"""Prescription circulation checks (处方流转): fill once; refusals (synthetic prescription)."""

import datetime as dt

import pytest

from yibao.rxcirc.prescription import Prescription, RxError, RxLine, check_fill

RX = Prescription(
    "RX001",
    "H44010000001",
    "D001",
    "P0000001",
    dt.date(2026, 3, 1),
    dt.date(2026, 3, 4),
    (RxLine("XA10BA02-DEMO", 60_000, 30),),
)
SIG = RX.digest()
PH = "P44010000001"
FILL = [RxLine("XA10BA02-DEMO", 60_000, 30)]


def test_fill_ok_then_refused_twice():
    filled: set[str] = set()
    check_fill(RX, SIG, PH, FILL, dt.date(2026, 3, 2), filled)
    filled.add(RX.rx_no)
    with pytest.raises(RxError, match="already"):
        check_fill(RX, SIG, PH, FILL, dt.date(2026, 3, 2), filled)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"on": dt.date(2026, 3, 5)}, "not valid"),
        ({"pharmacy": "P44010000002", "on": dt.date(2026, 3, 2)}, None),  # designated until 2026-06-30: fine
        ({"pharmacy": "P99999999999"}, "not designated"),
        ({"fill": [RxLine("XOTHER", 1000, 1)]}, "not on prescription"),
        ({"fill": [RxLine("XA10BA02-DEMO", 90_000, 30)]}, "above"),
        ({"sig": "0" * 64}, "signature"),
    ],
)
def test_refusals(kw, match):
    args = {"sig": SIG, "pharmacy": PH, "fill": FILL, "on": dt.date(2026, 3, 2)} | kw

    def call():
        return check_fill(RX, args["sig"], args["pharmacy"], args["fill"], args["on"], set())

    if match is None:
        call()
    else:
        with pytest.raises(RxError, match=match):
            call()


def test_digest_changes_with_content():
    other = Prescription(
        RX.rx_no,
        RX.issuer_code,
        RX.practitioner_code,
        RX.psn_no,
        RX.issued_on,
        RX.valid_until,
        (RxLine("XA10BA02-DEMO", 90_000, 30),),
    )
    assert other.digest() != SIG and len(SIG) == 64
