# kaput-not image: a virtualenv with the hash-locked runtime dependencies and the kaput-not wheel,
# copied onto a distroless Python 3.11 (Debian 12's python3.11; no shell, no pip, no package
# manager, user nonroot 65532). No compiler, no build tools, no writes at run time (the chart
# runs it with a read-only root file system as 65532:65532).
# The two bases are build arguments. Their defaults are the public images; scripts/build-image
# makes the same two from Debian 12 packages and builds this file against them.
# scripts/check-deploy runs the same install commands without a container; keep the two in step.

ARG BUILD_IMAGE=debian:12-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian12

FROM ${BUILD_IMAGE} AS build
# debian:12-slim has no Python: Debian's python3-venv is the same python3.11 as the runtime's,
# so the venv's interpreter link (/usr/bin/python3) holds there. A base that has it already
# (scripts/build-image's) needs no apt. The version follows the Debian release, not a pin here.
# hadolint ignore=DL3008
RUN if ! python3 -c 'import ensurepip' 2>/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends python3-venv \
      && rm -rf /var/lib/apt/lists/*; \
    fi
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first: this layer is reused until the lock file changes.
COPY requirements/runtime.lock requirements/runtime.lock
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY src/ src/
# The build context has no .git: the version and commit come from scripts/version (its
# PYTHON_VERSION and REVISION), as setuptools-scm takes them without one.
ARG PYTHON_VERSION=0.0.0+unknown
ARG REVISION=""
# pip and setuptools leave the venv once it is complete: the image runs, it never installs.
RUN meta="" \
 && if [ -n "$REVISION" ] && [ "$REVISION" != unknown ]; then meta="{node=\"g$REVISION\"}"; fi \
 && SETUPTOOLS_SCM_PRETEND_VERSION="$PYTHON_VERSION" SETUPTOOLS_SCM_PRETEND_METADATA="$meta" \
    /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheels/kaput_not-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools

FROM ${RUNTIME_IMAGE}
ARG VERSION=""
ARG REVISION=""
LABEL org.opencontainers.image.title="kaput-not" \
      org.opencontainers.image.description="Keeps Netmaker egress rules equal to every Kubernetes node's spec.podCIDRs" \
      org.opencontainers.image.source="https://github.com/bsure-analytics/kaput-not-py" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="bsure-analytics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
# /healthz, /readyz and /metrics (METRICS_ADDRESS, default :8080).
EXPOSE 8080
ENTRYPOINT ["/opt/venv/bin/kaput-not"]
CMD ["run"]
