"""Payment methods (支付方式管理): DIP and DRG for inpatient care under a regional budget.

* :mod:`yibao.payment.params`: a region's DIP rules as validated YAML (``yibao/data/payment/dip``).
* :mod:`yibao.payment.cases`: the payment case view over the contract tables (DuckDB SQL), input checks.
* :mod:`yibao.payment.catalog`: DIP catalog building (病种目录库) and versioned catalog files.
* :mod:`yibao.payment.dip`: case points, point value (点值), payments, monthly advances and annual clearing.
* :mod:`yibao.payment.drg`: a DRG grouper over a scheme given as data (SAMPLE scheme shipped); RW, base rate, CMI.
* :mod:`yibao.payment.quality`: coding-quality flags (高套, 分解住院, miscoding), peers, the hospital view.
* :mod:`yibao.payment.service`, :mod:`~yibao.payment.report`, :mod:`~yibao.payment.cli`, :mod:`~yibao.payment.api`.

Money is integer fen, points integer 0.0001 point; every division rounds half away from zero.
"""
