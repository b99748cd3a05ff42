# lucidserve: a scikit-learn model behind gunicorn + uvicorn workers, observable out of the box.
#
#   docker build -t lucidserve .                                   # python:3.12-slim-bookworm, pinned
#   docker build --build-arg BASE_IMAGE=<any Debian-like image with python3 + venv> -t lucidserve .
#   docker run --rm -p 8000:8000 -p 9100:9100 --read-only --tmpfs /tmp --tmpfs /run/lucidserve/metrics \
#     --tmpfs /run/lucidserve/tmp lucidserve
#
# Works on any base whose `python3` has the venv module: every Python path below is absolute
# (/opt/venv), nothing relies on /usr/local/bin/python. The tests build it on a local Debian bookworm
# base (tests/test_image.py) because no container registry is reachable there.

# The default base is the `python-base` stage below: python:3.12-slim-bookworm pinned by digest, on a
# FROM line of its own because Dependabot (docker ecosystem) updates FROM lines but not ARG values;
# its weekly pull request moves the digest. Unused stages are skipped, so a build with another
# BASE_IMAGE never pulls it.
ARG BASE_IMAGE=python-base
# checkov:skip=CKV_DOCKER_7: the stages start from the BASE_IMAGE build argument, whose default is the python-base stage pinned by digest (checkov cannot resolve build arguments)

FROM python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254 AS python-base

# ---------------------------------------------------------------------------------------------------
# builder: the locked runtime dependencies, the package and the default model, in /opt.
FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# Dependencies first (their layer survives source edits): hash-pinned, wheels only, so no compiler.
COPY requirements.lock requirements-build.lock ./
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r requirements.lock \
 && python3 -m venv /opt/build-backend \
 && /opt/build-backend/bin/python -m pip install --no-cache-dir --require-hashes \
        --only-binary=:all: -r requirements-build.lock

# The package itself, built into a wheel by the pinned backend and installed without dependencies.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/build-backend/bin/hatchling build --target wheel --directory /build/dist \
 && /opt/venv/bin/python -m pip install --no-cache-dir --no-deps /build/dist/*.whl \
 && /opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel \
 && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv

# The default model, trained at build time so the image serves out of the box.
RUN /opt/venv/bin/lucidserve train --dataset iris --out /opt/lucidserve/models/default \
 && chmod -R u=rwX,go=rX /opt/venv /opt/lucidserve

# ---------------------------------------------------------------------------------------------------
# runtime: the base image plus /opt/venv and the model, both owned by root and read-only to the server.
FROM ${BASE_IMAGE} AS runtime

ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="lucidserve" \
      org.opencontainers.image.description="Observability-first serving for scikit-learn models" \
      org.opencontainers.image.source="https://github.com/lucidserve/lucidserve" \
      org.opencontainers.image.url="https://github.com/lucidserve/lucidserve" \
      org.opencontainers.image.documentation="https://github.com/lucidserve/lucidserve/tree/main/deploy" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="lucidserve" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# (base.name is `python-base` for the default build: the digest-pinned stage at the top of this file)

# The server's writable paths all live under /run/lucidserve and /tmp, which Kubernetes (and
# `docker run --read-only --tmpfs ...`) mounts over; the directories exist here for plain runs.
RUN groupadd --system --gid 10001 lucidserve \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin lucidserve \
 && mkdir -p /run/lucidserve/metrics /run/lucidserve/tmp \
 && chown -R 10001:10001 /run/lucidserve

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/lucidserve /opt/lucidserve

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    LUCIDSERVE_MODEL_DIR=/opt/lucidserve/models/default \
    LUCIDSERVE_MULTIPROC_DIR=/run/lucidserve/metrics \
    LUCIDSERVE_WORKER_TMP_DIR=/run/lucidserve/tmp

WORKDIR /opt/lucidserve
USER 10001:10001
# The API and probes; /metrics on its own port (LUCIDSERVE_METRICS_PORT).
EXPOSE 8000 9100

# Python's own HTTP client: slim images have no curl. Healthy = ready to serve (503 while loading or
# draining makes urlopen raise, so the command exits non-zero).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('LUCIDSERVE_PORT', '8000') + '/readyz', timeout=4)"]

ENTRYPOINT ["/opt/venv/bin/lucidserve"]
CMD ["serve"]
