"""Grafana dashboards and Kubernetes monitoring manifests for lucidserve, built as code.

`python -m grafana.generator` (or `make dashboards`) writes the dashboards to `grafana/dashboards/`
and the Kubernetes manifests made from them and from `deploy/prometheus/rules.yml` to
`deploy/k8s/base/`; `--check` reports files that differ from what it would write.
Built with grafana-foundation-sdk (pinned exactly in pyproject.toml): its builders change shape
between releases, so a new pin means regenerating and reviewing the JSON diff.
"""
