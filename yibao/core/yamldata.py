"""Reading the YAML data files under ``yibao/data/``: floats become ``Decimal``, never float.

Rates, multiples and amounts in rule files end up multiplying money, so they are read exactly
as written (``0.1`` is ``Decimal("0.1")``).  Parsers keep their own error types; this module
only holds the loader.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml


class DecimalLoader(yaml.SafeLoader):
    """Safe YAML loader that reads floats as ``Decimal``."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))  # type: ignore[union-attr, arg-type]


DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_decimal_yaml(text: str) -> Any:
    """Parse YAML text safely, floats as ``Decimal`` (raises ``yaml.YAMLError`` on bad YAML)."""
    return yaml.load(text, Loader=DecimalLoader)  # noqa: S506 - SafeLoader subclass
