"""yibao (医保): an open medical-security platform.

Subpackages mirror the national unified medical-security platform
(国家医疗保障信息平台): ``codes`` (基础信息), ``benefits`` and ``settlement``
(待遇 / 经办), ``procurement`` (招采), ``payment`` (支付方式), ``supervision``
(智能监管), ``synth`` (synthetic regions), ``api`` and ``web``.
"""

__version__ = "0.1.0"
