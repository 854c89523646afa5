"""Are the ports the appliance will bind free? Exit 0 when all are; else 1, with one line per busy port:

    port 8501 is in use (set APPLIANCE_UI_PORT)

scripts/start.sh runs this before it starts anything, so that a busy port ends the start at once with its
name, rather than a program that restarts in a loop. The ports, from the environment scripts/runtime/appliance-env.sh
exports: the app (APPLIANCE_UI_HOST:APPLIANCE_UI_PORT), Airflow's API server
(APPLIANCE_AIRFLOW_HOST:APPLIANCE_AIRFLOW_PORT), the scheduler's task-log server (all addresses,
APPLIANCE_AIRFLOW_LOG_PORT) and, when Airflow's database is the local cluster (APPLIANCE_AIRFLOW_DB=postgres),
PostgreSQL (127.0.0.1:APPLIANCE_PG_PORT). Standard library only.

Usage: python scripts/runtime/check_ports.py
"""

from __future__ import annotations

import os
import socket
import sys

# (host variable or a fixed address, port variable, default port): the app, Airflow's API server, the
# scheduler's task-log server, PostgreSQL. The defaults are scripts/runtime/airflow-env.sh's and appliance-env.sh's.
PORTS = (
    ("APPLIANCE_UI_HOST", "APPLIANCE_UI_PORT", "8501"),
    ("APPLIANCE_AIRFLOW_HOST", "APPLIANCE_AIRFLOW_PORT", "8080"),
    ("0.0.0.0", "APPLIANCE_AIRFLOW_LOG_PORT", "8793"),
    ("127.0.0.1", "APPLIANCE_PG_PORT", "5432"),
)


def in_use(host: str, port: int) -> bool:
    """Whether binding `host:port` fails the way a server's bind would (address in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As servers do: a port whose last connections are in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def busy_ports(env: dict[str, str]) -> list[str]:
    """One message per busy port, in the order of PORTS."""
    out = []
    for host_source, port_variable, default in PORTS:
        if port_variable == "APPLIANCE_PG_PORT" and env.get("APPLIANCE_AIRFLOW_DB", "postgres") != "postgres":
            continue
        host = env.get(host_source, "127.0.0.1") if host_source.startswith("APPLIANCE_") else host_source
        value = env.get(port_variable) or default
        if not value.isdigit() or not 0 < int(value) < 65536:
            out.append(f"{port_variable}={value!r} is not a port number")
        elif in_use(host, int(value)):
            out.append(f"port {value} is in use (set {port_variable})")
    return out


def main() -> int:
    problems = busy_ports(dict(os.environ))
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
