"""The national registers as SQL (参保人员、家庭关系、定点医药机构、医保医师、医保目录): the data contract's tables.

Persons and their family links, institutions, practitioners and the medical list, column for column as in
:mod:`yibao.core.contract` (``tests/core/test_db_schema.py`` checks the mirror).  ``yibao.core.db`` holds the engine,
sessions, column types and migrations; the subsystems own their tables.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.db import Base

__all__ = ["PERSON_EXTRA_COLUMNS", "Person", "FamilyLink", "Institution", "Practitioner", "MedList"]


class Person(Base):
    __tablename__ = "person"

    psn_no: Mapped[str] = mapped_column(String, primary_key=True)
    certno: Mapped[str | None] = mapped_column(String)
    psn_name: Mapped[str | None] = mapped_column(String)
    gend: Mapped[str | None] = mapped_column(String)
    brdy: Mapped[date | None] = mapped_column(Date)
    insutype: Mapped[str | None] = mapped_column(String)
    psn_type: Mapped[str | None] = mapped_column(String)
    civil_servant: Mapped[bool] = mapped_column(Boolean, default=False)
    insuplc_admdvs: Mapped[str | None] = mapped_column(String)
    assistance: Mapped[str | None] = mapped_column(String)
    contribution_base: Mapped[int] = mapped_column(BigInteger, default=0)
    acct_balc: Mapped[int] = mapped_column(BigInteger, default=0)  # opening balance, see Account
    family_id: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    # 个人参保日期 (1101 psn_insu_date); not a data-contract column: None where the register does not hold it
    insured_since: Mapped[date | None] = mapped_column(Date)


PERSON_EXTRA_COLUMNS = ("insured_since",)
"""Operational person columns that are not in the Arrow contract."""


class FamilyLink(Base):
    __tablename__ = "family_link"

    psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"), primary_key=True)
    relative_psn_no: Mapped[str] = mapped_column(String, ForeignKey("person.psn_no"), primary_key=True, index=True)
    relation: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Institution(Base):
    __tablename__ = "institution"

    fixmedins_code: Mapped[str] = mapped_column(String, primary_key=True)
    fixmedins_name: Mapped[str | None] = mapped_column(String)
    fixmedins_type: Mapped[str | None] = mapped_column(String)
    hosp_lv: Mapped[int | None] = mapped_column(SmallInteger)
    admdvs: Mapped[str | None] = mapped_column(String)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Practitioner(Base):
    """医保医师/护士/药师 (contract ``practitioner``); ``prac_psn_code`` is what encounters and fee lines name."""

    __tablename__ = "practitioner"

    prac_psn_code: Mapped[str] = mapped_column(String, primary_key=True)
    prac_psn_name: Mapped[str | None] = mapped_column(String)
    prac_psn_type: Mapped[str | None] = mapped_column(String)
    fixmedins_code: Mapped[str | None] = mapped_column(String, ForeignKey("institution.fixmedins_code"), index=True)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class MedList(Base):
    __tablename__ = "med_list"

    med_list_codg: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str | None] = mapped_column(String)
    list_kind: Mapped[str | None] = mapped_column(String)
    chrgitm_lv: Mapped[str | None] = mapped_column(String)
    selfpay_prop_bp: Mapped[int | None] = mapped_column(Integer)
    pric_uplmt: Mapped[int] = mapped_column(BigInteger, default=0)
    lmt_gend: Mapped[str | None] = mapped_column(String)
    lmt_age_min: Mapped[int | None] = mapped_column(SmallInteger)
    lmt_age_max: Mapped[int | None] = mapped_column(SmallInteger)
    lmt_hosp_lv_min: Mapped[int | None] = mapped_column(SmallInteger)
    lmt_indication: Mapped[str | None] = mapped_column(String)
    lmt_med_types: Mapped[str | None] = mapped_column(String)
    drug_class: Mapped[str | None] = mapped_column(String)
    acct_excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    vbp_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    vbp_pay_std: Mapped[int] = mapped_column(BigInteger, default=0)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
