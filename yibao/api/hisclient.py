"""A minimal HIS client of the national envelope, for demos, tests and the load generator.

It builds envelopes the way a hospital information system does (``msgid`` =
institution code + timestamp + sequence), posts them through any transport
(an ``httpx.Client``, FastAPI's ``TestClient`` or a direct call), and drives
the usual flows:

* outpatient: 2201 registration → 2203 visit → 2204 fees → 2206 pre-settle → 2207 settle;
* inpatient: 2401 admission → 2301 fees → 2402 discharge → 2303 pre-settle → 2304 settle.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from yibao.api.envelope import dumps_exact, fmt_time, loads_exact
from yibao.core.contract import MED_TYPE_INPATIENT, MED_TYPE_OUTPATIENT
from yibao.core.db import SHANGHAI

ENVELOPE_PATH = "/fsi/api/rsfComIfsService/callService"

_counter = itertools.count(1)
_lock = threading.Lock()


def http_transport(client: Any, path: str = ENVELOPE_PATH) -> Callable[[dict], dict]:
    """Post envelopes with an ``httpx.Client`` / ``TestClient`` (exact JSON both ways)."""

    def post(env: dict) -> dict:
        r = client.post(path, content=dumps_exact(env).encode(), headers={"Content-Type": "application/json"})
        return loads_exact(r.content)

    return post


@dataclass(frozen=True)
class Item:
    """A fee line to upload: medical-list code, quantity and unit price (yuan, as strings or Decimals)."""

    med_list_codg: str
    cnt: Decimal | str | int
    pric: Decimal | str | int
    rx_circ_flag: bool = False  # 外购处方标志: a pharmacy's fill of a prescription issued elsewhere
    bilg_dr_codg: str = "DR01"  # 开单医师 (for a circulated line: the issuing institution's doctor)


class HisError(RuntimeError):
    def __init__(self, infno: str, reply: dict):
        super().__init__(f"{infno}: {reply.get('err_msg')}")
        self.infno = infno
        self.reply = reply


class HisClient:
    """One HIS terminal of one institution."""

    def __init__(
        self,
        post: Callable[[dict], dict],
        fixmedins_code: str,
        *,
        fixmedins_name: str = "",
        opter: str = "0001",
        mdtrtarea_admvs: str = "",
        clock: Callable[[], dt.datetime] | None = None,
        credential: str = "",
    ):
        self.post = post
        self.credential = credential  # the institution's sign-in secret (9001 signIn.credential), if it has one
        self.fixmedins_code = fixmedins_code
        self.fixmedins_name = fixmedins_name
        self.opter = opter
        self.mdtrtarea_admvs = mdtrtarea_admvs
        self.clock = clock or (lambda: dt.datetime.now(SHANGHAI))
        self.sign_no = ""

    def msgid(self) -> str:
        with _lock:
            n = next(_counter)
        t = self.clock().astimezone(SHANGHAI)
        return f"{self.fixmedins_code}{t:%Y%m%d%H%M%S}{os.getpid() % 10000:04d}{n:08d}"

    def envelope(self, infno: str, payload: dict, msgid: str | None = None) -> dict:
        return {
            "infno": infno,
            "msgid": msgid or self.msgid(),
            "mdtrtarea_admvs": self.mdtrtarea_admvs,
            "insuplc_admdvs": "",
            "recer_sys_code": "YBXT",
            "dev_no": "",
            "dev_safe_info": "",
            "cainfo": "",
            "signtype": "",
            "infver": "V1.0",
            "opter_type": "1",
            "opter": self.opter,
            "opter_name": "经办人",
            "inf_time": fmt_time(self.clock()),
            "fixmedins_code": self.fixmedins_code,
            "fixmedins_name": self.fixmedins_name,
            "sign_no": self.sign_no,
            "input": payload,
        }

    def call(self, infno: str, payload: dict, *, msgid: str | None = None, check: bool = True) -> dict:
        reply = self.post(self.envelope(infno, payload, msgid))
        if check and reply.get("infcode") != 0:
            raise HisError(infno, reply)
        return reply

    def sign_in(self) -> str:
        sign = {"opter_no": self.opter, "mac": "00-00-00-00-00-00", "ip": "127.0.0.1"}
        if self.credential:
            sign["credential"] = self.credential
        out = self.call("9001", {"signIn": sign})
        self.sign_no = out["output"]["signinoutb"]["sign_no"]
        return self.sign_no

    @staticmethod
    def feedetail(
        mdtrt_id: str,
        psn_no: str,
        items: Sequence[Item],
        *,
        first_sn: int = 1,
        chrg_bchno: str = "",
        when: dt.datetime,
        med_type: str = "",
    ) -> list[dict]:
        rows = []
        for i, it in enumerate(items):
            cnt, pric = Decimal(str(it.cnt)), Decimal(str(it.pric))
            amt = (cnt * pric).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
            rows.append(
                {
                    "feedetl_sn": str(first_sn + i),
                    "mdtrt_id": mdtrt_id,
                    "psn_no": psn_no,
                    "chrg_bchno": chrg_bchno,
                    "med_type": med_type,
                    "rxno": "",
                    "rx_circ_flag": "1" if it.rx_circ_flag else "0",
                    "fee_ocur_time": fmt_time(when),
                    "med_list_codg": it.med_list_codg,
                    "medins_list_codg": it.med_list_codg,
                    "det_item_fee_sumamt": amt,
                    "cnt": cnt,
                    "pric": pric,
                    "bilg_dept_codg": "D01",
                    "bilg_dr_codg": it.bilg_dr_codg,
                }
            )
        return rows

    def outpatient(
        self,
        psn_no: str,
        insutype: str,
        certno: str,
        items: Sequence[Item],
        *,
        med_type: str = MED_TYPE_OUTPATIENT,
        dise_codg: str = "J06.9",
        ipt_otp_no: str | None = None,
        acct_used_flag: str = "1",
        visit: bool = True,
        pre: bool = True,
    ) -> dict[str, dict]:
        """2201 → (2203) → 2204 → (2206) → 2207; returns each reply by infno."""
        now = self.clock()
        out: dict[str, dict] = {}
        reg = self.call(
            "2201",
            {
                "data": {
                    "psn_no": psn_no,
                    "insutype": insutype,
                    "begntime": fmt_time(now),
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": certno,
                    "ipt_otp_no": ipt_otp_no or self.msgid(),
                    "atddr_no": "DR01",
                    "dr_name": "医生",
                    "dept_code": "D01",
                    "dept_name": "内科",
                    "caty": "A03",
                }
            },
        )
        out["2201"] = reg
        mdtrt_id = reg["output"]["data"]["mdtrt_id"]
        if visit:
            out["2203"] = self.call(
                "2203",
                {
                    "mdtrtinfo": {
                        "mdtrt_id": mdtrt_id,
                        "psn_no": psn_no,
                        "med_type": med_type,
                        "begntime": fmt_time(now),
                        "dise_codg": dise_codg,
                    },
                    "diseinfo": [
                        {
                            "diag_type": "1",
                            "diag_srt_no": 1,
                            "diag_code": dise_codg,
                            "diag_name": "",
                            "maindiag_flag": "1",
                        }
                    ],
                },
            )
        batch = f"B{self.msgid()[-12:]}"
        rows = self.feedetail(mdtrt_id, psn_no, items, chrg_bchno=batch, when=now)
        out["2204"] = self.call("2204", {"feedetail": rows})
        total = sum((r["det_item_fee_sumamt"] for r in rows), Decimal("0.00"))
        data = {
            "psn_no": psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": certno,
            "med_type": med_type,
            "medfee_sumamt": total,
            "psn_setlway": "01",
            "mdtrt_id": mdtrt_id,
            "chrg_bchno": batch,
            "insutype": insutype,
            "acct_used_flag": acct_used_flag,
        }
        if pre:
            out["2206"] = self.call("2206", {"data": data})
            pre_info = out["2206"]["output"]["setlinfo"]
            data = {
                **data,
                **{k: pre_info[k] for k in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")},
            }
        out["2207"] = self.call("2207", {"data": data})
        return out

    def inpatient(
        self,
        psn_no: str,
        insutype: str,
        certno: str,
        items: Sequence[Item],
        *,
        begntime: dt.datetime,
        endtime: dt.datetime,
        med_type: str = MED_TYPE_INPATIENT,
        dise_codg: str = "J18.9",
        ipt_no: str | None = None,
    ) -> dict[str, dict]:
        """2401 → 2301 → 2402 → 2303 → 2304; returns each reply by infno."""
        out: dict[str, dict] = {}
        adm = self.call(
            "2401",
            {
                "mdtrtinfo": {
                    "psn_no": psn_no,
                    "insutype": insutype,
                    "begntime": fmt_time(begntime),
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": certno,
                    "med_type": med_type,
                    "ipt_no": ipt_no or self.msgid(),
                    "atddr_no": "DR02",
                    "chfpdr_name": "主治医师",
                    "adm_diag_dscr": "肺炎",
                    "adm_dept_codg": "D02",
                    "adm_dept_name": "呼吸科",
                    "adm_bed": "12",
                    "dscg_maindiag_code": dise_codg,
                    "dscg_maindiag_name": "",
                },
                "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": dise_codg, "maindiag_flag": "1"}],
            },
        )
        out["2401"] = adm
        mdtrt_id = adm["output"]["result"]["mdtrt_id"]
        rows = self.feedetail(mdtrt_id, psn_no, items, when=begntime, med_type=med_type)
        out["2301"] = self.call("2301", {"feedetail": rows})
        out["2402"] = self.call(
            "2402",
            {
                "dscginfo": {
                    "mdtrt_id": mdtrt_id,
                    "psn_no": psn_no,
                    "insutype": insutype,
                    "endtime": fmt_time(endtime),
                    "dise_codg": dise_codg,
                    "dscg_way": "1",
                    "dscg_dept_codg": "D02",
                    "dscg_dept_name": "呼吸科",
                }
            },
        )
        total = sum((r["det_item_fee_sumamt"] for r in rows), Decimal("0.00"))
        data = {
            "psn_no": psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": certno,
            "medfee_sumamt": total,
            "psn_setlway": "01",
            "mdtrt_id": mdtrt_id,
            "insutype": insutype,
            "acct_used_flag": "1",
            "mid_setl_flag": "0",
        }
        out["2303"] = self.call("2303", {"data": data})
        out["2304"] = self.call("2304", {"data": data})
        return out
