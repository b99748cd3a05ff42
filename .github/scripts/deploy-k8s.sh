#!/usr/bin/env bash
# Rolls a kustomize overlay out to the cluster in KUBECONFIG with the service image pinned to a digest.
#
#   deploy-k8s.sh OVERLAY_DIR IMAGE_REPOSITORY DIGEST
#   e.g. deploy-k8s.sh deploy/k8s/overlays/prod ghcr.io/acme/lucidserve sha256:0123...
#
# 1. `kustomize edit set image lucidserve=IMAGE_REPOSITORY@DIGEST` in the overlay (the `lucidserve`
#    entry of the kustomization's `images:`; IMAGE_ENTRY overrides the name);
# 2. renders the overlay and applies it;
# 3. waits for every Deployment in it to roll out (ROLLOUT_TIMEOUT, default 300s);
# 4. if one does not, runs `kubectl rollout undo` on it, waits for the previous revision, and fails.
# Needs kubectl and kustomize on PATH. Used by the deploy job in .github/workflows/ci.yml.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 OVERLAY_DIR IMAGE_REPOSITORY DIGEST" >&2
  exit 2
fi
overlay=$1
repository=$2
digest=$3
entry=${IMAGE_ENTRY:-lucidserve}
timeout=${ROLLOUT_TIMEOUT:-300s}

if [[ ! $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "not an image digest: '$digest'" >&2
  exit 2
fi
if [[ ! -f $overlay/kustomization.yaml ]]; then
  echo "no kustomization.yaml in $overlay" >&2
  exit 2
fi

image="$repository@$digest"
echo "deploying $image with $overlay"
(cd "$overlay" && kustomize edit set image "$entry=$image")

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kustomize build "$overlay" >"$rendered"
kubectl apply -f "$rendered"

# Deployments as "namespace name" lines, read back from the cluster so defaulted namespaces resolve.
mapfile -t deployments < <(
  kubectl get -f "$rendered" --no-headers \
    -o custom-columns='KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name' |
    awk '$1 == "Deployment" { print $2, $3 }'
)
if [[ ${#deployments[@]} -eq 0 ]]; then
  echo "$overlay renders no Deployment: nothing to wait for" >&2
  exit 1
fi

failed=()
for deployment in "${deployments[@]}"; do
  read -r namespace name <<<"$deployment"
  if ! kubectl rollout status "deployment/$name" --namespace "$namespace" --timeout "$timeout"; then
    failed+=("$deployment")
  fi
done
if [[ ${#failed[@]} -eq 0 ]]; then
  echo "rolled out $image"
  exit 0
fi

for deployment in "${failed[@]}"; do
  read -r namespace name <<<"$deployment"
  echo "::error title=Rollout failed::deployment/$name in $namespace did not become ready with $image; rolling back"
  if kubectl rollout undo "deployment/$name" --namespace "$namespace"; then
    kubectl rollout status "deployment/$name" --namespace "$namespace" --timeout "$timeout" ||
      echo "::error title=Rollback incomplete::deployment/$name in $namespace is not ready after the rollback"
  else
    echo "::error title=Rollback impossible::deployment/$name in $namespace has no previous revision"
  fi
done
exit 1
