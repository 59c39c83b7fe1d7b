# syntax=docker/dockerfile:1
#
# One image for every USN Alumni service. The container runs `python -m $SERVICE`:
#   SERVICE=membership            the membership service (the default)
#   SERVICE=consent               the consent service
#   SERVICE=mailer                the mailer (HTTP 8103, bounce listener SMTP 2526)
#   SERVICE=alumni_kit.topics     the one-shot topic creator (arguments: --bootstrap HOST:PORT)
#   SERVICE=events, SERVICE=analytics   the events (8104) and analytics (8105) services
#
#   docker build -t usn-alumni:local .
#   docker run --rm -e SERVICE=alumni_kit.topics usn-alumni:local --bootstrap kafka:9092

ARG PYTHON_IMAGE=python:3.11-slim

############################ build: a virtualenv in /opt/venv ############################
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# `MEMBERSHIP_OTEL_EXPORTER=otlp` (used by docker-compose.yml and deploy/k8s)
# imports the OTLP gRPC exporter, which pyproject.toml does not declare. It is
# added here; build with --build-arg EXTRA_PACKAGES= to leave it out.
ARG EXTRA_PACKAGES="opentelemetry-exporter-otlp-proto-grpc~=1.45"

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml
# changes, not on every code edit. Runtime dependencies only, never the [dev] extra.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt ${EXTRA_PACKAGES:+"$EXTRA_PACKAGES"}

# Then the project itself (not editable: the image holds no source tree).
# services/ is copied whole so that a new service needs no Dockerfile change,
# only its entry in pyproject.toml's [tool.setuptools.packages.find].
COPY schemas/ schemas/
COPY services/ services/
COPY tools/ tools/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
 && python -c "import alumni_kit, consent, mailer.app, membership, usn_schemas"

############################ runtime ############################
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="usn-alumni" \
      org.opencontainers.image.description="USN Alumni services (python -m \$SERVICE)"

# A fixed numeric uid, so that Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 alumni \
 && useradd --system --uid 10001 --gid alumni --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin alumni

# Bytecode was compiled at install time; the running service writes nothing
# (the root filesystem can be mounted read-only).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SERVICE=membership

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
# membership's port; every service picks its own with <SERVICE>_HTTP_PORT (consent: 8102,
# mailer: 8103 and its bounce listener on MAILER_BOUNCE_LISTEN_PORT, 2526).
EXPOSE 8101

# `exec` replaces the shell with Python, so SIGTERM reaches uvicorn and the
# service stops cleanly (consumers, outbox relay, pool). Arguments after the
# image name are passed on to the module ("alumni" is only $0).
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"$SERVICE\" \"$@\"", "alumni"]
