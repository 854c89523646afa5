"""Are both services of the appliance up? Exit 0 when they answer, 1 when not (the image's HEALTHCHECK).

- Airflow's API server: GET /api/v2/monitor/health answers 200 and reports its metadata database healthy;
- Streamlit: GET /_stcore/health answers 200.

Both on 127.0.0.1, ports $APPLIANCE_AIRFLOW_PORT (8080) and $APPLIANCE_UI_PORT (8501). Standard library
only: it runs with any Python 3 and imports nothing of the appliance.

Usage: python scripts/healthcheck.py [--wait SECONDS] [--pid PID]
  --wait  poll until both answer or SECONDS have passed (default: check once)
  --pid   with --wait: give up as soon as process PID has exited (the appliance died while starting)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except OSError:
        return 0, b""


def problems() -> list[str]:
    """What is not healthy yet (empty when both services are)."""
    airflow = f"http://127.0.0.1:{os.environ.get('APPLIANCE_AIRFLOW_PORT', '8080')}/api/v2/monitor/health"
    ui = f"http://127.0.0.1:{os.environ.get('APPLIANCE_UI_PORT', '8501')}/_stcore/health"
    out = []
    status, body = _get(airflow)
    if status != 200:
        out.append(f"Airflow API server: {airflow} -> {status or 'no answer'}")
    else:
        try:
            database = json.loads(body)["metadatabase"]["status"]
        except (ValueError, KeyError, TypeError):
            database = "unreadable answer"
        if database != "healthy":
            out.append(f"Airflow metadata database: {database}")
    status, _ = _get(ui)
    if status != 200:
        out.append(f"Streamlit: {ui} -> {status or 'no answer'}")
    return out


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (Linux): a zombie, dead but not yet reaped by its parent, does not."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while True:
        left = problems()
        if not left:
            return 0
        if time.monotonic() >= deadline or (args.pid and not _alive(args.pid)):
            print("not healthy: " + "; ".join(left), file=sys.stderr)
            return 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
