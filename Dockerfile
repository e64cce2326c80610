# alertsim: one image for `alertsim serve`, `alertsim subscribe` and the other commands.
# A simulator, not an official alert feed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the wheel needs (hatchling reads README.md for the project description);
# .dockerignore keeps the venv, caches, tests and local databases out of the context.
COPY pyproject.toml README.md ./
COPY alertsim ./alertsim
# The shipped scenarios (`docker compose run --rm drill scenarios/NAME.yaml`) and the
# EMQX access-control converter the compose `emqx` profile runs.
COPY scenarios ./scenarios
COPY docker/emqx_auth.py ./docker/emqx_auth.py
# shapely, pyproj and numpy install from manylinux wheels: no compiler needed.
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin alertsim \
    && mkdir /data \
    && chown alertsim:alertsim /data

# A named volume mounted at /data starts with this directory's ownership.
VOLUME ["/data"]
USER alertsim
WORKDIR /data

ENTRYPOINT ["alertsim"]
CMD ["--help"]
