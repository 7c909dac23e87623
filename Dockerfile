# The CSMS image: daphne (web), Celery worker and beat all run from it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=csms.settings CSMS_VAR_DIR=/app/var

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# collectstatic needs a key but never uses it; production refuses to start without a real one.
RUN SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput -v0 \
    && useradd --system --home /app csms && mkdir -p /app/var/media /app/var/ca && chown -R csms /app/var
USER csms
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket_timeout", "-1", "--websocket_connect_timeout", "30", "csms.asgi:application"]
