#!/usr/bin/env bash
# Installs the given Debian packages that are not installed yet (apt-get, without recommends); does
# nothing when all are. Uses sudo only when not root.
#
# Usage: scripts/dev/apt-install.sh PACKAGE...
set -euo pipefail

missing=()
for package in "$@"; do
  if [ "$(dpkg-query -W -f '${db:Status-Status}' "$package" 2>/dev/null)" != installed ]; then
    missing+=("$package")
  fi
done
[ "${#missing[@]}" -gt 0 ] || exit 0
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "apt-install: installed ${missing[*]}"
