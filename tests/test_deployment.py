"""docker-compose.yml holds what the deployment needs (no Docker engine here to run `docker compose config`)."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT


def test_compose_has_the_services_with_healthchecks_and_volumes():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert {"pgdata", "redisdata"} <= set(compose["volumes"])
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    web_command = services["web"]["command"]
    assert web_command[web_command.index("--websocket_timeout") + 1] == "-1"
    assert web_command[web_command.index("--websocket_connect_timeout") + 1] == "30"  # boot storms queue handshakes
    env = services["web"]["environment"]
    assert env["CSMS_ENV"] == "production" and env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # required from .env, never committed
    for name in ("worker", "beat"):
        assert services[name]["command"][:3] == ["celery", "-A", "csms"]
        assert services[name]["environment"] == env


def test_every_way_of_running_daphne_uses_the_same_timeouts():
    # make run, the image, the bench and the tests' live servers: one set of flags, as users run it.
    for path in ("Makefile", "Dockerfile", "bench/servers.py", "tests/conftest.py"):
        text = (ROOT / path).read_text().replace('"', "").replace(",", "").replace("\n", " ")
        flat = " ".join(text.split())
        assert "--websocket_timeout -1" in flat, path
        assert "--websocket_connect_timeout 30" in flat, path
