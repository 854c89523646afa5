"""Are both services of the appliance up? Exit 0 when they answer, 1 when not (the image's HEALTHCHECK).

- Airflow's API server: GET /api/v2/monitor/health answers 200 and reports its metadata database healthy;
- Streamlit: GET /_stcore/health answers 200.

Both on 127.0.0.1, ports $APPLIANCE_AIRFLOW_PORT (8080) and $APPLIANCE_UI_PORT (8501). Standard library
only: it runs with any Python 3 and imports nothing of the appliance.

Usage: python scripts/runtime/healthcheck.py [--wait SECONDS] [--pid PID]
  --wait  poll until both answer or SECONDS have passed (default: check once); meanwhile, a program that
          supervisord has seen die DYING_AFTER times since this began ends the wait: its log's last lines
          are printed and the exit status is 2
  --pid   with --wait: give up as soon as process PID has exited (the appliance died while starting)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: Unexpected exits of one program, while waiting, that mean it keeps dying (supervisord would retry 20 times).
DYING_AFTER = 3
#: Lines of a dying program's log that are printed.
LOG_LINES = 20
#: What supervisord logs when a program exits on its own, e.g. "exited: streamlit (exit status 1; not expected)".
_UNEXPECTED_EXIT = re.compile(r"(?:exited: (\S+) \(.*not expected\)|gave up: (\S+) entered FATAL)")


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


class ExitWatch:
    """Counts the unexpected exits of each program in supervisord's log, from where it ends now on."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.supervisord_log = log_dir / "supervisord.log"
        self.offset = self._size()
        self.exits: dict[str, int] = {}

    def _size(self) -> int:
        try:
            return self.supervisord_log.stat().st_size
        except OSError:
            return 0

    def dying(self) -> str | None:
        """The first program that has exited DYING_AFTER times (or given up), else None."""
        if self._size() < self.offset:  # rotated
            self.offset = 0
        try:
            with self.supervisord_log.open("rb") as log:
                log.seek(self.offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return None
        complete = text.rfind("\n") + 1
        self.offset += len(text[:complete].encode())
        for match in _UNEXPECTED_EXIT.finditer(text[:complete]):
            name = match.group(1) or match.group(2)
            self.exits[name] = self.exits.get(name, 0) + (1 if match.group(1) else DYING_AFTER)
            if self.exits[name] >= DYING_AFTER:
                return name
        return None

    def report(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        try:
            tail = path.read_text(errors="replace").splitlines()[-LOG_LINES:]
        except OSError:
            tail = ["(no log)"]
        return f"{name} keeps dying ({self.exits[name]} exits); the end of {path}:\n" + "\n".join(tail)


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
    watch = ExitWatch(Path(os.environ.get("APPLIANCE_LOG_DIR", "data/logs"))) if args.wait else None
    while True:
        left = problems()
        if not left:
            return 0
        dying = watch.dying() if watch else None
        if dying:
            print("not healthy: " + watch.report(dying), file=sys.stderr)
            return 2
        if time.monotonic() >= deadline or (args.pid and not _alive(args.pid)):
            print("not healthy: " + "; ".join(left), file=sys.stderr)
            return 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
