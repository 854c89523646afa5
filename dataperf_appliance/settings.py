"""Settings of the appliance, read from the environment (see README.md, Settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_S3_PREFIX = "dataperf-appliance/"
#: The reverse proxies whose X-Forwarded-For the login gate believes: addresses or networks, comma-separated.
TRUSTED_PROXIES_ENV = "APPLIANCE_TRUSTED_PROXIES"


@dataclass(frozen=True)
class Settings:
    """Where the appliance keeps its files, and whom its login gate trusts.

    data_dir: the data root on disk (datasets/ and runs/ below it).
    s3_bucket: the bucket to sync with; None means disk only.
    s3_prefix: the key prefix inside the bucket, ending in '/'.
    trusted_proxies: the addresses or networks (``10.0.0.5``, ``172.18.0.0/16``) of the reverse proxies in
        front of the app whose X-Forwarded-For names the client; empty: the connection's peer is the client.
    """

    data_dir: Path
    s3_bucket: str | None
    s3_prefix: str
    trusted_proxies: tuple[str, ...] = ()

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    prefix = env.get("APPLIANCE_S3_PREFIX", DEFAULT_S3_PREFIX).strip("/")
    return Settings(
        data_dir=Path(env.get("APPLIANCE_DATA_DIR", "./data")).expanduser().resolve(),
        s3_bucket=env.get("APPLIANCE_S3_BUCKET") or None,
        s3_prefix=f"{prefix}/" if prefix else "",
        trusted_proxies=tuple(item.strip() for item in env.get(TRUSTED_PROXIES_ENV, "").split(",") if item.strip()),
    )
