# syntax=docker/dockerfile:1
#
# One image for every role of approval-bot:
#   docker run … approval-bot:latest                       -> web (the default CMD)
#   docker run … approval-bot:latest worker                -> background worker
#   docker run … approval-bot:latest db upgrade            -> schema migration (run before rolling out)
#   docker run … approval-bot:latest config check          -> validate the mounted policy
# Build: docker build -t approval-bot:latest .

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a self-contained virtualenv with the pinned dependencies and the project ---------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY workers ./workers
RUN pip install --no-deps .

# --- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 approval-bot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin approval-bot

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The example policy (config/approvers.yml); mount the real one over it read-only.
COPY config ./config
# Relative defaults resolve against /app: the SQLite default lives in /app/var (mount a volume
# there if you use SQLite; PostgreSQL is the production database).
RUN mkdir -p /app/var && chown approval-bot:approval-bot /app/var

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

EXPOSE 8080

# Liveness of the web process only (slim has no curl). The worker and one-shot commands
# serve no HTTP: disable this healthcheck for them (docker-compose.yml does).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["approval-bot"]
CMD ["web", "--host", "0.0.0.0", "--port", "8080"]
