"""The command line end to end: `yibao synth` into a fresh database and `yibao demo` on a small region."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from yibao.cli import app

runner = CliRunner()


def test_synth_into_a_fresh_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    res = runner.invoke(app, ["synth", "--people", "300", "--seed", "3", "--db", url])
    assert res.exit_code == 0, res.output
    eng = sa.create_engine(url)
    with eng.connect() as c:
        assert c.execute(sa.text("select count(*) from person")).scalar_one() == 300
        assert c.execute(sa.text("select count(*) from encounter")).scalar_one() > 300
        # every fee line belongs to an encounter that was loaded
        orphans = c.execute(
            sa.text("select count(*) from fee_detail f left join encounter e using (mdtrt_id) where e.mdtrt_id is null")
        )
        assert orphans.scalar_one() == 0


def test_demo_writes_report_and_settlements(tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--people", "500", "--seed", "9", "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "SYNTHETIC" in html and 'class="ychart"' in html
    import pyarrow.parquet as pq

    enc = pq.read_table(out / "region" / "encounter.parquet").num_rows
    setl = pq.read_table(out / "region" / "settlement.parquet")
    rej = pq.read_table(out / "region" / "settlement_rejected.parquet").num_rows
    assert setl.num_rows + rej == enc  # every claim settled or refused with a reason
    t = setl.to_pandas()
    parts = ["fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"]
    assert (t[parts].sum(axis=1) == t["medfee_sumamt"]).all()


def test_policy_validate_reports_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: bad\nregion: '990900'\nlabel: x\nstatus: example\ninherits: nowhere\n", encoding="utf-8")
    res = runner.invoke(app, ["policy", "validate", str(bad)])
    assert res.exit_code != 0
    flat = "".join(res.output.split())  # rich wraps long paths at the terminal width
    assert "bad.yaml" in flat and "inherits" in flat
