"""Stand-ins for `kubectl` and `kustomize` that record their calls, for testing deploy scripts.

`kustomize build` prints the file in STUB_MANIFEST. `kubectl get -f` lists the Deployments in
STUB_DEPLOYMENTS ("namespace/name" words) in the custom-columns form the script asks for.
`kubectl rollout status` fails while STUB_ROLLOUT_FAILS is "1", until a `rollout undo` happened.
Every call is appended to STUB_LOG as one line: the program name, then its arguments.
"""

from __future__ import annotations

from pathlib import Path

_KUBECTL = r"""#!/usr/bin/env bash
echo "kubectl $*" >> "$STUB_LOG"
case "$1 $2" in
  "get -f")
    for deployment in $STUB_DEPLOYMENTS; do
      echo "Deployment ${deployment%%/*} ${deployment#*/}"
    done
    echo "Service ${STUB_DEPLOYMENTS%%/*} lucidserve" ;;
  "rollout status")
    if [[ "$STUB_ROLLOUT_FAILS" == 1 && ! -e "$STUB_LOG.undone" ]]; then
      echo "error: deployment exceeded its progress deadline" >&2
      exit 1
    fi ;;
  "rollout undo")
    touch "$STUB_LOG.undone" ;;
esac
"""

_KUSTOMIZE = r"""#!/usr/bin/env bash
echo "kustomize $* (in $PWD)" >> "$STUB_LOG"
case "$1" in
  build) cat "$STUB_MANIFEST" ;;
  version) echo v5.0.0 ;;
esac
"""


def install_kube_stubs(bin_dir: Path) -> None:
    """Writes executable `kubectl` and `kustomize` stubs into `bin_dir`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("kubectl", _KUBECTL), ("kustomize", _KUSTOMIZE)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
