#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image, for machines that reach no container registry
# (CI here): Debian bookworm bootstrapped with debootstrap from a Debian mirror, plus Debian's python3 and
# python3-venv (Python 3.11, as in the official image), imported into podman under the Dockerfile's base
# name. `podman build --pull=never` then uses it in place of the official python:3.11-slim-bookworm.
#
# It stands in for the official image; it is not that image: its Python is Debian's (/usr/bin/python3)
# rather than one built under /usr/local, which is all the Dockerfile asks of it (`python3 -m venv`).
# Where a registry is reachable, build from the official base and skip this script.
#
# Usage: scripts/dev/local-base-image.sh
#   Does nothing when an image of that name is already in podman's storage (the cache between runs);
#   the downloaded packages are also kept, in $APPLIANCE_BASE_CACHE (default
#   ${XDG_CACHE_HOME:-~/.cache}/dataperf-appliance/debootstrap), so a rebuild reads them from disk.
# Settings: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default: those of this machine's apt sources, else
#   deb.debian.org).
# Needs root, debootstrap and podman (scripts/test.sh installs them).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The base of the Dockerfile's first stage, named once there.
base=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$repo/Dockerfile")
# podman (like docker) reads a short name as docker.io/library/<name>.
case "$base" in
  */*) reference=$base ;;
  *) reference=docker.io/library/$base ;;
esac

if podman image exists "$reference"; then
  echo "local-base-image: $reference is in podman's storage"
  exit 0
fi

# The mirror this machine's apt uses for an archive (debian or debian-security), else Debian's own.
apt_mirror() {
  local archive=$1 uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk -v archive="$archive" '$1 == "URIs:" && $2 ~ ("/" archive "/?$") { print $2; exit }')
  [ -n "$uri" ] || uri=$(awk -v archive="$archive" '$1 == "deb" && $2 ~ ("/" archive "/?$") { print $2; exit }' \
    /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/$archive}"
}
mirror=${DEBIAN_MIRROR:-$(apt_mirror debian)}
security_mirror=${DEBIAN_SECURITY_MIRROR:-$(apt_mirror debian-security)}
cache=${APPLIANCE_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataperf-appliance/debootstrap}
mkdir -p "$cache"

# dpkg syncs every file it unpacks: on disk that made the bootstrap take 4 to 5 minutes here; in memory
# (tmpfs, where a sync costs nothing) it is much quicker. The tree is about 300 MB.
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt 1048576 ]; then
  work=$(mktemp -d -p /dev/shm)
else
  work=$(mktemp -d)
fi
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
started=$SECONDS
echo "local-base-image: debootstrap bookworm from $mirror (packages cached in $cache)"
if ! debootstrap --variant=minbase --include=python3,python3-venv --cache-dir="$cache" \
    bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  echo "local-base-image: debootstrap failed (log above)" >&2
  exit 1
fi

# The same apt sources as the official image (updates and security too), and nothing the image does not
# need: apt's lists and downloaded packages, documentation, translations.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
  "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*

tar --numeric-owner --xattrs -C "$rootfs" -c . \
  | podman import --quiet \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      --change "LABEL org.opencontainers.image.description=\"local stand-in for $base: debootstrap bookworm + Debian's python3, python3-venv\"" \
      - "$reference" >/dev/null
echo "local-base-image: $reference built in $((SECONDS - started)) s ($(podman image inspect --format '{{.Size}}' "$reference") bytes)"
