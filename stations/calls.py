"""The one home of a station's CALL once the protocol layer has parsed and validated it: its handler runs in a
database transaction with everything the CALL stores (tolerated violations, last-seen time, and its message-log
rows in the unbuffered mode); the CALLRESULT goes out only after the commit.

Group commit (:func:`calls_commit_group`, fed by :mod:`stations.writer`): the CALLs of many stations applied in
one transaction; one that fails is answered from a transaction of its own, never failing the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from csms import groupscope, logs, metrics
from csms.ocpp import frames, router, schemas

from . import message_log
from .commands import secrets
from .models import ChargingStation, Direction, ProtocolViolation

logger = logging.getLogger("csms.ocpp")


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
        return _call_apply(CallWork(route, ctx, call, payload, touch_last_seen, log_in_transaction))


@dataclass(frozen=True, slots=True)
class CallWork:
    """A validated CALL to store: what :func:`call_commit` takes, as one item of a group."""

    route: router.Route
    ctx: router.CallContext
    call: frames.Call
    payload: dict[str, Any]
    touch_last_seen: bool
    log_in_transaction: bool = False


def _call_apply(work: CallWork) -> dict[str, Any]:
    """The CALL's statements, inside the caller's transaction; returns the CALLRESULT payload."""
    ctx, call = work.ctx, work.call
    response = work.route.handler(ctx, work.payload)
    schemas.validate(call.action, "Response", response)  # our own answers are always schema-valid
    if work.touch_last_seen:
        ChargingStation.objects.filter(pk=ctx.station_id).update(last_seen_at=timezone.now())
    if ctx.violations:
        ProtocolViolation.objects.create(
            station_id=ctx.station_id,
            message_id=call.unique_id,
            action=call.action,
            violations=[v.as_dict() for v in ctx.violations],
            tolerated=True,
        )
    if work.log_in_transaction:
        message_log.entries_write(
            station_id=ctx.station_id,
            connection_id=ctx.connection_id,
            entries=call_log_entries(call, response),
            is_error=False,
        )
    return response


def _mark(work: CallWork) -> None:
    logs.station_context(identity=work.ctx.identity, unique_id=work.call.unique_id, action=work.call.action)


Outcome = dict[str, Any] | Exception  # the CALLRESULT payload, or what its handler (or the database) raised


def _commit_alone(work: CallWork) -> Outcome:
    _mark(work)
    try:
        return call_commit(
            route=work.route,
            ctx=work.ctx,
            call=work.call,
            payload=work.payload,
            touch_last_seen=work.touch_last_seen,
            log_in_transaction=work.log_in_transaction,
        )
    except Exception as exc:
        return exc


def _group_attempt(works: Sequence[CallWork]) -> tuple[list[dict[str, Any]], int | None, bool]:
    """Apply ``works`` in one transaction: (responses, index of the item that raised or None, committed).

    ``committed`` is False with no failing item when the group failed outside any one item's handler: its start
    (the group's reads), its buffered writes (csms/groupscope.py) or the COMMIT itself. A marker registered first
    with ``on_commit`` runs first after the commit: an exception from a later on_commit callback is then not
    mistaken for a failed commit (which would store the group twice)."""
    responses: list[dict[str, Any]] = []
    committed: list[bool] = []
    applying: list[int] = []  # the index of the item whose handler is running
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))
            items = [(w.call.action, w.ctx.station_id, w.payload) for w in works]
            with groupscope.group_scope(items):
                for index, work in enumerate(works):
                    _mark(work)
                    groupscope.before_call(work.call.action, work.ctx.station_id)  # may flush: not the item's fault
                    applying[:] = [index]
                    responses.append(_call_apply(work))
                    applying.clear()
    except Exception:
        if committed:  # stored: a callback failed after the commit, as it could after a CALL's own transaction
            logger.exception("an on_commit callback failed after a group of %d CALLs was committed", len(works))
            return responses, None, True
        if applying:
            logger.info(
                "group commit: %s failed in a group of %d; retried on its own",
                works[applying[0]].call.action,
                len(works),
            )
            return responses, applying[0], False
        logger.exception("group commit: a group of %d CALLs failed (its reads, writes or COMMIT); each retried on its "
                         "own", len(works))  # fmt: skip
        return responses, None, False
    return responses, None, True


def _group_or_alone(works: Sequence[CallWork]) -> list[Outcome]:
    responses, failed, committed = _group_attempt(works)
    if committed:
        return list(responses)
    metrics.GROUP_COMMIT_RETRIES.labels(reason="item_failed" if failed is not None else "commit_failed").inc()
    return [_commit_alone(work) for work in works]


def calls_commit_group(*, works: Sequence[CallWork]) -> list[Outcome]:
    """Apply many stations' CALLs in one transaction and commit once; one outcome per CALL, in order.

    Every CALLRESULT payload returned was committed. When an item raises, the group is rolled back: the items before
    it are applied again together, the failing one alone (its own transaction: its own CALLERROR, or its answer when
    the failure came from the group), the rest as the next group. When the COMMIT fails, each is retried alone. A
    handler has no effect outside the transaction but ``on_commit`` callbacks (discarded on rollback), so running
    it again stores nothing twice. Outside any transaction (a database thread).
    """
    metrics.GROUP_COMMIT_BATCH_SIZE.observe(len(works))
    outcomes: list[Outcome] = []
    pending = list(works)
    while pending:
        responses, failed, committed = _group_attempt(pending)
        if committed:
            outcomes.extend(responses)
            break
        if failed is None:  # the COMMIT failed
            metrics.GROUP_COMMIT_RETRIES.labels(reason="commit_failed").inc()
            outcomes.extend(_commit_alone(work) for work in pending)
            break
        metrics.GROUP_COMMIT_RETRIES.labels(reason="item_failed").inc()
        if failed:
            outcomes.extend(_group_or_alone(pending[:failed]))
        outcomes.append(_commit_alone(pending[failed]))
        pending = pending[failed + 1 :]
    return outcomes


def call_answer_without_db(*, route: router.Route, ctx: router.CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Answer a CALL whose handler touches no database (a Heartbeat between last-seen writes), in the event loop."""
    if route.uses_db:
        raise ValueError(f"{route.action} needs the database: it cannot be answered in the event loop")
    response = route.handler(ctx, payload)
    schemas.validate(ctx.action, "Response", response)
    return response
