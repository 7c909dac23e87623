"""The one assembler of multi-part CS->CSMS messages, for every app.

OCPP 2.0.1 splits long answers into parts. NotifyReport, NotifyMonitoringReport, NotifyCustomerInformation and
NotifyEvent carry ``seqNo`` (0, 1, ...) and ``tbc`` ("to be continued"); ReportChargingProfiles and
NotifyDisplayMessages carry only ``requestId`` and ``tbc``. Parts may arrive out of order, be retried, or arrive on
another daphne process after a reconnect, so they are persisted (``csms.models``), keyed by (station, kind,
requestId, seqNo), and each part is received under the assembly's row lock.

A message is complete when the part with tbc=false has arrived and so have all seqNos 0..its seqNo, in any order.
Call :func:`part_receive` inside the CALL's transaction, then act on the outcome (``duplicate``: do nothing;
``completed_now``: run the completion once).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from .models import MessageAssembly, MessagePart

logger = logging.getLogger(__name__)

# kind -> whether its parts carry a seqNo
KINDS: dict[str, bool] = {
    "NotifyReport": True,
    "NotifyMonitoringReport": True,
    "NotifyCustomerInformation": True,
    "NotifyEvent": True,
    "ReportChargingProfiles": False,
    "NotifyDisplayMessages": False,
}


@dataclass(frozen=True, slots=True)
class PartOutcome:
    assembly: MessageAssembly
    seq_no: int
    # The part was held already (a retry): nothing to do. ``conflicting``: a part with that seqNo but other content.
    duplicate: bool
    conflicting: bool
    # Every part has arrived; ``completed_now``: this part completed it (completion work runs exactly once).
    complete: bool
    completed_now: bool


def payload_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _assembly_locked(*, station_id: int, kind: str, request_id: int) -> MessageAssembly:
    # INSERT .. ON CONFLICT DO NOTHING then lock: two first parts racing on two processes make one row.
    MessageAssembly.objects.bulk_create(
        [MessageAssembly(station_id=station_id, kind=kind, request_id=request_id)], ignore_conflicts=True
    )
    return MessageAssembly.objects.select_for_update().get(station_id=station_id, kind=kind, request_id=request_id)


def part_receive(
    *, station_id: int, kind: str, request_id: int, seq_no: int | None, tbc: bool, payload: dict[str, Any]
) -> PartOutcome:
    """Persist one part (idempotent) and say whether the message is complete. Must run inside a transaction."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a multi-part message kind")
    has_seq_no = KINDS[kind]
    if has_seq_no and seq_no is None:
        raise ValueError(f"{kind} parts carry a seqNo")
    digest = payload_digest(payload)
    assembly = _assembly_locked(station_id=station_id, kind=kind, request_id=request_id)
    was_complete = assembly.completed_at is not None
    if seq_no is not None:
        held = MessagePart.objects.filter(assembly=assembly, seq_no=seq_no).values_list("digest", flat=True).first()
    else:
        # OCPP SPEC-SILENT: parts without a seqNo cannot be told apart by number; a part identical to one held is a
        # retry, any other is the next part (numbered by arrival).
        held = MessagePart.objects.filter(assembly=assembly, digest=digest).values_list("digest", flat=True).first()
        seq_no = assembly.parts_received
    assert seq_no is not None
    if held is not None:
        if held != digest:
            # OCPP SPEC-SILENT: two different parts with one seqNo: the first received wins, the other is dropped.
            logger.warning(
                "%s %s of station %s: part %s received again with other content; kept the first",
                kind,
                request_id,
                station_id,
                seq_no,
            )
        return PartOutcome(assembly, seq_no, True, held != digest, was_complete, False)
    MessagePart.objects.create(assembly=assembly, seq_no=seq_no, tbc=tbc, payload=payload, digest=digest)
    assembly.parts_received += 1
    fields = ["parts_received", "updated_at"]
    if not tbc:
        # OCPP SPEC-SILENT: several parts with tbc=false: the message ends at the lowest of them.
        last = seq_no if assembly.last_seq_no is None else min(assembly.last_seq_no, seq_no)
        if last != assembly.last_seq_no:
            assembly.last_seq_no = last
            fields.append("last_seq_no")
    complete = was_complete or _all_parts_held(assembly, has_seq_no)
    completed_now = complete and not was_complete
    if completed_now:
        assembly.completed_at = timezone.now()
        fields.append("completed_at")
    assembly.save(update_fields=fields)
    return PartOutcome(assembly, seq_no, False, False, complete, completed_now)


def _all_parts_held(assembly: MessageAssembly, has_seq_no: bool) -> bool:
    if assembly.last_seq_no is None:
        return False
    if not has_seq_no:
        return True  # requestId + tbc only: the final part ends it
    held = MessagePart.objects.filter(assembly=assembly, seq_no__gte=0, seq_no__lte=assembly.last_seq_no).count()
    return held == assembly.last_seq_no + 1


def missing_seq_nos(*, assembly: MessageAssembly, limit: int = 100) -> list[int]:
    """seqNos not received yet below the highest one seen (or the last one), at most ``limit`` of them."""
    held = set(MessagePart.objects.filter(assembly=assembly).values_list("seq_no", flat=True))
    top = assembly.last_seq_no if assembly.last_seq_no is not None else max(held, default=-1)
    return [n for n in range(0, top + 1) if n not in held][:limit]


def parts_payloads(*, station_id: int, kind: str, request_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The parts' payloads of several messages, by requestId, in seqNo order (one query)."""
    out: dict[int, list[dict[str, Any]]] = {request_id: [] for request_id in request_ids}
    rows = (
        MessagePart.objects.filter(
            assembly__station_id=station_id, assembly__kind=kind, assembly__request_id__in=request_ids
        )
        .order_by("assembly__request_id", "seq_no")
        .values_list("assembly__request_id", "payload")
    )
    for request_id, payload in rows:
        out[request_id].append(payload)
    return out
