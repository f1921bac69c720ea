"""``yibao demo``'s pieces (演示), all on SYNTHETIC data: the console's users and sample round (:mod:`.console`),
the report's sections (:mod:`.sections`) and one module per public-service flow (enrolment, filing, LTC,
maternity, manual reimbursement, prescription circulation).  Nothing outside the demo and the tests imports it.
"""

from yibao.demo.console import (
    DEMO_PUBLIC_PSN_NO,
    DemoUser,
    pick_demo_people,
    save_demo_round,
    seed_console,
    write_credentials,
)

__all__ = ["DEMO_PUBLIC_PSN_NO", "DemoUser", "pick_demo_people", "save_demo_round", "seed_console", "write_credentials"]
