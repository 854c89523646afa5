"""The appliance's programs as `scripts/start.sh --status` shows them: supervisorctl's status lines, except that
a program left off on this start (e.g. the Celery worker, opt-in) is said to be so, not a bare "STOPPED Not started".

Exit 0 when every program supervisord starts is RUNNING (a one-shot program, `unpause-dag`, may also have
EXITED as expected); 3 when one is not, or supervisord does not answer (3, as `supervisorctl status`: LSB's
"program is not running"). Whether a program is to run comes from supervisord itself (its autostart), so it
is the start's settings that count, not this shell's.

Usage: python scripts/runtime/program_status.py CONTROL_CONF   (the supervisorctl.conf that the entrypoint wrote)
"""

from __future__ import annotations

import sys
import xmlrpc.client
from pathlib import Path

from supervisor.options import ClientOptions

NOT_RUNNING = 3
#: Why a program that supervisord.conf starts only on a setting is off (its autostart is that setting).
OPT_IN = {
    "postgres": "Airflow's database is not the local cluster (APPLIANCE_AIRFLOW_DB)",
    "redis": "opt-in: runs with APPLIANCE_EXECUTOR=celery and no APPLIANCE_BROKER_URL",
    "worker": "opt-in: runs with APPLIANCE_EXECUTOR=celery unless APPLIANCE_LOCAL_WORKER=false",
    "triggerer": "left off by APPLIANCE_AIRFLOW_TRIGGERER=false",
}


def status_lines(processes: list[dict], configs: list[dict]) -> tuple[list[str], list[str]]:
    """(a line per program, the programs that should run and do not) from supervisord's process and config info."""
    config_of = {config["name"]: config for config in configs}
    lines, failing = [], []
    width = max((len(process["name"]) for process in processes), default=0) + 2
    for process in processes:
        name, state, config = process["name"], process["statename"], config_of[process["name"]]
        if not config["autostart"] and state == "STOPPED" and not process["start"]:
            lines.append(f"{name:<{width}}not enabled ({OPT_IN.get(name, 'autostart=false')})")
            continue
        lines.append(f"{name:<{width}}{state:<10}{process['description']}")
        finished = state == "EXITED" and process["exitstatus"] in config["exitcodes"]
        if config["autostart"] and state != "RUNNING" and not finished:
            failing.append(name)
    return lines, failing


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    control_conf = Path(argv[0])
    if not control_conf.is_file():
        print(f"status: supervisord is not running (no {control_conf})", file=sys.stderr)
        return NOT_RUNNING
    options = ClientOptions()
    options.realize(args=["-c", str(control_conf)])
    supervisor = options.getServerProxy().supervisor
    try:
        processes, configs = supervisor.getAllProcessInfo(), supervisor.getAllConfigInfo()
    except (OSError, xmlrpc.client.Error) as error:
        print(f"status: supervisord does not answer on {options.serverurl}: {error}", file=sys.stderr)
        return NOT_RUNNING
    lines, failing = status_lines(processes, configs)
    print("\n".join(lines))
    if failing:
        print(f"status: not running: {', '.join(failing)}", file=sys.stderr)
        return NOT_RUNNING
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
