#!/usr/bin/env bash
# Runs uv, pinned, installed from PyPI into a cache folder of its own on first use (a fresh machine needs
# nothing more than Python): `scripts/dev/uv.sh pip install ...`. uv installs the same constraints as pip in
# a fraction of pip's time (parallel downloads, one cache for every venv; CI installs four and the image).
# Like pip on this machine, it finds wheels in pip's find-links (PIP_FIND_LINKS, e.g. a local CPU wheel
# of PyTorch) and trusts pip's CA bundle (PIP_CERT), else the system's certificates.
# Settings: APPLIANCE_UV_DIR (default: ${XDG_CACHE_HOME:-~/.cache}/dataperf-appliance/uv-<version>),
#   PYTHON (default: python3), the Python that installs it.
set -euo pipefail

uv_version=0.13.9
tool=${APPLIANCE_UV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dataperf-appliance/uv-$uv_version}
if [ ! -x "$tool/bin/uv" ]; then
  rm -rf "$tool"
  "${PYTHON:-python3}" -m venv "$tool"
  "$tool/bin/python" -m pip install --quiet --progress-bar off --disable-pip-version-check "uv==$uv_version"
fi
if [ -n "${PIP_FIND_LINKS:-}" ] && [ -z "${UV_FIND_LINKS:-}" ]; then
  export UV_FIND_LINKS=$PIP_FIND_LINKS
fi
if [ -n "${PIP_CERT:-}" ] && [ -z "${SSL_CERT_FILE:-}" ]; then
  export SSL_CERT_FILE=$PIP_CERT
fi
export UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1}
# Every module compiled to .pyc at install: where Python may not write them (PYTHONDONTWRITEBYTECODE=1, as
# on some CI machines, or code the services cannot write to, as in the image), each process would compile
# every module it imports again (scikit-learn alone took 3.6 s of CPU a process that way, 1.2 s compiled).
export UV_COMPILE_BYTECODE=${UV_COMPILE_BYTECODE:-1}
exec "$tool/bin/uv" "$@"
