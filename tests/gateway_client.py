"""The gateway from a subprocess with the appliance's settings (tests/appliance_harness.py runs it).

    gateway_client.py trigger [OVERRIDE ...]   create a run (the default debugging setup, with
                                                config overrides such as tasks=digit-3) and trigger it
    gateway_client.py trigger-folder DIR        create a run of DIR/task_setup.yml with its methods' files
                                                (DIR/methods/*.py), as the form uploads them, and trigger it
    gateway_client.py wait RUN_ID [TIMEOUT_S]   wait until the DAG run is finished; tolerates Airflow being
                                                unavailable for a while (a program restarting)
    gateway_client.py state RUN_ID              the DAG run's state now

Prints one JSON object on its last line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from dataperf_appliance.orchestration import airflow_gateway as gateway
from dataperf_appliance.stages import pipeline
from dataperf_appliance.tracks import apply_overrides, default_params, render_task_setup


def _status(run_id: str) -> dict:
    status = gateway.get_run(run_id)
    try:
        manifest = pipeline.run_state(run_id)
    except Exception as error:  # noqa: BLE001 - reported, not raised
        manifest = {"state": None, "error": f"no manifest: {error}"}
    return {"run_id": run_id, "state": status.state,
            "tasks": [[ti.task_id, ti.map_index, ti.state, ti.try_number] for ti in status.task_instances],
            "manifest_state": manifest.get("state"), "manifest_error": manifest.get("error")}


def main(argv: list[str]) -> int:
    command = argv[0]
    if command == "trigger":
        text = render_task_setup(apply_overrides(default_params("debugging"), argv[1:]))
        run_id = pipeline.create_run(text)
        print(json.dumps({"run_id": run_id, **gateway.trigger_run(run_id)}))
    elif command == "trigger-folder":
        folder = Path(argv[1])
        files = {f"methods/{path.name}": path.read_bytes() for path in sorted((folder / "methods").glob("*.py"))}
        run_id = pipeline.create_run((folder / "task_setup.yml").read_text(), files=files)
        print(json.dumps({"run_id": run_id, **gateway.trigger_run(run_id)}))
    elif command == "wait":
        run_id, timeout_s = argv[1], float(argv[2]) if len(argv) > 2 else 300.0
        deadline, unavailable = time.monotonic() + timeout_s, []
        while time.monotonic() < deadline:
            try:
                result = _status(run_id)
            except gateway.AirflowUnavailable as error:
                unavailable.append(str(error)[:200])
                time.sleep(1)
                continue
            if result["state"] in gateway.FINISHED_STATES:
                print(json.dumps({**result, "unavailable": unavailable[-3:]}, default=str))
                return 0
            time.sleep(1)
        print(json.dumps({"run_id": run_id, "state": "timeout", "unavailable": unavailable[-3:]}))
    elif command == "state":
        print(json.dumps(_status(argv[1]), default=str))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
