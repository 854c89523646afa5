"""Unpause the benchmark DAG once the DAG processor has stored it (a one-shot supervisord program).

The DAG is created unpaused (AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False), but a DAG someone paused in
Airflow's UI stays paused across restarts, and on a first boot the DAG does not exist yet when the
entrypoint's setup runs. So at every start this waits until Airflow's REST API knows the DAG and unpauses it
if needed. It speaks HTTP to the API server as the `admin` user (the generated password is read from
$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE, never printed) and imports no Airflow: it costs a few
MB for a few seconds, not an Airflow process.

Exit 0 once the DAG is unpaused; 1 after APPLIANCE_UNPAUSE_TIMEOUT seconds (default 900) without it (e.g.
the DAG file has an import error: see Airflow's UI), and supervisord tries again.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

DAG_ID = "dataperf_benchmark"


def _request(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def main() -> int:
    base = f"http://127.0.0.1:{os.environ.get('APPLIANCE_AIRFLOW_PORT', '8080')}"
    passwords_file = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    deadline = time.monotonic() + float(os.environ.get("APPLIANCE_UNPAUSE_TIMEOUT", "900"))
    last = "the API server does not answer yet"
    while time.monotonic() < deadline:
        try:
            with open(passwords_file) as handle:
                password = json.load(handle)["admin"]
            status, answer = _request("POST", f"{base}/auth/token", {"username": "admin", "password": password})
            if status not in (200, 201):
                raise OSError(f"login as admin answered HTTP {status}")
            token = answer["access_token"]
            status, dag = _request("GET", f"{base}/api/v2/dags/{DAG_ID}", token=token)
            if status == 404:
                last = "the DAG processor has not stored the DAG yet"
            elif status != 200:
                last = f"GET the DAG answered HTTP {status}"
            elif not dag.get("is_paused"):
                print(f"unpause-dag: {DAG_ID} is unpaused", flush=True)
                return 0
            else:
                status, dag = _request("PATCH", f"{base}/api/v2/dags/{DAG_ID}", {"is_paused": False}, token)
                if status == 200 and not dag.get("is_paused"):
                    print(f"unpause-dag: {DAG_ID} was paused; unpaused it", flush=True)
                    return 0
                last = f"PATCH the DAG answered HTTP {status}"
        except (OSError, ValueError, KeyError) as error:
            last = str(error) or type(error).__name__
        time.sleep(2)
    print(f"unpause-dag: gave up: {last}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
