# kaput-not image: a virtualenv with the hash-locked runtime dependencies and the kaput-not wheel,
# copied onto a clean python:3.11-slim. No compiler, no build tools, no writes at run time (the
# chart runs it with a read-only root file system as 65532:65532).
# scripts/check-deploy runs the same install commands without Docker; keep the two in step.

ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first: this layer is reused until the lock file changes.
COPY requirements/runtime.lock requirements/runtime.lock
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY src/ src/
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheels/kaput_not-*.whl \
 && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE}
ARG VERSION=""
ARG REVISION=""
LABEL org.opencontainers.image.title="kaput-not" \
      org.opencontainers.image.description="Keeps Netmaker egress rules equal to every Kubernetes node's spec.podCIDRs" \
      org.opencontainers.image.source="https://github.com/bsure-analytics/kaput-not-py" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="bsure-analytics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
# /healthz, /readyz and /metrics (METRICS_ADDRESS, default :8080).
EXPOSE 8080
ENTRYPOINT ["/opt/venv/bin/kaput-not"]
CMD ["run"]
