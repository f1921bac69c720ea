"""Code tables (基础信息): the medical list, diagnoses, procedures, institutions, practitioners and divisions.

Every loader validates its input and raises :class:`yibao.core.errors.CodeTableError`
naming the file, the row or key, and the reason.  Shipped tables live in
``yibao/data/codes``; the medical list, procedure list, diagnosis weights and the
home region there are SYNTHETIC samples (see ``yibao/data/codes/README.md``).
"""

from yibao.codes.divisions import (
    HOME_REGION,
    Division,
    Divisions,
    is_admdvs,
    is_cross_province,
    load_divisions,
    province_of,
)
from yibao.codes.icd10 import (
    DiagnosisEntry,
    DiagnosisMix,
    all_codes,
    describe,
    is_valid_icd10,
    is_valid_icd10_prefix,
    load_diagnosis_mix,
    normalize_icd10,
)
from yibao.codes.institutions import load_institutions, validate_institutions
from yibao.codes.medlist import MedItem, MedList, load_med_list, validate_med_list
from yibao.codes.practitioners import load_practitioners, validate_practitioners
from yibao.codes.procedures import (
    PROCEDURE,
    PROCEDURE_MIX,
    is_valid_procedure_code,
    load_procedure_mix,
    load_procedures,
)

__all__ = [
    "HOME_REGION",
    "PROCEDURE",
    "PROCEDURE_MIX",
    "DiagnosisEntry",
    "DiagnosisMix",
    "Division",
    "Divisions",
    "MedItem",
    "MedList",
    "all_codes",
    "describe",
    "is_admdvs",
    "is_cross_province",
    "is_valid_icd10",
    "is_valid_icd10_prefix",
    "is_valid_procedure_code",
    "load_diagnosis_mix",
    "load_divisions",
    "load_institutions",
    "load_med_list",
    "load_practitioners",
    "load_procedure_mix",
    "load_procedures",
    "normalize_icd10",
    "province_of",
    "validate_institutions",
    "validate_med_list",
    "validate_practitioners",
]
