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

from support import REPO_ROOT, free_port  # noqa: F401 - the test modules import them from here


def wait_for_http(url: str, timeout_s: float = 60.0) -> None:
    """Poll `url` until it answers at all (any HTTP status), or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError as error:
            last_error = error
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s: {last_error}")


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
        server.process.wait(timeout=10)


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test's process environment at the moto server."""
    env = moto_server.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
