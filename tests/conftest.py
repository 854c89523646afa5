"""Shared fixtures: the real parts the tests start (an S3-compatible moto server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import REPO_ROOT, free_port, wait_for_http  # noqa: F401 (imported from conftest by tests)


@dataclass
class MotoServer:
    """A moto server process: a real HTTP endpoint for S3, EC2, IAM, SSM and STS."""

    endpoint_url: str
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs and tools at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",  # moto accepts any; these are not credentials
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }


def start_moto_server() -> MotoServer:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # AWS's managed policies exist, as on AWS (test_terraform reads AmazonSSMManagedInstanceCore).
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_for_http(f"{endpoint}/moto-api/")
    return MotoServer(endpoint_url=endpoint, process=process)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session (`moto_server -H 127.0.0.1 -p PORT`)."""
    server = start_moto_server()
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # busy (e.g. loading IAM's managed policies): stop it for good
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test's process environment at the moto server."""
    env = moto_server.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(scope="session")
def library_environments() -> Iterator[Path]:
    """The environments of the libraries' methods (dataperf_appliance/engine/methods/library), built once per machine
    into a cache outside the test folders and looked up there as an image's prebuilt ones are
    (APPLIANCE_PREBUILT_METHOD_ENVS). A first build on a new machine downloads and compiles (datascope 0.0.8
    from source); uv's own cache makes any later one quick."""
    from dataperf_appliance.config import catalog
    from dataperf_appliance.engine.methods import environments, runner

    root = Path(os.environ.get("APPLIANCE_TEST_METHOD_ENVS", Path.home() / ".cache" / "dataperf-appliance-tests"))
    for requirements in sorted({runner.library_call(name).requirements for name in catalog.DEBUGGING_LIBRARY_METHODS}):
        environments.ensure_environment(requirements, root)
    previous = os.environ.get(environments.PREBUILT_VARIABLE)
    os.environ[environments.PREBUILT_VARIABLE] = str(root / environments.ENVIRONMENTS_FOLDER)
    yield root / environments.ENVIRONMENTS_FOLDER
    if previous is None:
        os.environ.pop(environments.PREBUILT_VARIABLE, None)
    else:
        os.environ[environments.PREBUILT_VARIABLE] = previous
