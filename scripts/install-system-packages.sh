#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/system-packages.txt that are not installed yet.
# Without root or apt-get it says what is missing and carries on: tests that need a missing tool skip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
while read -r pkg _; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$here/system-packages.txt"
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "system packages missing and cannot be installed here (need root and apt-get): ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# A distribution without one of them (Ubuntu ships chromium only as a snap) installs the others.
available=()
for pkg in "${missing[@]}"; do
  if apt-cache show "$pkg" >/dev/null 2>&1; then
    available+=("$pkg")
  else
    echo "not in this system's package lists, skipped (the tests that need it skip): $pkg" >&2
  fi
done
[[ ${#available[@]} -eq 0 ]] && exit 0
echo "installing system packages: ${available[*]}"
apt-get install -y -qq --no-install-recommends "${available[@]}" >/dev/null
