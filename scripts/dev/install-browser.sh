#!/usr/bin/env bash
# Installs the browser the end-to-end tests drive: Debian's chromium, at /usr/bin/chromium, and a
# colour emoji font (the app's state icons; without it the screenshots show empty boxes).
# Playwright is pointed at it (executable_path='/usr/bin/chromium'); no browser is downloaded.
# Does nothing when both are there already. Uses sudo only when not root.
set -euo pipefail

emoji_font=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if [ -x /usr/bin/chromium ] && [ -e "$emoji_font" ]; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-noto-color-emoji >/dev/null
# Not `chromium --version`: Debian's launcher script compares /dev/shm's free space with `[`, and prints
# `[: unexpected operator` where findmnt lists /dev/shm twice (containers).
dpkg-query -W -f 'chromium ${Version}\n' chromium
