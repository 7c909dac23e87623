"""What stations reported (and what was sent to them) is an audit trail: the admin shows it and never changes it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import models
from django.test import Client, RequestFactory
from django.urls import reverse

from csms.admin import ReadOnlyAdmin, ReadOnlyInline
from csms.models import JobHeartbeat, JobRun, MessageAssembly, MessagePart
from devicemodel.models import DeviceVariable, ReportJob, StationDeviceState, VariableAttribute, VariableMonitor
from firmware.models import (
    FirmwareImage,
    FirmwarePublication,
    FirmwareRollout,
    FirmwareStatusReport,
    FirmwareUpdate,
    LogRequest,
    RolloutStation,
    StationFileTransfer,
    UploadSlot,
)
from smartcharging.models import (
    AllocationEntry,
    AllocationRound,
    ChargingProfile,
    ChargingProfileReport,
    ChargingSchedule,
    ChargingSchedulePeriod,
    EvChargingNeeds,
    EvChargingSchedule,
    EvseAllocation,
    EvseLimit,
    ExternalChargingLimit,
    Site,
    SiteMember,
    SitePriority,
    StationCompositeSchedule,
)
from stations.models import (
    BootRecord,
    BulkCommand,
    ChargingStation,
    Command,
    Connection,
    Connector,
    DataTransferRecord,
    DisplayMessage,
    DisplayMessageReport,
    Evse,
    MessageLog,
    NetworkProfile,
    ProtocolViolation,
    ServerProcess,
    StationEvent,
    StatusNotificationRecord,
)
from transactions.models import (
    ChargingTransaction,
    CustomerDataClearance,
    CustomerInformationRequest,
    IdToken,
    LocalAuthList,
    MeterSample,
    RemoteStartRequest,
    Reservation,
    Tariff,
    TariffVersion,
    TransactionEventRecord,
)
from webhooks.models import WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

# Reported by stations, or derived from what they reported (transactions, EVSEs and connectors).
STATION_REPORTED = (
    BootRecord,
    MessageLog,
    StatusNotificationRecord,
    StationEvent,
    ProtocolViolation,
    Connection,
    Connector,
    Evse,
    MeterSample,
    TransactionEventRecord,
    ChargingTransaction,
    MessageAssembly,
    MessagePart,
    DeviceVariable,
    VariableAttribute,
    ReportJob,
    StationDeviceState,
    VariableMonitor,
    DataTransferRecord,
    DisplayMessageReport,
    CustomerInformationRequest,
    FirmwareStatusReport,
    # Charging profiles (K-block)
    ChargingProfileReport,
    ExternalChargingLimit,
    EvChargingNeeds,
    EvChargingSchedule,
    StationCompositeSchedule,
)
# The files and log requests (firmware/): what was sent (GetLog), what stations uploaded and reported.
FILES_AND_LOGS = (LogRequest, UploadSlot)
# What operators sent to stations: the command audit trail.
SENT_TO_STATIONS: tuple[type[models.Model], ...] = (
    Command,
    BulkCommand,
    RemoteStartRequest,
    Reservation,
    DisplayMessage,
    FirmwareRollout,
    RolloutStation,
    FirmwareUpdate,
    FirmwarePublication,
)
# Charging profiles (K-block): sent by the CSMS or reported by the station, moved on by the answers.
SENT_TO_STATIONS += (ChargingProfile, ChargingSchedule, ChargingSchedulePeriod)
SENT_TO_STATIONS += (NetworkProfile,)  # SetNetworkProfile per slot and its answer
# The CSMS's own audit of what it did to its records (customer data anonymised; the tariff versions sessions
# were priced with).
CSMS_AUDIT: tuple[type[models.Model], ...] = (CustomerDataClearance, TariffVersion, JobRun, JobHeartbeat)
# The CSMS's record of the site allocations it decided and sent (sites and load management).
CSMS_AUDIT += (EvseAllocation, AllocationRound, AllocationEntry)
CSMS_AUDIT += (ServerProcess,)  # the daphne processes' leases: written by the processes, never by hand
READ_ONLY = STATION_REPORTED + SENT_TO_STATIONS + CSMS_AUDIT + FILES_AND_LOGS
# Managed by operators: stations' registration, id tokens, local lists, webhooks (and the webhooks' delivery log).
WRITABLE: tuple[type[models.Model], ...] = (
    ChargingStation,
    IdToken,
    LocalAuthList,
    WebhookSubscription,
    WebhookDelivery,
    Tariff,
    StationFileTransfer,
    FirmwareImage,
)
WRITABLE += (Site, SiteMember, EvseLimit, SitePriority)  # operators' site settings
OUR_APPS = ("csms", "stations", "transactions", "devicemodel", "smartcharging", "webhooks", "firmware")


def one_of_each() -> dict[type[models.Model], models.Model]:
    station = ChargingStation.objects.create(identity="AUDIT-1")
    user = User.objects.create_user("op")
    evse = Evse.objects.create(station=station, evse_id=1)
    connector = Connector.objects.create(evse=evse, connector_id=1, status="Available", status_at=T0)
    connection = Connection.objects.create(station=station, identity="AUDIT-1", outcome="accepted")
    txn = ChargingTransaction.objects.create(station=station, transaction_id="TX-1", started_at=T0)
    bulk = BulkCommand.objects.create(action="Reset", request={"type": "Immediate"}, created_by=user)
    command = Command.objects.create(station=station, action="Reset", request={"type": "Immediate"}, bulk=bulk)
    assembly = MessageAssembly.objects.create(station=station, kind="NotifyReport", request_id=1)
    variable = DeviceVariable.objects.create(station=station, component_name="C", name="v", updated_at=T0)
    site = Site.objects.create(name="Audit site", capacity_a=Decimal(32))
    round_ = AllocationRound.objects.create(site=site, generation=1, reason="r", capacity_a=[32], allocated_a=[0])
    return {
        JobRun: JobRun.objects.create(job="stations.message_log_retention", slot="2026-12-02T01"),
        JobHeartbeat: JobHeartbeat.objects.create(process="worker", seen_at=T0),
        ServerProcess: ServerProcess.objects.create(hostname="web-1", pid=42, lease_until=T0),
        EvseAllocation: EvseAllocation.objects.create(
            site=site, station=station, evse_id=1, transaction=txn, target_a=Decimal(6)
        ),
        AllocationRound: round_,
        AllocationEntry: AllocationEntry.objects.create(
            round=round_, station=station, evse_id=1, limit_a=Decimal(6), step="same", reason="r"
        ),
        MessageAssembly: assembly,
        MessagePart: MessagePart.objects.create(assembly=assembly, seq_no=0, tbc=False, payload={}, digest="0"),
        DeviceVariable: variable,
        VariableAttribute: VariableAttribute.objects.create(variable=variable, value="1", updated_at=T0),
        ReportJob: ReportJob.objects.create(station=station, request_id=1, kind="FullInventory"),
        StationDeviceState: StationDeviceState.objects.create(station=station),
        VariableMonitor: VariableMonitor.objects.create(
            station=station,
            variable=variable,
            monitor_id=1,
            type="UpperThreshold",
            value=1.0,
            severity=2,
            source="reported",
            updated_at=T0,
        ),
        Evse: evse,
        Connector: connector,
        Connection: connection,
        ChargingTransaction: txn,
        BulkCommand: bulk,
        Command: command,
        BootRecord: BootRecord.objects.create(
            station=station, reason="PowerUp", vendor_name="ACME", model="M1", status="Accepted"
        ),
        MessageLog: MessageLog.objects.create(
            station=station,
            connection=connection,
            direction="in",
            message_type=2,
            message_id="m-1",
            action="Heartbeat",
            payload={},
        ),
        StatusNotificationRecord: StatusNotificationRecord.objects.create(
            connector=connector, status="Available", timestamp=T0
        ),
        StationEvent: StationEvent.objects.create(
            station=station,
            generated_at=T0,
            seq_no=0,
            event_id=1,
            timestamp=T0,
            trigger="Alerting",
            actual_value="1",
            event_notification_type="HardWiredNotification",
            component={"name": "EVSE"},
            variable={"name": "Problem"},
        ),
        ProtocolViolation: ProtocolViolation.objects.create(
            station=station, message_id="m-2", action="Heartbeat", violations=[], tolerated=True
        ),
        MeterSample: MeterSample.objects.create(
            station=station,
            transaction=txn,
            evse_id=1,
            timestamp=T0,
            measurand="Energy.Active.Import.Register",
            value=Decimal(1),
            unit="Wh",
        ),
        TransactionEventRecord: TransactionEventRecord.objects.create(
            transaction=txn, seq_no=0, event_type="Started", timestamp=T0, trigger_reason="Authorized"
        ),
        RemoteStartRequest: RemoteStartRequest.objects.create(
            station=station, command=command, id_token={"idToken": "A", "type": "Central"}
        ),
        Reservation: Reservation.objects.create(
            station=station, reservation_id=1, id_token="A", id_token_type="Central", expires_at=T0
        ),
        DataTransferRecord: DataTransferRecord.objects.create(
            station=station, vendor_id="com.example", status="Accepted"
        ),
        DisplayMessage: DisplayMessage.objects.create(
            station=station,
            source="csms",
            message_id=1,
            priority="NormalCycle",
            format="UTF8",
            content="Hi",
            status="accepted",
        ),
        DisplayMessageReport: DisplayMessageReport.objects.create(station=station, request_id=1),
        NetworkProfile: NetworkProfile.objects.create(station=station, configuration_slot=1, connection_data={}),
        CustomerInformationRequest: (info := CustomerInformationRequest.objects.create(station=station, request_id=1)),
        CustomerDataClearance: CustomerDataClearance.objects.create(request=info, pseudonym="anon-1"),
        TariffVersion: TariffVersion.objects.create(
            tariff=Tariff.objects.create(name="T", currency="EUR"), number=1, valid_from=T0, prices={}
        ),
        UploadSlot: (slot := UploadSlot.objects.create(token="t" * 32, max_bytes=1, expires_at=T0)),
        LogRequest: LogRequest.objects.create(station=station, request_id=1, slot=slot),
        # Charging profiles (K-block)
        ChargingProfile: (
            profile := ChargingProfile.objects.create(
                station=station, profile_id=1, stack_level=0, purpose="TxDefaultProfile", kind="Relative"
            )
        ),
        ChargingSchedule: (
            schedule := ChargingSchedule.objects.create(profile=profile, schedule_id=1, charging_rate_unit="A")
        ),
        ChargingSchedulePeriod: ChargingSchedulePeriod.objects.create(schedule=schedule, start_period_s=0, limit=16),
        ChargingProfileReport: ChargingProfileReport.objects.create(station=station, request_id=1),
        ExternalChargingLimit: ExternalChargingLimit.objects.create(station=station, source="SO"),
        EvChargingNeeds: EvChargingNeeds.objects.create(
            station=station, evse_id=1, requested_energy_transfer="DC", answered_status="Accepted"
        ),
        EvChargingSchedule: EvChargingSchedule.objects.create(
            station=station, evse_id=1, time_base=T0, charging_schedule={}
        ),
        StationCompositeSchedule: StationCompositeSchedule.objects.create(
            station=station, command=command, evse_id=1, duration_s=60, status="Accepted"
        ),
        **_firmware(station),
    }


def _firmware(station: ChargingStation) -> dict[type[models.Model], models.Model]:
    image = FirmwareImage.objects.create(version="1", file="firmware/images/x.bin", md5_hex="0" * 32, sha256_hex="0")
    rollout = FirmwareRollout.objects.create(firmware=image)
    fw_command = Command.objects.create(station=station, action="UpdateFirmware", request={})
    update = FirmwareUpdate.objects.create(station=station, command=fw_command, request_id=1, location="http://x/")
    pub_command = Command.objects.create(station=station, action="PublishFirmware", request={})
    return {
        FirmwareRollout: rollout,
        RolloutStation: RolloutStation.objects.create(rollout=rollout, station=station, wave=1, update=update),
        FirmwareUpdate: update,
        FirmwareStatusReport: FirmwareStatusReport.objects.create(station=station, status="Installed", update=update),
        FirmwarePublication: FirmwarePublication.objects.create(
            station=station, command=pub_command, request_id=1, checksum="0" * 32
        ),
    }


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "", "pw"))
    return client


def admin_url(model: type[models.Model], view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def inlines_by_model() -> dict[type[models.Model], list[type]]:
    found: dict[type[models.Model], list[type]] = {}
    for model_admin in admin.site._registry.values():
        for inline in model_admin.inlines:
            found.setdefault(inline.model, []).append(inline)
    return found


def test_every_model_of_ours_is_classified_as_read_only_or_writable():
    # A new model fails here until it is put in one list: a station-reported one must not slip in writable.
    ours = {m for label in OUR_APPS for m in apps.get_app_config(label).get_models()}
    assert ours == set(READ_ONLY) | set(WRITABLE)
    assert not set(READ_ONLY) & set(WRITABLE)


def test_every_read_only_model_is_shown_only_by_read_only_admins_and_inlines():
    inlines = inlines_by_model()
    for model in READ_ONLY:
        registered = admin.site._registry.get(model)
        assert registered is not None or model in inlines, f"{model.__name__} is not in the admin at all"
        if registered is not None:
            assert isinstance(registered, ReadOnlyAdmin), f"{model.__name__} is registered writable"
        for inline in inlines.get(model, []):
            assert issubclass(inline, ReadOnlyInline), f"{model.__name__} has a writable inline {inline.__name__}"
    # And nothing else is declared read-only behind this test's back (it is then checked below like the rest).
    declared = {m for m, a in admin.site._registry.items() if isinstance(a, ReadOnlyAdmin)}
    assert declared <= set(READ_ONLY)


def test_read_only_admins_deny_a_superuser_add_change_and_delete(superuser_client: Client) -> None:
    root = User.objects.get(username="root")
    request = RequestFactory().get("/admin/")
    request.user = root
    objects = one_of_each()
    read_only = [(m, a) for m, a in admin.site._registry.items() if isinstance(a, ReadOnlyAdmin)]
    # EVSEs are shown inside their station only, rollout stations inside their rollout.
    assert {m for m, _ in read_only} == set(READ_ONLY) - {Evse, RolloutStation}
    for model, model_admin in read_only:
        obj = objects[model]
        name = model.__name__
        assert (
            model_admin.has_add_permission(request),
            model_admin.has_change_permission(request, obj),
            model_admin.has_delete_permission(request, obj),
            model_admin.has_view_permission(request, obj),
        ) == (False, False, False, True), name
        assert "delete_selected" not in model_admin.get_actions(request), name

        assert superuser_client.get(admin_url(model, "changelist")).status_code == 200, name
        assert superuser_client.get(admin_url(model, "add")).status_code == 403, name
        assert superuser_client.post(admin_url(model, "add"), {}).status_code == 403, name
        form = superuser_client.get(admin_url(model, "change", obj.pk))
        assert form.status_code == 200, name
        body = form.content.decode()
        assert 'name="_save"' not in body and 'name="_continue"' not in body, name
        assert 'class="deletelink"' not in body, name
        assert superuser_client.post(admin_url(model, "change", obj.pk), {}).status_code == 403, name
        assert superuser_client.get(admin_url(model, "delete", obj.pk)).status_code == 403, name
        assert superuser_client.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403, name
        assert model._default_manager.filter(pk=obj.pk).exists(), name


@pytest.mark.parametrize(
    ("parent", "child"),
    [(ChargingStation, Evse), (ChargingTransaction, TransactionEventRecord), (BulkCommand, Command)],
)
def test_read_only_inlines_offer_no_add_change_or_delete(
    superuser_client: Client, parent: type[models.Model], child: type[models.Model]
) -> None:
    objects = one_of_each()
    owner = ChargingStation.objects.get() if parent is ChargingStation else objects[parent]
    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="root")
    inline_classes = [i for i in admin.site._registry[parent].inlines if i.model is child]
    assert len(inline_classes) == 1
    inline = inline_classes[0](parent, admin.site)
    assert (
        inline.has_add_permission(request, owner),
        inline.has_change_permission(request, owner),
        inline.has_delete_permission(request, owner),
        inline.can_delete,
    ) == (False, False, False, False)
    body = superuser_client.get(admin_url(parent, "change", owner.pk)).content.decode()
    prefix = inline.get_formset(request, owner).get_default_prefix()
    assert f'name="{prefix}-TOTAL_FORMS"' in body  # the inline is on the page...
    assert f'name="{prefix}-MAX_NUM_FORMS" value="0"' in body  # ...and no row can be added to it
    assert f'name="{prefix}-0-DELETE"' not in body
