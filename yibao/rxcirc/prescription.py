"""Electronic prescriptions (电子处方) and the checks before a designated pharmacy fills one (外配, ``rx_circ_flag``).

Pure checks (the tables and the settlement are in :mod:`yibao.rxcirc.models` and
:mod:`yibao.rxcirc.service`): a prescription's content hash (SM3, the signature's digest), and
:func:`check_fill`, which refuses an expired prescription, a second fill, a pharmacy not designated on the day,
and lines not on the prescription (or above its quantity).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from yibao.api.security import sm3_hex
from yibao.core.errors import YibaoError
from yibao.core.yamldata import load_model

DATA = Path(__file__).resolve().parent.parent / "data" / "rxcirc" / "designated-pharmacies.yaml"


class RxError(YibaoError):
    """A prescription cannot be filled as asked."""

    code = "E_RX"


class Designation(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    code: str
    valid_from: dt.date = Field(alias="from")
    valid_to: dt.date = Field(alias="to")


class Designations(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pharmacies: list[Designation]


def load_designations(path: Path = DATA) -> Designations:
    return load_model(path, Designations, what=("designated pharmacies file", "定点药店文件"), error=RxError)


@dataclass(frozen=True)
class RxLine:
    drug_code: str  # national drug code (医保药品编码)
    cnt_milli: int  # quantity × 1000
    days: int  # 用药天数


@dataclass(frozen=True)
class Prescription:
    rx_no: str
    issuer_code: str  # issuing institution (开方机构)
    practitioner_code: str  # 医师编码
    psn_no: str
    issued_on: dt.date
    valid_until: dt.date
    lines: tuple[RxLine, ...]
    diagnoses: tuple[str, ...] = ()  # dise_codg, principal first (signed when given)
    med_type: str = ""  # the original visit's 医疗类别 (signed when given)

    def digest(self) -> str:
        """SM3 over the canonical content: what the practitioner's signature signs."""
        body: dict[str, object] = {
            "rx_no": self.rx_no,
            "issuer": self.issuer_code,
            "dr": self.practitioner_code,
            "psn": self.psn_no,
            "issued": self.issued_on.isoformat(),
            "until": self.valid_until.isoformat(),
            "lines": [[ln.drug_code, ln.cnt_milli, ln.days] for ln in self.lines],
        }
        if self.diagnoses:  # only when given, so that digests signed without them stay valid
            body["dx"] = list(self.diagnoses)
        if self.med_type:
            body["med_type"] = self.med_type
        return sm3_hex(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def check_fill(
    rx: Prescription,
    signed_digest: str,
    pharmacy: str,
    fill: list[RxLine],
    on: dt.date,
    filled: set[str],
    designations: Designations | None = None,
) -> None:
    """Raise :class:`RxError` if ``pharmacy`` may not fill ``rx`` with ``fill`` on ``on``.

    ``filled``: the rx_no already filled.
    """
    if rx.valid_until < rx.issued_on:
        raise RxError(
            "prescription valid_until is before its issue date", "处方有效期早于开具日期", field="valid_until"
        )
    if signed_digest != rx.digest():
        raise RxError(
            f"prescription {rx.rx_no}: signature digest does not match",
            f"处方 {rx.rx_no} 签名摘要不符",
            field="signature",
        )
    if not (rx.issued_on <= on <= rx.valid_until):
        raise RxError(
            f"prescription {rx.rx_no} is not valid on {on} (until {rx.valid_until})",
            f"处方 {rx.rx_no} 在 {on} 已失效或未生效",
            field="valid_until",
        )
    if rx.rx_no in filled:
        raise RxError(f"prescription {rx.rx_no} has already been filled", f"处方 {rx.rx_no} 已取药", field="rxno")
    d = designations or load_designations()
    if not any(p.code == pharmacy and p.valid_from <= on <= p.valid_to for p in d.pharmacies):
        raise RxError(
            f"pharmacy {pharmacy} is not designated for prescription circulation on {on}",
            f"药店 {pharmacy} 不是处方流转定点药店",
            field="fixmedins_code",
        )
    on_rx = {ln.drug_code: ln for ln in rx.lines}
    if not fill:
        raise RxError("nothing to fill", "没有取药明细", field="lines")
    for ln in fill:
        p = on_rx.get(ln.drug_code)
        if p is None:
            raise RxError(
                f"drug {ln.drug_code} is not on prescription {rx.rx_no}",
                f"药品 {ln.drug_code} 不在处方 {rx.rx_no} 上",
                field="med_list_codg",
            )
        if ln.cnt_milli <= 0 or ln.cnt_milli > p.cnt_milli or ln.days > p.days:
            raise RxError(
                f"drug {ln.drug_code}: quantity or days above the prescription",
                f"药品 {ln.drug_code} 数量或天数超过处方",
                field="cnt",
            )
