"""The command pipeline: every CSMS->CS request, from any door (dashboard, admin, API, bulk, Celery jobs, domain
services), is validated, recorded as a ``Command`` (the audit trail) and handed over the channel layer to the
consumer holding the station's socket, in whichever daphne process; its outcome is recorded once by
:func:`command_finish`, which runs the answer hooks (:mod:`.hooks`) and tells waiting callers and dashboards.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, cast

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from csms import metrics
from csms.ocpp import actions, router, schemas
from webhooks import services as webhooks

from ..live import station_group
from ..models import (
    FINAL_COMMAND_STATES,
    BulkCommand,
    ChargingStation,
    Command,
    CommandState,
    ProtocolViolation,
    ValidationMode,
)
from . import secrets
from .hooks import allocated_field, answer_hooks_run, failure_hooks_run, send_hooks_run

logger = logging.getLogger(__name__)

CONNECTION_CLOSED = "connection closed before the station answered"
NOT_CONNECTED = "station not connected"


class CommandValidationError(ValueError):
    """A command refused before anything was stored or sent: unknown/wrong-direction action or a bad payload."""

    def __init__(self, message: str, violations: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.message, "violations": self.violations}


def command_validate(*, action: str, payload: Any) -> None:
    """Raise CommandValidationError unless ``action`` is a CSMS->CS action and ``payload`` its valid request."""
    if action not in actions.CSMS_TO_CS:
        if action in schemas.all_actions():
            raise CommandValidationError(f"{action} is not a CSMS->CS action: a CSMS cannot send it to a station")
        raise CommandValidationError(f"{action[:64]!r} is not an OCPP 2.0.1 action")
    if not isinstance(payload, dict):
        raise CommandValidationError(f"{action}Request payload must be a JSON object, got {type(payload).__name__}")
    # The field the CSMS allocates (its send hook writes it) may be left out.
    found = schemas.violations(action, "Request", with_allocated_placeholder(action=action, payload=payload))
    if found:
        violations = [v.as_dict() for v, _ in found]
        first = violations[0]
        raise CommandValidationError(
            f"{action}Request is not schema-valid: {first['path']}: {first['message']}", violations
        )
    if action == "TriggerMessage":
        trigger_message_check(requested=payload["requestedMessage"])


def triggerable_messages() -> list[str]:
    """The requestedMessage values whose resulting CS->CSMS message this CSMS handles (registered handlers)."""
    handled = router.registered_actions()
    return [value for value, target in actions.TRIGGER_TARGETS.items() if target in handled]


def trigger_message_check(*, requested: str) -> None:
    """Refuse a TriggerMessage whose resulting message the CSMS would answer NotSupported: triggering it would
    only make the station send something nobody stores."""
    target = actions.TRIGGER_TARGETS.get(requested, requested)
    if target not in router.registered_actions():
        message = f"TriggerMessage {requested}: this CSMS does not handle {target}, so it does not trigger it"
        violation = {"code": "NotSupported", "path": "requestedMessage", "message": message, "keyword": "handled"}
        raise CommandValidationError(message, [violation])


def with_allocated_placeholder(*, action: str, payload: Any) -> Any:
    """The payload with a placeholder for the field the CSMS allocates (its send hook writes the real id), when
    the caller left it out: the schema requires it (remoteStartId, the reservation id)."""
    allocated = allocated_field(action)
    if allocated and isinstance(payload, dict) and allocated not in payload:
        return {**payload, allocated: 0}
    return payload


def command_group(command_id: int) -> str:
    return f"command-{command_id}"


# Who sends a command: a user, an anonymous request (recorded as nobody), or None (a job).
Sender = AbstractBaseUser | AnonymousUser | None


def sender_user(user: Sender) -> User | None:
    """The user a command is recorded as created by (``created_by``: the AUTH_USER_MODEL)."""
    return cast("User", user) if user is not None and user.is_authenticated else None


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured (CHANNEL_LAYERS)")
    return layer


def _dispatch(channel: str, command_id: int, hidden: list[tuple[secrets.Path, Any]] | None = None) -> None:
    """Hand the command to the consumer of the station's connection, in whichever process it lives (with the
    request's secrets, which are stored nowhere: see ``secrets``)."""
    message: dict[str, Any] = {"type": "command.dispatch", "command_id": command_id}
    if hidden:
        message["secrets"] = hidden
    try:
        async_to_sync(_layer().send)(channel, message)
    except Exception as exc:
        # Channel layer down or the channel full: the command would never leave "queued".
        logger.exception("could not dispatch command %s to %s", command_id, channel)
        command_finish(
            command_id=command_id,
            state=CommandState.FAILED,
            error_description=f"could not reach the station's connection: {type(exc).__name__}",
        )


def _publish(command: Command, identity: str) -> None:
    """Tell waiting API callers and dashboards the command's outcome (after commit, best effort)."""
    message = {
        "type": "command.finished",
        "command_id": command.pk,
        "action": command.action,
        "state": command.state,
        "station": identity,
    }
    try:
        layer = _layer()
        async_to_sync(layer.group_send)(command_group(command.pk), message)
        async_to_sync(layer.group_send)(station_group(identity), message)
    except Exception:
        logger.exception("could not publish the outcome of command %s", command.pk)


def command_send(
    *,
    station: ChargingStation,
    action: str,
    payload: dict[str, Any],
    user: Sender = None,
    bulk: BulkCommand | None = None,
) -> Command:
    """Validate, record and dispatch a CSMS->CS request to the station's live connection (in whichever process).

    Raises CommandValidationError (nothing stored). A station that is not connected gets an ``offline`` command.
    The outcome arrives later through :func:`command_finish`.

    Secrets in the request (WriteOnly values such as a new BasicAuthPassword, network passwords: ``secrets``) are
    stored and logged ``[redacted]``; they travel only in the channel-layer message to the consumer and the frame.
    """
    payload = with_allocated_placeholder(action=action, payload=payload)
    command_validate(action=action, payload=payload)
    with transaction.atomic():
        # The row lock orders us with connection_close: either we see the station offline, or the closing
        # connection sees our queued command and fails it.
        live = ChargingStation.objects.select_for_update().values("is_online", "channel_name").get(pk=station.pk)
        online = live["is_online"] and bool(live["channel_name"])
        now = timezone.now()
        command = Command.objects.create(
            station=station,
            action=action,
            request=payload,
            state=CommandState.QUEUED if online else CommandState.OFFLINE,
            channel_name=live["channel_name"] if online else "",
            created_by=sender_user(user),
            bulk=bulk,
            error_description="" if online else NOT_CONNECTED,
            finished_at=None if online else now,
        )
        command.message_id = str(command.pk)
        send_hooks_run(command)  # may rewrite command.request (an id the CSMS allocates)
        # Secrets (WriteOnly values, network passwords) are stored as [redacted] and only handed to the consumer.
        command.request, hidden = secrets.request_split(station_id=station.pk, action=action, payload=command.request)
        command.save(update_fields=["message_id", "request"])
        if online:
            channel, command_id = live["channel_name"], command.pk
            transaction.on_commit(lambda: _dispatch(channel, command_id, hidden))
        else:
            transaction.on_commit(lambda: _publish(command, station.identity))
    return command


def command_mark_sent(*, command_id: int) -> None:
    Command.objects.filter(pk=command_id, state=CommandState.QUEUED).update(
        state=CommandState.SENT, sent_at=timezone.now()
    )


# Domain reactions to a station's answer, per action (e.g. the transactions app records SendLocalList results).
def command_finish(
    *,
    command_id: int,
    state: str,
    response: dict[str, Any] | None = None,
    error_code: str = "",
    error_description: str = "",
    error_details: dict[str, Any] | None = None,
) -> Command | None:
    """Record a command's outcome once; a CallResult that violates the response schema becomes ``failed``.

    Returns the command, or None when it had already finished (e.g. failed by a closing connection).
    """
    if state not in FINAL_COMMAND_STATES:
        raise ValueError(f"{state!r} is not a final command state")
    with transaction.atomic():
        command = (
            Command.objects.select_for_update()
            .select_related("station")
            .filter(pk=command_id)
            .exclude(state__in=FINAL_COMMAND_STATES)
            .first()
        )
        if command is None:
            return None
        if state == CommandState.ANSWERED:
            found = schemas.violations(command.action, "Response", response) if isinstance(response, dict) else []
            # A lenient station's answer with only tolerable violations counts, as its requests do.
            tolerated = (
                bool(found)
                and command.station.validation_mode == ValidationMode.LENIENT
                and all(v.keyword in schemas.TOLERABLE for v, _ in found)
            )
            if found:
                ProtocolViolation.objects.create(
                    station_id=command.station_id,
                    message_id=command.message_id,
                    action=f"{command.action}Response"[:50],
                    violations=[v.as_dict() for v, _ in found],
                    tolerated=tolerated,
                )
            if not isinstance(response, dict) or (found and not tolerated):
                first = found[0][0] if found else None
                error_code = first.code if first else "FormatViolation"
                error_description = (
                    f"the station's {command.action}Response is not schema-valid: "
                    + (f"{first.path}: {first.message}" if first else "payload is not a JSON object")
                )[:255]
                error_details = {"violations": [v.as_dict() for v, _ in found]}
                state = CommandState.FAILED
        command.state = state
        command.response = response
        command.error_code = error_code[:40]
        command.error_description = error_description[:255]
        command.error_details = error_details
        command.finished_at = timezone.now()
        # A reply (or a timeout) proves the CALL went out even if mark_sent lost the race with the reply.
        replied = state in (CommandState.ANSWERED, CommandState.TIMED_OUT) or response is not None or error_code
        if command.sent_at is None and replied:
            command.sent_at = command.finished_at
        command.save(
            update_fields=[
                "state",
                "response",
                "error_code",
                "error_description",
                "error_details",
                "finished_at",
                "sent_at",
            ]
        )
        metrics.COMMANDS.labels(action=metrics.action_label(command.action), state=state).inc()
        if command.created_at is not None:
            elapsed = (command.finished_at - command.created_at).total_seconds()
            metrics.COMMAND_SECONDS.labels(action=metrics.action_label(command.action)).observe(max(elapsed, 0.0))
        if state == CommandState.ANSWERED:
            answer_hooks_run(command)
        elif state in (CommandState.FAILED, CommandState.TIMED_OUT):
            failure_hooks_run(command)
        identity = command.station.identity
        transaction.on_commit(lambda: _publish(command, identity))
        webhooks.emit("command.finished", lambda: command_webhook_data(command))
    return command


def command_webhook_data(command: Command) -> dict[str, Any]:
    """The ``data`` of the command.finished webhook."""
    error = None
    if command.error_code or command.error_description:
        error = {"code": command.error_code, "description": command.error_description, "details": command.error_details}
    return {
        "id": command.pk,
        "station": command.station.identity,
        "action": command.action,
        "state": command.state,
        "response": command.response,
        "error": error,
        "bulk": command.bulk_id,
        "created_at": command.created_at,
        "finished_at": command.finished_at,
    }


def command_for_dispatch(*, command_id: int) -> Command | None:
    """The command a consumer should put on the wire, or None if it is no longer queued."""
    return Command.objects.filter(pk=command_id, state=CommandState.QUEUED).first()


LAYER_OUTAGE = "the channel layer restarted before the command reached the station's connection"


def commands_fail_undelivered(*, channel_name: str, created_before: datetime) -> int:
    """End the commands handed to a connection's channel that it never took up, after a channel-layer outage: their
    channel message may have been lost with Redis' contents (one that still arrives finds them ended: not sent)."""
    stale = Command.objects.filter(
        channel_name=channel_name, state=CommandState.QUEUED, created_at__lt=created_before
    ).order_by("pk")
    ended = 0
    for pk in list(stale.values_list("pk", flat=True)):
        ended += command_finish(command_id=pk, state=CommandState.FAILED, error_description=LAYER_OUTAGE) is not None
    return ended


def commands_expire_stale(*, older_than_s: float) -> int:
    """End commands stuck in queued/sent for longer than any station could take (e.g. their server process died
    without closing its connections). Returns how many were ended."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = Command.objects.filter(state__in=[CommandState.QUEUED, CommandState.SENT], created_at__lt=cutoff)
    ended = 0
    for pk in list(stale.values_list("pk", flat=True)):
        finished = command_finish(
            command_id=pk,
            state=CommandState.TIMED_OUT,
            error_description=f"no outcome recorded within {older_than_s:g} s (the connection's process stopped?)",
        )
        ended += finished is not None
    return ended
