"""The one home of a station's CALL once the protocol layer has parsed and validated it: its handler runs in one
database transaction with everything the CALL stores (tolerated violations, last-seen time, and its message-log
rows in the unbuffered mode); the CALLRESULT goes out only after the commit.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from csms.ocpp import frames, router, schemas

from . import message_log
from .commands import secrets
from .models import ChargingStation, Direction, ProtocolViolation


def call_log_entries(call: frames.Call, response: dict[str, Any]) -> list[dict[str, Any]]:
    """The message-log rows of an answered CALL: the CALL in, its CALLRESULT out."""
    return [
        {
            "direction": Direction.IN,
            "message_type": frames.MessageType.CALL,
            "message_id": call.unique_id,
            "action": call.action,
            "payload": secrets.incoming_for_log(call.action, call.payload),
        },
        {
            "direction": Direction.OUT,
            "message_type": frames.MessageType.CALLRESULT,
            "message_id": call.unique_id,
            "action": call.action,
            "payload": response,
        },
    ]


def call_commit(
    *,
    route: router.Route,
    ctx: router.CallContext,
    call: frames.Call,
    payload: dict[str, Any],
    touch_last_seen: bool,
    log_in_transaction: bool = False,
) -> dict[str, Any]:
    """Run the handler of a validated CALL and commit what it stores, in one transaction (with its message-log rows
    when ``log_in_transaction``; otherwise the caller hands them to the buffered writer).

    Returns the CALLRESULT payload once committed. Raises OcppError (the consumer maps a database error to
    InternalError); on any exception nothing of the CALL is persisted.
    """
    with transaction.atomic():
        response = route.handler(ctx, payload)
        schemas.validate(call.action, "Response", response)  # our own answers are always schema-valid
        if touch_last_seen:
            ChargingStation.objects.filter(pk=ctx.station_id).update(last_seen_at=timezone.now())
        if ctx.violations:
            ProtocolViolation.objects.create(
                station_id=ctx.station_id,
                message_id=call.unique_id,
                action=call.action,
                violations=[v.as_dict() for v in ctx.violations],
                tolerated=True,
            )
        if log_in_transaction:
            message_log.entries_write(
                station_id=ctx.station_id,
                connection_id=ctx.connection_id,
                entries=call_log_entries(call, response),
                is_error=False,
            )
    return response


def call_answer_without_db(*, route: router.Route, ctx: router.CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Answer a CALL whose handler touches no database (a Heartbeat between last-seen writes), in the event loop."""
    if route.uses_db:
        raise ValueError(f"{route.action} needs the database: it cannot be answered in the event loop")
    response = route.handler(ctx, payload)
    schemas.validate(ctx.action, "Response", response)
    return response
