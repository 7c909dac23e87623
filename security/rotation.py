"""Station password rotation (security profiles 1 and 2), with no lock-out window.

1. ``password_rotate`` generates a new password (``CSMS_PASSWORD_ROTATION_LENGTH`` characters, 16 to 40, from the
   characters OCPP allows in a BasicAuthPassword, by ``secrets``), records a ``PasswordRotation`` holding only its
   hash, and sends SetVariables ``SecurityCtrlr.BasicAuthPassword`` through the command pipeline. The clear value
   travels only in the outgoing frame (the channel-layer message to the consumer and the socket): the stored
   ``Command.request`` and the message log hold ``REDACTED`` instead.
2. The answer hook: ``Accepted`` (or ``RebootRequired``) makes the new hash the station's password and keeps the old
   one as ``previous_password_hash``; any other status (``Rejected`` ...) keeps the old password, the rotation is
   ``rejected``. A CALLERROR or no answer leaves it ``sent`` (see 3).
3. At the handshake (``password_alternate``): the current password, the previous one (until the station has
   connected with the new one, which clears it) and, while a rotation is unanswered, its new one (the station
   proves it applied it by using it; it then becomes the password) are accepted.
"""

from __future__ import annotations

import logging
import secrets
import string
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from stations.commands import command_send, on_command_answered
from stations.commands import secrets as command_secrets
from stations.commands.pipeline import Sender, sender_user
from stations.models import ChargingStation, Command

from .hashers import ALGORITHM
from .models import PasswordRotation, PasswordRotationState

logger = logging.getLogger(__name__)

COMPONENT = "SecurityCtrlr"
VARIABLE = "BasicAuthPassword"
REDACTED = command_secrets.REDACTED  # what the stored request and the log hold
# OCPP 2.0.1 (BasicAuthPassword, passwordString): 16 to 40 characters of a-z, A-Z, 0-9 and these.
ALPHABET = string.ascii_letters + string.digits + "*-_=:+|@."
MIN_LENGTH, MAX_LENGTH = 16, 40
ACCEPTED = frozenset({"Accepted", "RebootRequired"})


class PasswordUse(StrEnum):
    CURRENT = "current"
    PREVIOUS = "previous"


class RotationError(ValueError):
    pass


def password_generate(*, length: int | None = None) -> str:
    length = settings.CSMS_PASSWORD_ROTATION_LENGTH if length is None else length
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise RotationError(f"a BasicAuthPassword has {MIN_LENGTH} to {MAX_LENGTH} characters, not {length}")
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _payload(value: str) -> dict[str, Any]:
    return {
        "setVariableData": [{"attributeValue": value, "component": {"name": COMPONENT}, "variable": {"name": VARIABLE}}]
    }


def password_rotate(*, station: ChargingStation, user: Sender = None, length: int | None = None) -> PasswordRotation:
    """Start a rotation (module doc). Raises RotationError for a station that authenticates without a password,
    or one not connected (nothing is sent then)."""
    if not station.password_hash:
        raise RotationError(f"station {station.identity} has no password to rotate (security profile 0 or 3)")
    password = password_generate(length=length)
    with transaction.atomic():
        command = command_send(
            station=station,
            action="SetVariables",
            payload=_payload(password),  # stored and logged [redacted] (stations.commands.secrets)
            user=user,
        )
        if command.state == "offline":
            raise RotationError(f"station {station.identity} is not connected: nothing was sent")
        rotation = PasswordRotation.objects.create(
            station=station,
            command=command,
            password_hash=make_password(password, hasher=ALGORITHM),
            created_by=sender_user(user),
        )
    logger.info("station %s: password rotation %s sent (command %s)", station.identity, rotation.pk, command.pk)
    return rotation


@on_command_answered("SetVariables")
def rotation_on_answered(command: Command) -> None:
    """Answer hook: Accepted switches the stored password (the old one stays valid), anything else keeps it."""
    rotation = PasswordRotation.objects.select_for_update().filter(command=command).first()
    if rotation is None or rotation.state != PasswordRotationState.SENT:
        return
    result = next(
        (
            r
            for r in (command.response or {}).get("setVariableResult", [])
            if r["component"].get("name") == COMPONENT and r["variable"].get("name") == VARIABLE
        ),
        None,
    )
    status = result["attributeStatus"] if result else "missing"
    rotation.finished_at = timezone.now()
    if status in ACCEPTED:
        station = ChargingStation.objects.select_for_update().get(pk=rotation.station_id)
        station.previous_password_hash = station.password_hash
        station.password_hash = rotation.password_hash
        station.save(update_fields=["password_hash", "previous_password_hash"])
        rotation.state = PasswordRotationState.ACCEPTED
    else:
        info = (result or {}).get("attributeStatusInfo") or {}
        rotation.state = PasswordRotationState.REJECTED
        rotation.reason = f"{status} {info.get('reasonCode', '')}".strip()[:255]
    rotation.save(update_fields=["state", "reason", "finished_at"])
    # Unanswered rotations older than this one can no longer be what the station uses.
    PasswordRotation.objects.filter(
        station_id=rotation.station_id, state=PasswordRotationState.SENT, pk__lt=rotation.pk
    ).update(state=PasswordRotationState.FAILED, finished_at=rotation.finished_at, reason="superseded")
    logger.info("station %s: password rotation %s %s", command.station_id, rotation.pk, rotation.state)


def password_alternate(*, station: ChargingStation, password: str) -> PasswordUse | int | None:
    """A password other than the current one that a rotation keeps valid: ``PREVIOUS``, the pk of an unanswered
    rotation whose new password it is, or None. Only fast hashes (this hasher): microseconds."""
    if station.previous_password_hash and check_password(password, station.previous_password_hash):
        return PasswordUse.PREVIOUS
    pending = PasswordRotation.objects.filter(station_id=station.pk, state=PasswordRotationState.SENT).values_list(
        "pk", "password_hash"
    )
    for pk, encoded in pending.order_by("-pk")[:3]:
        if check_password(password, encoded):
            return pk
    return None


def password_settle(*, station: ChargingStation, used: PasswordUse | str | int) -> None:
    """After an accepted handshake: the station connecting with its new password ends the old one's validity; one
    connecting with an unanswered rotation's password has applied it: it becomes the password."""
    if isinstance(used, int):
        with transaction.atomic():
            rotation = PasswordRotation.objects.select_for_update().get(pk=used)
            ChargingStation.objects.filter(pk=station.pk).update(
                password_hash=rotation.password_hash, previous_password_hash=""
            )
            rotation.state = PasswordRotationState.COMPLETED
            rotation.reason = "the station connected with the new password before its answer was recorded"
            rotation.finished_at = timezone.now()
            rotation.save(update_fields=["state", "reason", "finished_at"])
        return
    if used == PasswordUse.CURRENT and station.previous_password_hash:
        ChargingStation.objects.filter(pk=station.pk, password_hash=station.password_hash).update(
            previous_password_hash=""
        )
        PasswordRotation.objects.filter(station_id=station.pk, state=PasswordRotationState.ACCEPTED).update(
            state=PasswordRotationState.COMPLETED, finished_at=timezone.now()
        )
