#!/usr/bin/env bash
# Pushes the image archive that the scan job scanned, unchanged, under each tag read from stdin (one
# a line), and checks that the registry serves exactly that image.
#
#   push-scanned-image.sh ARCHIVE IMAGE_REPOSITORY < tags
#   e.g. push-scanned-image.sh lucidserve-image.tar ghcr.io/acme/lucidserve <<< "ghcr.io/acme/lucidserve:1.2.3"
#
# The check: every tag resolves to one manifest digest, and that manifest's config digest is the
# archive's. A config lists every layer by the digest of its content (diff_ids), so an equal config
# digest means the very image that was scanned, whatever compression the push used for the layers.
# Prints `digest=sha256:...` (the manifest digest, for $GITHUB_OUTPUT). Needs docker (with buildx),
# tar and jq. Used by the publish job in .github/workflows/ci.yml.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 ARCHIVE IMAGE_REPOSITORY < tags" >&2
  exit 2
fi
archive=$1
repository=$2

fail() {
  echo "::error title=Push refused::$*" >&2
  exit 1
}

mapfile -t tags < <(grep -v '^[[:space:]]*$' || true)
(( ${#tags[@]} > 0 )) || fail "no tags to push"
for tag in "${tags[@]}"; do
  [[ $tag == "$repository":* ]] || fail "tag $tag is not in $repository"
done

config=$(tar -xOf "$archive" manifest.json | jq -r '.[0].Config' | grep -oE '[0-9a-f]{64}' | head -n1 || true)
[[ -n $config ]] || fail "$archive holds no image config (not a docker image archive)"
config=sha256:$config

loaded=$(docker load --input "$archive" | sed -n 's/^Loaded image: //p' | head -n1)
[[ -n $loaded ]] || fail "docker load named no image from $archive"

digest=
for tag in "${tags[@]}"; do
  docker tag "$loaded" "$tag"
  docker push --quiet "$tag" >/dev/null
  pushed=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$tag" \
    | sed -n "s|^$repository@||p" | head -n1)
  [[ $pushed =~ ^sha256:[0-9a-f]{64}$ ]] || fail "no registry digest for $tag"
  [[ -z $digest || $pushed == "$digest" ]] || fail "$tag is $pushed, an earlier tag is $digest"
  digest=$pushed
  # What the registry serves, by digest and by tag: one manifest, whose config is the scanned one.
  manifest=$(docker buildx imagetools inspect --raw "$repository@$digest")
  [[ $(docker buildx imagetools inspect --raw "$tag") == "$manifest" ]] \
    || fail "$tag does not resolve to $repository@$digest"
  served=$(jq -r '.config.digest // empty' <<< "$manifest")
  [[ $served == "$config" ]] || fail "$repository@$digest has config $served, the scanned image's is $config"
done
echo "pushed ${#tags[@]} tag(s) of the scanned image (config $config) as $repository@$digest" >&2
echo "digest=$digest"
