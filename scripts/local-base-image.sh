#!/usr/bin/env bash
# Makes (once) a local Debian bookworm image with python3, venv and pip for `buildah bud`, and prints
# its name. It stands in for python:3.12-slim-bookworm where no container registry is reachable:
#
#   buildah bud --isolation chroot --build-arg BASE_IMAGE="$(scripts/local-base-image.sh)" .
#
# The root filesystem comes from debootstrap, using the Debian mirror this machine's apt already uses
# (read from /etc/apt/sources.list*), plus this machine's CA bundle so pip inside the build trusts the
# same certificates as pip outside it. The image is tagged with a hash of its inputs and kept in
# buildah's storage; the root filesystem is also kept as a tarball under
# ${XDG_CACHE_HOME:-~/.cache}/lucidserve/base-images, so a later run (even after `buildah rmi`) is fast.
# Needs root, buildah and debootstrap (scripts/system-packages.txt).
set -euo pipefail

suite=bookworm
packages=python3,python3-venv,python3-pip,ca-certificates
ca_bundle=/etc/ssl/certs/ca-certificates.crt
cache_dir=${XDG_CACHE_HOME:-$HOME/.cache}/lucidserve/base-images

log() { echo "local-base-image: $*" >&2; }

# The first `deb` source for $suite, from deb822 (*.sources) or one-line (*.list) files.
apt_mirror() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f $file ]] || continue
    awk -v suite="$suite" '
      function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "") { print uri; found = 1; exit } }
      /^[[:space:]]*$/ { flush(); types = suites = uri = ""; next }
      /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
      /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
      /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); split($0, u, " "); uri = u[1] }
      END { if (!found) flush() }
    ' "$file" | head -n1
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $file ]] || continue
    awk -v suite="$suite" '
      $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }
    ' "$file"
  done
}

mirror=$(apt_mirror | head -n1 || true)
[[ -n $mirror ]] || { log "no apt source for $suite in /etc/apt/sources.list*"; exit 1; }

key=$(cat "$0" "$ca_bundle" <(echo "$suite $packages") | sha256sum | cut -c1-16)
image=localhost/lucidserve-base:$suite-python-$key
if buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
flock 9
tarball=$cache_dir/$suite-python-$key.tar
work=$(mktemp -d "${TMPDIR:-/tmp}/lucidserve-base.XXXXXX")
container=
cleanup() {
  [[ -n $container ]] && buildah rm "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

if [[ ! -s $tarball ]]; then
  log "debootstrap $suite ($packages) from $mirror"
  debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  cp "$ca_bundle" "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" --numeric-owner -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$work/rootfs"
fi

log "importing $tarball as $image"
container=$(buildah from scratch)
root=$(buildah mount "$container")
tar -C "$root" --numeric-owner -xpf "$tarball"
buildah umount "$container" >/dev/null
buildah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --cmd '["python3"]' "$container"
buildah commit --quiet --rm "$container" "$image" >/dev/null
container=
echo "$image"
