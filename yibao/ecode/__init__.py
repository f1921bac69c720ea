"""The e-insurance code (医保电子凭证 / 医保码), part of public services (公共服务).

* :mod:`yibao.ecode.params`: the parameters (``yibao/data/ecode``), validated;
* :mod:`yibao.ecode.tokens`: short-lived signed codes (HMAC-SM3, HMAC-SHA256 or SM2), pure;
* :mod:`yibao.ecode.identity`: pluggable identity verifiers for binding (人脸校验), a fake one for tests;
* :mod:`yibao.ecode.risk`: pure anomaly rules over a person's recent uses;
* :mod:`yibao.ecode.service`: binding, family accounts, generation, verification and risk actions, persisted.
"""
