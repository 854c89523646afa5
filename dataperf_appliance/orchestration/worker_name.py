"""The name a machine gives itself in Airflow's task instance records (`[core] hostname_callable`).

With the CeleryExecutor (scripts/runtime/airflow-env.sh) every worker records APPLIANCE_WORKER_NAME, the address
the main instance reaches it at: Airflow's API server fetches a running task's log from that host, and
two workers on one machine (the tests') still tell apart.
"""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    return os.environ.get("APPLIANCE_WORKER_NAME") or socket.getfqdn()
