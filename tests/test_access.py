"""The app's password: from APPLIANCE_UI_PASSWORD, or generated once into a file only the operator reads."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from dataperf_appliance.interface import access
from dataperf_appliance.engine.settings import load_settings


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(access.PASSWORD_ENV, raising=False)
    return tmp_path / "data"


def test_generated_once_private_and_checked(data_dir):
    path = access.ensure_password_file()
    assert path == data_dir / "secrets" / "ui-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    password = path.read_text().strip()
    assert len(password) >= 20
    assert access.ensure_password_file().read_text().strip() == password  # kept across starts
    assert access.check_password(password)
    assert not access.check_password(password + "x")
    assert not access.check_password("")


def test_modes_are_enforced_on_an_existing_file(data_dir):
    path = access.ensure_password_file()
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)
    access.ensure_password_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_environment_wins_and_no_file_is_made(data_dir, monkeypatch):
    monkeypatch.setenv(access.PASSWORD_ENV, "s3cret-from-env")
    assert access.check_password("s3cret-from-env")
    assert not access.check_password("other")
    assert not access.password_file(load_settings()).exists()


def test_uses_compare_digest(data_dir, monkeypatch):
    calls = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(access.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    monkeypatch.setenv(access.PASSWORD_ENV, "pw-long-enough")
    assert access.check_password("pw-long-enough") and calls == [(b"pw-long-enough", b"pw-long-enough")]


def test_the_command_prints_only_the_path(data_dir):
    env = {k: v for k, v in os.environ.items() if k != access.PASSWORD_ENV}
    env["APPLIANCE_DATA_DIR"] = str(data_dir)
    out = subprocess.run([sys.executable, "-m", "dataperf_appliance.interface.access"], env=env, capture_output=True,
                         text=True, check=True)
    path = data_dir / "secrets" / "ui-password"
    assert out.stdout == f"{path}\n"
    assert path.read_text().strip() not in out.stdout + out.stderr
    env[access.PASSWORD_ENV] = "given-by-the-operator"
    out = subprocess.run([sys.executable, "-m", "dataperf_appliance.interface.access"], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout == "" and "given" not in out.stderr


def test_an_operator_password_shorter_than_the_minimum_is_refused(data_dir, monkeypatch):
    short = "x" * (access.MIN_PASSWORD_CHARS - 1)
    monkeypatch.setenv(access.PASSWORD_ENV, short)
    with pytest.raises(access.PasswordUnavailable, match=f"has {len(short)} characters; a password has at least"):
        access.check_password(short)
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(data_dir), access.PASSWORD_ENV: short}
    out = subprocess.run([sys.executable, "-m", "dataperf_appliance.interface.access"], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 1 and "at least" in out.stderr and short not in out.stderr
