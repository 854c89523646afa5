# The DataPerf appliance in one image: Airflow (API server, scheduler, DAG processor) on its own
# PostgreSQL 15, and the Streamlit app, all under supervisord. It runs the scripts CI runs on the host:
# scripts/dev/install.sh to install, scripts/runtime/entrypoint.sh to start.
#
#   docker build --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t dataperf-appliance .
#   docker run -d --name dataperf-appliance --stop-timeout 120 \
#     -p 8501:8501 -p 8080:8080 -v dataperf-data:/data dataperf-appliance
#
# One stage, PostgreSQL's layer first (it stays cached while the code changes), then the code and its
# virtual environment in one layer: uv (and its downloads) stay in build caches (mounts, never in a layer)
# and needs no compiler, so nothing of the build is left in the image. (A second stage only copied the
# same 1.3 GB again: a minute and a half more per build on 2 cores.)
#
# Everything runs as the non-root user `appliance` (uid 10001), PostgreSQL included: its cluster, Airflow's
# home, the runs, the logs and the generated passwords are all under the volume /data. A host folder
# mounted there must belong to uid 10001, or start the container with `--user 0`: the entrypoint then
# hands /data to `appliance` and drops to that user before anything else runs.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APPLIANCE_VENV=/opt/appliance/venv

# PostgreSQL 15's server binaries, from Debian (in /usr/lib/postgresql/15/bin, where
# scripts/runtime/start-postgres.sh looks), without the cluster the package would create: the appliance makes its
# own under /data. Redis: the Celery broker with APPLIANCE_EXECUTOR=celery (started by supervisord only then). Versions are not pinned: Debian's security updates replace a stable package's version
# in the archive, so a pin would break the build at the next update (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' \
      /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 redis-server \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/appliance \
      --shell /usr/sbin/nologin appliance \
 && mkdir -p /data \
 && chown appliance:appliance /data \
 && chmod 0750 /data

# The image's data root is its volume, /data: this deployment's value, not a second default (a checkout's
# default, <repo>/data, is set in scripts/runtime/paths.sh only). The app and Airflow listen on every address
# of the container, so that its published ports reach them (scripts/start.sh on a host defaults to 127.0.0.1).
ENV APPLIANCE_DATA_DIR=/data \
    APPLIANCE_RUN_AS=appliance \
    APPLIANCE_UI_HOST=0.0.0.0 \
    APPLIANCE_AIRFLOW_HOST=0.0.0.0

# The code and its virtual environment, owned by root (the services cannot change them), installed the
# one way CI installs them, compiled to .pyc (scripts/dev/uv.sh), since the services cannot write next to it.
# Behind a proxy that intercepts TLS, give the installers its CA bundle as a build secret (never a layer):
#   --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt
WORKDIR /opt/appliance/src
COPY . .
RUN --mount=type=secret,id=pip-ca,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    --mount=type=cache,target=/root/.cache/dataperf-appliance \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && UV_LINK_MODE=copy scripts/dev/install.sh

# The environments of the libraries' methods (docs/methods.md) built in advance, so that their first run
# builds nothing: e.g. --build-arg PREBUILT_METHOD_ENVIRONMENTS=pydvl_valuation (0.67 GB with its .pyc,
# compiled since the services cannot write next to them). None by default: the image is held to 2 GB, and
# datascope 0.0.8's compiles from source (the image has no compiler) and PyPI's torch 2.13 is the CUDA
# build (GBs). A deployment builds each at its first use on the data root and keeps it packed in the
# bucket, from which every later instance or worker restores it.
ARG PREBUILT_METHOD_ENVIRONMENTS=""
ENV APPLIANCE_PREBUILT_METHOD_ENVS=/opt/method-envs
RUN --mount=type=secret,id=pip-ca,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/pip-ca ]; then export SSL_CERT_FILE=/run/secrets/pip-ca; fi \
 && if [ -n "$PREBUILT_METHOD_ENVIRONMENTS" ]; then \
      UV_CACHE_DIR=/root/.cache/uv UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never \
        /opt/appliance/venv/bin/dataperf-appliance build-environments --into /opt/method-envs \
        $PREBUILT_METHOD_ENVIRONMENTS; \
    fi

ARG GIT_COMMIT=""
ENV APPLIANCE_GIT_COMMIT=${GIT_COMMIT}

USER 10001:10001
EXPOSE 8501 8080
VOLUME ["/data"]
# Both services: Airflow's API server (with its database) and Streamlit.
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
  CMD ["/opt/appliance/venv/bin/python", "/opt/appliance/src/scripts/runtime/healthcheck.py"]
# supervisord stops the programs in order on SIGTERM; give it time (docker run --stop-timeout 120).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/appliance/src/scripts/runtime/entrypoint.sh"]
