"""Firmware rollouts (block L): UpdateFirmware to many stations in waves, as a beat-driven state machine.

State lives in the database, never in a task's countdown: ``rollout_advance`` (the beat task
``firmware.rollout_advance`` every ``CSMS_ROLLOUT_ADVANCE_INTERVAL_S``, and a nudge after each event that may let a
rollout move) locks the rollout row (``select_for_update``), settles what the stations' commands became, moves to
the next wave when the current one is over (or halts), and sends the next stations within ``max_concurrent`` and
the maintenance window. Marking a station ``sent`` and recording its UpdateFirmware ``Command`` commit together, so
a worker killed at any point leaves either both or neither: the next advance (any worker) neither loses a station
nor sends one twice.

Every UpdateFirmware, whichever door sent it (a rollout, the dashboard's "any request" form, the admin, the API's
commands endpoint), gets its ``requestId`` and a ``FirmwareUpdate`` row from the send hook; its answer and the
station's FirmwareStatusNotifications drive that row and, for a rollout's station, the rollout.

Cancelling a rollout stops the stations not yet sent. A station that already got its UpdateFirmware cannot be
called back: OCPP has no cancel for it; only a new UpdateFirmware supersedes it (the station answers
AcceptedCanceled, and the superseded rollout station becomes ``cancelled``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from csms.timeutil import format_ocpp
from stations.commands import command_send
from stations.commands.pipeline import Sender, sender_user
from stations.models import BootRecord, ChargingStation, Command, CommandState

from .downloads import firmware_download_url, firmware_url_valid_until
from .models import (
    FAILURE_STATES,
    FINAL_TARGET_STATES,
    IN_FLIGHT_EXCLUDED,
    FirmwareImage,
    FirmwareRollout,
    FirmwareStatus,
    FirmwareStatusReport,
    FirmwareUpdate,
    RolloutState,
    RolloutStation,
    TargetState,
)

logger = logging.getLogger(__name__)

# UpdateFirmware answers that end a station's update at once.
REFUSALS = {"Rejected", "InvalidCertificate", "RevokedCertificate"}
# Command outcomes with no answer: resent per the rollout's retry policy.
UNANSWERED = (CommandState.OFFLINE, CommandState.FAILED, CommandState.TIMED_OUT)


class RolloutError(ValueError):
    """A rollout that cannot be created or changed as asked."""


# --- creation and cancel -------------------------------------------------------------------------------------------


def rollout_targets(
    *, identities: Iterable[str] | None = None, vendor: str = "", model: str = "", firmware_version: str = ""
) -> QuerySet[ChargingStation]:
    """The stations of a rollout: an identity list and/or a filter on vendor, model and current firmware."""
    stations = ChargingStation.objects.all()
    if identities is not None:
        stations = stations.filter(identity__in=list(identities))
    if vendor:
        stations = stations.filter(vendor_name=vendor)
    if model:
        stations = stations.filter(model=model)
    if firmware_version:
        stations = stations.filter(firmware_version=firmware_version)
    return stations.order_by("identity")


def rollout_create(
    *,
    firmware: FirmwareImage,
    stations: Iterable[ChargingStation],
    target: dict[str, Any] | None = None,
    wave_size: int = 10,
    max_concurrent: int = 10,
    retrieve_at: datetime | None = None,
    install_at: datetime | None = None,
    window_start: time | None = None,
    window_end: time | None = None,
    window_timezone: str = "UTC",
    halt_failure_share: float | None = None,
    max_attempts: int | None = None,
    retry_interval_s: int | None = None,
    station_retries: int | None = None,
    station_retry_interval_s: int | None = None,
    user: Sender = None,
) -> FirmwareRollout:
    """Record a rollout and its stations (wave by wave in identity order); the first wave goes out at once."""
    chosen = sorted({s.pk: s for s in stations}.values(), key=lambda s: s.identity)
    if not chosen:
        raise RolloutError("no station matches: a rollout needs at least one station")
    if wave_size < 1 or max_concurrent < 1:
        raise RolloutError("wave_size and max_concurrent must be at least 1")
    if (window_start is None) != (window_end is None):
        raise RolloutError("a maintenance window needs both its start and its end")
    if halt_failure_share is not None and not 0 <= halt_failure_share <= 1:
        raise RolloutError("halt_failure_share is a share between 0 and 1")
    try:
        ZoneInfo(window_timezone)
    except (KeyError, ValueError):
        raise RolloutError(f"unknown time zone {window_timezone!r}") from None
    extra: dict[str, Any] = {
        k: v
        for k, v in {
            "halt_failure_share": halt_failure_share,
            "max_attempts": max_attempts,
            "retry_interval_s": retry_interval_s,
        }.items()
        if v is not None
    }
    with transaction.atomic():
        rollout = FirmwareRollout.objects.create(
            firmware=firmware,
            target=target or {"identities": [s.identity for s in chosen]},
            wave_size=wave_size,
            max_concurrent=max_concurrent,
            retrieve_at=retrieve_at,
            install_at=install_at,
            window_start=window_start,
            window_end=window_end,
            window_timezone=window_timezone,
            station_retries=station_retries,
            station_retry_interval_s=station_retry_interval_s,
            current_wave=1,
            created_by=sender_user(user),
            **extra,
        )
        RolloutStation.objects.bulk_create(
            RolloutStation(rollout=rollout, station=s, wave=i // wave_size + 1) for i, s in enumerate(chosen)
        )
        rollout_nudge(rollout_id=rollout.pk)
    return rollout


def rollout_cancel(*, rollout: FirmwareRollout) -> int:
    """Cancel: the stations not yet sent become ``cancelled``; the ones sent go on (see the module's doc).
    Returns how many stations were stopped."""
    with transaction.atomic():
        locked = FirmwareRollout.objects.select_for_update().get(pk=rollout.pk)
        if locked.state in (RolloutState.CANCELLED, RolloutState.COMPLETED):
            raise RolloutError(f"rollout {rollout.pk} is {locked.state}: nothing to cancel")
        now = timezone.now()
        stopped = locked.stations.filter(state=TargetState.PENDING).update(
            state=TargetState.CANCELLED, state_at=now, detail="rollout cancelled before it was sent"
        )
        locked.state, locked.finished_at = RolloutState.CANCELLED, now
        locked.save(update_fields=["state", "finished_at", "updated_at"])
    return stopped


def rollout_nudge(*, rollout_id: int) -> None:
    """Let the rollout move soon (after this transaction commits): a Celery task, idempotent."""
    from .tasks import rollout_advance_task

    transaction.on_commit(lambda: rollout_advance_task.delay(rollout_id))


# --- the state machine -----------------------------------------------------------------------------------------------


def window_open(*, rollout: FirmwareRollout, now: datetime) -> bool:
    """Whether ``now`` is inside the rollout's maintenance window (local times; a window may wrap midnight)."""
    if rollout.window_start is None or rollout.window_end is None:
        return True
    local = now.astimezone(ZoneInfo(rollout.window_timezone)).time()
    start, end = rollout.window_start, rollout.window_end
    return start <= local < end if start <= end else (local >= start or local < end)


def rollouts_advance(*, now: datetime | None = None) -> int:
    """Beat job: advance every running rollout and confirm versions of recent ones. Returns how many it looked at."""
    since = (now or timezone.now()) - timedelta(seconds=settings.CSMS_ROLLOUT_CONFIRM_WINDOW_S)
    unconfirmed = RolloutStation.objects.filter(
        rollout=OuterRef("pk"), state=TargetState.INSTALLED, version_confirmed_at__isnull=True
    )
    ids = list(
        FirmwareRollout.objects.filter(
            Q(state=RolloutState.RUNNING) | Q(Exists(unconfirmed), updated_at__gte=since)
        ).values_list("pk", flat=True)
    )
    for rollout_id in ids:
        rollout_advance(rollout_id=rollout_id, now=now)
    return len(ids)


def rollout_advance(*, rollout_id: int, now: datetime | None = None) -> FirmwareRollout | None:
    """One step of a rollout; idempotent (run it as often as you like, from any worker).

    Short transactions, each under the rollout's row lock: one that settles the stations and moves the waves, then
    one per station sent (its ``Command`` and its ``sent`` state commit together). A transaction never locks more
    than one station row: the message log and the answers of other stations are never deadlocked by a wave.
    """
    now = now or timezone.now()
    with transaction.atomic():
        rollout = _locked(rollout_id)
        if rollout is None:
            return None
        _settle_unanswered(rollout=rollout, now=now)
        _expire_silent(rollout=rollout, now=now)
        rollout_confirm_versions(rollout=rollout)
        if rollout.state != RolloutState.RUNNING:
            return rollout
        _next_wave(rollout=rollout, now=now)
        due = _due_ids(rollout=rollout, now=now) if rollout.state == RolloutState.RUNNING else []
    for target_id in due:
        with transaction.atomic():
            rollout = _locked(rollout_id)
            if rollout is None or rollout.state != RolloutState.RUNNING or not _room(rollout):
                break
            _send_one(rollout=rollout, target_id=target_id, now=now)
    return rollout


def _locked(rollout_id: int) -> FirmwareRollout | None:
    return (
        FirmwareRollout.objects.select_for_update(of=("self",)).select_related("firmware").filter(pk=rollout_id).first()
    )


def _retry_or_fail(target: RolloutStation, *, rollout: FirmwareRollout, now: datetime, why: str) -> None:
    if target.attempts < rollout.max_attempts:
        target.state = TargetState.PENDING
        target.next_attempt_at = now + timedelta(seconds=rollout.retry_interval_s)
        target.detail = f"attempt {target.attempts}: {why}; retried"
    else:
        target.state = TargetState.FAILED
        target.detail = f"attempt {target.attempts}: {why}; no attempt left"
    target.state_at = now


def _settle_unanswered(*, rollout: FirmwareRollout, now: datetime) -> None:
    """Stations whose UpdateFirmware ended without an answer (offline, CALLERROR, timeout): retry or fail."""
    targets = list(
        rollout.stations.filter(state=TargetState.SENT, update__command__state__in=UNANSWERED).select_related(
            "update__command"
        )
    )
    for target in targets:
        assert target.update is not None
        command = target.update.command
        why = f"UpdateFirmware {command.state}" + (
            f" ({command.error_description})" if command.error_description else ""
        )
        _retry_or_fail(target, rollout=rollout, now=now, why=why[:200])
    RolloutStation.objects.bulk_update(targets, ["state", "next_attempt_at", "detail", "state_at"])
    # A refusal whose answer hook could not run (it is retried in a savepoint, never lost with the answer).
    rollout.stations.filter(
        state=TargetState.SENT,
        update__command__state=CommandState.ANSWERED,
        update__command__response__status__in=sorted(REFUSALS),
    ).update(state=TargetState.REJECTED, state_at=now, detail="UpdateFirmware refused")


def _expire_silent(*, rollout: FirmwareRollout, now: datetime) -> None:
    """A station that took its UpdateFirmware but has not reached a final status in time fails.
    # OCPP SPEC-SILENT: how long a station may take to install; ``CSMS_ROLLOUT_STATION_TIMEOUT_S`` (1 day) after
    # the later of the send and the install time."""
    cutoff = now - timedelta(seconds=settings.CSMS_ROLLOUT_STATION_TIMEOUT_S)
    if rollout.install_at and rollout.install_at > cutoff:
        return
    rollout.stations.exclude(state__in=IN_FLIGHT_EXCLUDED).filter(sent_at__lt=cutoff).update(
        state=TargetState.FAILED,
        state_at=now,
        detail=f"no final firmware status within {settings.CSMS_ROLLOUT_STATION_TIMEOUT_S} s",
    )


def _next_wave(*, rollout: FirmwareRollout, now: datetime) -> None:
    """Move past every finished wave; halt when more than ``halt_failure_share`` of one failed and waves remain
    (the last wave's failures are in the summary: there is nothing left to stop)."""
    while True:
        counts = dict(
            rollout.stations.filter(wave=rollout.current_wave)
            .values_list("state")
            .annotate(n=Count("id"))
            .values_list("state", "n")
        )
        total = sum(counts.values())
        if total and any(state not in FINAL_TARGET_STATES for state in counts):
            return  # the wave is still going
        failed = sum(n for state, n in counts.items() if state in FAILURE_STATES)
        last_wave = rollout.stations.aggregate(m=Max("wave"))["m"] or 0
        if total and failed / total > rollout.halt_failure_share and rollout.current_wave < last_wave:
            rollout.state = RolloutState.HALTED
            rollout.halt_reason = (
                f"wave {rollout.current_wave}: {failed} of {total} stations failed "
                f"(more than {rollout.halt_failure_share:.0%})"
            )
            rollout.finished_at = now
            rollout.save(update_fields=["state", "halt_reason", "finished_at", "updated_at"])
            rollout.stations.filter(state=TargetState.PENDING).update(detail="rollout halted: not sent")
            return
        if rollout.current_wave >= last_wave:
            rollout.state, rollout.finished_at = RolloutState.COMPLETED, now
            rollout.save(update_fields=["state", "finished_at", "updated_at"])
            return
        rollout.current_wave += 1
        rollout.save(update_fields=["current_wave", "updated_at"])


def _room(rollout: FirmwareRollout) -> int:
    """How many more stations may start now (``max_concurrent`` minus those sent and not over)."""
    return max(0, rollout.max_concurrent - rollout.stations.exclude(state__in=IN_FLIGHT_EXCLUDED).count())


def _due_ids(*, rollout: FirmwareRollout, now: datetime) -> list[int]:
    if not window_open(rollout=rollout, now=now):
        return []
    room = _room(rollout)
    if room <= 0:
        return []
    due = (
        rollout.stations.filter(wave=rollout.current_wave, state=TargetState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("station__identity")
        .values_list("pk", flat=True)[:room]
    )
    return list(due)


def _send_one(*, rollout: FirmwareRollout, target_id: int, now: datetime) -> None:
    """Send one station its UpdateFirmware (inside the caller's transaction, under the rollout's lock)."""
    target = (
        RolloutStation.objects.select_for_update(of=("self",))
        .select_related("station")
        .filter(pk=target_id, state=TargetState.PENDING)
        .first()
    )
    if target is None:
        return  # sent (or cancelled) meanwhile
    command = command_send(
        station=target.station, action="UpdateFirmware", payload=update_firmware_payload(rollout=rollout, now=now)
    )
    target.attempts += 1
    target.update = command.firmware_update
    target.sent_at = target.state_at = now
    target.next_attempt_at = None
    target.state = TargetState.SENT
    target.detail = ""
    if command.state == CommandState.OFFLINE:
        _retry_or_fail(target, rollout=rollout, now=now, why="station not connected")
    target.save(update_fields=["attempts", "update", "sent_at", "state_at", "next_attempt_at", "state", "detail"])


def update_firmware_payload(*, rollout: FirmwareRollout, now: datetime) -> dict[str, Any]:
    """The rollout's UpdateFirmwareRequest (the send hook fills in requestId)."""
    image = rollout.firmware
    retrieve_at = rollout.retrieve_at if rollout.retrieve_at and rollout.retrieve_at > now else now
    valid_until = firmware_url_valid_until(
        retrieve_at=retrieve_at, retries=rollout.station_retries, retry_interval_s=rollout.station_retry_interval_s
    )
    firmware: dict[str, Any] = {
        "location": firmware_download_url(image=image, valid_until=valid_until),
        "retrieveDateTime": format_ocpp(retrieve_at),
    }
    if rollout.install_at:
        firmware["installDateTime"] = format_ocpp(rollout.install_at)
    if image.signature:
        firmware["signingCertificate"] = image.signing_certificate
        firmware["signature"] = image.signature
    payload: dict[str, Any] = {"firmware": firmware}
    if rollout.station_retries is not None:
        payload["retries"] = rollout.station_retries
    if rollout.station_retry_interval_s is not None:
        payload["retryInterval"] = rollout.station_retry_interval_s
    return payload


def rollout_confirm_versions(*, rollout: FirmwareRollout, target_id: int | None = None) -> int:
    """Installed stations whose BootNotification since their UpdateFirmware reports the image's version are
    confirmed. The rollout reads the stations' boot records (stations.BootRecord): no hook into the boot path."""
    booted = BootRecord.objects.filter(
        station=OuterRef("station"), created_at__gte=OuterRef("sent_at"), firmware_version=rollout.firmware.version
    )
    targets = rollout.stations.filter(state=TargetState.INSTALLED, version_confirmed_at__isnull=True)
    if target_id is not None:
        targets = targets.filter(pk=target_id)  # one station's notification locks only its own row
    return targets.filter(Exists(booted)).update(version_confirmed_at=timezone.now())


# --- hooks and the station's notifications ---------------------------------------------------------------------------


def update_firmware_on_sending(command: Command) -> None:
    """Send hook of every UpdateFirmware: allocate the requestId (per station) and record the FirmwareUpdate.

    # OCPP SPEC-SILENT: the CSMS picks the requestId (any given one is replaced), so a FirmwareStatusNotification's
    # requestId always names one UpdateFirmware of this station.
    """
    last = FirmwareUpdate.objects.filter(station_id=command.station_id).aggregate(m=Max("request_id"))["m"]
    request_id = (last or 0) + 1
    command.request = {**command.request, "requestId": request_id}
    FirmwareUpdate.objects.create(
        station_id=command.station_id,
        command=command,
        request_id=request_id,
        location=command.request["firmware"]["location"][:512],
    )


def update_firmware_on_answered(command: Command) -> None:
    """UpdateFirmware answered (any door): record the status; a refusal ends a rollout's station; AcceptedCanceled
    means the station dropped its previous update, whose rollout station becomes ``cancelled``."""
    status = (command.response or {}).get("status", "")
    update = FirmwareUpdate.objects.filter(command=command).first()
    if update is None:
        return
    FirmwareUpdate.objects.filter(pk=update.pk).update(answer_status=status[:20])
    now = timezone.now()
    targets = RolloutStation.objects.filter(update=update, state=TargetState.SENT)
    if status in REFUSALS:
        reason = ((command.response or {}).get("statusInfo") or {}).get("reasonCode", "")
        rollout_ids = list(targets.values_list("rollout_id", flat=True))
        targets.update(
            state=TargetState.REJECTED, state_at=now, detail=f"UpdateFirmware {status} {reason}".strip()[:255]
        )
        for rollout_id in rollout_ids:
            rollout_nudge(rollout_id=rollout_id)
    if status == "AcceptedCanceled":
        superseded = RolloutStation.objects.filter(
            station_id=command.station_id, update__request_id__lt=update.request_id
        ).exclude(state__in=FINAL_TARGET_STATES)
        rollout_ids = list(superseded.values_list("rollout_id", flat=True))
        superseded.update(
            state=TargetState.CANCELLED,
            state_at=now,
            detail=f"superseded by UpdateFirmware requestId {update.request_id} (AcceptedCanceled)",
        )
        for rollout_id in rollout_ids:
            rollout_nudge(rollout_id=rollout_id)


def firmware_status_record(*, station_id: int, status: str, request_id: int | None) -> FirmwareStatusReport:
    """A FirmwareStatusNotification: stored, matched to its UpdateFirmware, and moving its rollout station.

    # OCPP SPEC-SILENT: outcomes of statuses that match nothing to move:
    # - unknown requestId: stored as received (``update`` empty), nothing else changes;
    # - no requestId (a triggered notification with no update ongoing, mostly Idle): matched to the station's
    #   latest UpdateFirmware for the record only, it moves no rollout;
    # - a rollout station already final (Installed, a failure, cancelled): stored, the final state is kept, so a
    #   repeated or late notification never counts twice;
    # - a cancelled (or halted) rollout: its stations already sent go on tracking their station's status (the
    #   station keeps installing); the rollout stays cancelled and sends nobody else.
    """
    now = timezone.now()
    with transaction.atomic():
        # The station row first, as command_finish (an UpdateFirmware's answer) takes it: the answer and the
        # statuses the station sends right after it queue up instead of deadlocking.
        ChargingStation.objects.select_for_update(no_key=True).filter(pk=station_id).values_list("pk").first()
        updates = FirmwareUpdate.objects.select_for_update().filter(station_id=station_id)
        update = (
            updates.filter(request_id=request_id).first() if request_id is not None else updates.order_by("-pk").first()
        )
        report = FirmwareStatusReport(station_id=station_id, request_id=request_id, status=status, update=update)
        if update is None:
            report.outcome = "no UpdateFirmware with this requestId: stored only"
            report.save()
            return report
        FirmwareUpdate.objects.filter(pk=update.pk).update(status=status, status_at=now)
        target = (
            RolloutStation.objects.select_for_update(of=("self",))
            .select_related("rollout")
            .filter(update=update)
            .first()
            if request_id is not None
            else None
        )
        if target is None:
            report.outcome = "recorded on the UpdateFirmware" + ("" if request_id is not None else " (no requestId)")
        elif target.state in FINAL_TARGET_STATES:
            report.outcome = f"rollout {target.rollout_id}: station already {target.state}, kept"
        else:
            target.state, target.state_at = status, now
            target.detail = ""
            target.save(update_fields=["state", "state_at", "detail"])
            rollout = target.rollout
            report.outcome = f"rollout {rollout.pk} ({rollout.state}): station now {status}"
            if status == FirmwareStatus.INSTALLED:
                rollout_confirm_versions(rollout=rollout, target_id=target.pk)
            if status in FINAL_TARGET_STATES and rollout.state == RolloutState.RUNNING:
                rollout_nudge(rollout_id=rollout.pk)
        report.save()
    return report


# --- reading -------------------------------------------------------------------------------------------------------


def rollout_summary(rollout: FirmwareRollout) -> dict[str, Any]:
    """Counts per state, successes, failures, the share done: what the page's progress bar and the API show."""
    by_state = dict(rollout.stations.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    total = sum(by_state.values())
    installed = by_state.get(TargetState.INSTALLED, 0)
    failed = sum(n for state, n in by_state.items() if state in FAILURE_STATES)
    cancelled = by_state.get(TargetState.CANCELLED, 0)
    pending = by_state.get(TargetState.PENDING, 0)
    finished = installed + failed + cancelled
    return {
        "total": total,
        "pending": pending,
        "in_progress": total - finished - pending,
        "installed": installed,
        "confirmed": rollout.stations.filter(version_confirmed_at__isnull=False).count(),
        "failed": failed,
        "cancelled": cancelled,
        "percent_done": round(100 * finished / total) if total else 100,
        "by_state": by_state,
    }
