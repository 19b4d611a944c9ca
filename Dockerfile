# syntax=docker/dockerfile:1
# One image for every process: `todo-operator run | api | notify | relay | migrate | crds`.
# Build: docker build -t todo-operator:dev .
# Runs as a numeric non-root user and works with a read-only root file system
# (nothing is written outside /tmp; no .pyc files are written at run time).

# The base image is pinned by version (bump both stages together; Renovate/Dependabot can).
FROM python:3.13.9-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first (a layer that changes only with the lock file), from the locked set.
COPY constraints.txt pyproject.toml README.md ./
COPY todo_operator ./todo_operator
RUN /opt/venv/bin/pip install --no-compile -c constraints.txt . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM python:3.13.9-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="todo-operator" \
      org.opencontainers.image.description="Kubernetes operator for todo tasks, recurring tasks and reminders" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
RUN groupadd --system --gid 10001 todo \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin todo
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
# The operator's liveness (8080) and metrics (9090); the API (8000).
EXPOSE 8000 8080 9090
HEALTHCHECK NONE
ENTRYPOINT ["todo-operator"]
CMD ["--help"]
