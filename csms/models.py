"""Project-level models: protocol plumbing every domain app shares (no domain meaning of its own).

The OCPP-J layer (``csms.ocpp``) knows no models; what it needs persisted across daphne processes lives here.
"""

from __future__ import annotations

from django.db import models


class MessageAssembly(models.Model):
    """One multi-part CS->CSMS message (e.g. a NotifyReport sent in parts): the parts held so far and whether all
    have arrived. Keyed by (station, kind, requestId); its row lock orders the parts of one message."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=50, help_text="The OCPP action, e.g. NotifyReport.")
    request_id = models.IntegerField()
    # seqNo of the part with tbc=false (the last one), once it has arrived.
    last_seq_no = models.IntegerField(null=True, blank=True)
    parts_received = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["station", "kind", "request_id"], name="uniq_message_assembly"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.request_id} of {self.station_id}"


class MessagePart(models.Model):
    """One part of a multi-part message, as received (the domain may have scrubbed secrets out of it first)."""

    assembly = models.ForeignKey(MessageAssembly, on_delete=models.CASCADE, related_name="parts")
    # The station's seqNo; for kinds without one (requestId + tbc only), the arrival index.
    seq_no = models.IntegerField()
    tbc = models.BooleanField()
    payload = models.JSONField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical payload: tells retries apart.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assembly", "seq_no"]
        constraints = [models.UniqueConstraint(fields=["assembly", "seq_no"], name="uniq_message_part")]

    def __str__(self) -> str:
        return f"{self.assembly} part {self.seq_no}"


class JobRun(models.Model):
    """One run of a scheduled (beat) job in one slot of its schedule: the beat lock. A restarted or duplicated
    beat sends the job again, but only the first task to insert (job, slot) runs it."""

    job = models.CharField(max_length=100, help_text="The beat job, e.g. stations.message_log_retention.")
    slot = models.CharField(max_length=40, help_text="The schedule's slot, e.g. 2026-12-02 or 2026-12-02T01:00.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["job", "slot"], name="uniq_job_run_slot")]

    def __str__(self) -> str:
        return f"{self.job} {self.slot}"


class JobHeartbeat(models.Model):
    """When the Celery worker and beat were last seen alive (the dashboard shows it; /readyz does not gate on it)."""

    class Process(models.TextChoices):
        WORKER = "worker", "Celery worker"
        BEAT = "beat", "Celery beat"

    process = models.CharField(max_length=10, choices=Process.choices, unique=True)
    seen_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.process} seen {self.seen_at:%Y-%m-%d %H:%M:%S}"
