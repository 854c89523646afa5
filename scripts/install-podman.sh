#!/usr/bin/env bash
# Installs what the image test (tests/test_image.py) needs to build and run the Dockerfile on a host
# with no Docker: Debian's podman with the runc runtime (crun's rlimit calls are refused in some
# sandboxes, CI's among them), iptables for the published ports, and debootstrap for the local
# stand-in of the base image (scripts/local-base-image.sh). Does nothing when all are there already.
# Uses sudo only when not root.
set -euo pipefail

if command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null \
  && command -v iptables >/dev/null; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends podman runc iptables debootstrap >/dev/null
podman --version
