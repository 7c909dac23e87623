"""Fuzzing the REST API from its own OpenAPI schema (schemathesis) against a live daphne server, as an admin.

Every operation gets schema-valid and schema-invalid requests; no answer may be a 5xx, and every documented
answer must match the schema. Bounded by examples per operation, not by a clock: how long it takes is the
machine's business (speed is measured in benchmarks, never asserted in a test).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}
# daphne's HTTP layer (Twisted) answers a malformed multipart body itself with a bare 400 (no JSON, no
# Content-Type) before Django sees the request: a 4xx all the same, but not one of ours to fix or document.
MULTIPART_PATHS = {"/api/v1/id-tokens/import/"}


def seed(station: Any) -> dict[str, Any]:
    """Objects the pinned pass works on: one of each resource."""
    from stations.models import Command
    from tests.transactions.factories import meter_value, sampled, tx_event
    from transactions.models import IdToken
    from transactions.services import transaction_event_apply
    from webhooks.models import WebhookSubscription

    event = tx_event("Started", 0, "2026-01-01T00:00:00Z", meter=[meter_value("2026-01-01T00:00:00Z", sampled(5))])
    txn = transaction_event_apply(station_id=station.pk, event=event).transaction
    command = Command.objects.create(station=station, action="ClearCache", request={}, state="offline")
    token = IdToken.objects.create(id_token="FUZZ-TOKEN")
    hook = WebhookSubscription.objects.create(url="http://127.0.0.1:9/", secret="s" * 32, events=["command.finished"])
    return {
        "/api/v1/stations/": {"identity": station.identity},
        "/api/v1/transactions/": {"id": txn.pk},
        "/api/v1/commands/": {"id": command.pk},
        "/api/v1/id-tokens/": {"id": token.pk},
        "/api/v1/webhooks/": {"id": hook.pk},
    }


def pinned_parameters(path: str, pinned: dict[str, Any]) -> dict[str, Any] | None:
    if "{" not in path:
        return None
    for prefix, parameters in pinned.items():
        if path.startswith(prefix):
            return parameters
    return None


@pytest.mark.timeout(600)  # bounded by its examples; a loaded 2-core machine may take minutes
def test_fuzz_the_api_finds_no_server_error_and_no_schema_mismatch(csms_server: Any) -> None:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from stations.services import station_register

    # Throttling off for the fuzzer (its request rate is no client's).
    server = csms_server("fuzz", CSMS_API_THROTTLE_USER="1000000/min", CSMS_API_THROTTLE_ANON="1000000/min")
    admin = User.objects.create_superuser("fuzz-admin", password="fuzz-pass-123")
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}
    station, _ = station_register(identity="CS-FUZZ")
    pinned = seed(station)

    schema = schemathesis.openapi.from_url(f"{server.http_url}/api/schema/", headers=headers).include(
        path_regex="^/api/v1/"
    )
    checks = [not_a_server_error, response_schema_conformance]
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis cannot read: our schema's fault
        operation = result.ok()
        operations += 1
        passes: list[tuple[GenerationMode, int, dict[str, Any] | None]] = [
            (mode, examples, None) for mode, examples in EXAMPLES.items()
        ]
        # Once more on existing objects (not deleting them), so that detail and PATCH requests get past the 404.
        path_parameters = pinned_parameters(operation.path, pinned)
        if path_parameters and operation.method.upper() != "DELETE":
            passes.append((GenerationMode.POSITIVE, EXAMPLES[GenerationMode.POSITIVE], path_parameters))
        for mode, examples, path_parameters in passes:
            if mode == GenerationMode.NEGATIVE and operation.path in MULTIPART_PATHS:
                continue

            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],  # no shrinking: keep the run short
            )
            def run(case: Any) -> None:
                case.call_and_validate(base_url=server.http_url, headers=headers, checks=checks, timeout=30)

            try:
                run()
            except Unsatisfiable:  # e.g. no schema-invalid value exists for a free-form string path parameter
                continue
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:3000])
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
