"""Proxy-pickup rules (代取药规则) read from ``yibao/data/longrx/proxy.yaml``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yibao.core.yamldata import load_model

RULES_PATH = Path(__file__).resolve().parent.parent / "data" / "longrx" / "proxy.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Relation(_Strict):
    code: str  # agnter_rlts
    name_zh: str


class Mask(_Strict):
    keep_start: int = Field(ge=0)
    keep_end: int = Field(ge=0)


class ProxyRules(_Strict):
    version: int
    cert_types: dict[str, str]
    relations: dict[str, Relation]
    certno_mask: Mask
    long_rx_only: bool = True

    @model_validator(mode="after")
    def _unique_codes(self) -> ProxyRules:
        codes = [r.code for r in self.relations.values()]
        if len(codes) != len(set(codes)):
            raise ValueError("relation codes must be unique")
        return self

    def relation_key(self, value: str) -> str | None:
        """A relation key, or the key of an agnter_rlts code; None if neither."""
        if value in self.relations:
            return value
        return next((k for k, r in self.relations.items() if r.code == value), None)


def load_rules(path: str | Path | None = None) -> ProxyRules:
    return load_model(Path(path) if path else RULES_PATH, ProxyRules, what=("proxy-pickup rules", "代取药规则"))


@lru_cache(maxsize=1)
def default_rules() -> ProxyRules:
    return load_rules()
