#!/usr/bin/env bash
# System packages for the one command that needs them, named by the commands they provide:
#   scripts/install-system-deps.sh chromium   (browser tests: `make test`)
#   scripts/install-system-deps.sh wrk        (`make bench`)
# With apt-get (Debian, Ubuntu) the missing ones are installed; without it, the script says
# what to install and exits 0, so the caller goes on (browser tests skip without Chromium).
set -euo pipefail
missing=()
for command in "$@"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("$command")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${missing[*]} not found and there is no apt-get here: install ${missing[*]} with your" \
    "system's package manager (e.g. brew install ${missing[*]}, dnf install ${missing[*]}); going on without"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "note: ${missing[*]} not found; run as root: apt-get install ${missing[*]}; going on without"
    exit 0
  fi
  sudo="sudo"
fi
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
