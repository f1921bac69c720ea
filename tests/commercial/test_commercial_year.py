"""Commercial layer over a settled year (Parquet) and its CLI; SYNTHETIC rows written here."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from yibao.cli import app
from yibao.commercial.products import CommercialError, get_product
from yibao.commercial.year import run_year


def _write(tmp_path):
    t = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    rows = [  # psn, setl_id, time, psn_part, fulamt_ownpay, overlmt, cancelled
        ("P1", "S1", t, 1_500_000, 300_000, 0, False),
        ("P1", "S2", t + dt.timedelta(days=1), 500_000, 400_000, 0, False),
        ("P1", "S3", t + dt.timedelta(days=2), 9_000_000, 0, 0, True),  # cancelled: ignored
        ("P2", "S4", t, 100_000, 0, 0, False),
    ]
    cols = list(zip(*rows, strict=True))
    pq.write_table(
        pa.table(
            {
                "psn_no": cols[0],
                "setl_id": cols[1],
                "setl_time": cols[2],
                "policy_year": [2026] * 4,
                "psn_part_amt": cols[3],
                "fulamt_ownpay_amt": cols[4],
                "overlmt_selfpay": cols[5],
                "refd_setl_flag": cols[6],
                "synthetic": [True] * 4,
            }
        ),
        tmp_path / "settlement.parquet",
    )


def test_run_year_hand_worked(tmp_path):
    _write(tmp_path)
    r = run_year(tmp_path, get_product("HMB-DEMO-2026"))
    # P1: S1 in 12 000 + out 3 000 (deductible 15 000 used), S2 in 1 000 + out 4 000: deductible left 5 000
    #     takes in 1 000 + out 4 000 → pays 0; P2 1 000 in-list < deductible → 0.  Total 0 paid.
    assert (r.claims, r.people, r.insurer_pays, r.people_helped) == (3, 2, 0, 0)
    assert r.person_part_before == 2_100_000 and r.synthetic


def test_run_year_pays_after_deductible(tmp_path):
    _write(tmp_path)
    r = run_year(tmp_path, get_product("HMB-DEMO-2026").model_copy(update={"deductible_yuan": 1_000_000}))
    # deductible 10 000: S1 in 12 000 → 10 000 used, pays 2 000*0.8
    # + 3 000*0.5 = 3 100; S2 pays 1 000*0.8 + 4 000*0.5 = 2 800
    assert r.insurer_pays == 590_000 and r.people_helped == 1
    assert r.person_part_after == r.person_part_before - 590_000
    assert (r.catastrophic_people_before, r.catastrophic_people_after) == (1, 1)


def test_run_year_refusals(tmp_path):
    with pytest.raises(CommercialError):
        run_year(tmp_path, get_product("HMB-DEMO-2026"))
    with pytest.raises(CommercialError):
        get_product("NO-SUCH")


def test_cli(tmp_path):
    _write(tmp_path)
    out = CliRunner().invoke(app, ["commercial", "run-year", "--data", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "SYNTHETIC" in out.output and "helped 0" in out.output
    assert CliRunner().invoke(app, ["commercial", "run-year", "--data", str(tmp_path), "--product", "X"]).exit_code == 2
