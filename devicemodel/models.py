"""A station's device model as it reported it (NotifyReport, Get/SetVariables answers) and the report jobs.

A component is (name, instance, EVSE, connector) and a variable (name, instance); they are stored together, one
row per component-variable, with its characteristics, and one row per attribute type (Actual, Target, MinSet,
MaxSet). Absent instance/EVSE/connector are stored as ``""`` / ``NO_ID`` so that the natural key is a plain unique
constraint (NULLs are distinct in unique indexes) usable by bulk upserts on PostgreSQL and SQLite.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

NO_ID = -1  # "no EVSE" / "no connector": OCPP ids are never negative (the handler refuses negative ones)


class ReportKind(models.TextChoices):
    FULL_INVENTORY = "FullInventory"
    CONFIGURATION_INVENTORY = "ConfigurationInventory"
    SUMMARY_INVENTORY = "SummaryInventory"
    CRITERIA = "Criteria", "GetReport (criteria)"
    UNSOLICITED = "Unsolicited", "Reported without a request"
    MONITORING = "Monitoring", "GetMonitoringReport"
    MONITORING_UNSOLICITED = "MonitoringUnsolicited", "Monitoring reported without a request"


BASE_REPORT_KINDS = frozenset(
    {ReportKind.FULL_INVENTORY, ReportKind.CONFIGURATION_INVENTORY, ReportKind.SUMMARY_INVENTORY}
)
# Reports that list everything of their scope: what they no longer list is marked gone.
REPLACING_KINDS = frozenset({ReportKind.FULL_INVENTORY, ReportKind.CONFIGURATION_INVENTORY})
MONITORING_KINDS = frozenset({ReportKind.MONITORING, ReportKind.MONITORING_UNSOLICITED})


class ReportState(models.TextChoices):
    REQUESTED = "requested"
    RECEIVING = "receiving"
    COMPLETE = "complete"
    EMPTY = "empty", "empty (EmptyResultSet)"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


FINAL_REPORT_STATES = frozenset({ReportState.COMPLETE, ReportState.EMPTY, ReportState.FAILED, ReportState.TIMED_OUT})


class Mutability(models.TextChoices):
    READ_ONLY = "ReadOnly"
    WRITE_ONLY = "WriteOnly"
    READ_WRITE = "ReadWrite"


WRITABLE = (Mutability.READ_WRITE, Mutability.WRITE_ONLY)


class AttributeType(models.TextChoices):
    ACTUAL = "Actual"
    TARGET = "Target"
    MIN_SET = "MinSet"
    MAX_SET = "MaxSet"


class StationDeviceState(models.Model):
    """Per station: the report requestId counter, the RebootRequired flag, the monitoring base and level."""

    station = models.OneToOneField("stations.ChargingStation", on_delete=models.CASCADE, related_name="device_state")
    next_request_id = models.PositiveIntegerField(default=1)
    # Set by a SetVariables answer "RebootRequired"; the flag holds until the station boots after it.
    reboot_required_at = models.DateTimeField(null=True, blank=True)
    # The last SetMonitoringBase / SetMonitoringLevel the station accepted ("" / null: never set by the CSMS).
    monitoring_base = models.CharField(max_length=16, blank=True)
    monitoring_base_at = models.DateTimeField(null=True, blank=True)
    monitoring_level = models.PositiveSmallIntegerField(null=True, blank=True)
    monitoring_level_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"device state of {self.station_id}"

    @property
    def reboot_required(self) -> bool:
        if self.reboot_required_at is None:
            return False
        last_boot = self.station.last_boot_at
        return last_boot is None or last_boot < self.reboot_required_at


class ReportJob(models.Model):
    """A GetBaseReport/GetReport request and the NotifyReport parts it brought (or a report sent unasked)."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="report_jobs")
    request_id = models.IntegerField(help_text="The requestId sent to (or reported by) the station.")
    kind = models.CharField(max_length=24, choices=ReportKind.choices)
    component_criteria = models.JSONField(default=list, blank=True)
    component_variable = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=12, choices=ReportState.choices, default=ReportState.REQUESTED)
    command = models.ForeignKey("stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    station_status = models.CharField(max_length=20, blank=True, help_text="GenericDeviceModelStatus answered.")
    status_info = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    parts_received = models.PositiveIntegerField(default=0)
    variables_received = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["station", "request_id"], name="uniq_report_request_id")]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.kind} report {self.request_id} of {self.station_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_REPORT_STATES


class DeviceVariable(models.Model):
    """One component-variable of a station's device model, with its characteristics."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="device_variables")
    component_name = models.CharField(max_length=50)
    component_instance = models.CharField(max_length=50, blank=True)
    evse_id = models.IntegerField(default=NO_ID)
    connector_id = models.IntegerField(default=NO_ID)
    name = models.CharField(max_length=50)
    instance = models.CharField(max_length=50, blank=True)
    # Characteristics (null until a report gives them).
    data_type = models.CharField(max_length=20, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    min_limit = models.FloatField(null=True, blank=True)
    max_limit = models.FloatField(null=True, blank=True)
    values_list = models.CharField(max_length=1000, blank=True)
    supports_monitoring = models.BooleanField(null=True)
    # The last report that listed it, and the last replacing (Full/Configuration) one.
    last_report = models.ForeignKey(ReportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_replacing_report = models.ForeignKey(
        ReportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A replacing report that no longer listed it.
    gone_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["component_name", "component_instance", "evse_id", "connector_id", "name", "instance"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "station",
                    "component_name",
                    "component_instance",
                    "evse_id",
                    "connector_id",
                    "name",
                    "instance",
                ],
                name="uniq_device_variable",
            )
        ]

    def __str__(self) -> str:
        return f"{self.component_label}.{self.variable_label}"

    @property
    def evse(self) -> int | None:
        return None if self.evse_id == NO_ID else self.evse_id

    @property
    def connector(self) -> int | None:
        return None if self.connector_id == NO_ID else self.connector_id

    @property
    def component_label(self) -> str:
        label = self.component_name + (f"[{self.component_instance}]" if self.component_instance else "")
        if self.evse is not None:
            label += f"@{self.evse}" + (f"/{self.connector}" if self.connector is not None else "")
        return label

    @property
    def variable_label(self) -> str:
        return self.name + (f"[{self.instance}]" if self.instance else "")


class VariableAttribute(models.Model):
    """One attribute (Actual, Target, MinSet, MaxSet) of a variable. WriteOnly values are never stored."""

    variable = models.ForeignKey(DeviceVariable, on_delete=models.CASCADE, related_name="attributes")
    type = models.CharField(max_length=8, choices=AttributeType.choices, default=AttributeType.ACTUAL)
    # null = no value known (WriteOnly, or never reported); "" is a reported empty value.
    value = models.CharField(max_length=2500, null=True, blank=True)  # noqa: DJ001
    # "" = not known (the variable was met in a Get/SetVariables answer, never in a report).
    mutability = models.CharField(max_length=10, choices=Mutability.choices, blank=True)
    persistent = models.BooleanField(null=True)
    constant = models.BooleanField(null=True)
    # The last Get/SetVariables answer about it: "GetVariables"/"SetVariables", its attributeStatus and statusInfo.
    last_action = models.CharField(max_length=12, blank=True)
    last_status = models.CharField(max_length=30, blank=True)
    last_status_info = models.JSONField(null=True, blank=True)
    last_status_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["variable", "type"]
        constraints = [models.UniqueConstraint(fields=["variable", "type"], name="uniq_variable_attribute")]

    def __str__(self) -> str:
        return f"{self.variable_id} {self.type}"

    @property
    def is_write_only(self) -> bool:
        return self.mutability == Mutability.WRITE_ONLY


class MonitorType(models.TextChoices):
    UPPER_THRESHOLD = "UpperThreshold"
    LOWER_THRESHOLD = "LowerThreshold"
    DELTA = "Delta"
    PERIODIC = "Periodic"
    PERIODIC_CLOCK_ALIGNED = "PeriodicClockAligned"


class MonitorSource(models.TextChoices):
    REPORTED = "reported", "reported by the station"
    CSMS = "csms", "set by the CSMS"


class VariableMonitor(models.Model):
    """A monitor installed on a station's variable (NotifyMonitoringReport, accepted SetVariableMonitoring)."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="monitors")
    variable = models.ForeignKey(DeviceVariable, on_delete=models.CASCADE, related_name="monitors")
    monitor_id = models.IntegerField(help_text="The id the station gave the monitor.")
    type = models.CharField(max_length=24, choices=MonitorType.choices)
    value = models.FloatField(help_text="Threshold or delta; the interval in seconds for the periodic types.")
    severity = models.PositiveSmallIntegerField(help_text="0 Danger ... 9 Debug.")
    transaction = models.BooleanField(default=False, help_text="Only active during a transaction.")
    source = models.CharField(max_length=10, choices=MonitorSource.choices)
    # The last monitoring report that listed it (a complete full report marks the others gone).
    last_report = models.ForeignKey(ReportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    gone_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["variable", "monitor_id"]
        constraints = [models.UniqueConstraint(fields=["station", "monitor_id"], name="uniq_variable_monitor")]

    def __str__(self) -> str:
        return f"monitor {self.monitor_id} of {self.station_id} ({self.type} {self.value:g}, severity {self.severity})"
