"""Settings safety and the protocol layer's pure parts (no server needed)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from csms.ocpp import errors, frames, router, schemas
from tests.conftest import ROOT


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "CSMS_ENV"}}
    return subprocess.run(
        [sys.executable, "-c", "import csms.settings"], cwd=ROOT, env=clean | env, capture_output=True, text=True
    )


def test_production_refuses_debug():
    result = _import_settings(CSMS_ENV="production", DEBUG="1", SECRET_KEY="k" * 50)
    assert result.returncode == 1
    assert "refuses to start with DEBUG on" in result.stderr


def test_production_refuses_missing_or_short_secret_key():
    assert "needs SECRET_KEY" in _import_settings(CSMS_ENV="production").stderr
    assert "needs SECRET_KEY" in _import_settings(CSMS_ENV="production", SECRET_KEY="short").stderr


def test_production_starts_with_a_real_secret_key():
    assert _import_settings(CSMS_ENV="production", SECRET_KEY="k" * 50).returncode == 0


def test_production_settings_pass_the_deploy_check_and_keep_probes_and_uploads_plain():
    unset = {"DEBUG", "SECRET_KEY", "CSMS_ENV", "DJANGO_ALLOW_ASYNC_UNSAFE"}  # the browser tests' process sets the last
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    key = secrets.token_urlsafe(50)
    env = clean | {"CSMS_ENV": "production", "SECRET_KEY": key, "ALLOWED_HOSTS": "csms.example.com"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_REDIRECT_EXEMPT)",
        ],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "csms.settings"},
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "True 31536000 ['^healthz$', '^readyz$', '^metrics$', '^files/']", probe.stderr


def test_bad_policy_value_is_refused_at_start():
    result = _import_settings(CSMS_UNKNOWN_STATION_POLICY="maybe")
    assert "CSMS_UNKNOWN_STATION_POLICY='maybe'" in result.stderr


def test_all_64_actions_have_compiled_request_and_response_validators():
    schemas.warm_up()
    assert len(schemas.all_actions()) == 64
    for action in schemas.all_actions():
        assert schemas.validator(action, "Request") is schemas.validator(action, "Request")


def test_registered_handlers_cover_the_provisioning_messages():
    assert {"BootNotification", "Heartbeat", "StatusNotification", "NotifyEvent"} <= router.registered_actions()


def test_handler_for_a_non_ocpp_action_cannot_be_registered():
    with pytest.raises(ValueError, match="not an OCPP 2.0.1 action"):
        router.handles("MakeCoffee")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[2,"a","Heartbeat",{}]', frames.Call("a", "Heartbeat", {})),
        ('[3,"a",{"x":1}]', frames.CallResult("a", {"x": 1})),
        ('[4,"a","NotSupported","d",{}]', frames.CallError("a", "NotSupported", "d", {})),
    ],
)
def test_parse_valid_frames(text, expected):
    assert frames.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "unique_id", "code"),
    [
        ("[2,", "-1", "RpcFrameworkError"),
        ('[2,"' + "x" * 37 + '","Heartbeat",{}]', "-1", "RpcFrameworkError"),
        ('[2,7,"Heartbeat",{}]', "-1", "RpcFrameworkError"),
        ('["2","a","Heartbeat",{}]', "a", "RpcFrameworkError"),
        ('[2,"a",5,{}]', "a", "RpcFrameworkError"),
        ('[9,"a",{}]', "a", "MessageTypeNotSupported"),
    ],
)
def test_parse_errors_carry_the_right_code_and_id(text, unique_id, code):
    with pytest.raises(frames.FrameError) as info:
        frames.parse(text)
    assert (info.value.unique_id, info.value.error.code) == (unique_id, code)


def test_call_error_descriptions_are_capped_at_255():
    assert len(errors.InternalError("x" * 1000).description) == 255


def test_lenient_validation_repairs_tolerable_violations_without_touching_the_input():
    payload = {"reason": "PowerUp", "extra": 1, "chargingStation": {"vendorName": "V" * 60, "model": "M", "junk": True}}
    repaired, found = schemas.validate_lenient("BootNotification", "Request", payload)
    assert repaired == {"reason": "PowerUp", "chargingStation": {"vendorName": "V" * 50, "model": "M"}}
    assert sorted(v.keyword for v in found) == ["additionalProperties", "additionalProperties", "maxLength"]
    assert payload["extra"] == 1  # the caller's copy (logged as received) is unchanged
    schemas.validate("BootNotification", "Request", repaired)


def test_lenient_validation_still_refuses_missing_fields():
    with pytest.raises(errors.OccurrenceConstraintViolation):
        schemas.validate_lenient("BootNotification", "Request", {"reason": "PowerUp", "extra": 1})


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_rpc_framework_errors(constant):
    with pytest.raises(frames.FrameError) as info:
        frames.parse(f'[2,"n1","MeterValues",{{"evseId":1,"meterValue":[{{"value":{constant}}}]}}]')
    assert (info.value.unique_id, info.value.error.code) == ("n1", "RpcFrameworkError")
    assert f"{constant} is not valid JSON" in info.value.error.description
