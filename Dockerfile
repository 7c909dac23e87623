# The CSMS image: daphne (web), Celery worker and beat, the FTP file server and the one-shot migrate all run from it.
# An exact base tag (Python 3.11, Debian bookworm, slim); pin its digest where a registry is reachable:
# `docker buildx imagetools inspect python:3.11.14-slim-bookworm` -> FROM python:3.11.14-slim-bookworm@sha256:...
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=csms.settings CSMS_VAR_DIR=/app/var

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic needs a key but never uses it; production refuses to start without a real one. A numeric, non-root
# user (10001), so that the host and Kubernetes-style runtimes can check it is not root.
RUN SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput -v0 \
    && useradd --system --uid 10001 --home-dir /app --no-create-home csms \
    && mkdir -p /app/var/media /app/var/ca && chown -R 10001 /app/var
USER 10001
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket_timeout", "-1", "--websocket_connect_timeout", "30", "csms.asgi:application"]
